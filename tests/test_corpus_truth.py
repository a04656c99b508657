"""pcapsmtp against the public corpus and its ground truth (tests/corpus: TRUTH.md, MANIFEST.tsv).

"Done" for the corpus means: every capture gives valid JSON Lines (one object per SMTP
conversation) and never a traceback, and pcapsmtp agrees with TRUTH.md (per conversation:
greeting, STARTTLS offered / requested / answered, TLS followed) and with the peers' own expected
outputs kept beside the captures (Zeek smtp.log ``tls`` and ssl.log ``established``,
suricata-verify test.yaml checks, Arkime ``.test`` protocols, nDPI ``.out`` classifications).

The CLI runs as a subprocess over the whole corpus at once and on a handful of single files; the
per-conversation comparisons use ``analyze_file`` in-process (the whole corpus takes about a
second), and one test proves both paths give the same conversations.

Mismatches are findings about pcapsmtp: the expectations are never edited to fit. Cases where the
truth itself is ambiguous sit on the explicit exception lists below, each with its reason.
"""
from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus_truth as ct  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO / "tests" / "corpus").resolve()

from pcapsmtp.engine.analyzer import FileResult, analyze_file  # noqa: E402

CAPTURES: list[Path] = ct.capture_files(CORPUS)
REL: list[str] = [p.relative_to(CORPUS).as_posix() for p in CAPTURES]
SESSIONS: list[ct.TruthSession] = ct.parse_truth(CORPUS / "TRUTH.md")

#: The one capture that is damaged on purpose (bad record length after packet 18, TRUTH.md).
CORRUPT = "OISF__suricata-verify/tests__smtp-to-comma__10.7.29.101_49898-178.63.41.150_25.pcap"

#: TRUTH.md sessions pcapsmtp need not report, with the reason. (Empty: every listed session is
#: a plain TCP conversation the core must find.)
MISSING_OK: dict[str, str] = {}

#: Conversations pcapsmtp reports that TRUTH.md does not list: "file#stream" -> reason.
EXTRA_OK: dict[str, str] = {
    "OISF__suricata-verify/tests__smtp-quit__input.pcap#0":
        "the server closes right after the handshake without a greeting and the client QUITs "
        "(suricata-verify classifies the flow as app_proto smtp); TRUTH.md leaves conversations "
        "without greeting/HELO out of its session count",
    "arkime__arkime/tests__pcap__socks5-smtp-503.pcap#0":
        "SMTP inside a SOCKS5 tunnel (port 1080), which pcapsmtp follows through the proxy "
        "handshake; TRUTH.md's own enumerator did not split it out (Arkime's .test lists it)",
}

#: Per-session fields of TRUTH.md that are ambiguous for one session: "file#stream" -> {field: why}.
#: A field listed here is not compared for that session; everything else still is.
TRUTH_AMBIGUOUS: dict[str, dict[str, str]] = {
    # None needed today: the fuzzer-made captures (smtp-rset-starttls, protocol-change-failed-event)
    # agree with TRUTH.md field by field. Keys: "greeting", "ehlo_reply", "offers", "requested",
    # "reply", "tls_after".
}


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _ep(d: dict[str, Any] | None) -> tuple[str, int] | None:
    if not d:
        return None
    return _ip(str(d.get("ip"))), int(d.get("port", -1))


def _idname(rel: str) -> str:
    return rel.split("/", 1)[1]


@pytest.fixture(scope="module")
def results() -> dict[str, FileResult]:
    """analyze_file over every capture, once per test module (about a second)."""
    return {rel: analyze_file(str(p)) for rel, p in zip(REL, CAPTURES)}


def _convs(results: dict[str, FileResult], rel: str) -> list[dict[str, Any]]:
    return results[rel].conversations


# ------------------------------------------------------------------------------------ corpus shape

