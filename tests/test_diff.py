"""``pcapsmtp diff``: pairing, line-by-line comparison and the joint verdict.

(a) the generated pairs (captures/pairs, ground truth in expected.json, written by captures/generate_pairs.py):
    the pairing, every difference with both frames, the verdicts, the unpaired decoys;
(b) no wrong partner: with the true partner removed, a delivery stays unpaired;
(c) real traffic from the public corpus passed through a box made here (NAT, a clock offset, and a stripping
    box that removes ``250-STARTTLS`` and fixes the TCP sequence numbers): untampered deliveries are identical
    and stripped ones are blamed on the box with the removed line named;
(d) the pure functions (masking, alignment, verdict rules) on hand-written dialogues;
(e) the command: exit status, JSON shape, table, unreadable input; tshark reads the generated pairs;
(f) real peers on loopback (live, root): a stripping proxy, and a relay that black-holes TLS after the 220;
(g) a box that lets STARTTLS and its 220 through and then kills TLS (drops the ClientHello or the server's answer,
    or resets the connection itself): blamed only on differences the other capture vouches for;
(h) holes in a capture, weighed by what the receiver acknowledged: a hole the receiver acknowledged is a capture's
    loss (no evidence against the box); a hole before the sender's FIN that the receiver never acknowledged, while
    its own later segments carry its ACK, never reached it (the box dropped it).
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.analysis.exchange import ExchangeLine
from pcapsmtp.analysis.vantage import (
    DiffConfig, banner_compatible, compare_dialogues, diff_conversations, is_masked, joint_verdict, proven,
)
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "captures" / "pairs"
EXPECTED: dict[str, Any] = json.loads((PAIRS / "expected.json").read_text())
CORPUS = Path(__file__).resolve().parent / "corpus"
DECRYPTED = CORPUS / "arkime__arkime" / "tests__pcap__smtp-decrypted.pcap"

_CACHE: dict[str, list[dict[str, Any]]] = {}


def convs(path: Path | str) -> list[dict[str, Any]]:
    key = str(path)
    if key not in _CACHE:
        res = analyze_file(key, AnalysisConfig(keep_exchange=True))
        assert res.error is None, res.error
        _CACHE[key] = res.conversations
    return _CACHE[key]


def run_pair(name: str, **cfg: Any) -> dict[str, Any]:
    e = EXPECTED[name]
    return diff_conversations(convs(PAIRS / e["outside"]), convs(PAIRS / e["inside"]), DiffConfig(**cfg))


def _diff_tuple(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["direction"], d["kind"], d["outside_frame"], d["inside_frame"], d["outside_line"], d["inside_line"])


# ------------------------------------------------------------------------------------------------- (a)

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pairs_match_ground_truth(name: str) -> None:
    e = EXPECTED[name]
    r = run_pair(name)
    got = [(p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]]
    assert got == [(p["outside_stream"], p["inside_stream"]) for p in e["pairs"]]
    for p, w in zip(r["pairs"], e["pairs"]):
        assert p["identical"] is w["identical"]
        assert p["verdict"]["tampered"] is w["tampered"]
        assert p["outside"]["first_frame"] == w["outside_first_frame"]
        assert p["inside"]["first_frame"] == w["inside_first_frame"]
        assert [_diff_tuple(d) for d in p["differences"]] == [_diff_tuple(d) for d in w["differences"]]
        assert (p["verdict"]["caused_by"], p["verdict"]["reason"]) == (w["caused_by"], w["reason"])
        # the two single-side verdicts beside the joint one: why each file alone blames someone else
        assert p["outside"]["reason"] == w["outside_reason"]
        assert p["inside"]["reason"] == w["inside_reason"]
        # and the case of each (docs/verdicts.md), as a single conversation of that file carries it
        assert (p["outside"]["case"], p["inside"]["case"]) == (w["outside_case"], w["inside_case"])
        assert p["match"]["score"] >= 0.5 and p["match"]["confidence"] in ("high", "medium")
    unpaired = {(u["side"], u["stream"]) for u in r["unpaired"]}
    assert unpaired == ({("outside", s) for s in e["unpaired_outside"]}
                        | {("inside", s) for s in e["unpaired_inside"]})
    assert (r["summary"]["tampered"] > 0) is e["tampered"]
    assert r["clock_offset_s"] == pytest.approx(e["clock_offset_s"], abs=0.5)


def test_verdict_names_the_lines_and_both_views() -> None:
    p = run_pair("silent-strip")["pairs"][0]
    msg = p["verdict"]["message"]
    assert "'250-STARTTLS'" in msg and "inside frame 9" in msg and "outside frame 8" in msg
    assert "outside alone: server (starttls-not-offered)" in msg
    assert "inside alone: client (client-did-not-request)" in msg
    assert p["match"]["method"] == "content"          # NAT: nothing but the content pairs them


def test_transparent_box_pairs_by_addresses() -> None:
    r = run_pair("untampered")
    assert [p["match"]["method"] for p in r["pairs"]] == ["addresses", "addresses"]
    assert all(p["identical"] and p["verdict"]["caused_by"] != "middlebox" for p in r["pairs"])


def test_proxy_with_its_own_banner_pairs_on_the_envelope() -> None:
    m = run_pair("never-arrived")["pairs"][0]["match"]
    assert "banners differ" in m["evidence"]
    assert any("EHLO client.example.org vs gw.example.net" in ev for ev in m["evidence"])
    assert any("MAIL FROM <alice@example.org> on both sides" in ev for ev in m["evidence"])


def test_clock_offset_is_estimated_and_can_be_forced() -> None:
    assert run_pair("clock-offset")["clock_offset_s"] == pytest.approx(37.0, abs=0.05)
    # Forcing a wrong offset of 0 s pairs by time the wrong way round or not at all: never as the truth says.
    wrong = run_pair("clock-offset", clock_offset_s=0.0)
    truth = [(p["outside_stream"], p["inside_stream"]) for p in EXPECTED["clock-offset"]["pairs"]]
    assert [(p["outside"]["stream"], p["inside"]["stream"]) for p in wrong["pairs"]] != truth


@pytest.mark.parametrize("shift_s", [-3600.0, -0.5, 12.25, 86400.0])
def test_pairing_does_not_depend_on_the_clock(shift_s: float) -> None:
    e = EXPECTED["clock-offset"]
    inside = [dict(c, started_ns=c["started_ns"] + int(shift_s * 1e9), ended_ns=c["ended_ns"] + int(shift_s * 1e9))
              for c in convs(PAIRS / e["inside"])]
    r = diff_conversations(convs(PAIRS / e["outside"]), inside)
    assert [(p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]] == [
        (p["outside_stream"], p["inside_stream"]) for p in e["pairs"]]
    assert r["clock_offset_s"] == pytest.approx(37.0 + shift_s, abs=0.05)


def test_input_order_does_not_change_the_pairs() -> None:
    e = EXPECTED["clock-offset"]
    o, i = convs(PAIRS / e["outside"]), convs(PAIRS / e["inside"])
    r = diff_conversations(list(reversed(o)), list(reversed(i)))
    assert sorted((p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]) == sorted(
        (p["outside_stream"], p["inside_stream"]) for p in e["pairs"])


# ------------------------------------------------------------------------------------------------- (b)

@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("drop", ["inside", "outside"])
def test_no_wrong_partner_when_the_true_one_is_missing(name: str, drop: str) -> None:
    e = EXPECTED[name]
    o, i = convs(PAIRS / e["outside"]), convs(PAIRS / e["inside"])
    for truth in e["pairs"]:
        gone = truth[f"{drop}_stream"]
        if drop == "inside":
            r = diff_conversations(o, [c for c in i if c["stream"] != gone])
            partner = [p for p in r["pairs"] if p["outside"]["stream"] == truth["outside_stream"]]
        else:
            r = diff_conversations([c for c in o if c["stream"] != gone], i)
            partner = [p for p in r["pairs"] if p["inside"]["stream"] == truth["inside_stream"]]
        assert partner == [], (name, truth, partner[0]["match"] if partner else None)


# ------------------------------------------------------------------------------------------------- (c)

def _through_box(src: Path, dst: Path, *, strip: bytes | None = None, streams: set[int] | None = None,
                 clock_s: float = 0.0, nat: bool = False) -> None:
    """Write ``src`` as another capture point would see it: optionally NAT (new client address and port,
    new server address), a clock offset, and a stripping box that removes ``strip`` from the server's bytes
    of the TCP conversations numbered in ``streams`` (all if None), fixing the sequence and
    acknowledgement numbers that follow, as a proxy that rewrites a stream must."""
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw
    from scapy.utils import rdpcap, wrpcap

    pkts = rdpcap(str(src))
    order: dict[tuple[Any, ...], int] = {}
    cuts: dict[tuple[Any, ...], list[tuple[int, int]]] = {}     # flow -> [(server seq of the cut, length)]
    out: list[Any] = []
    for p in pkts:
        if IP in p and TCP in p:
            ip, tcp = p[IP], p[TCP]
            to_server = tcp.dport in (25, 2525, 587, 465)
            cli = (ip.src, tcp.sport) if to_server else (ip.dst, tcp.dport)
            srv = (ip.dst, tcp.dport) if to_server else (ip.src, tcp.sport)
            flow = (cli, srv)
            if flow not in order:
                order[flow] = len(order)
            active = streams is None or order[flow] in streams
            if strip and active:
                fcuts = cuts.setdefault(flow, [])
                if not to_server and Raw in p:
                    data = bytes(p[Raw].load)
                    k = data.find(strip)
                    if k >= 0:
                        at = (tcp.seq + k) & 0xFFFFFFFF
                        if all(c != at for c, _n in fcuts):
                            fcuts.append((at, len(strip)))
                        p[Raw].load = data[:k] + data[k + len(strip):]
                if not to_server:
                    tcp.seq = (tcp.seq - sum(n for c, n in fcuts if ((tcp.seq - c) & 0xFFFFFFFF) < 1 << 31
                                             and tcp.seq != c)) & 0xFFFFFFFF
                elif tcp.flags & 0x10:
                    tcp.ack = (tcp.ack - sum(n for c, n in fcuts if ((tcp.ack - c) & 0xFFFFFFFF) < 1 << 31
                                             and tcp.ack != c)) & 0xFFFFFFFF
            if nat:
                n = order[flow]
                new_cli, new_srv = ("10.99.0.1", 61000 + n), ("10.99.0.25", srv[1])
                if to_server:
                    ip.src, tcp.sport, ip.dst = new_cli[0], new_cli[1], new_srv[0]
                else:
                    ip.dst, tcp.dport, ip.src = new_cli[0], new_cli[1], new_srv[0]
            del ip.len, ip.chksum, tcp.chksum
            p = p.__class__(bytes(p))
            p.time = pkts[len(out)].time
        p.time = float(p.time) + clock_s
        out.append(p)
    wrpcap(str(dst), out)


def _corpus() -> Path:
    assert DECRYPTED.is_file(), f"corpus file missing: {DECRYPTED}"
    return DECRYPTED


REAL_STARTTLS = ["arkime__arkime/tests__pcap__smtp-decrypted.pcap",
                 "OISF__suricata-verify/tests__smtp-startssl__input.pcap",
                 "zeek__zeek/testing__btest__Traces__tls__smtp-starttls.pcap",
                 "ntop__nDPI/tests__cfgs__default__pcap__smtp-starttls.pcap",
                 "OISF__suricata-verify/tests__smtp-errors__smtperr.pcap"]


@pytest.mark.parametrize("rel", REAL_STARTTLS)
def test_real_traffic_through_nat_and_clock_offset_is_identical(rel: str, tmp_path: Path) -> None:
    src = CORPUS / rel
    assert src.is_file(), f"corpus file missing: {src}"
    inside = tmp_path / "inside.pcap"
    _through_box(src, inside, nat=True, clock_s=37.0)
    o, i = convs(src), analyze_file(str(inside), AnalysisConfig(keep_exchange=True)).conversations
    assert len(o) == len(i) >= 1
    r = diff_conversations(o, i)
    assert [(p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]] == [
        (c["stream"], c["stream"]) for c in o]
    assert all(p["identical"] for p in r["pairs"])
    assert r["unpaired"] == [] and r["summary"]["tampered"] == 0


def test_real_traffic_through_a_stripping_box(tmp_path: Path) -> None:
    src = _corpus()
    outside = tmp_path / "outside.pcap"
    # Streams 0 and 2 lose their offer; 1 and 3 pass untouched. Streams 1 and 2 have the same client, EHLO
    # name and banner: only the envelope and the time keep them apart.
    _through_box(src, outside, strip=b"250-STARTTLS\r\n", streams={0, 2}, nat=True, clock_s=-5.0)
    o = analyze_file(str(outside), AnalysisConfig(keep_exchange=True)).conversations
    r = diff_conversations(o, convs(src))
    assert [(p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    for p in r["pairs"]:
        if p["outside"]["stream"] in (0, 2):
            assert not p["identical"]
            assert [(d["direction"], d["kind"], d["outside_line"], d["inside_line"]) for d in p["differences"]] == [
                ("server->client", "removed", None, "250-STARTTLS")]
            # The client sent STARTTLS all the same and the conversation went on protected (this
            # corpus capture is a decrypted one): TLS happened, so the box tampered but is not the
            # cause (outcome tls implies caused_by none); the stripping is reported beside it.
            assert (p["verdict"]["outcome"], p["verdict"]["caused_by"], p["verdict"]["reason"]) == (
                "tls", "none", "tls-decrypted")
            assert p["verdict"]["tampered"] is True
            assert "'250-STARTTLS'" in p["verdict"]["message"]
        else:
            assert p["identical"] and p["verdict"]["caused_by"] != "middlebox"
            assert p["verdict"]["tampered"] is False
    assert r["summary"] == {"pairs": 4, "identical": 2, "tampered": 2, "middlebox": 0, "tampered_but_tls": 2,
                            "unpaired_outside": 0, "unpaired_inside": 0}


def test_real_capture_against_itself_is_identical() -> None:
    src = _corpus()
    r = diff_conversations(convs(src), convs(src))
    assert [(p["outside"]["stream"], p["inside"]["stream"]) for p in r["pairs"]] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert all(p["identical"] and p["match"]["method"] == "addresses" for p in r["pairs"])


# ------------------------------------------------------------------------------------------------- (d)

def test_masking_rules() -> None:
    banner = "220 mx1.example.net ESMTP Sendmail 8.14.4/8.14.4; Thu, 1 Jan 2026 10:00:00 GMT"
    masked = banner[:4] + "".join(ch if ch in "20" else "*" for ch in banner[4:])
    assert banner_compatible(masked, banner)
    assert not banner_compatible(masked[:-1] + "0", banner)          # a '0' where the original has no '0'
    assert not banner_compatible(banner, banner)
    assert is_masked("250-STARTTLS", "250-XXXXXXXA")
    assert is_masked(banner, masked)
    assert is_masked("STARTTLS", "XXXXXXXX")
    assert not is_masked("250-STARTTLS", "250-STARTTLZ")              # length-preserving, but not a fill
    assert not is_masked("250-STARTTLS", "250-XXXXXXX")               # not the same length
    assert not is_masked("250 2.1.0 Ok", "250 2.0.0 Ok")              # a changed digit is a rewrite


def _conv(lines: list[tuple[str, str]], **kw: Any) -> dict[str, Any]:
    ex = [ExchangeLine(n + 1, side, text, []) for n, (side, text) in enumerate(lines)]
    base = {"outcome": "plaintext", "caused_by": "server", "reason": "starttls-not-offered", "_exchange": ex}
    base.update(kw)
    return base


EHLO_IN = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250-mx"), ("S", "250-SIZE 1000"), ("S", "250 STARTTLS"),
           ("C", "MAIL FROM:<a@b>"), ("S", "250 ok")]


def test_last_line_strip_rewrites_the_line_before() -> None:
    # A box that drops the final "250 STARTTLS" must turn "250-SIZE" into "250 SIZE": a rewrite plus a removal.
    outside = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250-mx"), ("S", "250 SIZE 1000"), ("C", "MAIL FROM:<a@b>"),
               ("S", "250 ok")]
    o, i = _conv(outside), _conv(EHLO_IN, caused_by="client", reason="client-did-not-request")
    diffs = compare_dialogues(o, i)
    assert [(d["kind"], d["outside_line"], d["inside_line"]) for d in diffs] == [
        ("rewritten", "250 SIZE 1000", "250-SIZE 1000"), ("removed", None, "250 STARTTLS")]
    assert diffs[1]["inside_frame"] == 5 and diffs[1]["outside_frame"] == 6   # where it would have been
    v = joint_verdict(o, i, diffs)
    assert (v["caused_by"], v["reason"]) == ("middlebox", "starttls-stripped")


def test_length_preserving_non_mask_rewrite_is_found() -> None:
    outside = [x if x[1] != "250 STARTTLS" else ("S", "250 STARTTLZ") for x in EHLO_IN]
    diffs = compare_dialogues(_conv(outside), _conv(EHLO_IN))
    assert [(d["kind"], d["outside_line"], d["inside_line"]) for d in diffs] == [
        ("rewritten", "250 STARTTLZ", "250 STARTTLS")]
    assert joint_verdict(_conv(outside), _conv(EHLO_IN), diffs)["reason"] == "starttls-stripped"


def test_server_go_ahead_rewritten_into_a_refusal() -> None:
    inside = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 STARTTLS"), ("C", "STARTTLS"), ("S", "220 go ahead"),
              ("C", "[TLS ClientHello: versions TLS 1.3]")]
    outside = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 STARTTLS"), ("C", "STARTTLS"),
               ("S", "454 TLS not available"), ("C", "MAIL FROM:<a@b>")]
    o, i = _conv(outside), _conv(inside)
    diffs = compare_dialogues(o, i)
    kinds = {(d["direction"], d["kind"]) for d in diffs}
    assert ("server->client", "rewritten") in kinds
    v = joint_verdict(o, i, diffs)
    assert (v["caused_by"], v["reason"]) == ("middlebox", "starttls-refused")
    assert "into a refusal" in v["message"]


def test_changes_that_do_not_touch_starttls_keep_the_single_side_verdict() -> None:
    outside = [x if x[1] != "220 mx" else ("S", "220 proxy") for x in EHLO_IN]
    o = _conv(outside, caused_by="client", reason="client-did-not-request")
    i = _conv(EHLO_IN, caused_by="client", reason="client-did-not-request")
    diffs = compare_dialogues(o, i)
    assert [(d["kind"], d["outside_line"]) for d in diffs] == [("rewritten", "220 proxy")]
    v = joint_verdict(o, i, diffs)
    assert (v["caused_by"], v["reason"]) == ("client", "client-did-not-request")
    assert "without touching STARTTLS" in v["message"]


def test_capture_lines_are_not_dialogue() -> None:
    o = _conv(EHLO_IN + [("S", "[FIN]")])
    i = _conv(EHLO_IN + [("C", "[RST]"), ("!", "[12 bytes from the server missing in the capture]")])
    assert compare_dialogues(o, i) == []


def test_one_conversation_is_never_paired_twice() -> None:
    e = EXPECTED["same-envelope"]
    o = convs(PAIRS / e["outside"])
    r = diff_conversations(o + o, convs(PAIRS / e["inside"]))
    ins = [p["inside"]["stream"] for p in r["pairs"]]
    assert len(ins) == len(set(ins)) == 2
    assert len(r["unpaired"]) == 2


# ------------------------------------------------------------------------------------------------- (e)

def _args(*argv: str) -> argparse.Namespace:
    from pcapsmtp.commands import diff as diff_cmd
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    diff_cmd.add_parser(sub)
    return ap.parse_args(["diff", *argv])


def _run(*argv: str) -> tuple[int, str, str]:
    from pcapsmtp.commands import diff as diff_cmd
    out, err = io.StringIO(), io.StringIO()
    rc = diff_cmd.run(_args(*argv), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_cli_json_and_exit_status() -> None:
    e = EXPECTED["box-454"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]), "--format", "json")
    assert rc == 1
    doc = json.loads(out)
    p = doc["pairs"][0]
    assert set(p) >= {"outside", "inside", "match", "identical", "differences", "verdict"}
    assert set(p["outside"]) == {"file", "stream", "first_frame", "client", "server", "outcome", "caused_by",
                                 "reason", "case"}
    assert set(p["match"]) >= {"method", "score", "evidence"}
    assert set(p["verdict"]) == {"outcome", "caused_by", "reason", "message", "tampered"}
    assert set(p["differences"][0]) == {"direction", "outside_frame", "inside_frame", "outside_line",
                                        "inside_line", "kind"}
    assert doc["outside_file"].endswith("box-454.outside.pcap")
    assert {u["side"] for u in doc["unpaired"]} == {"outside", "inside"}
    assert all(set(u) == set(p["outside"]) | {"side"} for u in doc["unpaired"])
    e = EXPECTED["untampered"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]))
    assert rc == 0
    assert "identical: every line arrived as it was sent" in out


def test_each_side_carries_the_case_of_its_verdict() -> None:
    """The single-side verdicts of a pair name their case as ``analyze`` does for that conversation: the outside
    of the dropped ClientHello is the server that never answered it (alone; the pair blames the box), the inside
    a client that never started TLS, no case. JSON and the text report."""
    e = EXPECTED["dpi-drop-clienthello"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]), "--format", "json")
    (p,) = json.loads(out)["pairs"]
    alone = {side: next(c for c in convs(PAIRS / e[side]) if c["stream"] == p[side]["stream"])
             for side in ("outside", "inside")}
    assert [(p[s]["reason"], p[s]["case"], alone[s].get("case")) for s in ("outside", "inside")] == [
        ("tls-handshake-failed", "server-silent", "server-silent"), ("tls-not-started", None, None)]
    e = EXPECTED["server-silent"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]))
    assert ("outside alone: server (tls-handshake-failed, case server-silent); inside alone: server "
            "(tls-handshake-failed, case server-silent)") in out
    assert "outside alone: none (tls-established); inside alone: none (tls-established)" in out


def test_cli_table_names_the_difference() -> None:
    e = EXPECTED["asa-masked"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]))
    assert rc == 1
    assert "starttls-masked" in out and "250-XXXXXXXA" in out and "250-STARTTLS" in out
    assert "CHANGED BY THE BOX" in out


def test_cli_unreadable_capture_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    rc, out, err = _run(str(bad), str(PAIRS / EXPECTED["untampered"]["inside"]))
    assert rc == 2 and out == ""
    assert "bad.pcap" in err and err.count("\n") == 1
    rc, _out, err = _run(str(tmp_path / "missing.pcap"), str(bad))
    assert rc == 2 and "missing.pcap" in err


def test_generator_is_deterministic(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "captures" / "generate_pairs.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in PAIRS.iterdir() if p.suffix in (".pcap", ".json"))
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (PAIRS / name).read_bytes(), name


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tshark_reads_the_pairs(name: str) -> None:
    e = EXPECTED[name]
    for side in ("outside", "inside"):
        proc = subprocess.run(["tshark", "-r", str(PAIRS / e[side]), "-T", "fields", "-e", "frame.number",
                               "-e", "tcp.stream"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        rows = [ln.split("\t") for ln in proc.stdout.splitlines()]
        assert len(rows) == e[f"{side}_frame_count"]
        first = {int(s): int(f) for f, s in reversed(rows)}        # tcp.stream -> its first frame
        for p in e["pairs"]:
            assert first[p[f"{side}_stream"]] == p[f"{side}_first_frame"]


# ------------------------------------------------------------------------------------------------- (f)
# Real peers on loopback: swaks (a real client) delivering through a stripping proxy to an aiosmtpd server that
# offers real STARTTLS, captured on both sides of the proxy with tcpdump.

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(d: Path) -> tuple[Path, Path]:
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    c, k = d / "cert.pem", d / "key.pem"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


class _StrippingProxy:
    """A TCP relay on 127.0.0.1 that opens its own upstream connection from 127.0.0.3 (so addresses and ports
    differ on the two sides) and, on the connections numbered in ``strip``, removes ``250-STARTTLS`` from the
    server's bytes. Everything else, TLS included, is relayed byte for byte."""

    def __init__(self, upstream: int, strip: set[int], drop_tls: frozenset[int] = frozenset()) -> None:
        import socket
        import threading
        self.upstream, self.strip, self.drop_tls = upstream, strip, drop_tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.count = 0
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self) -> None:
        import socket
        import threading
        while True:
            try:
                down, _addr = self.sock.accept()
            except OSError:
                return
            n, self.count = self.count, self.count + 1
            up = socket.socket()
            up.bind(("127.0.0.3", 0))
            up.connect(("127.0.0.1", self.upstream))
            for src, dst, strip, drop in ((down, up, False, n in self.drop_tls), (up, down, n in self.strip, False)):
                th = threading.Thread(target=self._pump, args=(src, dst, strip, drop), daemon=True)
                th.start()
                self.threads.append(th)

    @staticmethod
    def _pump(src: Any, dst: Any, strip: bool, drop_tls: bool = False) -> None:
        """``drop_tls``: from the first TLS record on (a ClientHello after the 220), the client's bytes are
        swallowed, as a firewall or DPI box that black-holes TLS does; its close is still passed on."""
        import socket
        dropping = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if strip:
                    data = data.replace(b"250-STARTTLS\r\n", b"")
                dropping = dropping or (drop_tls and data[:1] == b"\x16")
                if not dropping:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (dst, src):
                try:
                    s.shutdown(socket.SHUT_WR if s is dst else socket.SHUT_RD)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def _swaks(port: int) -> None:
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--from", "alice@client.example.test",
                        "--to", "bob@mx.example.test", "--helo", "client.example.test", "--tls-optional",
                        "--timeout", "10"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def _tls_sink(tmp_path: Path) -> tuple[Any, int]:
    """A real SMTP server (aiosmtpd, from the test extra) on a free loopback port, offering
    STARTTLS with a self-signed certificate and accepting every message; started. Returns it
    (stop it with ``.stop()``) and its port."""
    import ssl

    import aiosmtpd.controller as aiosmtpd

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok: queued"

    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    sport = _free_port()
    server = aiosmtpd.Controller(Sink(), hostname="127.0.0.1", port=sport, server_hostname="mx.example.test",
                                 tls_context=ctx, require_starttls=False, ident="ESMTP test")
    server.start()
    return server, sport


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("swaks") is None,
                    reason="needs tcpdump and swaks (apt-get install tcpdump swaks)")
