"""pyproject.toml installs what lua2pipe needs: the module, the _lua2pipe package with the Lua
half as its package data, and the ``lua2pipe`` console script; the installed copy finds its
Lua files beside itself, serves, and runs the operator's subcommands."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return next(out.glob("lua2pipe-*.whl"))


def test_wheel_holds_module_lua_files_and_console_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "lua2pipe.py" in names
    for module in ("__init__", "shell", "transcript", "replay", "record", "keys"):
        assert f"_lua2pipe/{module}.py" in names, names
    for lua in ("environment.lua", "content.lua", "dispatch.lua", "remote.lua"):
        assert f"_lua2pipe/lua/{lua}" in names, names
    assert not [name for name in names if ".data/" in name], names  # no data-files outside the package
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "lua2pipe = lua2pipe:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_serves(wheel, tmp_path):
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip uninstalls the project's own editable install first
    install = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--ignore-installed",
        "--prefix",
        str(prefix),
        str(wheel),
    ]
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    purelib = sysconfig.get_path("purelib", vars={"base": str(prefix)})
    assert (prefix / "bin" / "lua2pipe").is_file()
    code = f"import sys; sys.path.insert(0, {purelib!r}); import lua2pipe; sys.exit(lua2pipe.main())"
    where = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {purelib!r}); import lua2pipe; print(lua2pipe.LUA_DIR)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert where.stdout.strip() == str(Path(purelib) / "_lua2pipe" / "lua")
    session = "HELO\t5\nQ\twww.example.org\tIN\tA\t-1\t192.0.2.1\t192.0.2.53\t192.0.2.1/32\n"
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(REPO / "examples" / "geo.lua")],
        input=session,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK\tlua2pipe"), result.stderr
    assert lines[-1] == "END" and any(line.startswith("DATA\t") for line in lines), lines
    keys = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            code,
            "cmd",
            str(REPO / "tests" / "scripts" / "hooks.lua"),
            "keys example.com",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert keys.stdout.startswith("id=1 flags=257 active=yes published=yes algorithm=13 tag=57056 "), (
        keys.stderr
    )
