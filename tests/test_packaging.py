"""pyproject.toml installs what the coprocess needs: the module, its Lua half and the
``lua2pipe`` console script; the installed copy finds its Lua files and serves."""

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
    for lua in ("environment.lua", "dispatch.lua", "remote.lua"):
        assert any(name.endswith(f".data/data/share/lua2pipe/{lua}") for name in names), names
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