def test_real_client_through_a_stripping_proxy_to_a_real_server(tmp_path: Path) -> None:
    import os
    import signal
    import time
    if os.geteuid() != 0:
        pytest.skip("capturing on the loopback needs root (CI runs as root)")
    server, sport = _tls_sink(tmp_path)
    proxy = _StrippingProxy(sport, strip={0, 2})
    outside, inside = tmp_path / "outside.pcap", tmp_path / "inside.pcap"
    dumps = [subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w", str(path),
                               f"tcp port {port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for path, port in ((outside, proxy.port), (inside, sport))]
    try:
        for d in dumps:                 # tcpdump says "listening on" once it captures
            assert d.stderr is not None
            line = d.stderr.readline().decode()
            assert "listening" in line, line
        for _ in range(3):              # delivery 0 and 2 stripped, 1 untouched (STARTTLS and TLS 1.3 spliced)
            _swaks(proxy.port)
            time.sleep(0.3)
        _swaks(sport)                   # a decoy straight to the server: inside only
        time.sleep(0.5)
    finally:
        for d in dumps:
            d.send_signal(signal.SIGINT)
            d.wait(timeout=10)
        proxy.close()
        server.stop()
    rc, out, err = _run(str(outside), str(inside), "--format", "json")
    doc = json.loads(out)
    assert rc == 1, err
    pairs = doc["pairs"]
    assert len(pairs) == 3 and [p["outside"]["stream"] for p in pairs] == [0, 1, 2]
    assert [p["inside"]["stream"] for p in pairs] == [0, 1, 2]      # time order, one envelope for all
    for n, p in enumerate(pairs):
        assert p["match"]["method"] == "content"
        if n in (0, 2):
            assert not p["identical"]
            assert (p["verdict"]["caused_by"], p["verdict"]["reason"]) == ("middlebox", "starttls-stripped")
            assert [(d["direction"], d["kind"], d["inside_line"]) for d in p["differences"]] == [
                ("server->client", "removed", "250-STARTTLS")]
            assert p["outside"]["reason"] == "starttls-not-offered"
            assert p["inside"]["reason"] == "client-did-not-request"
        else:
            assert p["identical"] and p["verdict"]["reason"] == "tls-established", p
    assert [(u["side"], u["stream"]) for u in doc["unpaired"]] == [("inside", 3)]


def test_answer_to_starttls_is_the_reply_after_it_in_the_dialogue() -> None:
    """An EHLO reply whose end a hole swallowed is concluded only when the 220 comes, after the
    client's STARTTLS: the answer to STARTTLS the diff compares is still the 220 (frame 12 of
    the capture; expected.json), not the EHLO reply's first line."""
    from pcapsmtp.analysis.vantage import _answer_to_starttls

    path = REPO / "captures" / "hole-closes-reply-starttls.pcap"
    expected = json.loads((REPO / "captures" / "expected.json").read_text())
    want_frame = expected[path.name]["conversations"][0]["frames"]["starttls_reply"]
    conv = analyze_file(str(path), AnalysisConfig(keep_exchange=True)).conversations[0]
    assert _answer_to_starttls(conv) == ("220 2.0.0 Ready to start TLS", want_frame)


# ------------------------------------------------------------------------------------------------- (g)
# A firewall / IPS / DPI box that lets STARTTLS and its 220 through, then kills TLS: it drops the ClientHello, drops
# the server's answer, or resets the connection itself. Each file alone blames an end; the pair blames the box,
# and only on a difference the other capture vouches for.

_TLS_KILLED = {
    # case: (outside alone, inside alone, words of the joint verdict's message)
    "dpi-drop-clienthello": (("server", "tls-handshake-failed"), ("client", "tls-not-started"),
                             "the box dropped the client's ClientHello after letting STARTTLS and the 220 through"),
    # (inside alone: the server's timeout closes 300 s after its 220 and nothing of the client follows: whether
    # it sent its ClientHello cannot be told there, and the server, which waited, is not blamed)
    "dpi-blackhole": (("server", "tls-handshake-failed"), ("unknown", "incomplete"),
                      "the box dropped the client's ClientHello after letting STARTTLS and the 220 through"),
    "dpi-drop-answer": (("server", "tls-handshake-failed"), ("client", "tls-handshake-failed"),
                        "the box dropped the server's answer to the ClientHello (ServerHello, Certificate, "
                        "ServerKeyExchange, ServerHelloDone)"),
    "dpi-reset": (("server", "tls-handshake-failed"), ("client", "tls-handshake-failed"),
                  "the box reset the connection itself during the TLS handshake"),
    "dpi-reset-early": (("server", "tls-handshake-failed"), ("client", "tls-not-started"),
                        "the box reset the connection itself during the TLS handshake"),
    "dpi-drop-clienthello-fin": (("middlebox", "tls-handshake-failed"), ("middlebox", "tls-handshake-failed"),
                                 "the box dropped the client's ClientHello after letting STARTTLS and the 220 "
                                 "through"),
}


@pytest.mark.parametrize("name", sorted(_TLS_KILLED))
def test_box_that_kills_tls_is_blamed(name: str) -> None:
    alone_o, alone_i, words = _TLS_KILLED[name]
    (p,) = run_pair(name)["pairs"]
    v = p["verdict"]
    assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
        "aborted", "middlebox", "tls-handshake-failed", True)
    assert (p["outside"]["caused_by"], p["outside"]["reason"]) == alone_o
    assert (p["inside"]["caused_by"], p["inside"]["reason"]) == alone_i
    assert v["message"].startswith(words), v["message"]
    # every difference has a frame on both sides, and the message names the first one's
    assert all(d["outside_frame"] is not None and d["inside_frame"] is not None for d in p["differences"])
    assert f"outside frame {p['differences'][0]['outside_frame']}" in v["message"]
    assert f"inside frame {p['differences'][0]['inside_frame']}" in v["message"]
    assert v["message"].endswith(f"outside alone: {alone_o[0]} ({alone_o[1]}); "
                                 f"inside alone: {alone_i[0]} ({alone_i[1]})")


