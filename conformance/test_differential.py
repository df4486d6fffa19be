"""Differential conformance: the same questions to native ``launch=lua2`` and to lua2pipe.

Every script in ``differential/scripts`` is served by two kinds of pdns_server on loopback
ports: ``launch=lua2`` (the reference) and ``launch=pipe`` with lua2pipe, at each pipe ABI its
corpus (``differential/corpus/<script>.txt``) names. One case = (script, ABI, question); it passes
when both answers are equal in rcode, flags, question, every section (order-insensitive, TTLs and
case included) and EDNS (client-subnet scope included).

A case listed in ``known-differences.toml`` must differ, and only in the fields listed there
(pytest reports it as xfailed); once it stops differing it fails as stale, like
``xfail(strict=True)``. ``conftest.py`` prints the tally at the end of the run.

Each server is started once per script and ABI (per xdist worker) and asked the whole corpus
at once; the tests only compare answers already fetched.
"""

from __future__ import annotations

import re

import pytest

from .differential import harness

CORPORA = {corpus.script: corpus for corpus in harness.corpora()}
KNOWN = harness.load_known_differences()
NEEDS_PDNS = [pytest.mark.pdns("pipe", "lua2"), pytest.mark.lua2pipe]


def _cases() -> list:
    params = []
    for corpus in CORPORA.values():
        for abi in corpus.abis:
            for query in corpus.queries:
                case_id = f"{corpus.script}-abi{abi}-{query.key.replace(' ', '-')}"
                params.append(pytest.param(corpus.script, abi, query, id=case_id, marks=NEEDS_PDNS))
    return params


CASES = _cases()


@pytest.fixture(scope="session")
def runs() -> harness.Runs:
    return harness.Runs(CORPORA)


@pytest.mark.parametrize(("script", "abi", "query"), CASES)
def test_case(
    runs: harness.Runs, script: str, abi: int, query: harness.Query, record_property: pytest.RecordProperty
) -> None:
    native = runs.get(script, "native")[query.key]
    pipe = runs.get(script, f"abi{abi}")[query.key]
    # The oracle must answer: two timeouts would compare equal and prove nothing. A refused
    # transfer is an answer (its rcode is compared).
    native_error = native.as_dict().get("error", "")
    assert not native_error or "TransferError" in native_error, f"native pdns: {native_error}"
    entry = harness.match_known(KNOWN, script, abi, query)
    fields = harness.differing_fields(native, pipe)
    outcome = "identical" if not fields else "known" if entry else "different"
    if fields and entry and entry.fields is not None and not set(fields) <= set(entry.fields):
        outcome = "changed"
    if not fields and entry:
        outcome = "stale"
    record_property(
        "differential",
        {
            "script": script,
            "abi": abi,
            "query": query.key,
            "outcome": outcome,
            "entry": entry.id if entry else None,
            "status": entry.status if entry else None,
        },
    )
    where = f"{script}.lua at pipe ABI {abi}, question {query.key!r}"
    if outcome == "identical":
        return
    if outcome == "stale":
        pytest.fail(f"{where}: answers are identical now; remove it from known difference {entry.id!r}")
    if outcome == "different":
        pytest.fail(
            f"{where}: native lua2 and lua2pipe differ\n{harness.describe(native, pipe)}", pytrace=False
        )
    if outcome == "changed":
        pytest.fail(
            f"{where}: known difference {entry.id!r} allows only {entry.fields} to differ, "
            f"but {fields} do\n{harness.describe(native, pipe)}",
            pytrace=False,
        )
    pytest.xfail(f"{entry.id} ({entry.status})")


# -- the corpus and the known-differences file themselves


def test_every_known_difference_matches_a_case() -> None:
    unused = [
        entry.id
        for entry in KNOWN
        if not any(
            entry.matches(corpus.script, abi, query)
            for corpus in CORPORA.values()
            for abi in corpus.abis
            for query in corpus.queries
        )
    ]
    assert not unused, f"known differences that match no case: {unused}"


def test_no_case_matches_two_known_differences() -> None:
    for corpus in CORPORA.values():
        for abi in corpus.abis:
            for query in corpus.queries:
                harness.match_known(KNOWN, corpus.script, abi, query)  # raises on two


def test_every_script_has_a_corpus() -> None:
    scripts = {path.stem for path in harness.SCRIPTS.glob("*.lua")}
    assert scripts == set(CORPORA)


@pytest.mark.parametrize(
    ("script", "zone", "others", "least"),
    [
        ("diag", "diag.example", {"ctx", "args", "argtypes", "rawargs", "nosuch"}, 60),
        ("rows", "rows.example", {"nosuch", "elsewhere"}, 50),
    ],
)
def test_corpus_asks_every_case(script: str, zone: str, others: set[str], least: int) -> None:
    """diag.lua and rows.lua answer one name per case("..."): the corpus must ask each, and only those."""
    source = (harness.SCRIPTS / f"{script}.lua").read_text()
    defined = set(re.findall(r'^case\("([a-z0-9-]+)"', source, re.MULTILINE))
    asked = {
        q.qname.split(".")[0].lower()
        for q in CORPORA[script].queries
        if q.qname.lower().endswith("." + zone) and q.qname.count(".") == zone.count(".") + 1
    }
    assert len(defined) >= least
    assert defined - asked == set(), "cases the corpus does not ask"
    assert asked - defined - others == set(), "questions for cases the script lacks"


def test_corpus_size() -> None:
    run = sum(len(c.queries) * len(c.abis) for c in CORPORA.values())
    assert run >= 300
