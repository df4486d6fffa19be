"""Conformance suite setup: the differential suite's end-of-run tally (the pdns markers and
their skips are the repository's conftest.py). This package has an ``__init__.py`` so that
this file is imported as ``conformance.conftest``, beside the other conftest modules.

The tally: every differential case records a ``differential`` user property (script, ABI,
question, outcome, known-difference id). Reports reach the controlling process under xdist too,
so ``pytest_terminal_summary`` prints, even with ``-q``: identical cases out of cases run per ABI,
each known difference with how many cases it covered, and any unexpected or stale case.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

_results: list[dict] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "differential":
            _results.append(value)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _results:
        return
    from .differential import harness

    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "differential conformance: native lua2 vs lua2pipe")
    by_abi: dict[int, Counter] = defaultdict(Counter)
    by_entry: dict[str, list[dict]] = defaultdict(list)
    odd: list[dict] = []
    for result in _results:
        by_abi[result["abi"]][result["outcome"]] += 1
        if result["entry"]:
            by_entry[result["entry"]].append(result)
        if result["outcome"] in ("different", "changed", "stale"):
            odd.append(result)
    for abi in sorted(by_abi, reverse=True):
        counts = by_abi[abi]
        run = sum(counts.values())
        extra = ", ".join(f"{counts[k]} {k}" for k in ("known", "different", "changed", "stale") if counts[k])
        write(
            f"pipe ABI {abi}: {counts['identical']} of {run} cases identical"
            + (f" ({extra})" if extra else "")
        )
    total = Counter()
    for counts in by_abi.values():
        total.update(counts)
    write(f"all ABIs: {total['identical']} of {sum(total.values())} cases identical")
    try:
        entries = {entry.id: entry for entry in harness.load_known_differences()}
    except Exception:  # the test run reports a broken file itself
        entries = {}
    if by_entry:
        write("known differences (conformance/known-differences.toml):")
        for entry_id, results in sorted(by_entry.items()):
            entry = entries.get(entry_id)
            abis = sorted({r["abi"] for r in results})
            status = entry.status if entry else "?"
            summary = entry.summary if entry else ""
            write(
                f"  {entry_id} [{status}] {results[0]['script']}.lua ABI {','.join(map(str, abis))}, "
                f"{len(results)} case(s): {summary}"
            )
    for result in odd:
        write(
            f"  {result['outcome'].upper()}: {result['script']}.lua ABI {result['abi']} {result['query']!r}"
            + (f" (entry {result['entry']})" if result["entry"] else "")
        )