def test_corpus_and_truth_agree_on_their_own_shape() -> None:
    """The parser read the whole table: TRUTH.md's own counts (131 captures, 123 with SMTP,
    135 sessions) and every file it names exists."""
    assert len(CAPTURES) == 131
    assert len(SESSIONS) == 135
    files = {s.file for s in SESSIONS}
    assert len(files) == 123
    assert files <= set(REL), sorted(files - set(REL))
    assert len({s.key for s in SESSIONS}) == len(SESSIONS), "duplicate file#stream in TRUTH.md"
    assert len({_idname(r) for r in REL}) == len(REL), "test ids must be unique"
    for key in list(MISSING_OK) + list(EXTRA_OK) + list(TRUTH_AMBIGUOUS):
        assert key.split("#")[0] in REL, f"exception list names an unknown capture: {key}"


# --------------------------------------------------------------------------------- CLI, JSON Lines

REQUIRED_KEYS = {"file", "stream", "client", "server", "first_frame", "banner", "greeting",
                 "ehlo_reply", "starttls", "tls", "outcome", "caused_by", "reason", "findings",
                 "community_id", "wireshark_filter"}


def _run_cli(files: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", *files],
        capture_output=True, text=True, timeout=120, cwd=str(REPO))


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    objs = []
    for i, line in enumerate(stdout.splitlines(), 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout line {i} is not JSON ({exc}): {line[:200]!r}") from None
        assert isinstance(obj, dict), f"stdout line {i} is not a JSON object: {line[:200]!r}"
        missing = REQUIRED_KEYS - obj.keys()
        assert not missing, f"stdout line {i} lacks contract keys {sorted(missing)}"
        objs.append(obj)
    return objs


def _essence(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["stream"], _ep(c["client"]), _ep(c["server"]), json.dumps(c["greeting"]),
            json.dumps(c["starttls"], sort_keys=True), json.dumps(c["tls"], sort_keys=True),
            c["outcome"], c["caused_by"], c["reason"])


@pytest.fixture(scope="module")
def cli_all() -> subprocess.CompletedProcess[str]:
    """The CLI once over every capture except the corrupt one."""
    return _run_cli([str(p) for rel, p in zip(REL, CAPTURES) if rel != CORRUPT])


def test_cli_whole_corpus_gives_json_lines_and_no_traceback(
        cli_all: subprocess.CompletedProcess[str], results: dict[str, FileResult]) -> None:
    assert "Traceback" not in cli_all.stderr, cli_all.stderr[-3000:]
    assert cli_all.returncode in (0, 1), (cli_all.returncode, cli_all.stderr[-2000:])
    errors = [ln for ln in cli_all.stderr.splitlines() if ln.startswith("pcapsmtp: error")]
    assert not errors, errors
    objs = _json_lines(cli_all.stdout)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        rel = Path(o["file"]).resolve().relative_to(CORPUS).as_posix()
        by_file.setdefault(rel, []).append(o)
    assert set(by_file) <= set(REL)
    # The CLI and the in-process pipeline say the same thing about every conversation.
    for rel in REL:
        if rel == CORRUPT:
            continue
        got = [_essence(c) for c in by_file.get(rel, [])]
        want = [_essence(c) for c in _convs(results, rel)]
        assert got == want, f"{rel}: CLI and analyze_file differ"
        # One object per conversation, in order of first frame.
        frames = [c["first_frame"] for c in by_file.get(rel, [])]
        assert frames == sorted(frames), f"{rel}: JSON lines not in order of first frame"


def test_cli_corrupt_capture_exits_2_with_one_line_error_and_keeps_its_conversation() -> None:
    proc = _run_cli([str(CORPUS / CORRUPT)])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("pcapsmtp: error")]
    assert len(err) == 1 and "smtp-to-comma" in err[0] and "offset" in err[0], proc.stderr
    objs = _json_lines(proc.stdout)
    # TRUTH.md lists session 0 (decided before the damage at packet 19).
    assert [(o["stream"], _ep(o["client"])) for o in objs] == [(0, ("10.7.29.101", 49898))]


