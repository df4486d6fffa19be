"""Soak: millions of questions through one lua2pipe coprocess, RSS sampled every 100k
(``make soak``; issue 6: growth after warm-up must stay under 5 %).

The questions mix what pdns sends and what goes wrong: lookups of ever-new names (so every
cache has to stay bounded), zone-walk SOA questions, MX rows, AXFR, a hook that raises,
malformed and non-UTF-8 lines, and CMD ``stats``. Questions are pipelined in blocks of 100k; after
each block a canary question must get exactly its own answer (no desync), and the RSS of the
coprocess is read from /proc.

    .venv/bin/python bench/soak.py [--questions 2000000] [--warmup 300000] [--max-memory MB]

Exit status 1 when the growth after warm-up reaches --limit percent, or on any desync.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from coprocess_client import FUZZ_SCRIPT, Lua2Pipe, good_question

BLOCK = 100_000


def question_mix(start: int, count: int) -> tuple[bytes, int]:
    """``count`` question lines (the i-th depends on start + i) and how many answers they get."""
    out = []
    for n in range(start, start + count):
        kind = n % 20
        if kind < 12:
            out.append(f"Q\tn{n}.example.org\tIN\tA\t1\t192.0.2.{n % 250 + 1}\t192.0.2.53\t192.0.2.0/24")
        elif kind == 12:
            out.append(
                f"Q\twww{n % 50}.mx.example.org\tIN\tANY\t1\t2001:db8::{n % 9999:x}\t::1\t2001:db8::/48"
            )
        elif kind in (13, 14):
            out.append(f"Q\tn{n}.example.org\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0")
        elif kind == 15:
            out.append("Q\texample.org\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0")
        elif kind == 16:
            out.append("Q\tfail.example.org\tIN\tA\t1\t192.0.2.1\t192.0.2.53\t192.0.2.0/24")
        elif kind == 17:
            out.append(f"Q\tbad..name{n}\tIN\tA\t1\t192.0.2.1\t192.0.2.53\t192.0.2.0/24")
        elif kind == 18:
            out.append("AXFR\t1\texample.org" if n % 40 == 18 else f"Q\tx\udcff{n}\tIN\tA")  # not UTF-8
        else:
            out.append(
                "CMD\tstats" if n % 1000 == 19 else f"Q\tn{n % 5000}.example.org\tIN\tANY\t1\t10.0.0.1"
            )
    text = "\n".join(out) + "\n"
    return text.encode("utf-8", "surrogateescape"), count


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def count_answers(coprocess: Lua2Pipe, expected: int) -> None:
    """Reads until ``expected`` answers ended (END or FAIL lines; no zone-walk question in the
    mix fails, CMD stats answers key=value lines)."""
    done = 0
    while done < expected:
        line = coprocess.readline(10)
        if line == b"END" or line == b"FAIL":
            done += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=2_000_000)
    parser.add_argument("--warmup", type=int, default=300_000)
    parser.add_argument("--limit", type=float, default=5.0, help="allowed growth after warm-up, percent")
    parser.add_argument("--max-memory", type=int, help="pass --max-memory MB to lua2pipe")
    args = parser.parse_args(argv)
    options = ["--loglevel", "0"] + (["--max-memory", str(args.max_memory)] if args.max_memory else [])
    started = time.monotonic()
    samples: list[tuple[int, int]] = []
    with Lua2Pipe(FUZZ_SCRIPT, *options) as coprocess:
        samples.append((0, rss_kb(coprocess.pid)))
        print(f"{'questions':>10} {'RSS KB':>8} {'q/s':>8}")
        sent = 0
        while sent < args.questions:
            block = min(BLOCK, args.questions - sent)
            data, answers = question_mix(sent, block)
            t0 = time.monotonic()
            writer = threading.Thread(target=coprocess.send, args=(data,), daemon=True)
            writer.start()
            count_answers(coprocess, answers)
            writer.join()
            rate = block / (time.monotonic() - t0)
            sent += block
            question, expected = good_question(sent)
            coprocess.send(question + b"\n")
            answer = coprocess.answer()
            if answer != expected:
                print(f"DESYNC after {sent} questions: {answer!r} != {expected!r}")
                return 1
            samples.append((sent, rss_kb(coprocess.pid)))
            print(f"{sent:>10} {samples[-1][1]:>8} {rate:>8.0f}", flush=True)
        if coprocess.close() != 0:
            print("lua2pipe did not exit 0")
            return 1
    after_warmup = [rss for n, rss in samples if n >= args.warmup]
    base, final, peak = after_warmup[0], after_warmup[-1], max(after_warmup)
    growth = (peak - base) * 100 / base
    elapsed = time.monotonic() - started
    print(
        f"{args.questions} questions in {elapsed:.1f} s ({args.questions / elapsed:.0f} q/s with the "
        f"client); RSS at start {samples[0][1]} KB, after warm-up ({args.warmup}) {base} KB, "
        f"peak after {peak} KB, final {final} KB: growth {growth:+.2f} % (limit {args.limit} %)"
    )
    return 0 if growth < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
