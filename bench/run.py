"""make bench: lua2pipe against its references, in one run, reported as ratios.

Machines are shared and noisy, so only ratios between runs of the same invocation mean anything;
the absolute numbers are printed to make the ratios checkable. See bench/README.md.

Sections: setup (reference tables, the C ceiling, the query mixes, the question stream captured
from pdns), the answer checks, 1. coprocess alone, 2. end to end (caches off; 2b caches on; 2c the
cached workloads on a computed zone), 3. startup and memory, report.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
sys.path.insert(0, str(REPO / "tests"))

import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import zonedata  # noqa: E402  (bench/, on sys.path as the script's directory)
from pdns import PdnsError, PdnsServer, _process_group_members, native_settings, remote_settings  # noqa: E402

PYTHON = str(Path(sys.executable).absolute())  # the venv's python, symlink kept
LUA2PIPE = REPO / "lua2pipe"
ZONE_SCRIPT = BENCH / "zone.lua"
HOSTS_SCRIPT = BENCH / "hosts.lua"
EXAMPLE_SCRIPT = REPO / "examples" / "geo.lua"
DNSPERF = shutil.which("dnsperf")

HELO = b"HELO\t5\n"
AXFR_ZONE = "big.test"


@dataclass(frozen=True)
class Settings:
    replay_seconds: float = 2.0  # about this long per replay (the stream is repeated to fit)
    repeats: int = 3  # replays per coprocess; the best counts
    lockstep_questions: int = 10_000
    axfr_repeats: int = 3  # warm AXFRs after the first (cold) one; the best counts
    # Every end-to-end configuration runs e2e_rounds times, interleaved (sections 2, 2b and 2c in
    # each round), dnsperf_seconds after warmup_seconds. With section 2c's 20 runs a round, 5
    # rounds of 4 s took the whole make bench past 15 minutes; 3 rounds of 4 s took 13m55s on
    # the loaded 2-CPU VM (load 7-9), so 3 s runs: a run's rate swings by up to 2x between
    # rounds there, far more than a shorter run adds, and the ratios are medians of rounds.
    dnsperf_seconds: int = 3
    warmup_seconds: int = 1
    e2e_rounds: int = 3
    thread_counts: tuple[int, ...] = (1, 2, 8)
    startup_repeats: int = 10
    contended_rounds: int = 5
    native_large_axfr: bool = True  # section 1b's native lua2 rows (about 45 s)


QUICK = Settings(
    replay_seconds=0.3,
    repeats=1,
    axfr_repeats=1,
    dnsperf_seconds=2,
    warmup_seconds=1,
    e2e_rounds=1,
    startup_repeats=3,
    contended_rounds=2,
    native_large_axfr=False,
)


@dataclass(frozen=True)
class Coprocess:
    """A pipe coprocess: its argv, which is also its pdns pipe-command (joined with spaces)."""

    name: str
    argv: tuple[str, ...]

    @property
    def pipe_command(self) -> str:
        if any(" " in arg for arg in self.argv):
            raise ValueError(f"pdns splits pipe-command on spaces: {self.argv}")
        return " ".join(self.argv)

    @property
    def settings(self) -> dict[str, Any]:
        # The pipe backend cannot list zones: pdns 4.7 refuses to start with the zone cache on.
        return {
            "launch": "pipe",
            "pipe-command": self.pipe_command,
            "pipe-abi-version": 5,
            "zone-cache-refresh-interval": 0,
        }


@dataclass(frozen=True)
class Remote:
    """lua2pipe running script through pdns's remote backend (pipe connector, remote-dnssec off),
    with the connection string's timeout: pdns reads a reply one byte per read() when it is not 0."""

    name: str
    timeout_ms: int
    script: Path = ZONE_SCRIPT

    @property
    def settings(self) -> dict[str, Any]:
        return remote_settings(self.script, self.timeout_ms, dnssec=False)


@dataclass(frozen=True)
class Native:
    """pdns's own launch=lua2 running script (end to end only)."""

    name: str
    script: Path

    @property
    def settings(self) -> dict[str, Any]:
        return native_settings(self.script)


Backend = Coprocess | Remote | Native


CEILING = Coprocess("C ceiling", (str(OUT / "ceiling"),))
PLAIN = Coprocess("plain Python", (PYTHON, "-I", str(BENCH / "plain.py"), str(OUT / "refdata.marshal")))
LUA2PIPE_ZONE = Coprocess("lua2pipe", (str(LUA2PIPE), str(ZONE_SCRIPT)))
COPROCESSES = (CEILING, PLAIN, LUA2PIPE_ZONE)
REMOTE_TIMEOUT = Remote("lua2pipe remote, timeout=2000", 2000)
REMOTE_NO_TIMEOUT = Remote("lua2pipe remote, timeout=0", 0)
REMOTES = (REMOTE_TIMEOUT, REMOTE_NO_TIMEOUT)
NATIVE = Native("native lua2", ZONE_SCRIPT)
#: pdns's packet cache (cache-ttl) and query cache (query-cache-ttl, negquery-cache-ttl) at their
#: defaults; tests/pdns.py turns them off.
DEFAULT_CACHES: dict[str, Any] = {"query-cache-ttl": None, "negquery-cache-ttl": None, "cache-ttl": None}
#: Section 2b: those caches, and the zone cache at its default for native and remote
#: (getAllDomains, zone.lua's dns_get_all_domains); the pipe backend cannot fill it, so pdns runs
#: a pipe row with it off, as a pipe site must.
CACHES_ON: dict[str, Any] = DEFAULT_CACHES | {"zone-cache-refresh-interval": None}
CACHED_THREADS = 2

#: Section 2c, the cached workloads: hosts.lua's computed zone behind pdns's default caches, the
#: zone cache off for every backend (as the pipe needs; hosts.lua has no zone list), each
#: backend computing the same answers.
HOSTS_ZONE = "hosts.test"
HOSTS = 100_000  # host0 to host99999, as in hosts.lua
HOSTS_BACKENDS: tuple[Backend, ...] = (
    Native(NATIVE.name, HOSTS_SCRIPT),
    CEILING,
    PLAIN,
    Coprocess(LUA2PIPE_ZONE.name, (str(LUA2PIPE), str(HOSTS_SCRIPT))),
    Remote(REMOTE_NO_TIMEOUT.name, 0, HOSTS_SCRIPT),
)
#: The distributor-threads of section 2c and of the end-to-end targets.
TARGET_THREADS = (2, 8)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Setup: reference tables, the C ceiling, the query mix, the question stream


def build_references() -> tuple[list[zonedata.Zone], zonedata.Zone, dict[bytes, bytes]]:
    small, big, table = zonedata.write_reference_data(OUT)
    subprocess.run(
        [
            "cc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-I",
            str(OUT),
            "-o",
            str(OUT / "ceiling"),
            str(BENCH / "ceiling.c"),
        ],
        check=True,
    )
    return small, big, table


