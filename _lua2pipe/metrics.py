"""``--metrics-dir``: every coprocess's numbers as a Prometheus text file, and ``lua2pipe metrics``,
which sums the live ones.

Each coprocess keeps one file, ``lua2pipe-PID-START.prom`` (START: the process's start time in
clock ticks since boot, field 22 of ``/proc/PID/stat``), in the text exposition format that
node_exporter's textfile collector reads. The watchdog thread replaces it atomically (a write to
a dot-file, then rename) every :data:`WRITE_SECONDS` and folds new latency samples into the
histogram at every poll; the serving loop only appends each question's latency, as it did for
CMD ``stats``. The file is removed at exit. pdns SIGKILLs coprocesses it drops, which leaves
the file: a file whose PID is not running, or runs a process that started at another time (a
reused pid), is stale. Readers skip stale files, and each coprocess deletes them as it writes
its own. A runaway restart re-executes lua2pipe in the same process (same pid, same start time,
so the same file): the old image writes its numbers just before, the new one reads them back.

Why not ``prometheus_client``: its import alone takes 57-78 ms (0.26.0, ``python -X importtime``
on the 2-CPU test machine), three times lua2pipe's whole start-up to its HELO answer (21 ms), and
start-up is on pdns's clock; its multiprocess mode updates a memory-mapped file on every
increment (the hot path), expects a parent to call ``mark_process_dead`` (pdns never would),
and needs a process of its own to render text for node_exporter. The format is simple enough
to write here: about a hundred lines, off the hot path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import lua2pipe

#: How often the file is replaced: a few seconds, below node_exporter's usual 15 s scrape.
WRITE_SECONDS = 2.0

#: Upper bounds of the latency histogram, in seconds: the time lua2pipe takes to answer a line
#: (read to write, pdns's pipe excluded), 2-5 µs for a plain lookup, up to --max-query-ms.
LATENCY_BOUNDS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

PREFIX, SUFFIX = "lua2pipe-", ".prom"

#: The counters: metric, help text, and per sample its labels and the tally key (Coprocess.count)
#: it shows.
TALLIED = (
    (
        "lua2pipe_questions_total",
        "Lines answered, by kind",
        {'kind="command"': "commands", 'kind="other"': "other_requests"},
    ),
    ("lua2pipe_runaway_cuts_total", "Hooks stopped at --max-query-ms", {"": "runaway_cuts"}),
    ("lua2pipe_memory_cap_failures_total", "Questions failed by --max-memory", {"": "memory_cap_failures"}),
    (
        "lua2pipe_restarts_total",
        "Fresh Lua states, by cause",
        {'cause="runaway"': "restarts_runaway", 'cause="memory"': "restarts_memory"},
    ),
    (
        "lua2pipe_reload_failures_total",
        "Reloads that failed (the old script kept serving)",
        {"": "reload_failures"},
    ),
)


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # the name may hold spaces and ")"
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22; the split starts at field 3


def file_name(pid: int, start: int) -> str:
    return f"{PREFIX}{pid}-{start}{SUFFIX}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsFile:
    """The metrics file of one coprocess (``lua2pipe.Coprocess``), written by its watchdog thread."""

    def __init__(self, coprocess: Any, directory: str, *, resumed: bool = False) -> None:
        os.makedirs(directory, exist_ok=True)
        self.coprocess = coprocess
        self.directory = directory
        self.pid = os.getpid()
        self.start = start_ticks(self.pid) or 0
        self.path = os.path.join(directory, file_name(self.pid, self.start))
        self.buckets = [0] * (len(LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0
        self.last_sample: float | None = None
        self.next_write = 0.0
        if resumed:
            self._carry_over()

    def _carry_over(self) -> None:
        """Adds the numbers the previous image of this process wrote before its restart."""
        try:
            with open(self.path) as previous:
                samples = parse(previous.read())
        except OSError:
            return
        coprocess = self.coprocess
        value = {(name, labels): number for name, labels, number in samples}
        lookups = value.get(("lua2pipe_questions_total", 'kind="lookup"'), 0)
        lists = value.get(("lua2pipe_questions_total", 'kind="list"'), 0)
        coprocess.questions += int(lookups + lists)
        coprocess.lists += int(lists)
        coprocess.failures += int(value.get(("lua2pipe_failures_total", ""), 0))
        coprocess.commands.reloads += int(value.get(("lua2pipe_reloads_total", ""), 0))
        for name, _, tally_keys in TALLIED:
            for labels, key in tally_keys.items():
                coprocess.tally[key] = coprocess.tally.get(key, 0) + int(value.get((name, labels), 0))
        cumulative = [value.get(("lua2pipe_latency_seconds_bucket", f'le="{b}"'), 0) for b in LATENCY_BOUNDS]
        cumulative.append(value.get(("lua2pipe_latency_seconds_count", ""), 0))
        below = 0.0
        for index, count in enumerate(cumulative):
            self.buckets[index] = int(count - below)
            below = count
        self.latency_sum = value.get(("lua2pipe_latency_seconds_sum", ""), 0.0)

    def tick(self, now: float) -> None:
        """Every watchdog poll: new latencies into the histogram; the file every WRITE_SECONDS."""
        self.fold()
        if now >= self.next_write:
            self.next_write = now + WRITE_SECONDS
            self.save()
            self.coprocess.operations.want_memory()  # for the next file: Lua is the loop's
            self.sweep()

    def fold(self) -> None:
        """Counts the latencies the loop appended since the last fold. The deque is shared with
        CMD stats (the last 10,000), so samples are not taken out: the last one folded is
        remembered by identity (each is a float object of its own, kept alive by this
        reference). One list() of the deque is one C call, atomic under the GIL; a deque that
        turned over completely between two polls (over 200,000 answers a second) loses samples."""
        latencies = self.coprocess.latencies
        if not latencies or latencies[-1] is self.last_sample:
            return
        samples = list(latencies)
        start = 0
        for index in range(len(samples) - 1, -1, -1):
            if samples[index] is self.last_sample:
                start = index + 1
                break
        new = samples[start:]
        self.last_sample = samples[-1]
        buckets = self.buckets
        for sample in new:
            buckets[bisect_left(LATENCY_BOUNDS, sample)] += 1
        self.latency_sum += sum(new)

    def text(self) -> str:
        coprocess = self.coprocess
        pid = f'pid="{self.pid}"'
        script = coprocess.script
        path = script.path if script is not None else coprocess.operations.path or ""
        info = (
            f'{pid},start="{self.start}",script="{_escape(path)}",mode="{coprocess.resume_mode}",'
            f'lua="{_escape(script.version if script is not None else "")}",version="{lua2pipe.VERSION}"'
        )
        families: dict[str, tuple[str, str, list[tuple[str, float]]]] = {}

        def add(name: str, kind: str, help_text: str, labels: str, number: float) -> None:
            families.setdefault(name, (kind, help_text, []))[2].append((labels, number))

        add("lua2pipe_info", "gauge", "The coprocess: pid, start time (ticks), script, protocol", info, 1)
        add(
            "lua2pipe_script_loaded",
            "gauge",
            "Whether the script is loaded (0: failed)",
            pid,
            script is not None,
        )
        if script is not None:
            add("lua2pipe_script_mtime_seconds", "gauge", "The served script's mtime", pid, script.mtime)
        kinds = "Lines answered, by kind"
        add(
            "lua2pipe_questions_total",
            "counter",
            kinds,
            f'{pid},kind="lookup"',
            coprocess.questions - coprocess.lists,
        )
        add("lua2pipe_questions_total", "counter", kinds, f'{pid},kind="list"', coprocess.lists)
        add(
            "lua2pipe_failures_total",
            "counter",
            "Lines answered LOG+FAIL (or failed)",
            pid,
            coprocess.failures,
        )
        tally = coprocess.tally
        for name, help_text, tally_keys in TALLIED:
            for labels, key in tally_keys.items():
                add(name, "counter", help_text, f"{pid},{labels}" if labels else pid, tally.get(key, 0))
        add("lua2pipe_reloads_total", "counter", "Scripts reloaded", pid, coprocess.commands.reloads)
        memory_kb = coprocess.operations.lua_memory_kb
        if memory_kb is not None:
            add("lua2pipe_lua_memory_bytes", "gauge", "The Lua heap", pid, memory_kb * 1024)
        lines = []
        for name, (kind, help_text, samples) in families.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{{{labels}}} {_number(number)}" for labels, number in samples]
        lines += [
            "# HELP lua2pipe_latency_seconds Time to answer a line, read to write",
            "# TYPE lua2pipe_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BOUNDS, "+Inf"), self.buckets, strict=True):
            cumulative += count
            lines.append(f'lua2pipe_latency_seconds_bucket{{{pid},le="{bound}"}} {cumulative}')
        lines.append(f"lua2pipe_latency_seconds_sum{{{pid}}} {_number(self.latency_sum)}")
        lines.append(f"lua2pipe_latency_seconds_count{{{pid}}} {cumulative}")
        return "\n".join(lines) + "\n"

    def save(self) -> None:
        """Replaces the file atomically: node_exporter never reads half of one."""
        temporary = os.path.join(self.directory, f".{os.path.basename(self.path)}.tmp")
        try:
            with open(temporary, "w") as out:
                out.write(self.text())
            os.replace(temporary, self.path)
        except OSError as exc:
            self.coprocess.log(4, "cannot write metrics", path=self.path, error=str(exc))

    def sweep(self) -> None:
        """Deletes the files of coprocesses that are gone (SIGKILLed by pdns)."""
        for entry in scan(self.directory)[1]:
            with contextlib.suppress(OSError):  # another coprocess was first, or another user's file
                os.unlink(entry)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")


def parse(text: str) -> list[tuple[str, str, float]]:
    """The samples of a file this module wrote: (name, labels without pid, value)."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = re.sub(r'^pid="\d+",?', "", match.group(2))
            samples.append((match.group(1), labels, float(match.group(3))))
    return samples


