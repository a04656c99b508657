"""Ground truth of the public capture corpus, as plain records.

Reads, without third-party parsers:

- ``TRUTH.md``'s session table (one :class:`TruthSession` per SMTP conversation);
- Zeek btest baselines (``*__smtp.log``, ``*__ssl.log``): TSV with ``#fields``;
- suricata-verify ``test.yaml`` files: only the few keys we check (``pcap:`` and the ``match:``
  maps of ``checks: - filter:``), by hand, so PyYAML is not needed;
- nDPI ``.out`` flow lines and Arkime ``.test`` JSON (protocol list per source port);
- ``MANIFEST.tsv`` (corpus file <-> original repository path).

Nothing here knows pcapsmtp; ``tests/test_corpus_truth.py`` does the comparing.
"""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz")

TRUTH_COLUMNS = (
    "file", "tcp.stream", "client -> server", "link", "HELO/EHLO sent", "EHLO reply line 0",
    "offers STARTTLS", "client STARTTLS", "reply", "TLS after", "tshark tls", "TCP trouble",
    "peer baseline",
)


def is_capture(path: Path) -> bool:
    return path.is_file() and path.name.endswith(CAPTURE_SUFFIXES)


def capture_files(corpus: Path) -> list[Path]:
    """Every capture file of the corpus, sorted by path relative to the corpus."""
    return sorted((p for p in corpus.rglob("*") if is_capture(p)),
                  key=lambda p: p.relative_to(corpus).as_posix())


# ---------------------------------------------------------------------------------------- TRUTH.md

@dataclass(frozen=True)
class TruthSession:
    file: str                        #: path relative to the corpus folder
    stream: int                      #: tshark ``tcp.stream``
    vlan: int | None
    client: tuple[str, int]
    server: tuple[str, int]
    link: str
    greeting_verb: str | None        #: "EHLO", "HELO" or None (no HELO/EHLO sent)
    greeting_arg: str                #: as TRUTH prints it (may be cut at 40 characters)
    ehlo_line0: str
    offers: str                      #: "yes", "no" or "n/a"
    offers_raw: str
    offers_line: int | None
    client_starttls: bool
    reply_code: int | None
    reply_raw: str
    tls_after: str                   #: "starttls", "implicit" or "no"
    tshark_tls: bool
    tcp_trouble: str
    peer_baseline: str

    @property
    def key(self) -> str:
        return f"{self.file}#{self.stream}"

    def zeek_names(self, log: str) -> list[str]:
        """btest names of the Zeek ``log`` baselines TRUTH joined to this session
        (``Zeek smtp.log[basic]: ...`` -> ``basic``)."""
        return re.findall(r"Zeek " + re.escape(log) + r"\[([^\]]+)\]", self.peer_baseline)


_ENDPOINT = re.compile(r"^\[?(?P<ip>[^\]]+?)\]?:(?P<port>\d+)$")


def parse_endpoint(text: str) -> tuple[str, int]:
    m = _ENDPOINT.match(text.strip())
    if not m:
        raise ValueError(f"bad endpoint {text!r}")
    return m.group("ip"), int(m.group("port"))


def _split_row(line: str) -> list[str]:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) > len(TRUTH_COLUMNS):  # a stray pipe can only sit in the free-text last column
        cells = cells[:len(TRUTH_COLUMNS) - 1] + ["|".join(cells[len(TRUTH_COLUMNS) - 1:])]
    return cells


def parse_truth(path: Path) -> list[TruthSession]:
    """The session table of TRUTH.md. Raises ValueError on a row it cannot read, so a change
    of format shows up as an error, not as silently fewer checks."""
    rows: list[TruthSession] = []
    in_table = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| file | tcp.stream |"):
            header = _split_row(line)
            if tuple(header) != TRUTH_COLUMNS:
                raise ValueError(f"TRUTH.md session table has unexpected columns: {header}")
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            if rows:
                break
            continue
        if line.startswith("|---"):
            continue
        c = _split_row(line)
        if len(c) != len(TRUTH_COLUMNS):
            raise ValueError(f"TRUTH.md row with {len(c)} cells: {line[:120]}")
        rows.append(_session(c))
    if not rows:
        raise ValueError("TRUTH.md: no session table found")
    return rows