def query_mix(zones: list[zonedata.Zone], count: int = 3000, seed: int = 5) -> list[str]:
    """dnsperf lines ("name TYPE"): a weighted mix over the small zones, out-of-zone names too.

    Weights are per DNS question: hosts' A/AAAA/TXT, www, the apex (SOA, MX, NS, TXT), SRV,
    ANY for existing names, NXDOMAIN names in our zones and names in no zone (REFUSED).
    """
    rng = random.Random(seed)
    kinds: list[tuple[int, Callable[[str], str]]] = [
        (22, lambda z: f"host{rng.randint(1, 30):02d}.{z} A"),
        (5, lambda z: f"host{3 * rng.randint(1, 10):02d}.{z} AAAA"),
        (3, lambda z: f"host{5 * rng.randint(1, 6):02d}.{z} TXT"),
        (15, lambda z: f"www.{z} A"),
        (5, lambda z: f"www.{z} AAAA"),
        (5, lambda z: f"{z} SOA"),
        (6, lambda z: f"{z} MX"),
        (3, lambda z: f"{z} NS"),
        (2, lambda z: f"{z} TXT"),
        (6, lambda z: f"{rng.choice(['_sip._tcp', '_xmpp-server._tcp'])}.{z} SRV"),
        (3, lambda z: f"{rng.choice(['www', 'mail', 'ns1'])}.{z} ANY"),
        (15, lambda z: f"nx{rng.randint(1, 500)}.{z} A"),
        (5, lambda z: f"www.example{rng.randint(1, 50)}.invalid A"),
    ]
    weights = [w for w, _ in kinds]
    names = [z.question_name for z in zones]
    return [rng.choices(kinds, weights)[0][1](rng.choice(names)) for _ in range(count)]


@dataclass(frozen=True)
class Mix:
    """A section 2c query mix: the measured dnsperf file and one drawn the same way with another
    seed for the warm-up, so that the measured run does not find its own first names cached."""

    name: str
    queries: Path
    warmup: Path


MIX_QUERIES = 400_000  # more than the fastest backend answers in a run: dnsperf never loops
WARMUP_QUERIES = 100_000


def zipf_mix(count: int, seed: int) -> list[str]:
    """Zipf with s = 1 over the hosts (ranked in a seeded random order): A, or AAAA for a fifth of
    them; a tenth of the queries ask for a name past the last host (NXDOMAIN), drawn the same way."""
    rng = random.Random(seed)
    ranked = list(range(HOSTS))
    rng.shuffle(ranked)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, HOSTS + 1)))
    lines = []
    for number in rng.choices(ranked, cum_weights=cumulative, k=count):
        roll = rng.random()
        if roll < 0.1:
            lines.append(f"host{HOSTS + number}.{HOSTS_ZONE} A")
        else:
            lines.append(f"host{number}.{HOSTS_ZONE} {'AAAA' if roll < 0.28 else 'A'}")
    return lines


def random_subdomain_mix(count: int, seed: int) -> list[str]:
    """A random label under the zone for every query, none repeated (NXDOMAIN): every cache misses."""
    rng = random.Random(seed)
    return [f"{label:012x}.{HOSTS_ZONE} A" for label in rng.sample(range(1 << 48), count)]


def write_mixes() -> list[Mix]:
    mixes = []
    for seed, (name, draw) in enumerate(
        (("Zipf", zipf_mix), ("random subdomain", random_subdomain_mix)), start=11
    ):
        stem = name.lower().replace(" ", "-")
        queries, warmup = OUT / f"{stem}.txt", OUT / f"{stem}-warmup.txt"
        queries.write_text("\n".join(draw(MIX_QUERIES, seed)) + "\n")
        warmup.write_text("\n".join(draw(WARMUP_QUERIES, seed + 100)) + "\n")
        mixes.append(Mix(name, queries, warmup))
    return mixes


def capture_stream(query_file: Path) -> list[bytes]:
    """The Q lines pdns sends for one pass over query_file (the references answer them).

    pdns with one distributor thread runs the C ceiling behind `tee`, dnsperf sends every query
    once; what pdns wrote to the coprocess is the realistic mix: SOA walks, ANY lookups,
    wildcard and additional-processing lookups, in pdns's own order.
    """
    trace = OUT / "trace.txt"
    trace.unlink(missing_ok=True)
    recorder = OUT / "record.sh"
    recorder.write_text(f"#!/bin/sh\ntee -a {trace} | {CEILING.pipe_command}\n")
    recorder.chmod(0o755)
    with pdns_server(Coprocess("recorder", (str(recorder),)), threads=1) as server:
        dnsperf(server.port, query_file, runs=1, outstanding=10)
    lines = [line + b"\n" for line in trace.read_bytes().splitlines() if line.startswith(b"Q\t")]
    if len(lines) < 1000:
        raise RuntimeError(f"captured only {len(lines)} questions from pdns (see {trace})")
    return lines


@dataclass(frozen=True)
class Stream:
    """The captured questions as one block, written as many times as a replay needs."""

    block: bytes
    questions: int
    answer_bytes: int  # what the reference answers to one block weigh

    @classmethod
    def of(cls, captured: list[bytes], table: dict[bytes, bytes]) -> Stream:
        answers = sum(len(table.get(reference_key(line), b"END\n")) for line in captured)
        return cls(b"".join(captured), len(captured), answers)


# --------------------------------------------------------------------------------------------------
# Running a coprocess by hand


def memory_kb(pid: int, key: str) -> int:
    """VmRSS / VmHWM (peak RSS) of a live process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


@contextmanager
def spawned(coprocess: Coprocess) -> Iterator[subprocess.Popen[bytes]]:
    """The coprocess started and past HELO; stderr goes to out/<name>.stderr."""
    stderr = (OUT / f"{coprocess.name.replace(' ', '_')}.stderr").open("ab")
    process = subprocess.Popen(
        coprocess.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(HELO)
        banner = process.stdout.readline()
        if not banner.startswith(b"OK"):
            raise RuntimeError(f"{coprocess.name}: HELO answered {banner!r}")
        yield process
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()


class AnswerReader:
    """Reads answers (each ends in END or FAIL) from a coprocess's stdout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.tail = b""

    def count(self, wanted: int) -> int:
        """Reads until wanted answers have ended; returns the bytes read."""
        seen = total = 0
        while seen < wanted:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"coprocess closed its output after {seen} of {wanted} answers")
            total += len(chunk)
            # Answers end in "END\n" or "FAIL\n" (no record content here ends in END or FAIL); the
            # last bytes of the previous chunk catch an ending split across two reads.
            text = self.tail + chunk
            seen += text.count(b"END\n") + text.count(b"FAIL\n")
            self.tail = chunk[-3:]
        return total

    def answers(self, wanted: int) -> list[list[bytes]]:
        """wanted answers as lists of lines (the END/FAIL line included)."""
        result: list[list[bytes]] = []
        current: list[bytes] = []
        buffer = b""
        while len(result) < wanted:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"coprocess closed its output after {len(result)} of {wanted} answers")
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                current.append(line)
                if line in (b"END", b"FAIL"):
                    result.append(current)
                    current = []
        return result


def feed(process: subprocess.Popen[bytes], data: bytes, repeats: int = 1) -> threading.Thread:
    """Writes data (repeats times) to the coprocess's stdin from a thread, so reading never deadlocks."""
    stdin = process.stdin
    assert stdin is not None

    def write() -> None:
        for _ in range(repeats):
            stdin.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


# --------------------------------------------------------------------------------------------------
# The answer check: every coprocess must give the same answers, or the comparison is void


def reference_key(question: bytes) -> bytes:
    """The references' table key for a Q or AXFR line (see bench/zonedata.py)."""
    fields = question.rstrip(b"\n").split(b"\t")
    if fields[0] == b"Q":
        return fields[1].lower() + b"\t" + fields[3]
    return fields[2].lower() + b"\tAXFR"


