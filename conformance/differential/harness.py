"""The differential harness: one query corpus, two pdns servers, answers compared field by field.

For each script in ``scripts/`` the corpus ``corpus/<script>.txt`` lists the questions. The same
questions go to a pdns_server running the script natively (``launch=lua2``) and to one running it
through lua2pipe (``launch=pipe``, at each pipe ABI the corpus names). Each answer is reduced to
a :class:`Answer` (rcode, flags, question, each section as sorted zone-file lines with TTLs, EDNS
with its options) and a case is identical when the two reductions are equal.

``known-differences.toml`` (beside this directory) lists the cases allowed to differ, and why.

Corpus format, one question a line (``#`` starts a comment)::

    abi: 5 3 1                        which pipe ABIs to run (default 5), once per file
    QNAME QTYPE [udp] [tcp] [from=A[,B...]] [ecs=SUBNET] [edns] [norec]
    axfr ZONE [from=A]

QNAME is written as dnspython reads it (``sp\\032ace.example.net``, ``dot\\.label.example.net``)
and is sent with its case. Each listed transport and source is its own case (udp and 127.0.0.1
when none is given). ``edns`` sends EDNS0 (1232-byte payload) without options; ``ecs=`` sends
EDNS0 with a client-subnet option; ``norec`` clears RD.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import itertools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
from pdns import PdnsServer

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
CORPUS = HERE / "corpus"
KNOWN_DIFFERENCES = HERE.parent / "known-differences.toml"

DEFAULT_SOURCE = "127.0.0.1"
TIMEOUT = 4.0

# --------------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Query:
    """One question: a DNS query, or an AXFR (rdtype "AXFR")."""

    qname: str
    rdtype: str
    transport: str = "udp"  # udp or tcp (AXFR: always tcp)
    source: str = DEFAULT_SOURCE
    ecs: str | None = None
    edns: bool = False
    rd: bool = True

    @property
    def key(self) -> str:
        """What known-difference patterns match: ``QNAME QTYPE TRANSPORT [from=..] [ecs=..] ...``."""
        axfr = self.rdtype == "AXFR"
        words = ["axfr", self.qname] if axfr else [self.qname, self.rdtype, self.transport]
        if self.source != DEFAULT_SOURCE:
            words.append(f"from={self.source}")
        if self.ecs:
            words.append(f"ecs={self.ecs}")
        if self.edns:
            words.append("edns")
        if not self.rd:
            words.append("norec")
        return " ".join(words)


@dataclass
class Corpus:
    script: str
    path: Path
    abis: tuple[int, ...]
    queries: list[Query]


FLAG_WORDS = {"udp", "tcp", "edns", "norec"}


def parse_corpus(path: Path) -> Corpus:
    abis: tuple[int, ...] = (5,)
    queries: list[Query] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"{path.name}:{number}"
        if line.startswith("abi:"):
            abis = tuple(int(word) for word in line[4:].split())
            if not abis or any(abi not in (1, 2, 3, 4, 5) for abi in abis):
                raise ValueError(f"{where}: abi: wants numbers 1-5")
            continue
        words = line.split()
        if words[0] == "axfr":
            qname, rdtype, options = words[1], "AXFR", words[2:]
        else:
            if len(words) < 2:
                raise ValueError(f"{where}: QNAME QTYPE expected")
            qname, rdtype, options = words[0], words[1], words[2:]
            dns.rdatatype.from_text(rdtype)  # raises on a typo
        dns.name.from_text(qname)
        transports, sources, ecs, edns, rd = [], [DEFAULT_SOURCE], None, False, True
        for option in options:
            if option in ("udp", "tcp"):
                transports.append(option)
            elif option.startswith("from="):
                sources = option[5:].split(",")
            elif option.startswith("ecs="):
                ecs = option[4:]
                dns.edns.ECSOption.from_text(ecs)
            elif option == "edns":
                edns = True
            elif option == "norec":
                rd = False
            else:
                raise ValueError(f"{where}: unknown option {option!r}")
        if rdtype == "AXFR":
            if transports or ecs or edns or not rd:
                raise ValueError(f"{where}: axfr takes only from=")
            transports = ["tcp"]
        for transport, source in itertools.product(transports or ["udp"], sources):
            queries.append(Query(qname, rdtype, transport, source, ecs, edns, rd))
    keys = [q.key for q in queries]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: duplicate queries {duplicates}")
    return Corpus(path.stem, path, abis, queries)


def corpora() -> list[Corpus]:
    return [parse_corpus(path) for path in sorted(CORPUS.glob("*.txt"))]


# --------------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True)
class Answer:
    """A response reduced to what must be equal: every field is text, each section sorted."""

    fields: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


def rr_lines(rrsets: Iterable) -> list[str]:
    lines = []
    for rrset in rrsets:
        lines.extend(rrset.to_text().splitlines())
    return lines


def reduce_response(response: dns.message.Message) -> Answer:
    flags = dns.flags.to_text(response.flags).split()
    fields = {
        "rcode": dns.rcode.to_text(response.rcode()),
        "opcode": dns.opcode.to_text(response.opcode()),
        "flags": " ".join(sorted(flags)),
        "question": "\n".join(rr_lines(response.question)),
        "answer": "\n".join(sorted(rr_lines(response.answer))),
        "authority": "\n".join(sorted(rr_lines(response.authority))),
        "additional": "\n".join(sorted(rr_lines(response.additional))),
    }
    if response.edns >= 0:
        options = sorted(option.to_text() for option in response.options)
        fields["edns"] = f"version={response.edns} payload={response.payload} " + " ".join(options)
        fields["edns"] = fields["edns"].strip()
    else:
        fields["edns"] = "none"
    return Answer(tuple(fields.items()))


def reduce_axfr(messages: Sequence[dns.message.Message]) -> Answer:
    rrs = rr_lines(rrset for message in messages for rrset in message.answer)
    return Answer(
        (
            ("rcode", " ".join(dns.rcode.to_text(m.rcode()) for m in messages[:1])),
            ("first", rrs[0] if rrs else ""),
            ("last", rrs[-1] if rrs else ""),
            ("records", "\n".join(sorted(rrs))),
        )
    )


def failure(kind: str, error: BaseException) -> Answer:
    text = f"{type(error).__name__}"
    if not isinstance(error, dns.exception.Timeout):
        text += f": {error}"
    return Answer((("error", f"{kind}: {text}"),))


def ask(server: PdnsServer, query: Query) -> Answer:
    if query.rdtype == "AXFR":
        return ask_axfr(server, query)
    options = [dns.edns.ECSOption.from_text(query.ecs)] if query.ecs else []
    use_edns = 0 if (query.ecs or query.edns) else None
    message = dns.message.make_query(
        query.qname, query.rdtype, use_edns=use_edns, payload=1232, options=options or None
    )
    message.flags = dns.flags.RD if query.rd else 0
    try:
        if query.transport == "tcp":
            response = dns.query.tcp(
                message, server.address, port=server.port, timeout=TIMEOUT, source=query.source
            )
        else:
            response = dns.query.udp(
                message,
                server.address,
                port=server.port,
                timeout=TIMEOUT,
                source=query.source,
                ignore_trailing=True,
            )
    except (dns.exception.DNSException, OSError) as error:
        return failure("query", error)
    return reduce_response(response)


def ask_axfr(server: PdnsServer, query: Query) -> Answer:
    messages: list[dns.message.Message] = []
    try:
        for message in dns.query.xfr(
            server.address,
            query.qname,
            port=server.port,
            timeout=TIMEOUT,
            lifetime=2 * TIMEOUT,
            relativize=False,
            source=query.source,
        ):
            messages.append(message)
    except (dns.exception.DNSException, OSError, EOFError) as error:
        return failure("axfr", error)
    return reduce_axfr(messages)


def ask_all(server: PdnsServer, queries: Sequence[Query]) -> dict[str, Answer]:
    """Every answer of the corpus from one server (a few clients at a time: pdns queues them)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda q: ask(server, q), queries))
    return {q.key: a for q, a in zip(queries, answers, strict=True)}


