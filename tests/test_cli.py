"""The operators' subcommands, run as an operator runs them (the ``lua2pipe`` launcher in a
subprocess): check, query, axfr and cmd, with their exit codes and --help."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import dns.zone
import pytest

import lua2pipe

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "lua2pipe"
HOOKS = REPO / "tests" / "scripts" / "hooks.lua"

pytestmark = pytest.mark.lua2pipe


def run(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(LAUNCHER), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    if check_rc is not None:
        assert result.returncode == check_rc, (result.stdout, result.stderr)
    return result


@pytest.mark.parametrize("name", ["check", "query", "axfr", "cmd"])
def test_help_has_examples(name):
    result = run(name, "--help")
    assert result.stdout.startswith(f"usage: lua2pipe {name} ")
    assert f"examples:\n  lua2pipe {name} " in result.stdout


def test_subcommands_listed_in_main_help():
    result = run("--help")
    for name in ("check", "query", "axfr", "cmd", "replay"):
        assert re.search(rf"^  {name} +\S", result.stdout, flags=re.M), name


# -- check ----------------------------------------------------------------------------------------


def test_check_usable_script():
    out = run("check", str(HOOKS)).stdout
    assert "loads: yes" in out
    assert (
        "hooks: dns_lookup dns_list dns_get_all_domains dns_get_domaininfo dns_get_domain_metadata "
        "dns_get_all_domain_metadata dns_get_domain_keys dns_get_before_and_after_names_absolute "
        "dns_set_notified"
    ) in out
    assert "dns_dnssec: true" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("capability"))
    assert "native lua2" in header and "pipe + lua2pipe" in header and "remote + lua2pipe" in header
    dnssec = next(line for line in lines if line.startswith("DNSSEC"))
    assert dnssec.split()[1] == "yes" and "no (pdns never asks" in dnssec
    assert dnssec.endswith("yes (remote-dnssec=yes)")
    assert next(line for line in lines if line.startswith("Primary")).endswith("yes, with notifies")
    assert f"remote-connection-string=pipe:command={LAUNCHER} {HOOKS},timeout=0" in lines
    assert "launch=remote" in lines and "remote-dnssec=yes" in lines
    assert next(line for line in lines if line.startswith("Zone caching")).split()[2] == "yes"
    assert "warning: dns_dnssec is true, but DNSSEC does not work through the pipe backend" in out
    assert "pdnsutil backend-cmd pipe 'keys ZONE'" in out
    assert "start-up: " in out
    assert f"pipe-command={LAUNCHER} {HOOKS}" in out
    for setting in (
        "launch=pipe",
        "pipe-abi-version=5",
        "zone-cache-refresh-interval=0",
        "pipe-timeout=2000",
    ):
        assert setting in lines
    assert lines[-1] == "usable through the pipe backend: yes"


def test_check_minimal_script(tmp_path):
    script = tmp_path / "minimal.lua"
    script.write_text("function dns_lookup() return {} end\nfunction stats() return 'mine' end\n")
    out = run("check", str(script)).stdout
    lines = out.splitlines()
    assert "hooks: dns_lookup" in lines
    assert "backend-cmd functions: stats" in lines
    assert re.match(
        r"Search +no \(needs dns_get_all_domains\)", next(line for line in lines if line.startswith("Search"))
    )
    assert "warning: no dns_list: AXFR of the script's zones fails" in lines
    assert any("stats() shadows lua2pipe's command 'stats'" in line for line in lines)


def test_check_unusable_scripts(tmp_path):
    broken = tmp_path / "broken.lua"
    broken.write_text("function dns_lookup( end\n")
    result = run("check", str(broken), check_rc=1)
    assert "loads: no" in result.stdout and "does not load" in result.stderr
    result = run("check", str(tmp_path / "missing.lua"), check_rc=1)
    assert "usable through the pipe backend: no" in result.stdout
    no_lookup = tmp_path / "nolookup.lua"
    no_lookup.write_text("function dns_list() return false end\n")
    assert "dns_lookup missing" in run("check", str(no_lookup), check_rc=1).stderr
    spaced = tmp_path / "with space.lua"
    spaced.write_text("function dns_lookup() return {} end\n")
    result = run("check", str(spaced), check_rc=1)
    assert "error: the script's path contains a space" in result.stdout


def test_check_start_up_against_pipe_timeout(tmp_path):
    slow = tmp_path / "slow.lua"
    slow.write_text(
        "local t = os.clock() while os.clock() - t < 0.3 do end\nfunction dns_lookup() return {} end\n"
    )
    result = run("check", str(slow), "--pipe-timeout", "200", check_rc=1)
    assert "more than pipe-timeout=200: pdns kills the coprocess" in result.stdout
    measured = int(re.search(r"^start-up: (\d+) ms", result.stdout, flags=re.M).group(1))
    advised = int(re.search(r"^pipe-timeout=(\d+)$", result.stdout, flags=re.M).group(1))
    assert measured >= 300 and advised >= 3 * measured and advised % 1000 == 0


# -- query ----------------------------------------------------------------------------------------


def test_query_any_with_zone_walk():
    out = run("query", str(HOOKS), "www.example.com").stdout
    assert out.splitlines() == [
        "; zone example.com. id 7 (zone walk)",
        "www.example.com.\t300\tIN\tA\t192.0.2.80",
        "www.example.com.\t300\tIN\tAAAA\t2001:db8::80",
    ]


def test_query_ctx_from_options():
    out = run("query", str(HOOKS), "ctx.example.com", "TXT", "--from", "192.0.2.1").stdout
    assert '"real_source_address=192.0.2.1/32 source_address=192.0.2.1"' in out
    out = run(
        "query", str(HOOKS), "ctx.example.com", "TXT", "--from", "2001:db8::1", "--ecs", "198.51.100.77/24"
    ).stdout
    assert '"real_source_address=198.51.100.0/24 source_address=2001:db8::1"' in out
    out = run("query", str(HOOKS), "ctx.example.com", "TXT").stdout
    assert 'ctx.example.com.\t60\tIN\tTXT\t""' in out  # no packet: ctx = {}


def test_query_zone_id_and_typed_filter():
    out = run("query", str(HOOKS), "example.com", "MX", "--zone-id", "99").stdout
    assert out.splitlines() == ["example.com.\t300\tIN\tMX\t10 mail.example.com."]


def test_query_flags_invalid_content():
    result = run("query", str(HOOKS), "bad.example.com", "A", check_rc=1)
    assert result.stdout.splitlines()[1:] == [
        "; invalid content (Text input is malformed.):",
        "; bad.example.com.\t300\tIN\tA\tnot-an-address",
    ]
    assert "1 record(s) with content pdns cannot parse" in result.stderr


def test_query_failures():
    result = run("query", str(HOOKS), "raise.example.com", "A", "--zone-id", "7", check_rc=1)
    assert "lookup raised on purpose" in result.stderr and "hooks.lua:" in result.stderr
    result = run("query", str(HOOKS), "www.example.org", check_rc=1)
    assert "no SOA for www.example.org or any parent" in result.stderr
    assert run("query", str(HOOKS), "x", "--from", "not-an-ip", check_rc=2).stderr


UNREADABLE = """
local loud = setmetatable({}, { __tostring = function() error("tostring raised") end })
function dns_lookup(qtype, qname)
  if qtype:getCode() == pdns.SOA then
    if not qname:equal("example.org") then return {} end
    return { { name = qname, type = "SOA", ttl = 60, domain_id = 1,
      content = "ns.example.org. hostmaster.example.org. 1 3600 600 604800 300" } }
  end
  return { { name = qname, type = "TXT", content = "x", [loud] = 1 } }