@dataclass
class Entry:
    """One live coprocess's file."""

    pid: int
    path: str
    script: str = ""
    samples: list[tuple[str, str, float]] = field(default_factory=list)


_FILE = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)" + re.escape(SUFFIX) + "$")


def scan(directory: str) -> tuple[list[Entry], list[str]]:
    """The live coprocesses' files in ``directory`` and the paths of stale ones."""
    live, stale = [], []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return [], []
    for name in names:
        match = _FILE.match(name)
        if not match:
            continue
        path = os.path.join(directory, name)
        pid, start = int(match.group(1)), int(match.group(2))
        if start_ticks(pid) != start:
            stale.append(path)
            continue
        try:
            with open(path) as metrics:
                text = metrics.read()
        except OSError:  # removed as it exited
            continue
        script = re.search(r'lua2pipe_info\{.*?script="((?:[^"\\]|\\.)*)"', text)
        unescaped = (
            script.group(1).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") if script else ""
        )
        live.append(Entry(pid, path, unescaped, parse(text)))
    return live, stale


def live_files(directory: str) -> list[Entry]:
    return scan(directory)[0]


# ---------------------------------------------------------------------------------------------
# lua2pipe metrics DIR [--json]

#: The table's columns: heading, and how a process's row is read from its samples.
COLUMNS = (
    ("lookups", "lua2pipe_questions_total", 'kind="lookup"'),
    ("lists", "lua2pipe_questions_total", 'kind="list"'),
    ("commands", "lua2pipe_questions_total", 'kind="command"'),
    ("other", "lua2pipe_questions_total", 'kind="other"'),
    ("failures", "lua2pipe_failures_total", ""),
    ("runaway_cuts", "lua2pipe_runaway_cuts_total", ""),
    ("memory_cap_failures", "lua2pipe_memory_cap_failures_total", ""),
    ("restarts", "lua2pipe_restarts_total", None),
    ("reloads", "lua2pipe_reloads_total", ""),
    ("reload_failures", "lua2pipe_reload_failures_total", ""),
    ("lua_memory_kb", "lua2pipe_lua_memory_bytes", ""),
)