def check_answers(coprocess: Coprocess, questions: list[bytes], table: dict[bytes, bytes]) -> str:
    """ "ok", or the first difference from the reference table (records compared as sets of lines)."""
    with spawned(coprocess) as process:
        writer = feed(process, b"".join(questions))
        got = AnswerReader(process).answers(len(questions))
        writer.join()
    for question, answer in zip(questions, got, strict=True):
        expected = table.get(reference_key(question), b"END\n").rstrip(b"\n").split(b"\n")
        if sorted(answer) != sorted(expected):
            return f"differs for {question!r}: got {answer[:4]!r}, expected {expected[:4]!r}"
    return "ok"


def check_questions(captured: list[bytes], zones: list[zonedata.Zone]) -> list[bytes]:
    axfrs = [f"AXFR\t{z.id}\t{z.question_name}\n".encode() for z in zones]
    return sorted(set(captured)) + axfrs


#: Section 2c's check asks these besides the first names of each mix: the apex, the first and
#: last host, the first name past them, a leading zero, no such type, names that only look like
#: hosts, and upper case.
HOSTS_EDGE_QUESTIONS = (
    f"{HOSTS_ZONE} SOA",
    f"{HOSTS_ZONE} NS",
    f"{HOSTS_ZONE} ANY",
    f"{HOSTS_ZONE} A",
    f"host0.{HOSTS_ZONE} A",
    f"host99999.{HOSTS_ZONE} AAAA",
    f"host{HOSTS}.{HOSTS_ZONE} A",
    f"host007.{HOSTS_ZONE} A",
    f"host5.{HOSTS_ZONE} ANY",
    f"host5.{HOSTS_ZONE} MX",
    f"host5x.{HOSTS_ZONE} A",
    f"sub.host5.{HOSTS_ZONE} A",
    f"ns1.{HOSTS_ZONE} A",
    "HOST12.Hosts.TEST AAAA",
)


def hosts_check_questions(mixes: list[Mix], per_mix: int = 150) -> list[str]:
    questions = list(HOSTS_EDGE_QUESTIONS)
    for mix in mixes:
        lines = mix.queries.read_text().splitlines()
        questions += list(dict.fromkeys(lines))[:per_mix]
    return questions


def answer_text(response: dns.message.Message) -> str:
    """rcode and sections, each as sorted lines (pdns may order records differently each time)."""
    sections = (response.answer, response.authority, response.additional)
    lines = [
        sorted(line for rrset in section for line in rrset.to_text().splitlines()) for section in sections
    ]
    return f"{dns.rcode.to_text(response.rcode())} {dns.flags.to_text(response.flags)} {lines}"


def check_hosts_answers(questions: list[str]) -> dict[str, str]:
    """Each section 2c backend behind pdns (caches off, one distributor thread) gets the same
    questions over UDP: "ok", or the first difference from native lua2's answer."""
    answers = {}
    for backend in HOSTS_BACKENDS:
        with pdns_server(backend, threads=1) as server:
            # pdns answers ANY over UDP with TC set and nothing else (any-to-tcp): ask those over TCP
            answers[backend.name] = [
                answer_text(server.query(name, qtype, tcp=qtype == "ANY"))
                for name, qtype in (question.split() for question in questions)
            ]
    native = answers[HOSTS_BACKENDS[0].name]
    checks = {}
    for name, got in answers.items():
        differences = ((q, a, n) for q, a, n in zip(questions, got, native, strict=True) if a != n)
        first = next(differences, None)
        checks[name] = "ok" if first is None else f"differs for {first[0]!r}: {first[1]} (native {first[2]})"
    return checks


# --------------------------------------------------------------------------------------------------
# 1. Coprocess alone


@dataclass
class Replay:
    seconds: float
    questions: int
    peak_rss_kb: int
    same_bytes: bool  # the answers weighed exactly what the references' do

    @property
    def rate(self) -> float:
        return self.questions / self.seconds

    @property
    def micros(self) -> float:
        return self.seconds / self.questions * 1e6


def replay(coprocess: Coprocess, stream: Stream, blocks: int) -> Replay:
    """Pipes the stream in (blocks times over); time from the first write to the last END."""
    questions = stream.questions * blocks
    with spawned(coprocess) as process:
        reader = AnswerReader(process)
        started = time.perf_counter()
        writer = feed(process, stream.block, blocks)
        received = reader.count(questions)
        seconds = time.perf_counter() - started
        peak = memory_kb(process.pid, "VmHWM")
        writer.join()
    return Replay(seconds, questions, peak, received == stream.answer_bytes * blocks)


def best_replays(stream: Stream, settings: Settings) -> dict[str, Replay]:
    """Sizes each coprocess's run to about replay_seconds, then keeps the best of `repeats`."""
    blocks = {}
    for coprocess in COPROCESSES:
        trial = replay(coprocess, stream, 2)
        blocks[coprocess.name] = max(1, round(settings.replay_seconds / trial.seconds * 2))
    best: dict[str, Replay] = {}
    for _ in range(settings.repeats):  # interleaved, so drift hits every coprocess alike
        for coprocess in COPROCESSES:
            run = replay(coprocess, stream, blocks[coprocess.name])
            if coprocess.name not in best or run.seconds < best[coprocess.name].seconds:
                best[coprocess.name] = run
    return best


@dataclass
class Lockstep:
    """Per question, when each waits for the previous answer: the round trip, and the
    coprocess's CPU time, user and system (a process woken for every question runs on cold
    caches). CPU time is counted in timer ticks (10 ms), hence the mean over runs."""

    seconds: float
    cpu: float


def lockstep(coprocess: Coprocess, questions: list[bytes]) -> Lockstep:
    with spawned(coprocess) as process:
        assert process.stdin is not None
        stdin, reader = process.stdin.fileno(), AnswerReader(process)
        user, system, _ = cpu_times(process.pid)
        cpu_before = user + system
        started = time.perf_counter()
        for question in questions:
            os.write(stdin, question)
            reader.count(1)
        elapsed = time.perf_counter() - started
        user, system, _ = cpu_times(process.pid)
        count = len(questions)
        return Lockstep(elapsed / count, (user + system - cpu_before) / count)


def best_locksteps(captured: list[bytes], settings: Settings) -> dict[str, Lockstep]:
    """The best round trip and the mean CPU time of each coprocess's runs."""
    questions = captured[: settings.lockstep_questions]
    runs: dict[str, list[Lockstep]] = {}
    for _ in range(settings.repeats):
        for coprocess in COPROCESSES:
            runs.setdefault(coprocess.name, []).append(lockstep(coprocess, questions))
    return {
        name: Lockstep(min(run.seconds for run in each), statistics.mean(run.cpu for run in each))
        for name, each in runs.items()
    }


@dataclass
class Axfr:
    cold: float  # the first AXFR (lua2pipe builds big.test then)
    warm: float  # best of the later ones
    records: int
    peak_rss_kb: int


def axfr(coprocess: Coprocess, zone: zonedata.Zone, repeats: int) -> Axfr:
    question = f"AXFR\t{zone.id}\t{zone.question_name}\n".encode()
    times: list[float] = []
    with spawned(coprocess) as process:
        assert process.stdin is not None
        reader = AnswerReader(process)
        for _ in range(1 + repeats):
            started = time.perf_counter()
            process.stdin.write(question)
            reader.count(1)
            times.append(time.perf_counter() - started)
        peak = memory_kb(process.pid, "VmHWM")
    return Axfr(times[0], min(times[1:]), len(zone.records), peak)