end
function dns_list() return { [loud] = {} } end
"""


def test_query_and_axfr_say_error_and_exit_1_for_a_bad_name_or_a_result_that_cannot_be_read():
    # a short path: Lua cuts a chunk name over 60 bytes in its messages ("...")
    with tempfile.TemporaryDirectory(prefix="q") as directory:
        script = Path(directory) / "u.lua"
        script.write_text(UNREADABLE)
        outcomes = [
            (result.returncode, result.stdout, result.stderr)
            for result in (
                run("query", str(script), "a..b.example", check_rc=None),
                run("query", str(script), "www.example.org", check_rc=None),
                run("axfr", str(script), "example.org", check_rc=None),
            )
        ]
    assert outcomes == [
        (1, "", "error: invalid name 'a..b.example': A DNS label is empty.\n"),
        (
            1,
            "; zone example.org. id 1 (zone walk)\n",
            f"error: dns_lookup result could not be read: {script}:2: tostring raised\n",
        ),
        (1, "", f"error: dns_list result could not be read: {script}:2: tostring raised\n"),
    ]


# -- axfr -----------------------------------------------------------------------------------------


def test_axfr_prints_a_parseable_zone(tmp_path):
    result = run("axfr", str(HOOKS), "example.com", check_rc=1)  # bad.example.com is invalid
    lines = result.stdout.splitlines()
    assert lines[0] == "; zone example.com. id 7"
    assert lines[1].startswith("example.com.\t300\tIN\tSOA\tns1.example.com. ")
    assert sum(1 for line in lines if "\tSOA\t" in line) == 1
    assert "; bad.example.com.\t300\tIN\tA\tnot-an-address" in lines
    zone = dns.zone.from_text(result.stdout, origin="example.com.", relativize=False)
    assert zone.find_rdataset("www.example.com.", "AAAA")[0].to_text() == "2001:db8::80"


def test_axfr_failures(tmp_path):
    assert "no SOA for example.org." in run("axfr", str(HOOKS), "example.org", check_rc=1).stderr
    nolist = tmp_path / "nolist.lua"
    nolist.write_text(
        "function dns_lookup(q, n) return {{name=n, type='SOA', domain_id=1, "
        "content='a. b. 1 2 3 4 5'}} end\n"
    )
    assert "dns_list missing" in run("axfr", str(nolist), "example.org", check_rc=1).stderr


# -- cmd ------------------------------------------------------------------------------------------


def test_cmd_runs_commands_and_reports_status():
    result = run("cmd", str(HOOKS), "domaininfo example.com")
    assert result.stdout == (
        "example.com. id=7 kind=primary serial=2024010101 notified_serial=2024010100 "
        'last_check=0 account="dns team" masters="" source=dns_get_domaininfo\n'
    )
    result = run("cmd", str(HOOKS), "echo a", "lua2pipe version")
    assert result.stdout.splitlines()[0] == "echo:a"
    assert result.stderr.splitlines()[:1] == ["== echo a"]
    assert run("cmd", str(HOOKS), "domaininfo nowhere.example", check_rc=1).stdout.startswith("not found: ")
    assert run("cmd", str(HOOKS), "dofile /etc/passwd", check_rc=2).stdout.startswith("error: ")


def test_cmd_with_a_script_that_does_not_load(tmp_path):
    broken = tmp_path / "broken.lua"
    broken.write_text("error('no')\n")
    assert "does not load" in run("cmd", str(broken), "help", check_rc=2).stderr


def test_in_process_entry_point(capsys):
    assert lua2pipe.main(["cmd", str(HOOKS), "nsec 7 www.example.com"]) == 0
    assert capsys.readouterr().out == "unhashed=www.example.com. before=txt.example.com. after=example.com.\n"


#: Run first in a probe process: counts every execution of lua2pipe.py's code (the "exec" audit
#: event fires for an import and for runpy alike) and reports at exit, after the subcommand.
CORE_FILE = str(Path(lua2pipe.__file__).resolve())
PROBE = (
    "import atexit, sys\n"
    "runs = []\n"
    f"core = {CORE_FILE!r}\n"
    "sys.addaudithook(lambda event, args: event == 'exec'"
    " and getattr(args[0], 'co_filename', '') == core and runs.append(1))\n"
    "atexit.register(lambda: print('lua2pipe.py executed', len(runs),"
    " 'shell', '_lua2pipe.shell' in sys.modules, file=sys.stderr))\n"
)


@pytest.mark.parametrize(
    "launch",
    [
        lua2pipe.RUN_BY_NAME,  # the launcher's way
        "import runpy; runpy.run_module('lua2pipe', run_name='__main__', alter_sys=True)",  # -m
        f"import runpy; runpy.run_path({str(REPO / 'lua2pipe.py')!r}, run_name='__main__')",  # a file
    ],
    ids=["launcher", "-m", "file"],
)
def test_one_copy_of_the_core(launch):
    """The _lua2pipe package imports lua2pipe: however lua2pipe was started, that import finds
    the running module, so there is one Coprocess class, one ScriptError, ..."""
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE + launch, "cmd", str(HOOKS), "keys example.com"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.stdout.startswith("id=1 flags=257"), result.stderr
    assert result.stderr.splitlines()[-1] == "lua2pipe.py executed 1 shell True"


def test_launcher_runs_the_module_by_name():
    assert f"run='{lua2pipe.RUN_BY_NAME}'" in LAUNCHER.read_text()


def test_coprocess_imports_no_operator_tools():
    """Startup is on pdns's clock: serving imports no operator tool of _lua2pipe nor cryptography
    (LuaJIT's loop imports _lua2pipe.loop_memory, once HELO is answered)."""
    result = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", "-c", lua2pipe.RUN_BY_NAME, str(HOOKS)],
        input="HELO\t5\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.startswith("OK\tlua2pipe"), result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "lua2pipe" in imported
    tools = [name for name in imported if name.startswith(("_lua2pipe.", "cryptography"))]
    assert tools == ["_lua2pipe.loop_memory"]