def test_reset_by_the_box_names_both_resets() -> None:
    (p,) = run_pair("dpi-reset")["pairs"]
    msg = p["verdict"]["message"]
    assert "the client got '[RST]' (outside frame 15), which the server never sent (inside frame 17)" in msg
    assert "the server got '[RST]' (inside frame 17), which the client never sent (outside frame 15)" in msg
    assert "and it kept 4 TLS records from the other end (first: the server sent '[TLS ServerHello" in msg
    assert p["match"]["method"] == "addresses"          # an IPS in bridge mode


def test_server_that_never_answers_is_not_the_box() -> None:
    """Negative controls: the ClientHello arrives inside too and nothing comes back (the server's own
    silence), and STARTTLS with TLS through the same box: identical, the box is not blamed."""
    silent, tls = run_pair("server-silent")["pairs"]
    assert silent["identical"] and not silent["verdict"]["tampered"]
    assert (silent["verdict"]["caused_by"], silent["verdict"]["reason"]) == ("server", "tls-handshake-failed")
    assert (tls["verdict"]["outcome"], tls["verdict"]["caused_by"]) == ("tls", "none")


def test_a_capture_that_stops_earlier_is_no_evidence() -> None:
    (p,) = run_pair("inside-ends-early")["pairs"]
    (d,) = p["differences"]
    assert (d["kind"], d["outside_frame"], d["inside_frame"]) == ("removed", 14, None)
    v = p["verdict"]
    assert (v["caused_by"], v["reason"], v["tampered"]) == ("server", "tls-handshake-failed", False)
    assert "no evidence that the box changed anything" in v["message"]
    assert "the inside capture shows nothing of that direction after it" in v["message"]