CLI_SAMPLES = [
    "OISF__suricata-verify/tests__smtp-startssl__input.pcap",
    "OISF__suricata-verify/tests__smtp-errors__smtperr.pcap",
    "arkime__arkime/tests__pcap__smtp-decrypted.pcap",
    "ntop__nDPI/tests__cfgs__default__pcap__smtp-starttls.pcap",
    "ntop__nDPI/tests__cfgs__default__pcap__smtps.pcapng",
    "zeek__zeek/testing__btest__Traces__tls__smtp-starttls.pcap",
    "zeek__zeek/testing__btest__Traces__smtp__smtp-many-addresses.pcap.gz",
    "zeek__zeek/testing__btest__Traces__tls__imap-starttls.pcap",
]


@pytest.mark.parametrize("rel", CLI_SAMPLES, ids=_idname)
def test_cli_single_capture(rel: str, results: dict[str, FileResult]) -> None:
    """Per file: exit 0 or 1, valid JSON Lines, one object per conversation TRUTH.md lists."""
    proc = _run_cli([str(CORPUS / rel)])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
    objs = _json_lines(proc.stdout)
    assert [_essence(o) for o in objs] == [_essence(c) for c in _convs(results, rel)]
    truth = sorted(s.stream for s in SESSIONS if s.file == rel)
    assert sorted(o["stream"] for o in objs) == truth
    # Exit status 1 exactly when a conversation lost TLS or broke an RFC (contract).
    from pcapsmtp.commands.main import lost_tls, violations
    assert proc.returncode == (1 if any(lost_tls(o) or violations(o) for o in objs) else 0)


# ------------------------------------------------------------------------------ per-capture truth

@pytest.mark.parametrize("rel", REL, ids=_idname)
def test_capture_reads_cleanly(rel: str, results: dict[str, FileResult]) -> None:
    """No read error except on the known-corrupt file (which must report one)."""
    err = results[rel].error
    if rel == CORRUPT:
        assert err is not None, "the damaged capture must report its error"
    else:
        assert err is None, f"{rel}: {err}"


def _offered_ok(truth: ct.TruthSession, offered: str) -> bool:
    if truth.offers == "yes":
        return offered == "valid"
    if truth.offers == "no":
        # TRUTH's "no": no line of the first EHLO reply starts with STARTTLS.
        return offered in ("absent", "masked", "misplaced")
    return offered in ("unknown", "absent")