def _row(entry: Entry) -> dict[str, Any]:
    row: dict[str, Any] = {"pid": entry.pid, "script": entry.script, "script_mtime": None}
    for heading, name, labels in COLUMNS:
        row[heading] = int(
            sum(v for n, lab, v in entry.samples if n == name and (labels is None or lab == labels))
        )
    memory = [v for n, _, v in entry.samples if n == "lua2pipe_lua_memory_bytes"]
    row["lua_memory_kb"] = round(memory[0] / 1024, 1) if memory else None
    for name, _, number in entry.samples:
        if name == "lua2pipe_script_mtime_seconds":
            row["script_mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(number))
    cumulative = [v for n, _, v in entry.samples if n == "lua2pipe_latency_seconds_bucket"]
    row["latency_buckets"] = cumulative
    return _with_percentiles(row)


def _with_percentiles(row: dict[str, Any]) -> dict[str, Any]:
    """p50 and p99 as the histogram's upper bounds (``histogram_quantile`` without interpolation)."""
    cumulative = row["latency_buckets"]
    total = cumulative[-1] if cumulative else 0
    row["answered"] = int(total)
    for key, fraction in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        row[key] = None
        for bound, count in zip((*LATENCY_BOUNDS, float("inf")), cumulative, strict=False):
            if total and count >= fraction * total:
                row[key] = bound * 1000 if bound != float("inf") else None
                break
    return row


def summarise(directory: str) -> dict[str, Any]:
    live, stale = scan(directory)
    rows = [_row(entry) for entry in live]
    total: dict[str, Any] = {"pid": "total", "script": "", "script_mtime": None}
    for heading, _, _ in COLUMNS:
        total[heading] = round(sum(row[heading] or 0 for row in rows), 1)
    width = len(LATENCY_BOUNDS) + 1
    total["latency_buckets"] = (
        [sum(row["latency_buckets"][i] for row in rows) for i in range(width)] if rows else []
    )
    return {
        "directory": directory,
        "live": len(rows),
        "stale": stale,
        "processes": rows,
        "total": _with_percentiles(total),
    }


def metrics_main(argv: list[str]) -> int:
    """``lua2pipe metrics DIR [--json]``."""
    parser = argparse.ArgumentParser(
        prog="lua2pipe metrics",
        description="Sum the numbers of every live coprocess that keeps its metrics in DIR "
        "(pipe-command ... --metrics-dir DIR). Files of processes that are gone are not counted.",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    args = parser.parse_args(argv)
    summary = summarise(args.directory)
    if args.json:
        for row in [*summary["processes"], summary["total"]]:
            del row["latency_buckets"]
        print(json.dumps(summary, indent=1))
        return 0
    headings = ["pid", *(h for h, _, _ in COLUMNS), "answered", "p50_ms", "p99_ms", "script_mtime", "script"]
    table = [headings]
    for row in [*summary["processes"], summary["total"]]:
        table.append(["-" if row[h] is None else _cell(row[h]) for h in headings])
    widths = [max(len(line[i]) for line in table) for i in range(len(headings))]
    print(
        f"{summary['live']} live coprocesses in {args.directory}; {len(summary['stale'])} stale files ignored"
    )
    for line in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0 if summary["live"] else 1


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