@pytest.mark.parametrize("name,cut", [("dpi-drop-clienthello", "inside"), ("dpi-drop-answer", "outside"),
                                      ("dpi-blackhole", "inside"), ("dpi-drop-clienthello-fin", "inside"),
                                      ("dpi-drop-answer-fin", "outside"),
                                      ("dpi-reset", "outside"), ("dpi-reset-early", "inside"),
                                      ("server-silent", "inside"),
                                      ("server-silent", "outside")])
def test_no_blame_from_any_shorter_capture(name: str, cut: str) -> None:
    """The capture that lacks the records, cut after every line before its proof (its FIN or RST): the box is
    never blamed, since that capture no longer shows the direction past where the record would have been."""
    e = EXPECTED[name]
    o, i = convs(PAIRS / e["outside"]), convs(PAIRS / e["inside"])
    offset = int(run_pair(name)["clock_offset_s"] * 1e9)
    truth = e["pairs"][0]
    pick = {"outside": o, "inside": i}
    conv = next(c for c in pick[cut] if c["stream"] == truth[f"{cut}_stream"])
    ex = conv["_exchange"]
    first_end = next(k for k, ln in enumerate(ex) if ln.text in ("[FIN]", "[RST]"))
    for k in range(first_end + 1):
        short = dict(conv, _exchange=ex[:k])
        other = pick["inside" if cut == "outside" else "outside"]
        oc = next(c for c in other if c["stream"] == truth[f"{'inside' if cut == 'outside' else 'outside'}_stream"])
        pair = (short, oc) if cut == "outside" else (oc, short)
        v = joint_verdict(pair[0], pair[1], compare_dialogues(*pair, offset_ns=offset), offset)
        if oc["caused_by"] == "middlebox":
            # the other capture alone shows the loss (dpi-drop-clienthello-fin outside: the server's FIN 300 s
            # after the ClientHello still acknowledges nothing of it): its own verdict, no change by the box
            assert not v["tampered"] and v["caused_by"] == "middlebox", (k, v["message"])
        else:
            assert v["caused_by"] != "middlebox", (k, v["message"])