def _session_problems(truth: ct.TruthSession, c: dict[str, Any]) -> list[str]:
    skip = TRUTH_AMBIGUOUS.get(truth.key, {})
    p: list[str] = []
    st, tls = c["starttls"], c["tls"]
    want_cli = (_ip(truth.client[0]), truth.client[1])
    want_srv = (_ip(truth.server[0]), truth.server[1])
    if (_ep(c["client"]), _ep(c["server"])) != (want_cli, want_srv):
        p.append(f"endpoints {_ep(c['client'])} -> {_ep(c['server'])}, truth {want_cli} -> {want_srv}")
    g = c.get("greeting") or {}
    if "greeting" not in skip:
        if truth.greeting_verb is None:
            if g.get("command"):
                p.append(f"greeting {g.get('command')} {g.get('argument')!r}, truth: no HELO/EHLO")
        else:
            if (g.get("command") or "").upper() != truth.greeting_verb:
                p.append(f"greeting command {g.get('command')!r}, truth {truth.greeting_verb}")
            elif not str(g.get("argument") or "").startswith(truth.greeting_arg):
                p.append(f"greeting argument {g.get('argument')!r}, truth {truth.greeting_arg!r}")
    ehlo = c.get("ehlo_reply") or {}
    lines = [str(x) for x in ehlo.get("lines") or []]
    if "ehlo_reply" not in skip and truth.greeting_verb == "EHLO":
        if truth.ehlo_line0 and not (lines and lines[0].strip().startswith(truth.ehlo_line0)):
            p.append(f"ehlo_reply.lines[0]={(lines[0] if lines else None)!r:.80}, truth EHLO reply line 0 "
                     f"{truth.ehlo_line0!r}")
        if truth.offers_line is not None:
            at = lines[truth.offers_line] if truth.offers_line < len(lines) else ""
            if at.split(" ", 1)[0].upper() != "STARTTLS":
                p.append(f"ehlo_reply.lines[{truth.offers_line}]={at!r}, truth: STARTTLS there")
        m = re.search(r"EHLO reply (\d{3})\)", truth.offers_raw)
        if m and ehlo.get("code") != int(m.group(1)):
            p.append(f"ehlo_reply.code={ehlo.get('code')!r}, truth {truth.offers_raw!r}")
        if "EHLO reply missing" in truth.offers_raw and (ehlo.get("code") is not None or lines
                                                           and any(lines)):
            p.append(f"ehlo_reply={ehlo!r:.120}, truth: no EHLO reply captured")
    if "offers" not in skip and not _offered_ok(truth, st["offered"]):
        p.append(f"starttls.offered={st['offered']!r}, truth offers STARTTLS {truth.offers_raw!r}")
    if "requested" not in skip and st["requested"] is not truth.client_starttls:
        p.append(f"starttls.requested={st['requested']!r}, truth client STARTTLS "
                 f"{'yes' if truth.client_starttls else 'no'}")
    if "reply" not in skip and st["reply_code"] != truth.reply_code:
        p.append(f"starttls.reply_code={st['reply_code']!r}, truth reply {truth.reply_raw!r}")
    if "tls_after" not in skip:
        saw_tls = tls["client_hello_frame"] is not None
        if truth.tls_after == "starttls" and not saw_tls:
            p.append(f"tls.client_hello_frame=None (reason {c['reason']}), truth: ClientHello after "
                     "STARTTLS")
        elif truth.tls_after == "implicit" and not (saw_tls or c["reason"] == "implicit-tls"):
            p.append(f"no ClientHello and reason {c['reason']!r}, truth: implicit TLS")
        elif truth.tls_after == "no" and (saw_tls or c["reason"] in ("tls-established", "implicit-tls")):
            p.append(f"tls.client_hello_frame={tls['client_hello_frame']} reason {c['reason']!r}, "
                     "truth: no TLS after")
    return p


@pytest.mark.parametrize("rel", REL, ids=_idname)
def test_conversations_match_truth(rel: str, results: dict[str, FileResult]) -> None:
    """Every TRUTH.md session of this capture is reported with the same endpoints, greeting,
    STARTTLS offered/requested/reply and TLS-after; nothing else is reported unless EXTRA_OK
    says why."""
    convs = _convs(results, rel)
    by_stream: dict[int, list[dict[str, Any]]] = {}
    for c in convs:
        by_stream.setdefault(c["stream"], []).append(c)
    problems: list[str] = []
    truths = [s for s in SESSIONS if s.file == rel]
    for t in truths:
        found = by_stream.get(t.stream, [])
        if len(found) != 1:
            if t.key in MISSING_OK:
                continue
            same = [c["stream"] for c in convs
                    if (_ep(c["client"]), _ep(c["server"])) == ((_ip(t.client[0]), t.client[1]),
                                                                (_ip(t.server[0]), t.server[1]))]
            problems.append(f"stream {t.stream} ({t.client} -> {t.server}): {len(found)} "
                            f"conversations with that stream; same endpoints under streams {same}")
            continue
        problems += [f"stream {t.stream}: {m}" for m in _session_problems(t, found[0])]
    listed = {t.stream for t in truths}
    for c in convs:
        key = f"{rel}#{c['stream']}"
        if c["stream"] not in listed and key not in EXTRA_OK:
            problems.append(f"stream {c['stream']} ({_ep(c['client'])} -> {_ep(c['server'])}, "
                            f"reason {c['reason']}, greeting {c.get('greeting')}): reported but "
                            "not in TRUTH.md")
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)