# --------------------------------------------------------------------------------------------------
# 1b. A 1,000,000-record AXFR through pdns (issue 15): lua2pipe streams the answer as it renders
# it, so the transfer neither waits for the whole zone nor runs into --max-query-ms. What the
# coprocess holds is the script's rows plus lua2pipe's own, which the rows that cost little show
# alone; native lua2 serves the same script for what the rows cost in pdns_server.

LARGE_ZONE_SCRIPT = BENCH / "large_zone.lua"
LARGE_ZONE_ROWS = 1_000_000
DIG_QUIET = ("+nocmd", "+nostats", "+nocomments", "+tries=1", "+time=30")  # the records alone
#: How large_zone.lua makes its rows (its environment, which pdns passes to its coprocesses and
#: to native lua2's script), by the name the report gives them.
LARGE_ZONE_ROWS_MADE = {
    "prebuilt at load": {"LARGE_ZONE_PREBUILT": "1"},
    "built by dns_list": {"LARGE_ZONE_PREBUILT": "0"},
    "1,000 shared rows": {"LARGE_ZONE_PREBUILT": "1", "LARGE_ZONE_SHARED": "1"},
}
#: Native lua2 builds a prebuilt script's rows in every backend instance (each distributor thread's
#: and the transfer's): these two hold them in the transfer's alone, or cost little.
NATIVE_LARGE_ZONE_ROWS = ("built by dns_list", "1,000 shared rows")


@dataclass
class LargeZoneLoad:
    """A lua2pipe coprocess serving large_zone.lua, past HELO."""

    rss_kb: int
    heap_kb: float  # its Lua heap (CMD stats)


@dataclass
class LargeAxfr:
    native: bool  # native lua2, else lua2pipe through launch=pipe
    rows: str  # a key of LARGE_ZONE_ROWS_MADE
    seconds: float  # dig's AXFR through pdns, first byte to last
    records: int  # as dig printed them (the SOA twice)
    coprocess_peak_kb: int  # the coprocess pdns started for the transfer (0 natively)
    server_growth_kb: int  # pdns_server's peak RSS during the transfer over its RSS before


@contextmanager
def large_zone_environment(rows: str) -> Iterator[None]:
    names = LARGE_ZONE_ROWS_MADE[rows]
    os.environ.update(names)
    try:
        yield
    finally:
        for name in names:
            del os.environ[name]


def loaded_large_zone(rows: str) -> LargeZoneLoad:
    """RSS and Lua heap of lua2pipe serving large_zone.lua with ``rows`` (past HELO, so with
    prebuilt rows built): "built by dns_list" is lua2pipe at rest, the script without rows."""
    coprocess = Coprocess(f"lua2pipe large_zone.lua, {rows}", (str(LUA2PIPE), str(LARGE_ZONE_SCRIPT)))
    with large_zone_environment(rows), spawned(coprocess) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"CMD\tstats\n")
        stats = dict(line.split(b"=", 1) for line in iter(process.stdout.readline, b"END\n"))
        return LargeZoneLoad(memory_kb(process.pid, "VmRSS"), float(stats[b"lua_memory_kb"]))