def _tshark_frames(path: Path, stream: int, filt: str) -> list[int]:
    proc = subprocess.run(["tshark", "-r", str(path), "-Y", f"tcp.stream == {stream} && ({filt})", "-T", "fields",
                           "-e", "frame.number"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [int(x) for x in proc.stdout.split()]


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tls_box_frames_agree_with_tshark() -> None:
    """The frames the differences cite are those tshark finds: the ClientHello (handshake type 1), the
    ServerHello (type 2), and the FIN/RST that close each direction (the box's, on the side it forged them)."""
    def frames(name: str, side: str, filt: str) -> list[int]:
        e = EXPECTED[name]
        return _tshark_frames(PAIRS / e[side], e["pairs"][0][f"{side}_stream"], filt)

    hello, answer = "tls.handshake.type == 1", "tls.handshake.type == 2"
    from_server, to_server = "tcp.srcport == 25", "tcp.dstport == 25"

    def diffs(name: str) -> list[tuple[Any, ...]]:
        return [_diff_tuple(d) for d in run_pair(name)["pairs"][0]["differences"]]

    # the ClientHello: outside only; the inside client direction ends in the (forwarded) FIN instead
    assert frames("dpi-drop-clienthello", "inside", hello) == []
    (d,) = diffs("dpi-drop-clienthello")
    assert d[2:4] == (frames("dpi-drop-clienthello", "outside", hello)[0],
                      frames("dpi-drop-clienthello", "inside", f"tcp.flags.fin == 1 && {to_server}")[0])
    # the server's answer: inside only; the outside server direction ends in a FIN without it
    assert frames("dpi-drop-answer", "outside", answer) == []
    want = (frames("dpi-drop-answer", "outside", f"tcp.flags.fin == 1 && {from_server}")[0],
            frames("dpi-drop-answer", "inside", answer)[0])
    assert {x[2:4] for x in diffs("dpi-drop-answer")} == {want}
    # the reset: outside "from the server", inside "from the client"; the ClientHello crossed, the answer did not
    rst_o = frames("dpi-reset", "outside", f"tcp.flags.reset == 1 && {from_server}")
    rst_i = frames("dpi-reset", "inside", f"tcp.flags.reset == 1 && {to_server}")
    assert frames("dpi-reset", "outside", f"tcp.flags.reset == 1 && {to_server}") == []
    assert frames("dpi-reset", "inside", f"tcp.flags.reset == 1 && {from_server}") == []
    assert frames("dpi-reset", "outside", hello) and frames("dpi-reset", "inside", hello)
    assert frames("dpi-reset", "outside", answer) == []
    got = diffs("dpi-reset")
    assert [x[2:4] for x in got if "[RST]" in x] == [(rst_o[0], rst_i[0])] * 2
    assert {x[3] for x in got if x[5] and x[5].startswith("[TLS")} == set(frames("dpi-reset", "inside", answer))
    # the black hole: nothing of the client after the 220 inside; the server's own FIN 300 s later
    assert frames("dpi-blackhole", "inside", hello) == []
    assert diffs("dpi-blackhole") == [
        ("client->server", "removed", frames("dpi-blackhole", "outside", hello)[0],
         frames("dpi-blackhole", "inside", f"tcp.flags.fin == 1 && {from_server}")[0],
         "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]", None)]
    # the early reset: the ClientHello never crossed; a RST each way, each on the side the box forged it
    assert frames("dpi-reset-early", "inside", hello) == []
    rst_o = frames("dpi-reset-early", "outside", f"tcp.flags.reset == 1 && {from_server}")
    rst_i = frames("dpi-reset-early", "inside", f"tcp.flags.reset == 1 && {to_server}")
    assert diffs("dpi-reset-early") == [
        ("client->server", "removed", frames("dpi-reset-early", "outside", hello)[0], rst_i[0],
         "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]", None),
        ("client->server", "added", rst_o[0], rst_i[0], None, "[RST]"),
        ("server->client", "added", rst_o[0], rst_i[0], "[RST]", None)]
    # the control: the ClientHello crossed the box and the server never answered it, on both sides
    for side in ("outside", "inside"):
        assert len(frames("server-silent", side, hello)) == 1 and frames("server-silent", side, answer) == []


# hand-written dialogues: what is compared in the handshake, and what proves nothing
_TO_220 = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 STARTTLS"), ("C", "STARTTLS"), ("S", "220 go ahead")]
_HELLO = ("C", "[TLS ClientHello: versions TLS 1.2]")
CH_TEXT = "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]"


def test_a_gap_in_the_direction_is_no_evidence() -> None:
    """The ClientHello missing inside, but bytes of the client's direction were lost there: it may be in the hole."""
    o = _conv(_TO_220 + [_HELLO, ("C", "[FIN]"), ("S", "[FIN]")], caused_by="server", reason="tls-handshake-failed")
    i = _conv(_TO_220 + [("!", "[517 bytes from the client missing in the capture]"), ("C", "[FIN]"),
                         ("S", "[FIN]")], caused_by="client", reason="tls-not-started")
    (d,) = compare_dialogues(o, i)
    assert (d["kind"], d["outside_frame"], d["inside_frame"]) == ("removed", 6, None)
    v = joint_verdict(o, i, [d])
    assert (v["caused_by"], v["tampered"]) == ("server", False)
    # without the hole the FIN proves it (frame 7 inside: where the ClientHello would have been)
    i2 = _conv(_TO_220 + [("C", "[FIN]"), ("S", "[FIN]")], caused_by="client", reason="tls-not-started")
    (d,) = compare_dialogues(o, i2)
    assert (d["inside_frame"], joint_verdict(o, i2, [d])["caused_by"]) == (6, "middlebox")


def test_resets_outside_the_handshake_are_not_compared() -> None:
    """A RST of the SMTP dialogue, or one after the session's first encrypted record, describes how each side's
    connection ended (a proxy may close its two connections differently): not a difference."""
    smtp = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 ok"), ("C", "QUIT"), ("S", "221 bye")]
    assert compare_dialogues(_conv(smtp + [("S", "[RST]")]), _conv(smtp + [("C", "[FIN]")])) == []
    done = _TO_220 + [_HELLO, ("S", "[TLS ServerHello: TLS 1.2, cipher 0xc02b]"),
                      ("C", "[TLS encrypted record, 40 bytes]"), ("S", "[TLS encrypted record, 40 bytes]")]
    assert compare_dialogues(_conv(done + [("S", "[RST]")], outcome="tls"),
                             _conv(done + [("C", "[RST]")], outcome="tls")) == []


def test_tls_all_the_same_is_never_the_box() -> None:
    """Resets of the handshake that differ, in a pair whose outcome is tls all the same: listed, never the cause
    (outcome tls implies caused_by none)."""
    o = _conv(_TO_220 + [_HELLO, ("S", "[RST]")], outcome="tls", caused_by="none", reason="tls-established")
    i = _conv(_TO_220 + [_HELLO, ("C", "[RST]")], outcome="tls", caused_by="none", reason="tls-established")
    diffs = compare_dialogues(o, i)
    assert {(d["direction"], d["kind"]) for d in diffs} == {("server->client", "added"), ("client->server", "added")}
    v = joint_verdict(o, i, diffs)
    assert (v["outcome"], v["caused_by"], v["reason"]) == ("tls", "none", "tls-established")


def test_cli_a_capture_that_stops_earlier_is_not_tampering() -> None:
    """The text report and the exit status: a line only one capture shows, where the other stopped, is listed but is
    no change by the box (exit 0, no CHANGED tag); a box that killed TLS is (exit 1)."""
    e = EXPECTED["inside-ends-early"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]))
    assert rc == 0
    assert "CHANGED BY THE BOX" not in out
    assert "0 identical, 0 changed by the box (0 blamed on it), 1 with lines only one capture shows" in out
    e = EXPECTED["dpi-drop-clienthello"]
    rc, out, _err = _run(str(PAIRS / e["outside"]), str(PAIRS / e["inside"]))
    assert rc == 1
    assert "caused by middlebox, tls-handshake-failed  [CHANGED BY THE BOX]" in out


def test_a_close_the_box_only_passed_on_as_a_reset_is_not_its_doing() -> None:
    """An end that closed first and the box that turned its FIN into a RST on the other side: the RST is no
    evidence (the server ended the handshake with an alert and its FIN; the client closed with a FIN)."""
    alert = ("S", "[TLS alert: fatal handshake_failure (40)]")
    o = _conv(_TO_220 + [_HELLO, alert, ("S", "[RST]")], outcome="aborted", caused_by="server",
              reason="tls-handshake-failed")
    i = _conv(_TO_220 + [_HELLO, alert, ("S", "[FIN]"), ("C", "[FIN]")], outcome="aborted", caused_by="server",
              reason="tls-handshake-failed")
    diffs = compare_dialogues(o, i)
    assert [(d["direction"], d["kind"], d["outside_line"], d["inside_frame"]) for d in diffs] == [
        ("server->client", "added", "[RST]", 8)]          # where it would have been: the server's FIN
    assert joint_verdict(o, i, diffs)["caused_by"] == "server"
    o = _conv(_TO_220 + [_HELLO, ("C", "[FIN]"), ("S", "[FIN]")], outcome="aborted", caused_by="client",
              reason="tls-handshake-failed")
    i = _conv(_TO_220 + [_HELLO, ("C", "[RST]")], outcome="aborted", caused_by="client",
              reason="tls-handshake-failed")
    diffs = compare_dialogues(o, i)
    assert [(d["direction"], d["kind"], d["inside_line"]) for d in diffs] == [("client->server", "added", "[RST]")]
    assert joint_verdict(o, i, diffs)["caused_by"] == "client"


def test_a_dropped_alert_is_not_the_cause() -> None:
    """The server ended the handshake with an alert the box kept from the client: the alert's sender ended it."""
    alert = ("S", "[TLS alert: fatal handshake_failure (40)]")
    o = _conv(_TO_220 + [_HELLO, ("S", "[FIN]"), ("C", "[FIN]")], outcome="aborted", caused_by="server",
              reason="tls-handshake-failed")
    i = _conv(_TO_220 + [_HELLO, alert, ("S", "[FIN]"), ("C", "[FIN]")], outcome="aborted", caused_by="server",
              reason="tls-handshake-failed")
    diffs = compare_dialogues(o, i)
    assert [(d["kind"], d["inside_line"], d["outside_frame"]) for d in diffs] == [("removed", alert[1], 7)]
    v = joint_verdict(o, i, diffs)
    assert (v["caused_by"], v["tampered"]) == ("server", True)


def test_a_record_and_the_reset_in_its_place_are_not_a_rewrite() -> None:
    o = _conv(_TO_220 + [_HELLO, ("S", "[RST]")])
    i = _conv(_TO_220 + [("C", "[RST]")])
    assert [(d["direction"], d["kind"]) for d in compare_dialogues(o, i)] == [
        ("client->server", "removed"), ("client->server", "added"), ("server->client", "added")]


def _timed(lines: list[tuple[str, str, float]], **kw: Any) -> dict[str, Any]:
    ex = [ExchangeLine(n + 1, side, text, [], ts_ns=int(at * 1e9)) for n, (side, text, at) in enumerate(lines)]
    return dict(_conv([]), _exchange=ex, **kw)


@pytest.mark.parametrize("closes_after_s,blamed", [(0.5, False), (2.0, True), (300.0, True)])
def test_the_conversation_going_on_later_shows_a_record_never_arrived(closes_after_s: float, blamed: bool) -> None:
    """Nothing of the client's direction inside after the 220; the server's own FIN comes later. A second or more
    after the ClientHello was sent outside (after the clock offset, here 7 s), that shows it never arrived; sooner,
    it may still have been on its way (no evidence)."""
    to_220 = [(side, text, k * 0.01) for k, (side, text) in enumerate(_TO_220)]
    o = _timed(to_220 + [("C", _HELLO[1], 0.1), ("C", "[FIN]", 5.1), ("S", "[FIN]", 5.2)],
               outcome="aborted", caused_by="server", reason="tls-handshake-failed")
    i = _timed([(side, text, at + 7.0) for side, text, at in to_220] + [("S", "[FIN]", 7.1 + closes_after_s)],
               outcome="aborted", caused_by="server", reason="tls-handshake-failed")
    offset = 7 * 10**9
    diffs = compare_dialogues(o, i, offset_ns=offset)
    (d,) = diffs
    assert (d["kind"], d["outside_frame"], d["inside_frame"]) == ("removed", 6, 6 if blamed else None)
    v = joint_verdict(o, i, diffs, offset)
    assert v["caused_by"] == ("middlebox" if blamed else "server"), v["message"]
    assert v["tampered"] is blamed
    # without the clock offset, time proves nothing
    assert compare_dialogues(o, i)[0]["inside_frame"] is None