def test_exception_lists_are_still_needed(results: dict[str, FileResult]) -> None:
    """An entry of EXTRA_OK / MISSING_OK that no longer applies must be removed."""
    stale = []
    for key in EXTRA_OK:
        rel, stream = key.rsplit("#", 1)
        if not any(c["stream"] == int(stream) for c in _convs(results, rel)):
            stale.append(f"EXTRA_OK {key}: pcapsmtp no longer reports it")
    for key in MISSING_OK:
        rel, stream = key.rsplit("#", 1)
        if any(c["stream"] == int(stream) for c in _convs(results, rel)):
            stale.append(f"MISSING_OK {key}: pcapsmtp reports it now")
    assert not stale, stale


# ------------------------------------------------------------------------------------- Zeek logs

ZEEK_SMTP = ct.zeek_conns(CORPUS, SESSIONS, "smtp.log")
ZEEK_SSL = ct.zeek_conns(CORPUS, SESSIONS, "ssl.log")


def _zid(z: ct.ZeekConn) -> str:
    m = re.search(r"\.([^.]+)__\w+\.log$", z.baseline)
    return f"{m.group(1) if m else z.baseline}-{z.orig[1]}"


def _conv_for(results: dict[str, FileResult], rel: str, orig: tuple[str, int]) -> list[dict[str, Any]]:
    return [c for c in _convs(results, rel) if _ep(c["client"]) == (_ip(orig[0]), orig[1])]


def test_zeek_baselines_found() -> None:
    """Every Zeek smtp.log in the corpus is joined to a trace (or is a variant of one that is:
    the -disable-analyzer run of mail-transactions-invalid has the same connection)."""
    assert len(ZEEK_SMTP) >= 20 and any(z.values["tls"] == ["T"] for z in ZEEK_SMTP)
    used = {z.baseline for z in ZEEK_SMTP}
    unused = {p.name for p in (CORPUS / "zeek__zeek").glob("*__smtp.log")} - used
    assert unused <= {"testing__btest__Baseline__scripts.base.protocols.smtp."
                      "mail-transactions-invalid-disable-analyzer__smtp.log"}, unused


@pytest.mark.parametrize("z", ZEEK_SMTP, ids=_zid)
def test_zeek_smtp_log_tls(z: ct.ZeekConn, results: dict[str, FileResult]) -> None:
    """Zeek smtp.log ``tls=T`` <-> pcapsmtp saw STARTTLS answered 220."""
    found = _conv_for(results, z.trace, z.orig)
    assert len(found) == 1, f"{z.trace}: {len(found)} conversations from {z.orig}"
    c = found[0]
    assert _ep(c["server"]) == (_ip(z.resp[0]), z.resp[1])
    zeek_tls = "T" in z.values["tls"]
    assert (c["starttls"]["reply_code"] == 220) is zeek_tls, (z.values["tls"], c["starttls"])
    if z.values.get("helo") and z.values["helo"][0] not in ("-", "(empty)"):
        assert (c.get("greeting") or {}).get("argument") == z.values["helo"][0]


@pytest.mark.parametrize("z", ZEEK_SSL, ids=_zid)
def test_zeek_ssl_log_established(z: ct.ZeekConn, results: dict[str, FileResult]) -> None:
    """Zeek ssl.log ``established`` <-> pcapsmtp's ``tls.established``."""
    found = _conv_for(results, z.trace, z.orig)
    assert len(found) == 1
    assert found[0]["tls"]["established"] is ("T" in z.values["established"])
    assert found[0]["tls"]["client_hello_frame"] is not None


# ----------------------------------------------------------------------------- suricata-verify

SV = [t for t in ct.sv_tests(CORPUS) if t.pcap is not None]