def differing_fields(native: Answer, pipe: Answer) -> list[str]:
    a, b = native.as_dict(), pipe.as_dict()
    return [key for key in dict.fromkeys([*a, *b]) if a.get(key) != b.get(key)]


def describe(native: Answer, pipe: Answer) -> str:
    a, b = native.as_dict(), pipe.as_dict()
    out = []
    for key in differing_fields(native, pipe):
        out.append(f"  {key}:")
        out.append("    native: " + (a.get(key, "(absent)").replace("\n", "\n            ") or "(empty)"))
        out.append("    pipe:   " + (b.get(key, "(absent)").replace("\n", "\n            ") or "(empty)"))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Known differences


@dataclass
class KnownDifference:
    id: str
    summary: str
    script: str
    queries: list[str]
    abis: tuple[int, ...] | None
    fields: list[str] | None
    status: str
    cause: str
    proof: str

    def matches(self, script: str, abi: int, query: Query) -> bool:
        if script != self.script or (self.abis is not None and abi not in self.abis):
            return False
        return any(fnmatch.fnmatchcase(query.key, pattern) for pattern in self.queries)


STATUSES = ("deliberate", "pipe limit", "pdns 4.7.3 bug", "environment", "bug, to fix")


def load_known_differences(path: Path = KNOWN_DIFFERENCES) -> list[KnownDifference]:
    data = tomllib.loads(path.read_text())
    entries = []
    for item in data.get("difference", []):
        unknown = set(item) - {
            "id",
            "summary",
            "script",
            "query",
            "abi",
            "fields",
            "status",
            "cause",
            "proof",
        }
        if unknown:
            raise ValueError(f"{path.name}: entry {item.get('id')}: unknown keys {sorted(unknown)}")
        if item["status"] not in STATUSES:
            raise ValueError(f"{path.name}: entry {item['id']}: status must be one of {STATUSES}")
        queries = item["query"] if isinstance(item["query"], list) else [item["query"]]
        abis = item.get("abi")
        entries.append(
            KnownDifference(
                id=item["id"],
                summary=item["summary"],
                script=item["script"],
                queries=queries,
                abis=tuple(abis) if isinstance(abis, list) else (abis,) if abis is not None else None,
                fields=item.get("fields"),
                status=item["status"],
                cause=item["cause"].strip(),
                proof=item["proof"].strip(),
            )
        )
    ids = [e.id for e in entries]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: duplicate ids")
    return entries