def _session(c: list[str]) -> TruthSession:
    (file, stream, ends, link, greet, line0, offers, cstls, reply, after, tstls, trouble,
     peer) = c
    m = re.match(r"^(\d+)(?: \(VLAN (\d+)\))?$", stream)
    if not m:
        raise ValueError(f"bad tcp.stream {stream!r}")
    cli, srv = (parse_endpoint(x) for x in ends.split("->"))
    verb: str | None = None
    arg = ""
    if greet:
        verb, _, arg = greet.partition(" ")
        verb = verb.upper()
        if verb not in ("EHLO", "HELO", "LHLO"):
            raise ValueError(f"bad HELO/EHLO cell {greet!r}")
    om = re.match(r"^(yes|no|n/a)\b(?: \(line (\d+)\))?", offers)
    if not om:
        raise ValueError(f"bad offers STARTTLS cell {offers!r}")
    if cstls not in ("yes", "no"):
        raise ValueError(f"bad client STARTTLS cell {cstls!r}")
    rm = re.match(r"^(\d{3})\b", reply)
    if reply != "-" and not rm:
        raise ValueError(f"bad reply cell {reply!r}")
    if after.startswith("ClientHello after STARTTLS"):
        tls_after = "starttls"
    elif after.startswith("implicit TLS"):
        tls_after = "implicit"
    elif after == "no":
        tls_after = "no"
    else:
        raise ValueError(f"bad TLS after cell {after!r}")
    return TruthSession(
        file=file, stream=int(m.group(1)), vlan=int(m.group(2)) if m.group(2) else None,
        client=cli, server=srv, link=link, greeting_verb=verb, greeting_arg=arg,
        ehlo_line0=line0, offers=om.group(1), offers_raw=offers,
        offers_line=int(om.group(2)) if om.group(2) else None,
        client_starttls=cstls == "yes", reply_code=int(rm.group(1)) if rm else None,
        reply_raw=reply, tls_after=tls_after, tshark_tls=tstls.startswith("yes"),
        tcp_trouble=trouble, peer_baseline=peer)


# ----------------------------------------------------------------------------------- Zeek baselines