@pytest.mark.parametrize("shift_s", [-3600.0, -2.5, 0.75, 86400.0])
@pytest.mark.parametrize("name", ["dpi-blackhole", "dpi-drop-clienthello", "dpi-reset", "server-silent",
                                  "dpi-drop-answer", "dpi-drop-clienthello-fin", "dpi-drop-answer-fin",
                                  "fin-hole-unproven"])
def test_tls_verdicts_do_not_depend_on_the_clock(name: str, shift_s: float) -> None:
    """The inside clock shifted by any amount (its conversations and every line of their dialogue): the offset is
    estimated again, and the frames, verdicts and the time a record had to arrive in stay the same."""
    import dataclasses

    e = EXPECTED[name]
    shift = int(shift_s * 1e9)
    inside = [dict(c, started_ns=c["started_ns"] + shift, ended_ns=c["ended_ns"] + shift,
                   _exchange=[dataclasses.replace(ln, ts_ns=None if ln.ts_ns is None else ln.ts_ns + shift)
                              for ln in c["_exchange"]])
              for c in convs(PAIRS / e["inside"])]
    r = diff_conversations(convs(PAIRS / e["outside"]), inside)
    assert r["clock_offset_s"] == pytest.approx(e["clock_offset_s"] + shift_s, abs=0.05)
    for p, w in zip(r["pairs"], e["pairs"], strict=True):
        assert [_diff_tuple(d) for d in p["differences"]] == [_diff_tuple(d) for d in w["differences"]]
        assert (p["verdict"]["caused_by"], p["verdict"]["reason"]) == (w["caused_by"], w["reason"])


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump (apt-get install tcpdump)")
def test_real_client_through_a_box_that_drops_tls_to_a_real_server(tmp_path: Path) -> None:
    """CPython's smtplib (OpenSSL) through a relay that passes STARTTLS and the 220 but swallows the ClientHello
    and all the client sends after it, to aiosmtpd with real STARTTLS, both sides captured with tcpdump. The client
    waits 2 s for the ServerHello and closes; the relay passes the close on. Alone, outside blames the server and
    inside the client; the pair blames the box. A second delivery through the same relay, untouched, gets TLS."""
    import os
    import signal
    import smtplib
    import ssl
    import time
    if os.geteuid() != 0:
        pytest.skip("capturing on the loopback needs root (CI runs as root)")
    server, sport = _tls_sink(tmp_path)
    proxy = _StrippingProxy(sport, strip=set(), drop_tls=frozenset({0}))
    outside, inside = tmp_path / "outside.pcap", tmp_path / "inside.pcap"
    dumps = [subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w", str(path),
                               f"tcp port {port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for path, port in ((outside, proxy.port), (inside, sport))]
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    try:
        for d in dumps:
            assert d.stderr is not None
            line = d.stderr.readline().decode()
            assert "listening" in line, line
        c = smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example.test", timeout=2)
        c.ehlo()
        with pytest.raises((TimeoutError, OSError)):
            c.starttls(context=client_ctx)          # the ServerHello never comes
        c.close()
        time.sleep(0.5)
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example.test", timeout=10) as c:
            c.starttls(context=client_ctx)
            c.sendmail("alice@client.example.test", ["bob@mx.example.test"], "Subject: t\r\n\r\nhi\r\n")
        time.sleep(0.5)
    finally:
        for d in dumps:
            d.send_signal(signal.SIGINT)
            d.wait(timeout=10)
        proxy.close()
        server.stop()
    rc, out, err = _run(str(outside), str(inside), "--format", "json")
    doc = json.loads(out)
    assert rc == 1, err
    first, second = doc["pairs"]
    assert (first["outside"]["stream"], first["inside"]["stream"]) == (0, 0)
    assert (first["outside"]["caused_by"], first["outside"]["reason"]) == ("server", "tls-handshake-failed")
    assert (first["inside"]["caused_by"], first["inside"]["reason"]) == ("client", "tls-not-started")
    v = first["verdict"]
    assert (v["outcome"], v["caused_by"], v["reason"]) == ("aborted", "middlebox", "tls-handshake-failed"), v
    (d,) = first["differences"]
    assert (d["direction"], d["kind"]) == ("client->server", "removed")
    assert d["outside_line"].startswith("[TLS ClientHello") and d["inside_frame"] is not None
    # the frames, as tshark sees them: the ClientHello outside, the client's FIN inside
    if shutil.which("tshark"):
        assert d["outside_frame"] == _tshark_frames(outside, 0, "tls.handshake.type == 1")[0]
        assert d["inside_frame"] == _tshark_frames(inside, 0, f"tcp.flags.fin == 1 && tcp.dstport == {sport}")[0]
    assert second["identical"] and second["verdict"]["reason"] == "tls-established"


# ------------------------------------------------------------------------------------------------- (h)

def _gap_lines(conv: dict[str, Any]) -> list[ExchangeLine]:
    return [ln for ln in conv["_exchange"] if ln.side == "!" and "missing in the capture" in ln.text]


def _pair_convs(name: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    e = EXPECTED[name]
    truth = e["pairs"][0]
    o = next(c for c in convs(PAIRS / e["outside"]) if c["stream"] == truth["outside_stream"])
    i = next(c for c in convs(PAIRS / e["inside"]) if c["stream"] == truth["inside_stream"])
    return o, i, int(run_pair(name)["clock_offset_s"] * 1e9)


def test_the_exchange_says_whether_the_receiver_acknowledged_a_hole() -> None:
    """The TCP layer's fact reaches the dialogue diff reads: the firewall's hole inside, never acknowledged by the
    server; the capture's loss outside, acknowledged by the client."""
    o, i, _ = _pair_convs("dpi-drop-clienthello-fin")
    assert [(g.frame, g.text, g.acked) for g in _gap_lines(i)] == [
        (14, "[166 bytes from the client missing in the capture]", False)]
    assert _gap_lines(o) == []
    o, i, _ = _pair_convs("capture-lost-offer")
    assert [(g.frame, g.text, g.acked) for g in _gap_lines(o)] == [
        (9, "[14 bytes from the server missing in the capture]", True)]
    o, _i, _ = _pair_convs("dpi-drop-answer-fin")
    # (at the server's ACK of the client's FIN, its first segment past the hole: tshark's
    # lost_segment, before its own FIN)
    assert [(g.frame, g.text, g.acked) for g in _gap_lines(o)] == [
        (17, "[913 bytes from the server missing in the capture]", False)]
    # every other line has no such fact
    assert {ln.acked for ln in o["_exchange"] if ln.side != "!"} == {None}


def test_a_hole_the_receiver_never_acknowledged_is_the_box_dropping_it() -> None:
    """The firewall forwarded the client's FIN past the ClientHello it dropped: the removal is proven at that FIN
    (the server's own FIN, 300 s later, still acknowledges nothing of it), and the message says what the hole
    shows. Alone, the outside blames the client (it closed 0.1 s after its ClientHello), the inside no one."""
    (p,) = run_pair("dpi-drop-clienthello-fin")["pairs"]
    v = p["verdict"]
    assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
        "aborted", "middlebox", "tls-handshake-failed", True)
    assert [_diff_tuple(d) for d in p["differences"]] == [
        ("client->server", "removed", 14, 14, CH_TEXT, None)]
    assert ("it never arrived (inside frame 14: the inside capture has 166 bytes from the client missing there, "
            "which the server never acknowledged in its later segments: they never reached it)") in v["message"]


def test_the_answer_dropped_before_a_quick_close_is_no_evidence() -> None:
    """The server's answer dropped, its FIN forwarded past it (it crossed because the client gave up 0.1 s after
    the answer was sent, before the server's first resend): the client never acknowledged the hole, but its only
    segments after it are its FIN 0.1 s after the answer (which may still have been on its way) and pure ACKs.
    No evidence against the box; the outside alone is incomplete and the inside's decided verdict (the client
    closed 0.1 s after the answer) rests on an answer that nothing shows reached the client: the pair stays
    incomplete rather than blame the client for what the box may have kept from it."""
    (p,) = run_pair("dpi-drop-answer-fin")["pairs"]
    v = p["verdict"]
    assert (p["outside"]["outcome"], p["inside"]["caused_by"]) == ("incomplete", "client")
    assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
        "incomplete", "unknown", "incomplete", False)
    assert {(d["outside_frame"], d["inside_frame"]) for d in p["differences"]} == {(None, 16)}
    assert ("the outside capture lost 913 bytes from the server, and nothing in it shows whether the client got "
            "them (the line may be among them): no evidence") in v["message"]


def test_with_nothing_proven_an_incomplete_outside_gives_way_to_a_decided_inside() -> None:
    """When the two captures prove no change by the box, the pair keeps a single-capture verdict: the outside's,
    unless it blames a middlebox or is incomplete while the inside's is decided and every line the outside lacks
    lies in bytes its receiver acknowledged there (the outside lost what decides, the inside shows it, and it
    reached the client). Over every generated pair: capture-lost-offer (the client acknowledged the lost offer)
    takes the inside's, dpi-drop-answer-fin (the client never acknowledged the lost answer) stays incomplete."""
    took_inside, stayed = [], []
    for name in sorted(EXPECTED):
        for p in run_pair(name)["pairs"]:
            if any(proven(d) for d in p["differences"]):
                continue
            o, i, v = p["outside"], p["inside"], p["verdict"]
            acked = "which the client acknowledged (they reached it" in v["message"] \
                or "which the server acknowledged (they reached it" in v["message"]
            if o["caused_by"] == "middlebox" or (o["outcome"] == "incomplete" and i["outcome"] != "incomplete"
                                                 and (not p["differences"] or acked)):
                assert (v["caused_by"], v["reason"]) == (i["caused_by"], i["reason"]), name
                if o["outcome"] == "incomplete":
                    took_inside.append(name)
            else:
                assert (v["caused_by"], v["reason"]) == (o["caused_by"], o["reason"]), name
                if o["outcome"] == "incomplete" and i["outcome"] != "incomplete":
                    stayed.append(name)
            assert v["tampered"] is False
    assert "capture-lost-offer" in took_inside and "dpi-drop-answer-fin" in stayed