def match_known(
    entries: Sequence[KnownDifference], script: str, abi: int, query: Query
) -> KnownDifference | None:
    found = [e for e in entries if e.matches(script, abi, query)]
    if len(found) > 1:
        raise ValueError(
            f"{script} abi {abi} {query.key!r} matches several known differences: {[e.id for e in found]}"
        )
    return found[0] if found else None


# --------------------------------------------------------------------------------------------------
# Servers, once per script and ABI (per pytest worker)


class Runs:
    """Answers per (script, kind), fetched on first use; servers stop as soon as they are asked."""

    def __init__(self, corpora_by_script: Mapping[str, Corpus]) -> None:
        self.corpora = corpora_by_script
        self.answers: dict[tuple[str, str], dict[str, Answer]] = {}
        self.logs: dict[tuple[str, str], str] = {}

    def get(self, script: str, kind: str) -> dict[str, Answer]:
        key = (script, kind)
        if key not in self.answers:
            corpus = self.corpora[script]
            script_path = SCRIPTS / f"{script}.lua"
            server = (
                PdnsServer.native(script_path)
                if kind == "native"
                else PdnsServer.pipe(script_path, abi=int(kind.removeprefix("abi")))
            )
            with server:
                self.answers[key] = ask_all(server, corpus.queries)
            self.logs[key] = server.log_text()
        return self.answers[key]

    def log_tail(self, script: str, kind: str, lines: int = 30) -> str:
        text = self.logs.get((script, kind), "")
        return "\n".join(text.splitlines()[-lines:])