def parse_zeek_log(path: Path) -> list[dict[str, str]]:
    """Rows of a Zeek ASCII log (``#separator``, ``#fields``), values as text."""
    sep = "\t"
    fields: list[str] | None = None
    rows: list[dict[str, str]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#separator"):
            sep = line.split(" ", 1)[1].encode().decode("unicode_escape")
        elif line.startswith("#fields"):
            fields = line.split(sep)[1:]
        elif line.startswith("#") or not line.strip():
            continue
        elif fields is not None:
            rows.append(dict(zip(fields, line.split(sep))))
    return rows


def zeek_baseline(corpus: Path, name: str, log: str) -> Path | None:
    """The btest baseline ``log`` (``smtp.log``, ``ssl.log``) of the SMTP test ``name``,
    e.g. ``basic`` -> ``...Baseline__scripts.base.protocols.smtp.basic__smtp.log``. The test
    prefix is taken from that test's smtp.log (``http-connect`` lives under ``http.``)."""
    folder = corpus / "zeek__zeek"
    smtp = sorted(folder.glob(f"*Baseline__scripts.*.{name}__smtp.log"))
    if not smtp:
        return None
    prefix = smtp[0].name[: -len("__smtp.log")]
    p = folder / f"{prefix}__{log}"
    return p if p.is_file() else None


@dataclass(frozen=True)
class ZeekConn:
    """One connection of a Zeek baseline (rows merged over ``trans_depth``)."""
    baseline: str          #: file name of the log
    trace: str             #: capture the baseline belongs to (relative to the corpus)
    orig: tuple[str, int]
    resp: tuple[str, int]
    values: dict[str, list[str]] = field(default_factory=dict)


def zeek_conns(corpus: Path, sessions: list[TruthSession], log: str) -> list[ZeekConn]:
    """Connections in the Zeek ``log`` baselines, attributed to their trace via TRUTH.md's
    peer-baseline column (``Zeek smtp.log[NAME]``) on the sessions of that trace."""
    by_file: dict[str, set[str]] = {}
    for s in sessions:
        for n in s.zeek_names("smtp.log"):
            by_file.setdefault(s.file, set()).add(n)
    out: list[ZeekConn] = []
    seen: set[tuple[str, str]] = set()
    for trace, names in sorted(by_file.items()):
        for name in sorted(names):
            p = zeek_baseline(corpus, name, log)
            if p is None or (p.name, trace) in seen:
                continue
            seen.add((p.name, trace))
            merged: dict[tuple[str, int, str, int], dict[str, list[str]]] = {}
            for row in parse_zeek_log(p):
                k = (row["id.orig_h"], int(row["id.orig_p"]), row["id.resp_h"], int(row["id.resp_p"]))
                d = merged.setdefault(k, {})
                for f, v in row.items():
                    d.setdefault(f, []).append(v)
            for (oh, op, rh, rp), vals in merged.items():
                out.append(ZeekConn(p.name, trace, (oh, op), (rh, rp), vals))
    return out


# --------------------------------------------------------------------------- suricata-verify test.yaml

def parse_manifest(corpus: Path) -> dict[str, str]:
    """Original repository path (``tests/bug-1045/x.pcap``) -> corpus file (relative)."""
    out: dict[str, str] = {}
    lines = (corpus / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    i_file, i_src = head.index("file"), head.index("source_path")
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) > max(i_file, i_src):
            out[cols[i_src]] = cols[i_file]
    return out


def _scalar(text: str) -> str:
    text = text.strip()
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
        text = text.replace("\\r", "\r").replace("\\n", "\n")
    return text


@dataclass(frozen=True)
class SvCheck:
    """One ``- filter:`` of a suricata-verify test: its count and its ``match`` map."""
    count: int | None
    match: dict[str, str]
    requires: dict[str, str]


@dataclass(frozen=True)
class SvTest:
    name: str              #: test directory, e.g. ``smtp-errors`` (or ``mime/...``)
    yaml: str              #: corpus file of the test.yaml
    pcap: str | None       #: corpus file of the capture it runs on
    checks: tuple[SvCheck, ...]


def parse_sv_yaml(text: str) -> tuple[str | None, list[SvCheck]]:
    """The ``pcap:`` key and the ``checks: - filter:`` blocks (``count``, ``match``,
    ``requires``) of a suricata-verify test.yaml. Hand-rolled for the subset these files use
    (block mappings and ``- filter:`` list items); anything else is ignored."""
    pcap: str | None = None
    checks: list[SvCheck] = []
    cur: dict[str, Any] | None = None
    sub: str | None = None          # "match" / "requires" inside the current filter
    sub_indent = -1
    filt_indent = -1
    in_checks = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0:
            if cur is not None:
                checks.append(SvCheck(cur.get("count"), cur["match"], cur["requires"]))
                cur = None
            in_checks = body.startswith("checks:")
            if body.startswith("pcap:"):
                pcap = _scalar(body[5:])
            continue
        if not in_checks:
            continue
        if body.startswith("- "):
            if cur is not None:
                checks.append(SvCheck(cur.get("count"), cur["match"], cur["requires"]))
                cur = None
            body2 = body[2:].strip()
            if body2.startswith("filter:"):
                cur = {"match": {}, "requires": {}}
                filt_indent = indent
                sub = None
            continue
        if cur is None:
            continue
        key, _, val = body.partition(":")
        key = key.strip()
        if sub is not None and indent > sub_indent:
            cur[sub][key] = _scalar(val)
            continue
        sub = None
        if indent <= filt_indent:
            continue
        if key in ("match", "requires") and not val.strip():
            sub, sub_indent = key, indent
        elif key == "count":
            try:
                cur["count"] = int(_scalar(val))
            except ValueError:
                cur["count"] = None
    if cur is not None:
        checks.append(SvCheck(cur.get("count"), cur["match"], cur["requires"]))
    return pcap, checks


def sv_tests(corpus: Path) -> list[SvTest]:
    """Every suricata-verify test.yaml in the corpus with the capture it runs on (its ``pcap:``
    key resolved against its own directory, else the single capture of its directory)."""
    manifest = parse_manifest(corpus)
    rev = {v: k for k, v in manifest.items()}
    out: list[SvTest] = []
    for y in sorted((corpus / "OISF__suricata-verify").glob("*test.yaml")):
        rel = y.relative_to(corpus).as_posix()
        src = rev.get(rel)
        if src is None:
            continue
        tdir = posixpath.dirname(src)
        pcap_key, checks = parse_sv_yaml(y.read_text(encoding="utf-8", errors="replace"))
        pcap: str | None = None
        if pcap_key:
            pcap = manifest.get(posixpath.normpath(posixpath.join(tdir, pcap_key)))
        else:
            own = [f for s, f in manifest.items()
                   if posixpath.dirname(s) == tdir and f.endswith(CAPTURE_SUFFIXES)]
            if len(own) == 1:
                pcap = own[0]
        out.append(SvTest(tdir.removeprefix("tests/"), rel, pcap, tuple(checks)))
    return out


# ---------------------------------------------------------------------------------- nDPI and Arkime

_NDPI_FLOW = re.compile(
    r"^\s*\d+\s+TCP\s+(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+(?:\[VLAN: \d+\])?\s*\[proto: (?P<proto>[^\]]+)\]"
    r"(?P<rest>.*)$")


def ndpi_flows(out_file: Path) -> Iterator[tuple[tuple[str, int], tuple[str, int], str, bool]]:
    """(client, server, proto, encrypted) per TCP flow line of an nDPI ``.out`` file."""
    for line in out_file.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _NDPI_FLOW.match(line)
        if m:
            yield (parse_endpoint(m.group("a")), parse_endpoint(m.group("b")), m.group("proto"),
                   "[Encrypted]" in m.group("rest"))


def arkime_sessions(test_file: Path) -> Iterator[tuple[tuple[str, int], tuple[str, int], list[str]]]:
    """(source, destination, protocol list) per session of an Arkime ``.test`` file."""
    data = json.loads(test_file.read_text(encoding="utf-8", errors="replace"))
    for s in data.get("sessions3", []):
        b = s.get("body", {})
        src, dst = b.get("source", {}), b.get("destination", {})
        if "ip" in src and "port" in src and "ip" in dst and "port" in dst:
            yield ((src["ip"], int(src["port"])), (dst["ip"], int(dst["port"])),
                   list(b.get("protocol", [])))