def large_axfr(rows: str, native: bool = False) -> LargeAxfr:
    """dig AXFR of large.test through pdns, sampling the peak RSS of the coprocess serving it
    and pdns_server's RSS before the transfer and its peak after.

    Prebuilt, the rows are built before HELO (2-4 s on this machine), so pipe-timeout is raised
    for the start; the transfer itself runs at lua2pipe's default --max-query-ms 1000 (dns_list
    returns at once, each streamed part restarts the clock). Built by dns_list, building them is
    the hook's own time, past 1000 ms: --max-query-ms 0 then."""
    if native:
        settings: dict[str, Any] = native_settings(LARGE_ZONE_SCRIPT)
    else:
        prebuilt = LARGE_ZONE_ROWS_MADE[rows]["LARGE_ZONE_PREBUILT"] == "1"
        argv = [str(LUA2PIPE), str(LARGE_ZONE_SCRIPT), *([] if prebuilt else ["--max-query-ms", "0"])]
        settings = {"launch": "pipe", "pipe-command": " ".join(argv), "pipe-abi-version": 5}
        settings["pipe-timeout"] = 30000
    peaks: dict[int, int] = {}
    done = threading.Event()
    with large_zone_environment(rows), PdnsServer(settings, loglevel=4, startup_timeout=60) as server:
        assert server.process is not None
        server_pid = server.process.pid

        def sample() -> None:  # VmHWM is lost when pdns ends the coprocess after the transfer
            while not done.wait(0.02):
                for pid in _process_group_members(server_pid):
                    with contextlib.suppress(OSError, RuntimeError):
                        if b"large_zone.lua" in Path(f"/proc/{pid}/cmdline").read_bytes():
                            peaks[pid] = max(peaks.get(pid, 0), memory_kb(pid, "VmHWM"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        server_before = memory_kb(server_pid, "VmRSS")
        started = time.perf_counter()
        dig = subprocess.run(
            ["dig", f"@{server.address}", "-p", str(server.port), "large.test", "AXFR", *DIG_QUIET],
            capture_output=True,
            check=True,
        )
        seconds = time.perf_counter() - started
        server_growth = memory_kb(server_pid, "VmHWM") - server_before
        done.set()
        sampler.join()
    records = sum(1 for line in dig.stdout.splitlines() if line and not line.startswith(b";"))
    return LargeAxfr(native, rows, seconds, records, max(peaks.values(), default=0), server_growth)


# --------------------------------------------------------------------------------------------------
# 2. End to end: pdns_server + dnsperf


@contextmanager
def pdns_server(backend: Backend, threads: int, caches: dict[str, Any] | None = None) -> Iterator[PdnsServer]:
    """pdns on 127.0.0.1 with all caches off (tests/pdns.py), or with ``caches`` over that (a pipe
    coprocess keeps the zone cache off): launch=pipe, launch=remote or native launch=lua2."""
    settings = (caches or {}) | backend.settings
    for attempt in range(3):
        server = PdnsServer(settings, distributor_threads=threads, loglevel=4)
        try:
            server.start()
            break
        except (PdnsError, dns.exception.DNSException) as exc:
            # tests/pdns.py's readiness probe can trip over a stray answer (BadResponse): retry.
            server.cleanup()
            if attempt == 2:
                raise
            log(f"  pdns did not start ({type(exc).__name__}), retrying")
    try:
        yield server
    finally:
        server.cleanup()


@dataclass
class Dnsperf:
    qps: float
    latency_ms: float
    lost: int
    rcodes: str
    idle: float = 0.0  # share of the machine's CPU time left idle during the run
    steal: float = 0.0  # share taken by the hypervisor for other guests (a noise sign)
    pdns_cpu_us: float = 0.0  # pdns_server's CPU time (user + system) per answered query
    coprocess_cpu_us: float = 0.0  # the coprocesses' CPU time per answered query


def dnsperf(
    port: int, query_file: Path, *, seconds: int = 0, runs: int = 0, outstanding: int = 100
) -> Dnsperf:
    if not DNSPERF:
        raise RuntimeError("dnsperf is not installed (make setup installs it as root)")
    limit = ["-l", str(seconds)] if seconds else ["-n", str(runs)]
    command = [
        DNSPERF,
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(query_file),
        "-c",
        "8",
        "-q",
        str(outstanding),
        "-t",
        "2",
        *limit,
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=(seconds or 60) + 30
    ).stdout

    def find(pattern: str) -> str:
        match = re.search(pattern, output)
        if not match:
            raise RuntimeError(f"dnsperf output has no {pattern!r}:\n{output}")
        return match.group(1)

    return Dnsperf(
        qps=float(find(r"Queries per second:\s+([\d.]+)")),
        latency_ms=float(find(r"Average Latency \(s\):\s+([\d.]+)")) * 1000,
        lost=int(find(r"Queries lost:\s+(\d+)")),
        rcodes=find(r"Response codes:\s+(.*)"),
    )


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, from /proc/stat: user nice system idle iowait irq softirq steal."""
    return [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def cpu_times(pid: int | str) -> tuple[float, float, int]:
    """User and system CPU seconds so far of a process, and its parent's pid (/proc/PID/stat)."""
    # pid (comm) state ppid ...: comm may hold spaces and parentheses
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[1])


def process_cpu_seconds(pdns_pid: int) -> tuple[float, float]:
    """CPU time (user + system) so far of pdns_server and of its child processes, the coprocesses."""
    pdns = children = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            user, system, parent = cpu_times(entry)
        except OSError:
            continue  # gone meanwhile
        if int(entry) == pdns_pid:
            pdns += user + system
        elif parent == pdns_pid:
            children += user + system
    return pdns, children


def end_to_end(
    backend: Backend,
    threads: int,
    query_file: Path,
    settings: Settings,
    caches: dict[str, Any] | None = None,
    warmup_file: Path | None = None,
) -> Dnsperf:
    """One measured dnsperf run of query_file after a warm-up with warmup_file (or query_file)."""
    with pdns_server(backend, threads, caches) as server:
        dnsperf(server.port, warmup_file or query_file, seconds=settings.warmup_seconds)
        assert server.process is not None
        before, cpu_before = cpu_ticks(), process_cpu_seconds(server.process.pid)
        result = dnsperf(server.port, query_file, seconds=settings.dnsperf_seconds)
        ticks = [b - a for a, b in zip(before, cpu_ticks(), strict=True)]
        cpu = [b - a for a, b in zip(cpu_before, process_cpu_seconds(server.process.pid), strict=True)]
    total = sum(ticks) or 1
    result.idle, result.steal = (ticks[3] + ticks[4]) / total, ticks[7] / total
    answered = result.qps * settings.dnsperf_seconds or 1
    result.pdns_cpu_us, result.coprocess_cpu_us = (seconds / answered * 1e6 for seconds in cpu)
    return result


# --------------------------------------------------------------------------------------------------
# 3. Startup and memory


@dataclass
class Startup:
    best: float
    median: float
    rss_after_ok_kb: int = 0
    rss_after_question_kb: int = 0


def time_to_ok(coprocess: Coprocess, repeats: int) -> Startup:
    """From spawning the coprocess (HELO written at once) to its OK line; RSS of the last run."""
    times: list[float] = []
    after_ok = after_question = 0
    question = b"Q\twww.example.org\tIN\tANY\t1\t127.0.0.1\t127.0.0.1\t127.0.0.1/32\n"
    for _ in range(repeats):
        started = time.perf_counter()
        with spawned(coprocess) as process:
            times.append(time.perf_counter() - started)
            after_ok = memory_kb(process.pid, "VmRSS")
            assert process.stdin is not None
            process.stdin.write(question)
            AnswerReader(process).count(1)
            after_question = memory_kb(process.pid, "VmRSS")
    return Startup(min(times), statistics.median(times), after_ok, after_question)


@dataclass
class ContendedStartup:
    """Many coprocesses started at once, as pdns starts one per backend instance: the time to the
    last HELO answer of each round (best and median over rounds), and the CPU one start costs."""

    starts: int
    rounds: int
    best: float
    median: float
    cpu_per_start: float


def contended_starts(coprocess: Coprocess, starts: int, rounds: int) -> ContendedStartup:
    """``starts`` coprocesses spawned together, HELO written to each as it is spawned; a round
    lasts until the last OK line. pdns exits at start-up when a HELO waits past pipe-timeout."""
    import resource
    import selectors

    slowest: list[float] = []
    cpu = 0.0
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        processes = []
        for _ in range(starts):
            process = subprocess.Popen(
                coprocess.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
            assert process.stdin is not None
            process.stdin.write(HELO)
            processes.append(process)
        with selectors.DefaultSelector() as selector:
            for process in processes:
                assert process.stdout is not None
                selector.register(process.stdout, selectors.EVENT_READ)
            waiting = len(processes)
            while waiting:
                for key, _ in selector.select(30):
                    if not key.fileobj.readline().startswith(b"OK"):  # type: ignore[union-attr]
                        raise RuntimeError(f"{coprocess.name}: HELO not answered OK")
                    selector.unregister(key.fileobj)
                    waiting -= 1
        slowest.append(time.perf_counter() - started)
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)
            assert process.stdout is not None
            process.stdout.close()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return ContendedStartup(starts, rounds, min(slowest), statistics.median(slowest), cpu / (starts * rounds))


BARE_PYTHON = "python -c pass"
NO_SITE_PYTHON = "python -S -c pass"


def bare_python(repeats: int, *options: str) -> Startup:
    """Spawning the venv's python to its exit (-S: without site, so without any .pth file)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([PYTHON, *options, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return Startup(min(times), statistics.median(times))


# --------------------------------------------------------------------------------------------------
# Report


@dataclass
class Results:
    settings: Settings
    checks: dict[str, str] = field(default_factory=dict)
    captured_lines: int = 0
    replays: dict[str, Replay] = field(default_factory=dict)
    locksteps: dict[str, Lockstep] = field(default_factory=dict)
    axfrs: dict[str, Axfr] = field(default_factory=dict)
    large_zone_loads: dict[str, LargeZoneLoad] = field(default_factory=dict)  # by LARGE_ZONE_ROWS_MADE key
    large_axfrs: list[LargeAxfr] = field(default_factory=list)
    e2e: dict[tuple[str, int], list[Dnsperf]] = field(default_factory=dict)

    def best_e2e(self, name: str, threads: int) -> Dnsperf | None:
        runs = self.e2e.get((name, threads))
        return max(runs, key=lambda run: run.qps) if runs else None

    def paired_share(self, name: str, threads: int, reference: str = CEILING.name) -> float | None:
        """The median over rounds of name's rate over the reference's (the C ceiling's) in the
        same round: drift between rounds cancels out, which the ratio of the two best runs does
        not promise."""
        return paired(self.e2e.get((name, threads)), self.e2e.get((reference, threads)))

    def cached_share(self, name: str, reference: str = NATIVE.name) -> float | None:
        return paired(self.e2e_cached.get(name), self.e2e_cached.get(reference))

    #: section 2b, caches on, at CACHED_THREADS: runs per backend
    e2e_cached: dict[str, list[Dnsperf]] = field(default_factory=dict)
    #: section 2c: the answer check, and runs per (mix, distributor-threads, backend)
    hosts_checks: dict[str, str] = field(default_factory=dict)
    e2e_hosts: dict[tuple[str, int, str], list[Dnsperf]] = field(default_factory=dict)

    def e2e_rows(self) -> list[tuple[str, list[Dnsperf], list[Dnsperf]]]:
        """Every end-to-end row the targets cover: (label, lua2pipe's runs, the C ceiling's runs)
        at distributor-threads 2 and 8, caches off and each cached mix."""
        pairs = [
            (
                f"caches off, {threads}",
                self.e2e.get((LUA2PIPE_ZONE.name, threads)),
                self.e2e.get((CEILING.name, threads)),
            )
            for threads in TARGET_THREADS
        ]
        mixes = dict.fromkeys(mix for mix, _, _ in self.e2e_hosts)
        pairs += [
            (
                f"{mix}, {threads}",
                self.e2e_hosts.get((mix, threads, LUA2PIPE_ZONE.name)),
                self.e2e_hosts.get((mix, threads, CEILING.name)),
            )
            for mix in mixes
            for threads in TARGET_THREADS
        ]
        return [(label, mine, ceiling) for label, mine, ceiling in pairs if mine and ceiling]

    startups: dict[str, Startup] = field(default_factory=dict)
    contended: ContendedStartup | None = None


def paired(
    runs: list[Dnsperf] | None,
    references: list[Dnsperf] | None,
    measure: Callable[[Dnsperf], float] = lambda run: run.qps,
) -> float | None:
    """The median over rounds of the ratio of two backends' measures (rates) in the same round
    (rounds where the reference measured 0, such as CPU below the clock's tick, left out)."""
    if not runs or not references:
        return None
    ratios = [
        measure(run) / measure(ref) for run, ref in zip(runs, references, strict=True) if measure(ref) > 0
    ]
    return statistics.median(ratios) if ratios else None


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pdns = (
        subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "pdns-server"], capture_output=True, text=True
        ).stdout
        or "?"
    )
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{cpu}; Python {platform.python_version()}, pdns-server {pdns}"
    )


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def ratio_text(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def verdict(met: bool) -> str:
    return "met" if met else "**MISSED**"


def hosts_section(r: Results) -> list[str]:
    """Section 2c's table: per mix and thread count, each backend's median rate and its ratios to
    the C ceiling and to native lua2 in the same round (median over rounds)."""
    s = r.settings
    out = [
        "",
        f"## 2c. Cached workloads: {HOSTS_ZONE}, {HOSTS:,} hosts computed by {HOSTS_SCRIPT.name} (and by "
        "the C and Python references), pdns's default packet and query caches, zone cache off; "
        f"dnsperf -c 8, {s.dnsperf_seconds} s a run after {s.warmup_seconds} s on other names of the "
        f"same mix; median of {s.e2e_rounds} interleaved rounds",
        "",
        "Zipf: s = 1 over the hosts, A or AAAA, a tenth of the names past the last host (NXDOMAIN). "
        "Random subdomain: a new random label under the zone for every query (NXDOMAIN), so every "
        "cache misses.",
        "",
    ]
    rows = []
    for (mix, threads, name), runs in r.e2e_hosts.items():
        ceiling = r.e2e_hosts.get((mix, threads, CEILING.name))
        native = r.e2e_hosts.get((mix, threads, NATIVE.name))
        rows.append(
            [
                mix,
                str(threads),
                name,
                f"{statistics.median(run.qps for run in runs):,.0f}",
                ratio_text(paired(runs, ceiling)),
                ratio_text(paired(runs, native)),
                f"{statistics.median(run.pdns_cpu_us for run in runs):.0f} / "
                f"{statistics.median(run.coprocess_cpu_us for run in runs):.1f}",
                "-"
                if name == NATIVE.name
                else ratio_text(paired(runs, ceiling, lambda run: run.coprocess_cpu_us)),
                str(max(run.lost for run in runs)),
                " / ".join(f"{run.qps:,.0f}" for run in runs),
            ]
        )
    out += table(
        [
            "mix",
            "distributor-threads",
            "backend",
            "q/s (median)",
            "x C ceiling",
            "x native",
            "CPU µs/query: pdns / coprocesses",
            "coprocess CPU x C ceiling's",
            "lost (most)",
            "all runs (q/s)",
        ],
        rows,
    )
    out += [
        "",
        "Ratios are medians over rounds of the ratio within each round. Response codes (last run at "
        f"distributor-threads {TARGET_THREADS[0]}; the mix must be the same for every backend):",
        "",
    ]
    out += [
        f"- {mix}, {name}: {runs[-1].rcodes}"
        for (mix, threads, name), runs in r.e2e_hosts.items()
        if threads == TARGET_THREADS[0]
    ]
    return out


def report(r: Results) -> str:
    s = r.settings
    out = [
        "# lua2pipe benchmark",
        "",
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {machine()}",
        "",
        "Only ratios within this run count (shared, noisy machine). Answer check against the reference "
        "table: " + ", ".join(f"{name} {result}" for name, result in r.checks.items()) + ".",
    ]
    if r.hosts_checks:
        out += [
            "",
            f"Answer check of section 2c's backends through pdns against native lua2 ({HOSTS_ZONE}): "
            + ", ".join(f"{name} {result}" for name, result in r.hosts_checks.items())
            + ".",
        ]
    targets: list[list[str]] = []

    if r.replays:
        plain = r.replays[PLAIN.name]
        out += [
            "",
            f"## 1. Coprocess alone: the Q lines pdns sent for the query mix ({r.captured_lines:,}), "
            f"repeated for about {s.replay_seconds:g} s a run; best of {s.repeats} runs",
            "",
            "Throughput with the pipe kept full; the last two columns are lock-step: each question "
            f"waits for the previous answer, as pdns asks them (first {s.lockstep_questions:,} questions): "
            "the round trip (harness overhead included) and the coprocess's CPU time (user + system) per "
            "question (mean of the runs): a process woken for every question runs on cold caches.",
            "",
        ]
        out += table(
            [
                "coprocess",
                "questions",
                "questions/s",
                "µs/question",
                "peak RSS",
                "x plain Python",
                "x C ceiling",
                "answer bytes as reference",
                "lock-step µs/question",
                "lock-step CPU µs/question",
            ],
            [
                [
                    name,
                    f"{x.questions:,}",
                    f"{x.rate:,.0f}",
                    f"{x.micros:.2f}",
                    mb(x.peak_rss_kb),
                    f"{x.rate / plain.rate:.2f}",
                    f"{x.rate / r.replays[CEILING.name].rate:.2f}",
                    "yes" if x.same_bytes else "**NO**",
                    f"{r.locksteps[name].seconds * 1e6:.1f}" if name in r.locksteps else "-",
                    f"{r.locksteps[name].cpu * 1e6:.1f}" if name in r.locksteps else "-",
                ]
                for name, x in r.replays.items()
            ],
        )
        ratio = r.replays[LUA2PIPE_ZONE.name].rate / plain.rate
        targets.append(
            ["coprocess alone, mix: lua2pipe ≥ 1.0x plain Python", f"{ratio:.2f}x", verdict(ratio >= 1.0)]
        )
    if r.axfrs:
        plain_axfr = r.axfrs[PLAIN.name]
        out += [
            "",
            f"### AXFR of {AXFR_ZONE} ({plain_axfr.records:,} records): first, then best of "
            f"{s.axfr_repeats} more",
            "",
        ]
        out += table(
            ["coprocess", "first AXFR", "later AXFR", "records/s (later)", "peak RSS", "x plain Python"],
            [
                [
                    name,
                    f"{x.cold * 1000:.0f} ms",
                    f"{x.warm * 1000:.0f} ms",
                    f"{x.records / x.warm:,.0f}",
                    mb(x.peak_rss_kb),
                    f"{plain_axfr.warm / x.warm:.2f}",
                ]
                for name, x in r.axfrs.items()
            ],
        )
        ratio = plain_axfr.warm / r.axfrs[LUA2PIPE_ZONE.name].warm
        cold = plain_axfr.warm / r.axfrs[LUA2PIPE_ZONE.name].cold
        targets.append(
            [
                "AXFR 100k: lua2pipe ≥ 0.5x plain Python's rate",
                f"{ratio:.2f}x (first: {cold:.2f}x)",
                verdict(ratio >= 0.5),
            ]
        )

    if r.large_axfrs:
        at_rest = r.large_zone_loads["built by dns_list"]  # no rows until dns_list runs

        def rows_cost(rows: str) -> tuple[float, int]:  # Lua heap and RSS the rows add at load
            loaded = r.large_zone_loads["prebuilt at load" if rows == "built by dns_list" else rows]
            return loaded.heap_kb - at_rest.heap_kb, loaded.rss_kb - at_rest.rss_kb

        out += [
            "",
            f"### AXFR of {LARGE_ZONE_ROWS:,} records through pdns (dig, bench/large_zone.lua)",
            "",
            "Streamed as rendered. Peak RSS is the coprocess pdns started for the transfer. The rows "
            "column is what the script's rows add to a lua2pipe coprocess that loads them: Lua heap, and "
            "RSS, which LuaJIT's allocator makes larger for many small objects. lua2pipe at rest (loaded "
            f"without rows) takes {mb(at_rest.rss_kb)}; the next column is the peak less that and the "
            "rows' Lua heap: lua2pipe's own memory during the transfer, and the allocator's share of "
            "the rows. pdns_server's growth is its peak RSS during the transfer over its RSS before: "
            "pdns holds the zone while it transfers it, and native lua2 holds the script's rows in "
            "pdns_server itself.",
            "",
        ]
        lines = []
        for x in r.large_axfrs:
            heap_kb, rss_kb = rows_cost(x.rows)
            lines.append(
                [
                    NATIVE.name if x.native else "lua2pipe",
                    x.rows,
                    f"{x.records:,}",
                    f"{x.seconds:.1f} s",
                    f"{x.records / x.seconds:,.0f}",
                    "-" if x.native else mb(x.coprocess_peak_kb),
                    f"{mb(round(heap_kb))} ({mb(rss_kb)} RSS)",
                    "-" if x.native else mb(round(x.coprocess_peak_kb - at_rest.rss_kb - heap_kb)),
                    mb(x.server_growth_kb),
                ]
            )
        out += table(
            [
                "server",
                "rows",
                "records",
                "time",
                "records/s",
                "coprocess peak RSS",
                "the rows: Lua heap (RSS)",
                "peak - at rest - rows' heap",
                "pdns_server's growth",
            ],
            lines,
        )
        through_pipe = {x.rows: x for x in r.large_axfrs if not x.native}
        prebuilt, shared = through_pipe["prebuilt at load"], through_pipe["1,000 shared rows"]
        targets.append(
            [
                f"AXFR {LARGE_ZONE_ROWS:,} through pdns completes",
                f"{prebuilt.records:,} records in {prebuilt.seconds:.1f} s",
                verdict(prebuilt.records == LARGE_ZONE_ROWS + 1),
            ]
        )
        targets.append(
            [
                f"AXFR {LARGE_ZONE_ROWS:,}, rows that cost little: coprocess peak RSS < 100 MB",
                mb(shared.coprocess_peak_kb),
                verdict(shared.records == LARGE_ZONE_ROWS + 1 and shared.coprocess_peak_kb < 100 * 1024),
            ]
        )

    if r.e2e:
        backends = list(dict.fromkeys(name for name, _ in r.e2e))
        out += [
            "",
            f"## 2. End to end: pdns_server (caches off) + dnsperf -c 8, {s.dnsperf_seconds} s a run, "
            f"best of {s.e2e_rounds} (every run's q/s in the last column)",
            "",
        ]
        rows = []
        for threads in s.thread_counts:
            ceiling = r.best_e2e(CEILING.name, threads)
            for name in backends:
                x = r.best_e2e(name, threads)
                if x is None:
                    continue
                median_share = r.paired_share(name, threads)
                share = f"{x.qps / ceiling.qps:.0%} / {median_share:.0%}" if ceiling and median_share else "-"
                runs = " / ".join(f"{run.qps:,.0f}" for run in r.e2e[(name, threads)])
                rows.append(
                    [
                        str(threads),
                        name,
                        f"{x.qps:,.0f}",
                        f"{x.latency_ms:.2f} ms",
                        share,
                        str(x.lost),
                        f"{x.idle:.0%} / {x.steal:.0%}",
                        f"{x.pdns_cpu_us:.0f} / {x.coprocess_cpu_us:.0f}",
                        runs,
                    ]
                )
        out += table(
            [
                "distributor-threads",
                "backend",
                "q/s",
                "avg latency",
                "of C ceiling: best / median of rounds",
                "lost",
                "CPU idle / steal",
                "CPU µs/query: pdns / coprocesses",
                "all runs (q/s)",
            ],
            rows,
        )
        out += [
            "",
            "Where much CPU stays idle, a run is bound by wake-up latency (see the lock-step column "
            "above), which on a VM is large and bimodal: then a slower coprocess that keeps the CPUs "
            "busy can beat the C ceiling, and single runs swing widely (see all runs). Distributor-threads "
            "1 is that case; compare ratios at 2 and 8.",
        ]
        rcodes = {name: runs[-1].rcodes for (name, _), runs in r.e2e.items()}
        out += ["", "Response codes (last run of each backend; the mix must be the same for all):", ""]
        out += [f"- {name}: {codes}" for name, codes in rcodes.items()]
        out += [
            "",
            "Remote mode against pipe mode (lua2pipe, the same script), median over rounds of the "
            "ratio within each round:",
            "",
        ]
        out += table(
            ["distributor-threads", *(remote.name for remote in REMOTES)],
            [
                [
                    str(threads),
                    *(
                        ratio_text(r.paired_share(remote.name, threads, LUA2PIPE_ZONE.name))
                        for remote in REMOTES
                    ),
                ]
                for threads in s.thread_counts
            ],
        )
        for remote in REMOTES:
            ratio = r.paired_share(remote.name, 2, LUA2PIPE_ZONE.name)
            if ratio is not None:
                targets.append(
                    [
                        f"end to end, 2 threads, caches off: {remote.name} ≥ 0.8x pipe mode",
                        f"{ratio:.2f}x (median of rounds)",
                        verdict(ratio >= 0.8),
                    ]
                )

    if r.e2e_cached:
        out += [
            "",
            f"## 2b. End to end with caches on: packet and query caches at pdns's defaults, the zone "
            f"cache at its default for native and remote (off for the pipe, which cannot fill it); "
            f"distributor-threads {CACHED_THREADS}, best of {s.e2e_rounds}",
            "",
        ]
        rows = []
        for name, runs in r.e2e_cached.items():
            x = max(runs, key=lambda run: run.qps)
            rows.append(
                [
                    name,
                    f"{x.qps:,.0f}",
                    ratio_text(r.cached_share(name)),
                    f"{x.pdns_cpu_us:.0f} / {x.coprocess_cpu_us:.0f}",
                    " / ".join(f"{run.qps:,.0f}" for run in runs),
                ]
            )
        out += table(
            [
                "backend",
                "q/s",
                "of native: median of rounds",
                "CPU µs/query: pdns / coprocesses",
                "all runs (q/s)",
            ],
            rows,
        )

    if r.e2e_hosts:
        out += hosts_section(r)

    rows = r.e2e_rows()
    if rows:
        for what, wanted, measure, at_most in (
            ("rate ≥ 0.9x the C ceiling's", 0.9, lambda run: run.qps, False),
            ("coprocess CPU per query ≤ 1.5x the C ceiling's", 1.5, lambda run: run.coprocess_cpu_us, True),
        ):
            ratios = [(label, paired(mine, ceiling, measure)) for label, mine, ceiling in rows]
            met = all(x is not None and (x <= wanted if at_most else x >= wanted) for _, x in ratios)
            targets.append(
                [
                    f"end to end, every row at distributor-threads 2 and 8: lua2pipe's {what} "
                    "(median of rounds)",
                    "; ".join(f"{label}: {ratio_text(x)}" for label, x in ratios),
                    verdict(met),
                ]
            )

    if r.startups:
        bare = r.startups[BARE_PYTHON]
        out += [
            "",
            f"## 3. Startup (spawn to OK, HELO sent at once; best and median of {s.startup_repeats}) "
            "and memory",
            "",
        ]
        out += table(
            ["process", "best", "median", "x bare python", "RSS after OK", "RSS after 1 question"],
            [
                [
                    name,
                    f"{x.best * 1000:.1f} ms",
                    f"{x.median * 1000:.1f} ms",
                    f"{x.best / bare.best:.2f}",
                    mb(x.rss_after_ok_kb) if x.rss_after_ok_kb else "-",
                    mb(x.rss_after_question_kb) if x.rss_after_question_kb else "-",
                ]
                for name, x in r.startups.items()
            ],
        )
        out += [
            "",
            f"`{BARE_PYTHON}` is the baseline of the target. `{NO_SITE_PYTHON}` skips site and so every "
            ".pth file in the venv: lua2pipe runs with -I, which still reads them, so it pays that cost too.",
        ]
        example = r.startups.get(f"lua2pipe {EXAMPLE_SCRIPT.name}")
        if example:
            ratio = example.best / bare.best
            targets.append(["HELO→OK ≤ 3x bare python start", f"{ratio:.2f}x", verdict(ratio <= 3.0)])
            rss = max(example.rss_after_ok_kb, example.rss_after_question_kb)
            targets.append(
                [f"RSS ≤ 20 MB after loading {EXAMPLE_SCRIPT.name}", mb(rss), verdict(rss <= 20 * 1024)]
            )

    c = r.contended
    if c:
        out += [
            "",
            f"### Startup under contention ({c.starts} simultaneous starts of lua2pipe "
            f"{EXAMPLE_SCRIPT.name}, {os.cpu_count()} CPUs; {c.rounds} rounds)",
            "",
            *table(
                ["last HELO answered, best", "median", "CPU per start"],
                [
                    [
                        f"{c.best * 1000:.0f} ms",
                        f"{c.median * 1000:.0f} ms",
                        f"{c.cpu_per_start * 1000:.1f} ms",
                    ]
                ],
            ),
            "",
            "pdns starts one coprocess per backend instance and exits at start-up when a HELO waits "
            "past pipe-timeout (2000 ms by default).",
        ]
        targets.append(
            [
                f"{c.starts} simultaneous starts answer HELO within 1 s (median)",
                f"{c.median * 1000:.0f} ms",
                verdict(c.median <= 1.0),
            ]
        )

    out += ["", "## Targets", "", *table(["target", "measured", ""], targets)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for trying the harness")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["coprocess", "e2e", "cached", "startup"],
        help="leave a benchmark out (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    results = Results(settings)
    began = time.monotonic()

    log("building the reference tables and the C ceiling")
    small, big, answers = build_references()
    query_file = OUT / "queries.txt"
    query_file.write_text("\n".join(query_mix(small)) + "\n")
    log("capturing pdns's question stream for the query mix")
    captured = capture_stream(query_file)
    stream = Stream.of(captured, answers)
    (OUT / "questions.txt").write_bytes(stream.block)
    results.captured_lines = len(captured)

    log("checking that every coprocess gives the same answers")
    questions = check_questions(captured, [*small, big])
    for coprocess in COPROCESSES:
        results.checks[coprocess.name] = check_answers(coprocess, questions, answers)
        log(f"  {coprocess.name}: {results.checks[coprocess.name]}")
    mixes = []
    if "cached" not in args.skip:
        log(f"writing the cached workloads' query mixes; checking every backend's answers about {HOSTS_ZONE}")
        mixes = write_mixes()
        results.hosts_checks = check_hosts_answers(hosts_check_questions(mixes))
        for name, check in results.hosts_checks.items():
            log(f"  {name}: {check}")

    if "coprocess" not in args.skip:
        log("1. coprocess alone")
        results.replays = best_replays(stream, settings)
        results.locksteps = best_locksteps(captured, settings)
        for coprocess in COPROCESSES:
            results.axfrs[coprocess.name] = axfr(coprocess, big, settings.axfr_repeats)
        log(f"1b. AXFR of {LARGE_ZONE_ROWS:,} records through pdns")
        results.large_zone_loads = {rows: loaded_large_zone(rows) for rows in LARGE_ZONE_ROWS_MADE}
        results.large_axfrs = [large_axfr(rows) for rows in LARGE_ZONE_ROWS_MADE]
        if settings.native_large_axfr:
            results.large_axfrs += [large_axfr(rows, native=True) for rows in NATIVE_LARGE_ZONE_ROWS]

    if "startup" not in args.skip:
        log("3. startup and memory")
        results.startups[BARE_PYTHON] = bare_python(settings.startup_repeats)
        results.startups[NO_SITE_PYTHON] = bare_python(settings.startup_repeats, "-S")
        for coprocess in (
            Coprocess(f"lua2pipe {EXAMPLE_SCRIPT.name}", (str(LUA2PIPE), str(EXAMPLE_SCRIPT))),
            Coprocess(f"lua2pipe {ZONE_SCRIPT.name}", LUA2PIPE_ZONE.argv),
            PLAIN,
            CEILING,
        ):
            results.startups[coprocess.name] = time_to_ok(coprocess, settings.startup_repeats)
        example = Coprocess(f"lua2pipe {EXAMPLE_SCRIPT.name}", (str(LUA2PIPE), str(EXAMPLE_SCRIPT)))
        results.contended = contended_starts(example, 16, settings.contended_rounds)

    for round_ in range(settings.e2e_rounds):  # interleaved, so drift hits every backend alike
        if "e2e" not in args.skip:
            for threads in settings.thread_counts:
                for backend in (*COPROCESSES, *REMOTES, NATIVE):
                    log(f"2. end to end, round {round_ + 1}: {backend.name}, distributor-threads={threads}")
                    run = end_to_end(backend, threads, query_file, settings)
                    results.e2e.setdefault((backend.name, threads), []).append(run)
            for backend in (NATIVE, *REMOTES, LUA2PIPE_ZONE):
                log(f"2b. end to end, caches on, round {round_ + 1}: {backend.name}")
                run = end_to_end(backend, CACHED_THREADS, query_file, settings, CACHES_ON)
                results.e2e_cached.setdefault(backend.name, []).append(run)
        for mix in mixes:
            for threads in TARGET_THREADS:
                for backend in HOSTS_BACKENDS:
                    log(f"2c. {mix.name}, round {round_ + 1}: {backend.name}, distributor-threads={threads}")
                    run = end_to_end(backend, threads, mix.queries, settings, DEFAULT_CACHES, mix.warmup)
                    results.e2e_hosts.setdefault((mix.name, threads, backend.name), []).append(run)

    text = report(results)
    (OUT / "results.md").write_text(text)
    print(text)
    log(f"done in {time.monotonic() - began:.0f} s; written to {OUT / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