def _sv_checkable(ch: ct.SvCheck) -> bool:
    if not ch.count:
        return False                    # count 0 / missing: says nothing positive
    m = ch.match
    return ("app_proto" in m and m.get("event_type") == "flow") or "smtp.helo" in m or (
        "src_port" in m) or m.get("not-has-key") == "email"


SV_CHECKED = [t for t in SV if any(_sv_checkable(ch) for ch in t.checks)]


def test_suricata_verify_tests_resolved() -> None:
    """Every SV test.yaml runs on a capture of the corpus; the TLS-relevant ones are checked."""
    assert len(SV) == len(list((CORPUS / "OISF__suricata-verify").glob("*test.yaml")))
    names = {t.name for t in SV_CHECKED}
    assert {"smtp-tls-protodetect", "smtp-startssl", "smtp-errors"} <= names


@pytest.mark.parametrize("t", SV_CHECKED, ids=lambda t: t.name.replace("/", "_"))
def test_suricata_verify_checks(t: ct.SvTest, results: dict[str, FileResult]) -> None:
    """What an SV check says that pcapsmtp can see:

    - ``event_type: flow, app_proto: tls``: the client spoke TLS (a ClientHello is reported)
      without STARTTLS; ``app_proto: smtp``: pcapsmtp reports the flow as SMTP;
    - ``smtp.helo: X``: a conversation greeted with argument X;
    - ``src_port: N``: the event's flow is a conversation from client port N;
    - ``not-has-key: email`` (smtp-startssl): the message went under TLS, so no mail
      transaction ran in plaintext.
    """
    assert t.pcap is not None
    convs = _convs(results, t.pcap)
    problems = []
    for ch in t.checks:
        if not _sv_checkable(ch):
            continue
        m = ch.match
        cand = convs
        if "src_port" in m:
            cand = [c for c in convs if c["client"]["port"] == int(m["src_port"])]
            if not cand:
                problems.append(f"{m}: no conversation from client port {m['src_port']}")
                continue
        if "smtp.helo" in m:
            want = m["smtp.helo"].strip()
            cand = [c for c in cand if str((c.get("greeting") or {}).get("argument") or "").strip()
                    == want]
            if not cand:
                problems.append(f"smtp.helo {want[:60]!r}: no conversation greets with it; "
                                f"greetings {[(c.get('greeting') or {}).get('argument') for c in convs]}")
                continue
        if m.get("event_type") == "flow" and "app_proto" in m:
            if m["app_proto"] == "tls":
                tls = [c for c in cand if c["tls"]["client_hello_frame"] is not None
                       and not c["starttls"]["requested"]]
                if not tls:
                    problems.append(f"{m}: no conversation with a ClientHello and no STARTTLS")
            elif m["app_proto"] == "smtp" and not cand:
                problems.append(f"{m}: pcapsmtp reports no SMTP conversation")
        if m.get("not-has-key") == "email":
            bad = [c["stream"] for c in cand if c["outcome"] == "plaintext" or c.get("mail")]
            if bad:
                problems.append(f"{m}: plaintext mail transaction reported on streams {bad}")
    assert not problems, f"SV {t.name} on {t.pcap}:\n  " + "\n  ".join(problems)


def test_suricata_smtp_errors_port_50649_is_a_tls_hello() -> None:
    """The smtp-errors test.yaml comment on src_port 50649: 'client does tls hello, smtp server
    replies with 400 4.5.2 Error: bad syntax'. TRUTH.md calls it implicit TLS (stream 3)."""
    res = analyze_file(str(CORPUS / "OISF__suricata-verify/tests__smtp-errors__smtperr.pcap"))
    c = [c for c in res.conversations if c["client"]["port"] == 50649]
    assert len(c) == 1 and c[0]["tls"]["client_hello_frame"] is not None, c
    assert c[0]["reason"] != "tls-established" and c[0]["outcome"] != "tls", c[0]["reason"]


# ---------------------------------------------------------------------------------- Arkime, nDPI

