"""README.md runs as written: every line of its ```sh blocks is run from the top of the
checkout with ``lua2pipe`` on the PATH and must succeed (```console blocks, such as make run and
dig, are shown, not run). ``pdnsutil`` lines run against a pdns
configuration with launch=pipe serving tests/scripts/hooks.lua (a ``pdnsutil`` on the PATH that
adds ``--config-dir``); they need pdns (skipped without it, failed under CI=true)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from pdns import PDNSUTIL, build_config, in_ci, pdns_available, pipe_settings

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "README.md"
HOOKS = REPO / "tests" / "scripts" / "hooks.lua"

pytestmark = pytest.mark.lua2pipe


def sh_commands() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_doc_has_examples():
    commands = sh_commands()
    for word in ("lua2pipe check", "lua2pipe query", "lua2pipe axfr", "lua2pipe cmd", "pdnsutil backend-cmd"):
        assert any(command.startswith(word) for command in commands), word


def test_no_file_cites_a_specification_outside_the_repository():
    # a reader cannot follow a section of a specification kept elsewhere: cite pdns's source
    # (file and function) or this repository's documents
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    citations = [
        f"{name}:{number}: {line.strip()}"
        for name in tracked.stdout.splitlines()
        if name.endswith((".md", ".toml", ".py", ".lua", ".txt"))
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1)
        if re.search(r"\u00a7|\bspec/|\bspec `", line)
    ]
    assert citations == []


@pytest.fixture(scope="module")
def shim_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("operators-doc")
    (directory / "pdns.conf").write_text(
        build_config({"zone-cache-refresh-interval": 0}, pipe_settings(HOOKS, abi=5))
    )
    shim = directory / "pdnsutil"
    shim.write_text(f'#!/bin/sh\nexec {PDNSUTIL or "pdnsutil"} --config-dir={directory} "$@"\n')
    shim.chmod(0o755)
    return f"{directory}:{REPO}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.mark.parametrize("command", sh_commands())
def test_example_runs(command, shim_path):
    if command.startswith("pdnsutil") and not pdns_available("pipe"):
        if in_ci():
            pytest.fail("CI=true and pdns with the pipe backend is not installed")
        pytest.skip("pdns with the pipe backend is not installed")
    result = subprocess.run(
        command,
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": shim_path},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert result.stdout.strip(), command
    assert not re.search(r"^(error|not found): ", result.stdout, flags=re.M), (command, result.stdout)


def test_shell_piping_recipe_prints_ok_data_and_end():
    recipe = next(command for command in sh_commands() if command.startswith("printf 'HELO"))
    result = subprocess.run(recipe, shell=True, cwd=REPO, capture_output=True, text=True, timeout=30)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK\tlua2pipe "), lines
    assert lines[1:-1] and all(line.startswith("DATA\t") for line in lines[1:-1]), lines
    assert lines[-1] == "END", lines