def test_a_hole_the_receiver_acknowledged_is_the_captures_loss() -> None:
    """The outside capture lost the segment with 250-STARTTLS, which the client acknowledged: before, the next line
    of the reply 'proved' the removal and the box was blamed for stripping STARTTLS."""
    (p,) = run_pair("capture-lost-offer")["pairs"]
    v = p["verdict"]
    assert [_diff_tuple(d) for d in p["differences"]] == [
        ("server->client", "removed", None, 9, None, "250-STARTTLS")]
    # no evidence against the box; the outside alone is incomplete (the line is in its hole), the inside shows the
    # offer and a client that did not ask: the pair takes the inside's
    assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
        "plaintext", "client", "client-did-not-request", False)
    assert ("the outside capture lost 14 bytes from the server, which the client acknowledged (they reached "
            "it: only the capture lost them; the line may be among them): no evidence") in v["message"]
    rc, out, _err = _run(str(PAIRS / EXPECTED["capture-lost-offer"]["outside"]),
                         str(PAIRS / EXPECTED["capture-lost-offer"]["inside"]))
    assert rc == 0 and "CHANGED BY THE BOX" not in out


@pytest.mark.parametrize("second_acked", [False, None, True])
def test_the_message_and_the_verdict_ask_the_same_of_the_holes(second_acked: bool | None) -> None:
    """The outside lacks '250 STARTTLS' and has two holes of the server's: the first acknowledged by the client,
    the second not (or nothing says), or both acknowledged. The pair takes the inside's decided verdict only when
    the client acknowledged every hole (the line reached it); the message says "they reached it" only then too,
    and otherwise which bytes reached the client and which nothing shows it got."""
    outside = [ExchangeLine(1, "S", "220 mx", []),
               ExchangeLine(2, "!", "[10 bytes from the server missing in the capture]", [], acked=True),
               ExchangeLine(2, "C", "EHLO c", []), ExchangeLine(3, "S", "250-mx", []),
               ExchangeLine(3, "S", "250-SIZE 1000", []),
               ExchangeLine(5, "!", "[14 bytes from the server missing in the capture]", [], acked=second_acked),
               ExchangeLine(4, "C", "MAIL FROM:<a@b>", []), ExchangeLine(5, "S", "250 ok", [])]
    o = dict(_conv([]), _exchange=outside, outcome="incomplete", caused_by="unknown", reason="incomplete")
    i = _conv(EHLO_IN, caused_by="client", reason="client-did-not-request")
    (d,) = compare_dialogues(o, i)
    assert (d["direction"], d["kind"], d["outside_frame"], d["inside_frame"], d["inside_line"]) == (
        "server->client", "removed", None, 5, "250 STARTTLS")
    v = joint_verdict(o, i, [d])
    if second_acked:
        assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
            "plaintext", "client", "client-did-not-request", False)
        words = ("lost 24 bytes from the server, which the client acknowledged (they reached it: only the capture "
                 "lost them; the line may be among them)")
    else:
        assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
            "incomplete", "unknown", "incomplete", False)
        words = ("lost 24 bytes from the server; the client acknowledged 10 of them (they reached it), and nothing "
                 "in it shows whether it got the other 14 (the line may be among them)")
    assert v["message"] == (
        "1 line seen on one side only, where the other capture does not show that direction (first: the server "
        f"sent '250 STARTTLS' (inside frame 5); the outside capture {words}: no evidence): no evidence that the "
        "box changed anything; outside alone: unknown (incomplete); inside alone: client (client-did-not-request)")


@pytest.mark.parametrize("acked", [True, None])
def test_the_same_hole_acknowledged_or_unknown_is_no_evidence(acked: bool | None) -> None:
    """dpi-drop-clienthello-fin with the one fact flipped: had the server acknowledged the hole, it got the bytes
    (the capture lost them); a hole nothing says of (None) may be a loss too. Either way no evidence from the pair:
    its verdict is the outside's own, which shows the loss by itself (the server's FIN there, 300 s after the
    ClientHello, still acknowledges nothing of it)."""
    import dataclasses

    o, i, offset = _pair_convs("dpi-drop-clienthello-fin")
    i2 = dict(i, _exchange=[dataclasses.replace(ln, acked=acked) if ln.side == "!" else ln for ln in i["_exchange"]])
    (d,) = compare_dialogues(o, i2, offset_ns=offset)
    assert (d["outside_frame"], d["inside_frame"]) == (14, None)
    v = joint_verdict(o, i2, [d], offset)
    assert (o["caused_by"], o["reason"], o["case"]) == ("middlebox", "tls-handshake-failed", "hello-lost")
    assert (v["caused_by"], v["reason"], v["tampered"]) == ("middlebox", "tls-handshake-failed", False)
    assert "no evidence that the box changed anything" in v["message"]


def test_a_hole_with_nothing_of_the_receiver_after_it_is_no_evidence() -> None:
    """Without the server's FIN (the only segment of the server's after the hole that is part of the dialogue), the
    unacknowledged hole proves nothing: the capture would show no ACK of it either way."""
    o, i, offset = _pair_convs("dpi-drop-clienthello-fin")
    i2 = dict(i, _exchange=[ln for ln in i["_exchange"] if not (ln.side == "S" and ln.text == "[FIN]")])
    (d,) = compare_dialogues(o, i2, offset_ns=offset)
    assert (d["outside_frame"], d["inside_frame"]) == (14, None)
    v = joint_verdict(o, i2, [d], offset)
    assert (v["caused_by"], v["tampered"]) == ("middlebox", False)    # the outside's own verdict (hello-lost)
    (p,) = run_pair("fin-hole-unproven")["pairs"]
    assert [_diff_tuple(d) for d in p["differences"]] == [("client->server", "removed", 14, None, CH_TEXT, None)]
    # alone, the outside too cannot tell: the client closed 0.1 s after a ClientHello the server had not acknowledged
    assert (p["outside"]["outcome"], p["inside"]["outcome"]) == ("incomplete", "incomplete")
    assert (p["verdict"]["caused_by"], p["verdict"]["reason"], p["verdict"]["tampered"]) == (
        "unknown", "incomplete", False)
    assert "the inside capture lost 166 bytes from the client, and nothing in it shows whether the server " \
           "got them" in p["verdict"]["message"]


def _gap(n: int, who: str, frame: int, at: float, acked: bool | None, cut: bool = False) -> ExchangeLine:
    how = " cut by the snap length," if cut else ""
    return ExchangeLine(frame, "!", f"[{n} bytes from the {who}{how} missing in the capture]", [],
                        ts_ns=int(at * 1e9), acked=acked)


@pytest.mark.parametrize("server_fin_s,offset,cut,blamed", [
    (5.5, True, False, True),        # 5.4 s after the ClientHello was sent outside: it would have been acknowledged
    (5.5, False, False, False),      # no clock offset, and only 0.4 s after the hole's next frame: may be on its way
    (6.5, False, False, True),       # no clock offset, but 1.4 s after the client's FIN that follows the hole
    (0.9, True, False, False),       # 0.8 s after it was sent outside: it may still have been on its way
    (300.0, True, True, False),      # a snap-length cut: the bytes were on the wire at the capture point
])
def test_when_an_unacknowledged_hole_proves_a_drop(server_fin_s: float, offset: bool, cut: bool,
                                                    blamed: bool) -> None:
    """Hand-made timed dialogues (inside clock = outside + 7 s): the ClientHello sent outside at 0.1 s, inside a
    hole of the client's direction before its FIN at 5.1 s, never acknowledged, and the server's FIN (which carries
    its ACK) at ``server_fin_s``. That FIN proves the server never got the bytes only when it comes a second or more
    after they were sent (by the outside capture's time of the ClientHello, or by the frame after the hole)."""
    to_220 = [(side, text, k * 0.01) for k, (side, text) in enumerate(_TO_220)]
    o = _timed(to_220 + [("C", _HELLO[1], 0.1), ("C", "[FIN]", 5.1)],
               outcome="aborted", caused_by="server", reason="tls-handshake-failed")
    i = _timed([(side, text, at + 7.0) for side, text, at in to_220], outcome="incomplete", caused_by="unknown",
               reason="incomplete")
    n = len(i["_exchange"])
    i["_exchange"] += [_gap(166, "client", n + 1, 12.1, False, cut),
                       ExchangeLine(n + 1, "C", "[FIN]", [], ts_ns=int(12.1 * 1e9)),
                       ExchangeLine(n + 2, "S", "[FIN]", [], ts_ns=int((7.0 + server_fin_s) * 1e9))]
    off = 7 * 10**9 if offset else None
    (d,) = compare_dialogues(o, i, offset_ns=off)
    assert (d["kind"], d["outside_frame"], d["inside_frame"]) == ("removed", 6, n + 1 if blamed else None)
    v = joint_verdict(o, i, [d], off)
    assert (v["caused_by"], v["tampered"]) == ("middlebox" if blamed else "server", blamed), v["message"]