def _peer_pairs() -> list[tuple[str, str]]:
    out = []
    for rel in REL:
        if rel.startswith("arkime__arkime/"):
            exp = CORPUS / (rel.rsplit(".", 1)[0] + ".test")
            if exp.is_file():
                out.append((rel, exp.relative_to(CORPUS).as_posix()))
        elif rel.startswith("ntop__nDPI/"):
            name = rel.split("__pcap__", 1)[1]
            exp = CORPUS / "ntop__nDPI" / f"tests__cfgs__default__result__{name}.out"
            if exp.is_file():
                out.append((rel, exp.relative_to(CORPUS).as_posix()))
    return out


PEER_PAIRS = _peer_pairs()

#: Flows a peer calls SMTP that pcapsmtp need not report: "file#client_port" -> reason.
PEER_MISSING_OK: dict[str, str] = {}


@pytest.mark.parametrize("rel,exp", PEER_PAIRS, ids=[_idname(r) for r, _ in PEER_PAIRS])
def test_arkime_and_ndpi_agree_on_smtp_and_tls(rel: str, exp: str,
                                               results: dict[str, FileResult]) -> None:
    """Each flow the peer classifies as SMTP is a conversation here (joined on client address
    and port), and the peer's TLS verdict (Arkime protocol ``tls``; nDPI ``SMTPS``/Encrypted)
    equals 'pcapsmtp saw a ClientHello'."""
    flows: list[tuple[tuple[str, int], tuple[str, int], bool]] = []
    if exp.endswith(".test"):
        for src, dst, protos in ct.arkime_sessions(CORPUS / exp):
            if "smtp" in protos:
                flows.append((src, dst, "tls" in protos))
    else:
        for a, b, proto, _enc in ct.ndpi_flows(CORPUS / exp):
            if re.search(r"\bSMTPS?\b", proto):
                flows.append((a, b, bool(re.search(r"\bSMTPS\b", proto))))
    assert flows, f"{exp}: no SMTP flow found in the peer's expected output"
    problems = []
    for src, dst, peer_tls in flows:
        found = _conv_for(results, rel, src)
        if not found and f"{rel}#{src[1]}" in PEER_MISSING_OK:
            continue
        if len(found) != 1:
            problems.append(f"{src} -> {dst}: {len(found)} conversations")
            continue
        saw = found[0]["tls"]["client_hello_frame"] is not None
        if saw is not peer_tls:
            problems.append(f"{src} -> {dst}: peer TLS={peer_tls}, pcapsmtp ClientHello "
                            f"{found[0]['tls']['client_hello_frame']} reason {found[0]['reason']}")
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------------- the comparator can fail

def test_comparator_reports_each_kind_of_mismatch(results: dict[str, FileResult]) -> None:
    """Feed the comparator a real conversation and TRUTH records changed one field at a time:
    each change must be reported (so a green run above means agreement, not blindness)."""
    import dataclasses
    t = next(s for s in SESSIONS if s.file.endswith("tests__smtp-startssl__input.pcap"))
    c = next(c for c in _convs(results, t.file) if c["stream"] == t.stream)
    assert _session_problems(t, c) == []
    changes: dict[str, dict[str, Any]] = {
        "endpoints": dict(client=("10.16.1.11", 1)),
        "greeting command": dict(greeting_verb="HELO"),
        "greeting argument": dict(greeting_arg="other.example"),
        "ehlo_reply.lines[0]": dict(ehlo_line0="someone.else"),
        "ehlo_reply.lines[2]": dict(offers_line=2),
        "starttls.offered": dict(offers="no", offers_line=None),
        "starttls.requested": dict(client_starttls=False),
        "starttls.reply_code": dict(reply_code=454),
        "truth: no TLS after": dict(tls_after="no"),
    }
    for what, change in changes.items():
        probs = _session_problems(dataclasses.replace(t, **change), c)
        assert any(what in p for p in probs), (what, probs)


# ---------------------------------------------------------------- verdicts on captures from the wild

#: Verdicts of conversations that show what spam bots, brute-force tools and sandboxes do
#: (issue 13, item 8): "file#stream" -> (outcome, caused_by, reason, starttls.offered, why).
WILD_VERDICTS: dict[str, tuple[str, str, str, str, str]] = {
    "arkime__arkime/tests__pcap__ntlm_synthetic.pcap#10": (
        "plaintext", "server", "starttls-not-offered", "absent",
        "AUTH NTLM in the clear after an EHLO reply without STARTTLS, no mail: credentials count"),
    "arkime__arkime/tests__pcap__socks5-smtp-503.pcap#0": (
        "aborted", "none", "no-mail-transaction", "valid",
        "AUTH LOGIN twice in the clear although STARTTLS was offered (no initial response, no 334: no "
        "credentials crossed), refused with 503, then the client's reset: no mail"),
    "OISF__suricata-verify/tests__smtp-long-command__input.pcap#0": (
        "plaintext", "client", "client-did-not-request", "valid",
        "AUTH in the clear although STARTTLS was offered"),
    "OISF__suricata-verify/tests__bug-1449-01__suricata_stackoverflow.pcap#0": (
        "plaintext", "server", "starttls-not-offered", "absent",
        "DATA without MAIL answered 354: the message crossed in the clear"),
    "OISF__suricata-verify/tests__smtp-quit__input.pcap#0": (
        "aborted", "server", "greeting-refused", "unknown",
        "the server closed without a greeting; its FIN-only direction is no one-sided capture"),
    "OISF__suricata-verify/tests__smtp-url-base64__smtp-url-b64.pcap#0": (
        "plaintext", "server", "ehlo-rejected", "unknown",
        "EHLO answered 500: no extension list was sent, so the offer is unknown, not absent"),
    "ntop__nDPI/tests__cfgs__default__pcap__smtp.pcap#0": (
        "plaintext", "server", "ehlo-rejected", "unknown",
        "EHLO answered 500 then HELO"),
    "ntop__nDPI/tests__cfgs__default__pcap__emotet.pcap#0": (
        "plaintext", "server", "starttls-not-offered", "absent",
        "the Emotet spam bot logs in with AUTH LOGIN where STARTTLS is not offered"),
}


@pytest.mark.parametrize("key", sorted(WILD_VERDICTS), ids=lambda k: _idname(k))
def test_wild_verdicts(key: str, results: dict[str, FileResult]) -> None:
    rel, stream = key.rsplit("#", 1)
    conv = next(c for c in _convs(results, rel) if c["stream"] == int(stream))
    outcome, caused_by, reason, offered, why = WILD_VERDICTS[key]
    got = (conv["outcome"], conv["caused_by"], conv["reason"], conv["starttls"]["offered"])
    assert got == (outcome, caused_by, reason, offered), why
    assert not any(f["code"] == "one-sided" for f in conv["findings"]), why
    if offered == "unknown":
        assert not conv.get("clients"), "no extension list, no clients' prediction"


@pytest.mark.parametrize("rel", [
    "arkime__arkime/tests__pcap__smtp-data-250.pcap",
    "arkime__arkime/tests__pcap__smtp-data-521.pcap",
    "arkime__arkime/tests__pcap__smtp-rcpt-553.pcap",
    "OISF__suricata-verify/tests__smtp-file-data-01__input.pcap",
], ids=_idname)
def test_legacy_auth_equals_is_a_note(rel: str, results: dict[str, FileResult]) -> None:
    """AOL's and others' 250-AUTH=LOGIN line is the pre-RFC 2554 form old servers still send:
    an informational note, never a violation (it must not set exit status 1 by itself)."""
    from pcapsmtp.commands.status import violations
    for conv in _convs(results, rel):
        codes = [f["code"] for f in conv["findings"]]
        assert "ehlo-legacy-keyword" in codes and "ehlo-bad-keyword" not in codes, codes
        assert not violations(conv)