def test_a_reset_of_the_receiver_proves_nothing_of_a_hole() -> None:
    """A RST may carry no ACK: the server's reset after the hole says nothing of what it had received."""
    to_220 = [(side, text, k * 0.01) for k, (side, text) in enumerate(_TO_220)]
    o = _timed(to_220 + [("C", _HELLO[1], 0.1), ("C", "[FIN]", 5.1)],
               outcome="aborted", caused_by="server", reason="tls-handshake-failed")
    i = _timed(to_220, outcome="incomplete", caused_by="unknown", reason="incomplete")
    n = len(i["_exchange"])
    i["_exchange"] += [_gap(166, "client", n + 1, 5.1, False),
                       ExchangeLine(n + 1, "C", "[FIN]", [], ts_ns=5_100_000_000),
                       ExchangeLine(n + 2, "S", "[RST]", [], ts_ns=300 * 10**9)]
    diffs = compare_dialogues(o, i, offset_ns=0)
    (d,) = [d for d in diffs if d["direction"] == "client->server"]
    assert (d["kind"], d["outside_frame"], d["inside_frame"]) == ("removed", 6, None)


def test_a_hole_on_the_senders_side_proves_no_addition() -> None:
    """The server got a line the client's side capture lacks, where that capture has a hole of the client's bytes:
    the line may be in the hole, whatever the server acknowledged; it is no evidence that the box added it."""
    smtp = [("S", "220 mx"), ("C", "EHLO c"), ("S", "250 ok"), ("C", "MAIL FROM:<a@b>"), ("S", "250 ok")]
    o = _conv(smtp)
    n = len(o["_exchange"])
    o["_exchange"] += [_gap(6, "client", n + 1, 0.0, False), ExchangeLine(n + 1, "C", "[FIN]", []),
                       ExchangeLine(n + 2, "S", "[FIN]", [])]
    i = _conv(smtp + [("C", "QUIT"), ("C", "[FIN]"), ("S", "[FIN]")])
    (d,) = compare_dialogues(o, i)
    assert (d["kind"], d["outside_frame"], d["inside_line"]) == ("added", None, "QUIT")


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_holes_agree_with_tshark() -> None:
    """tshark's own analysis of the hole captures: the frame after the hole is the one it marks 'previous segment
    not captured'; the receiver's ACKs never reach past the hole where diff says they never arrived, and do where it
    says the capture lost them."""
    def rows(name: str, side: str, fields: list[str], filt: str = "tcp") -> list[list[str]]:
        e = EXPECTED[name]
        proc = subprocess.run(["tshark", "-r", str(PAIRS / e[side]), "-Y",
                               f"tcp.stream == {e['pairs'][0][f'{side}_stream']} && ({filt})", "-T", "fields",
                               *[x for f in fields for x in ("-e", f)]], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [line.split("\t") for line in proc.stdout.splitlines()]

    to_server, from_server = "tcp.dstport == 25", "tcp.srcport == 25"
    # the ClientHello dropped: inside, the client's FIN follows the hole; the server's ACKs stay before its seq
    (fin,) = rows("dpi-drop-clienthello-fin", "inside", ["frame.number", "tcp.seq"],
                  f"{to_server} && tcp.analysis.lost_segment")
    assert int(fin[0]) == EXPECTED["dpi-drop-clienthello-fin"]["pairs"][0]["differences"][0]["inside_frame"]
    acks = [int(a) for (a,) in rows("dpi-drop-clienthello-fin", "inside", ["tcp.ack"], from_server)]
    assert max(acks) == int(fin[1]) - 166
    # the ClientHello and the client's resends (with its FIN) outside, the client's FIN 0.1 s after it
    resent = rows("dpi-drop-clienthello-fin", "outside", ["frame.number", "tcp.flags.fin"],
                  f"{to_server} && tcp.analysis.retransmission")
    assert len(resent) == 3 and all(fin == "True" or fin == "1" for _f, fin in resent)
    # the answer dropped: outside, the server's segments after the hole (its ACK, its FIN); the client's ACKs stay
    # before it
    after = rows("dpi-drop-answer-fin", "outside", ["frame.number", "tcp.seq"], f"{from_server} && tcp.seq > 187")
    assert [int(f) for f, _ in after][-1] == 18
    acks = [int(a) for (a,) in rows("dpi-drop-answer-fin", "outside", ["tcp.ack"], to_server)]
    assert max(acks) == int(after[0][1]) - 913
    # the capture's loss: the client's ACK covers the segment after the hole
    (nxt,) = rows("capture-lost-offer", "outside", ["frame.number", "tcp.seq", "tcp.len"],
                  f"{from_server} && tcp.analysis.lost_segment")
    acks = [int(a) for (a,) in rows("capture-lost-offer", "outside", ["tcp.ack"], to_server)]
    assert max(acks) >= int(nxt[1]) + int(nxt[2])


@pytest.mark.live
@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("ip") is None,
                    reason="needs tcpdump and ip (apt-get install tcpdump iproute2)")
def test_real_stacks_behind_a_firewall_that_forwards_the_fin(tmp_path: Path) -> None:
    """Real Linux TCP stacks in three network namespaces; the box between them (tests/finbox.py) forwards every
    frame but the client's segments that start a TLS record, from one source port: its ClientHello and every
    resend. CPython's smtplib gives up 0.1 s after its ClientHello and closes; its FIN, past the ClientHello,
    crosses the box; the server (OpenSSL) gives the handshake 4 s and closes. Inside, a hole before the client's
    FIN that the server never acknowledges (its duplicate ACK and its FIN; tshark's ACK numbers agree), and the
    pair blames the box; a second delivery from another port gets TLS through the same box, identical on both
    sides. (The client gives up before its first retransmission timeout on purpose: after one, Linux's congestion
    window of one segment holds the FIN back and joins it to the resent ClientHello, which such a box drops too;
    then no FIN crosses, and the server's own FIN 4 s later shows the rest, as in dpi-blackhole.)"""
    import os
    import time

    from boxnet import BoxNet

    if os.geteuid() != 0:
        pytest.skip("network namespaces and captures need root (CI runs as root)")
    outside, inside = tmp_path / "outside.pcap", tmp_path / "inside.pcap"
    finbox = str(REPO / "tests" / "finbox.py")
    cert, key = _self_signed(tmp_path)
    with BoxNet(f"dpf{os.getpid() % 100000}", "10.9.0.1", "10.9.0.2") as net:
        for path, dev in ((outside, net.c1), (inside, net.s1)):
            net.start(net.box, "tcpdump", "-i", dev, "-U", "--immediate-mode", "-s", "0", "-w", str(path),
                      "tcp port 25", ready="listening")
        net.start(net.box, sys.executable, finbox, "bridge", net.c1, net.s1, "40001", ready="ready")
        server = net.start(net.srv, sys.executable, finbox, "server", "10.9.0.2", str(cert), str(key), "4", "2",
                           ready="ready")
        first = net.run(net.cli, sys.executable, finbox, "client", "10.9.0.2", "40001", "0.1")
        assert first.stdout.strip() == "gave up", first.stderr
        time.sleep(4.5)                                  # the server's own timeout closes its side
        second = net.run(net.cli, sys.executable, finbox, "client", "10.9.0.2", "40002", "10")
        assert second.stdout.strip() == "tls", second.stderr
        server.wait(timeout=30)
        time.sleep(0.5)
    rc, out, err = _run(str(outside), str(inside), "--format", "json")
    doc = json.loads(out)
    assert rc == 1, err
    first_p, second_p = doc["pairs"]
    assert [p["match"]["method"] for p in doc["pairs"]] == ["addresses", "addresses"]
    # alone, the outside shows a client that closed 0.1 s after its ClientHello, and the server's later segments, a
    # second or more after it, still acknowledging nothing of it: the client's TCP resent it after the close and it
    # never arrived (hello-lost)
    assert (first_p["outside"]["caused_by"], first_p["outside"]["reason"], first_p["outside"]["case"]) == (
        "middlebox", "tls-handshake-failed", "hello-lost")
    v = first_p["verdict"]
    assert (v["outcome"], v["caused_by"], v["reason"], v["tampered"]) == (
        "aborted", "middlebox", "tls-handshake-failed", True), v
    (d,) = first_p["differences"]
    assert (d["direction"], d["kind"]) == ("client->server", "removed") and d["outside_line"].startswith(
        "[TLS ClientHello")
    assert "which the server never acknowledged in its later segments: they never reached it" in v["message"]
    # the inside exchange: the hole, never acknowledged, before the client's FIN
    conv = next(c for c in analyze_file(str(inside), AnalysisConfig(keep_exchange=True)).conversations
                if c["stream"] == first_p["inside"]["stream"])
    (gap,) = [ln for ln in conv["_exchange"] if ln.side == "!"]
    assert gap.acked is False
    n = int(gap.text[1:].split(" ", 1)[0])
    if shutil.which("tshark"):
        stream = first_p["inside"]["stream"]
        (fin,) = _tshark_frames(inside, stream, "tcp.flags.fin == 1 && tcp.dstport == 25 && tcp.analysis.lost_segment")
        assert d["inside_frame"] == fin
        assert d["outside_frame"] == _tshark_frames(outside, first_p["outside"]["stream"], "tls.handshake.type == 1")[0]
        assert _tshark_frames(inside, stream, "tls.handshake.type == 1") == []
        proc = subprocess.run(["tshark", "-r", str(inside), "-Y", f"tcp.stream == {stream}", "-T", "fields",
                               "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.ack", "-e", "frame.number"],
                              capture_output=True, text=True, timeout=60, check=True)
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        fin_seq = next(int(s) for sp, s, _a, f in rows if int(f) == fin)
        # every ACK of the server stays before the hole: it never got the ClientHello
        assert max(int(a) for sp, _s, a, _f in rows if sp == "25") == fin_seq - n
    assert second_p["identical"] and second_p["verdict"]["reason"] == "tls-established"
