"""Captures of one direction only. The server's (captures/scenarios_oneside.py): the verdict stays
``incomplete`` (what the client did is not in the capture), but the server's first reply after
its greeting, a positive reply of two lines or more, is read as its EHLO reply: the STARTTLS
offer, the findings on it and a 220 right after it (STARTTLS answered).

Cross-checked against tshark, which dissects the server's replies without the client's
commands too: the EHLO reply's frames are those of tshark's second SMTP response (up to the
frame of its last line), the misplaced keyword stands on the line tshark shows first, the 220
is tshark's third response, and tshark sees the control's hole (``tcp.analysis.lost_segment``).

The client's (captures/one-sided-client.pcap): ``incomplete`` too, and the detail names what the
client sent in the clear, at the frame of tshark's ``MAIL`` request. On port 465
(captures/one-sided-client-465-*.pcap, and client-only cuts of the two-direction SMTPS captures
made here with ``tshark -w``): a ClientHello, then the client's alert, close or reset, is
``incomplete``, not ``aborted``/``client``: the server's answer that it ended on is not in the
capture. The frames are tshark's ClientHello, alert record and the client's FIN or RST.

The server's with STARTTLS answered 220 and a handshake begun
(captures/one-sided-server-tls12-cert.pcap, -tls13.pcap): the server's bytes after the 220 are
TLS, so its certificate and its findings are read as in a whole capture (TLS 1.2), or only the
ServerHello (TLS 1.3); cross-checked with tshark decoding the port as TLS (``-d``), as it cannot
know that STARTTLS was sent.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.commands.main import main
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching, tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"

#: capture -> (offered, requested, reply code, the detail's words on the offer)
READ = {
    "one-sided-server-misplaced.pcap": ("misplaced", False, None,
                                        "puts STARTTLS where a client that follows RFC 5321 does not read it"),
    "one-sided-server-valid.pcap": ("valid", True, 220, "offers STARTTLS"),
    "one-sided-server-absent.pcap": ("absent", False, None, "does not offer STARTTLS"),
}


#: what a capture without any packet of a side says of it, in the one-sided finding and the detail:
#: one direction captured and a tap that lost all of that side's packets look alike
NO_SERVER = "no packet of the server is in the capture (a capture of one direction, or a tap that lost them all)"
NO_CLIENT = "no packet of the client is in the capture (a capture of one direction, or a tap that lost them all)"


def _one_sided_finding(conv: dict[str, Any], words: str) -> None:
    """The first finding is ``one-sided`` at the first frame, in the detail's words."""
    first = conv["findings"][0]
    assert (first["code"], first["side"], first["frame"], first["message"]) == ("one-sided", "capture", 1, words)


def _conv(name: str) -> dict[str, Any]:
    (conv,) = analyze_path(str(CAPTURES / name))
    return conv


def _responses(name: str) -> list[tuple[int, list[str]]]:
    """The lines of every frame tshark dissects as an SMTP response, in frame order (from the
    frame's TCP payload: tshark's own ``smtp.response`` field holds a frame's first line only)."""
    rows = tshark_fields(CAPTURES / name, "smtp.response", "frame.number", "tcp.payload")
    return [(int(frame), bytes.fromhex(payload.replace(":", "")).decode("latin-1").splitlines())
            for frame, payload in rows]


def _ehlo_reply_frames(name: str) -> list[int]:
    """The frames of the second response (the first after the banner), as tshark reads it: from
    its first frame to the one whose last line ends the reply (``250 `` not ``250-``)."""
    frames = []
    for frame, lines in _responses(name)[1:]:
        frames.append(frame)
        if lines[-1][3:4] != "-":
            return frames
    raise AssertionError(f"{name}: no end of the reply after the banner")


@pytest.mark.parametrize("name", sorted(READ))
def test_the_reply_after_the_greeting_is_read_as_the_ehlo_reply(name: str) -> None:
    conv = _conv(name)
    offered, requested, code, words = READ[name]
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": offered, "requested": requested, "reply_code": code, "frame": None}
    assert conv["greeting"] is None
    frames = _ehlo_reply_frames(name)
    assert conv["ehlo_reply"]["frames"] == frames
    tls = ""
    if name == "one-sided-server-valid.pcap":
        # (STARTTLS answered and the handshake went on: the server's TLS after the 220)
        ((hello,),) = _as_tls(CAPTURES / name, "tls.handshake.type == 2", "frame.number")
        ((cert,),) = _as_tls(CAPTURES / name, "tls.handshake.type == 11", "frame.number")
        tls = (f"; after its 220 (frame {_ready_frame(name)}) the server sent a ServerHello (frame {hello}, "
               f"TLS 1.2) and its certificate (frame {cert})")
    assert conv["detail"] == (f"{NO_CLIENT}; the server's reply after its greeting "
                              f"(frame {frames[0]}) is an EHLO reply that {words}, but what the client did "
                              "is not in the capture" + tls)
    assert conv["evidence_frame"] == conv["first_frame"] == 1
    assert "clients" in conv
    findings = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    assert findings[0] == ("one-sided", "capture", 1)
    _one_sided_finding(conv, NO_CLIENT)
    # only the server's packets: tshark sees none to the server's port
    assert frames_matching(CAPTURES / name, "tcp.dstport == 25") == []


def test_a_misplaced_offer_is_the_servers_finding_at_the_line_tshark_shows_first() -> None:
    name = "one-sided-server-misplaced.pcap"
    conv = _conv(name)
    (first_frame, first_lines), *_ = _responses(name)[1:]
    assert first_lines[0] == "250-STARTTLS"
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("ehlo-keyword-as-domain", "server", first_frame)]
    assert conv["server_name"] != "STARTTLS"
    assert "postfix" in conv["clients"]["downgrade"] and "curl" in conv["clients"]["see_starttls"]


def test_the_220_after_the_offer_is_the_answer_to_starttls() -> None:
    name = "one-sided-server-valid.pcap"
    responses = _responses(name)
    frame, lines = responses[2]
    assert lines[0].startswith("220 ") and frame > _ehlo_reply_frames(name)[-1]
    assert _conv(name)["starttls"]["reply_code"] == 220


@pytest.mark.parametrize("name", ["one-sided-server-one-line.pcap", "one-sided-server-hole.pcap",
                                  "one-sided-server-second-banner.pcap", "one-sided-server-early-end.pcap"])
def test_no_ehlo_reply_is_named_when_the_reply_may_be_another(name: str) -> None:
    """A one-line 250 may answer HELO; after a hole of the server's direction, the first reply
    after the greeting is not known; a 220 of two lines is no EHLO reply; a reply without
    STARTTLS followed by one with it may have ended early: the offer stays unknown."""
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"]["offered"] == "unknown" and conv["ehlo_reply"] is None
    assert "clients" not in conv
    findings = [(f["code"], f["side"], f["frame"]) for f in conv["findings"]]
    if name == "one-sided-server-hole.pcap":
        (lost,) = frames_matching(CAPTURES / name, "tcp.analysis.lost_segment")
        assert findings == [("one-sided", "capture", 1), ("tcp-gap", "capture", lost)]
        assert conv["detail"] == "bytes of the decisive exchange were lost"
    else:
        assert findings == [("one-sided", "capture", 1)]
        assert conv["detail"] == NO_CLIENT


def test_a_client_only_capture_names_what_the_client_sent_in_the_clear() -> None:
    name = "one-sided-client.pcap"
    conv = _conv(name)
    ((mail,),) = tshark_fields(CAPTURES / name, 'smtp.req.command == "MAIL"', "frame.number")
    assert frames_matching(CAPTURES / name, "tcp.srcport == 25") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": False, "reply_code": None, "frame": None}
    assert conv["mail"] is True and conv["ehlo_reply"] is None
    assert conv["detail"] == (f"{NO_SERVER}; the client sent MAIL FROM in the clear (frame "
                              f"{mail}), but the server's replies, which would tell why, are not in the capture")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]
    _one_sided_finding(conv, NO_SERVER)


def _hello_end_detail(path: Path, then: str, start: str = NO_SERVER) -> str:
    ((hello,),) = tshark_fields(path, "tls.handshake.type == 1", "frame.number")
    ((end, reset),) = tshark_fields(path, "tcp.flags.fin == 1 || tcp.flags.reset == 1", "frame.number",
                                    "tcp.flags.reset")
    how = "reset" if reset in ("1", "True") else "closed"
    return (f"{start}; the client sent a ClientHello (frame {hello}), then {then}"
            f"{how} the connection (frame {end}), but the server's side of the handshake, which would tell "
            "why, is not in the capture")


@pytest.mark.parametrize("name, alert_filter, alert_words", [
    ("one-sided-client-465-alert.pcap", "tls.alert_message.desc == 48", "the fatal TLS alert unknown_ca (48)"),
    ("one-sided-client-465-tls13.pcap", "tls.record.content_type == 23 && tls.record.length == 19",
     "an encrypted alert"),
])
def test_a_client_only_smtps_handshake_is_incomplete(name: str, alert_filter: str, alert_words: str) -> None:
    """Only the client's direction on port 465: its ClientHello, its alert (in clear, or TLS 1.3's
    record of alert size) and its close. The server's answer, a certificate the client refused or
    plaintext SMTP or nothing, is not in the capture: no blame, the detail says what the client did."""
    path = CAPTURES / name
    conv = _conv(name)
    assert frames_matching(path, "tcp.srcport == 465") == []
    (alert,) = frames_matching(path, alert_filter)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == _hello_end_detail(path, f"{alert_words} (frame {alert}), then ")
    _one_sided_finding(conv, NO_SERVER)
    assert conv["evidence_frame"] == 1
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-alert", "client", alert)]
    assert conv["tls"]["alert"]["frame"] == alert and conv["tls"]["server_hello_frame"] is None


#: two-direction SMTPS captures whose client-only cut (``dst port 465``) the sweep read as
#: ``aborted``/``client``: the server answered in plaintext, sent nothing the client got, or its
#: bytes were lost; the client's ClientHello and close or reset is all the cut shows
SMTPS_WHOLE = ["implicit-tls-after-banner.pcap", "implicit-tls-mismatch.pcap", "lost-server-direction-465.pcap",
               "pathhole-smtps-answer-lost.pcap"]


@pytest.mark.parametrize("name", SMTPS_WHOLE)
def test_a_client_only_cut_of_an_smtps_capture_is_incomplete(name: str, tmp_path: Path) -> None:
    cut = _cut(name, tmp_path, "tcp.dstport == 465")
    whole = _conv(name)
    (conv,) = analyze_path(str(cut))
    assert whole["caused_by"] != "client"
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == _hello_end_detail(cut, "")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]


def _cut(name: str, tmp_path: Path, display_filter: str) -> Path:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    cut = tmp_path / "cut.pcap"
    subprocess.run(["tshark", "-n", "-r", str(CAPTURES / name), "-Y", display_filter, "-w", str(cut)],
                   check=True, capture_output=True, timeout=120)
    return cut


def test_a_client_only_cut_with_the_servers_syn_ack_says_so(tmp_path: Path) -> None:
    """The server's SYN-ACK kept in a client-only cut (it opens the flow, no segment of it): the
    detail does not say no packet of the server is in the capture, but none after its SYN-ACK."""
    cut = _cut("pathhole-smtps-answer-lost.pcap", tmp_path,
               "tcp.dstport == 465 || (tcp.flags.syn == 1 && tcp.flags.ack == 1)")
    (synack,) = frames_matching(cut, "tcp.srcport == 465")
    assert frames_matching(cut, "tcp.srcport == 465 && tcp.flags.syn == 1 && tcp.flags.ack == 1") == [synack]
    (conv,) = analyze_path(str(cut))
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == _hello_end_detail(
        cut, "", "no packet of the server after its SYN-ACK is in the capture")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]
    # (the finding in the detail's words: not "only the client's direction was captured")
    _one_sided_finding(conv, "no packet of the server after its SYN-ACK is in the capture")


def test_a_client_only_cut_of_a_successful_smtps_session_is_no_handshake_failure(tmp_path: Path) -> None:
    """implicit-tls-465.pcap cut to the client's direction: its ChangeCipherSpec and Finished, six
    application-data records, then its close_notify (an encrypted alert, in TLS 1.2 a record of
    26 bytes; in TLS 1.3 it would be 19, an alert by size): no ``tls-alert`` "during the
    handshake", the detail says the client finished its side and sent data (a TLS 1.2 client does
    so only after the server's Finished). Still ``incomplete``: the server's side is not there."""
    name = "implicit-tls-465.pcap"
    assert _conv(name)["outcome"] == "tls"
    cut = _cut(name, tmp_path, "tcp.dstport == 465")
    assert frames_matching(cut, "tcp.srcport == 465") == []
    ((hello,),) = tshark_fields(cut, "tls.handshake.type == 1", "frame.number")
    (fin,) = frames_matching(cut, "tls.record.content_type == 20")
    data = frames_matching(cut, "tls.record.content_type == 23")
    (close,) = frames_matching(cut, "tls.record.content_type == 21")
    (end,) = frames_matching(cut, "tcp.flags.fin == 1")
    assert len(data) == 6 and fin < data[0] and data[-1] < close < end
    (conv,) = analyze_path(str(cut))
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == (
        f"{NO_SERVER}; the client sent a ClientHello (frame {hello}), then finished its side of the "
        f"handshake (frame {fin}) and sent 6 encrypted records after it (frames {data[0]} to {data[-1]}), "
        f"then an encrypted alert (frame {close}), then closed the connection (frame {end}); a client sends "
        "application data only after the server's Finished, so TLS appears established, but the "
        "server's side of it is not in the capture")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]


@pytest.mark.parametrize("name, why", [
    ("one-sided-client-465-forged-rst.pcap", "its TTL 250 is not the TTL 64 of the client's own segments"),
    ("one-sided-client-465-forged-rst-goes-on.pcap", "the client went on sending after it (frame {fin})"),
])
def test_a_forged_reset_in_a_client_only_capture_is_still_the_boxs(name: str, why: str) -> None:
    """A reset with the client's address that its stack did not send (its TTL, or the client's
    FIN after it) is in the captured direction: positive evidence of a box, judged as in a whole
    capture (``reset-forged``), never read as the client's own reset."""
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 465") == []
    (rst,) = frames_matching(path, "tcp.flags.reset == 1")
    fins = frames_matching(path, "tcp.flags.fin == 1")
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"], conv.get("case")) == (
        "aborted", "middlebox", "tls-handshake-failed", "reset-forged")
    assert conv["evidence_frame"] == rst
    assert conv["detail"] == (
        "a box on the path reset the connection before the ServerHello, before the handshake completed: "
        f"the reset (frame {rst}) carries the client's address, but " + why.format(fin=fins[0] if fins else 0))
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("reset-forged", "middlebox", rst)]


def test_a_forged_reset_after_the_clients_alert_is_not_called_its_own() -> None:
    """The client's alert ended the handshake (why is in the server's answer, not captured):
    ``incomplete`` as without the reset, and the reset that came after it at TTL 250 (the client's
    segments: 64) is not called the client's: a ``reset-forged`` finding names it, as every forged
    reset, without taking the verdict."""
    name = "one-sided-client-465-alert-forged-rst.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 465") == []
    (alert,) = frames_matching(path, "tls.alert_message.desc == 48")
    (rst,) = frames_matching(path, "tcp.flags.reset == 1 && ip.ttl == 250")
    assert set(frames_matching(path, "ip.ttl == 64")) == set(range(1, rst))
    ((hello,),) = tshark_fields(path, "tls.handshake.type == 1", "frame.number")
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == (
        f"{NO_SERVER}; the client sent a ClientHello (frame {hello}), then the fatal TLS alert unknown_ca "
        f"(48) (frame {alert}), then came a reset with the client's address (frame {rst}) that its stack "
        "did not send, but the server's side of the handshake, which would tell why, is not in the capture")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-alert", "client", alert), ("reset-forged", "middlebox", rst)]
    assert conv["findings"][-1]["message"].endswith(
        "it came after the client's alert, which had already ended the handshake")


def test_the_server_direction_lost_on_the_path_is_no_one_sided_capture() -> None:
    """lost-server-direction-465.pcap holds the server's acknowledgement and FIN (its bytes lost:
    tshark flags ``lost_segment`` on the server's FIN): its holes speak, not the one-sided reading.
    The last hole is declared at the client's FIN, which acknowledges it and comes first (the
    close does not overtake bytes it acknowledges)."""
    name = "lost-server-direction-465.pcap"
    conv = _conv(name)
    server = frames_matching(CAPTURES / name, "tcp.srcport == 465 && tcp.flags.syn == 0")
    (fin,) = frames_matching(CAPTURES / name, "tcp.srcport == 465 && tcp.flags.fin == 1")
    assert server and fin in frames_matching(CAPTURES / name, "tcp.analysis.lost_segment")
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"].startswith("bytes of the server direction were lost")
    assert [f["code"] for f in conv["findings"]] == ["tcp-gap", "tcp-gap"]
    (client_fin,) = frames_matching(CAPTURES / name, "tcp.dstport == 465 && tcp.flags.fin == 1")
    assert conv["findings"][-1]["frame"] == client_fin < fin


def _as_tls(path: Path, display_filter: str, *fields: str) -> list[list[str]]:
    """tshark's fields with the SMTP port decoded as TLS (without the client's STARTTLS, tshark
    dissects the server's TLS as SMTP text)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    args = ["tshark", "-n", "-r", str(path), "-d", "tcp.port==25,tls", "-Y", display_filter, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def _ready_frame(name: str) -> int:
    """The frame of the 220 after the EHLO reply (tshark's third response)."""
    frame, lines = _responses(name)[2]
    assert lines[0].startswith("220 ")
    return frame


def test_a_server_only_tls12_certificate_is_read_with_its_findings() -> None:
    name = "one-sided-server-tls12-cert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((hello, version),) = _as_tls(path, "tls.handshake.type == 2", "frame.number", "tls.handshake.version")
    ((cert, names),) = _as_tls(path, "tls.handshake.type == 11", "frame.number", "x509ce.dNSName")
    assert version == "0x0303" and names.split(",")[0] == "mail.example.net"
    assert frames_matching(path, "tcp.dstport == 25") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": None}
    assert conv["detail"] == (
        f"{NO_CLIENT}; the server's reply after its greeting (frame "
        f"{_ehlo_reply_frames(name)[0]}) is an EHLO reply that offers STARTTLS, but what the client did is not "
        f"in the capture; after its 220 (frame {_ready_frame(name)}) the server sent a ServerHello (frame "
        f"{hello}, TLS 1.2) and its certificate (frame {cert})")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-certificate", "server", int(cert))]
    assert conv["findings"][1]["message"] == (
        "the server's certificate does not name mx.example.com (it names mail.example.net) "
        "(certificate-host-mismatch)")
    assert conv["tls"]["server_hello_frame"] == int(hello) and conv["tls"]["version"] == "TLS 1.2"
    assert conv["tls"]["client_hello_frame"] is None and conv["tls"]["established"] is False
    assert conv["certificate"]["sans"] == ["mail.example.net"]
    assert conv["certificate"]["problems"] == ["certificate-host-mismatch"]


def test_a_server_only_tls13_handshake_shows_only_the_serverhello() -> None:
    name = "one-sided-server-tls13.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((hello, version),) = _as_tls(path, "tls.handshake.type == 2", "frame.number",
                                  "tls.handshake.extensions.supported_version")
    assert version == "0x0304"
    assert _as_tls(path, "tls.handshake.type == 11", "frame.number") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": None}
    assert conv["detail"].endswith(
        f"; after its 220 (frame {_ready_frame(name)}) the server sent a ServerHello (frame {hello}, TLS 1.3); "
        "TLS 1.3 encrypts the rest of its handshake, its certificate too")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]
    assert conv["tls"]["server_hello_frame"] == int(hello) and conv["tls"]["version"] == "TLS 1.3"
    assert "certificate" not in conv


#: a late tap of the client's leg: the capture -> the client's first packet in it
LATE_TAPS = {"server-tls-client-tap-later.pcap": "its fatal alert, after the server's TLS",
             "server-tls-client-tap-ack.pcap": "its acknowledgement of the 220",
             "server-tls-client-tap-hello.pcap": "its ClientHello"}


@pytest.mark.parametrize("name", sorted(LATE_TAPS))
def test_a_late_client_tap_reads_the_tls_after_the_220_whichever_packet_it_starts_with(name: str) -> None:
    """The client's packets only from a later point on (a tap of its leg that started late); the
    bytes of the client the server acknowledged before its first packet are holes (at the server's
    segments that acknowledged them, as tshark's ``tcp.ack_raw`` shows) and its direction is in
    the capture: no ``one-sided`` finding. The TLS after the 220 is read as TLS whichever packet
    the tap starts with (the review found the server's records printed as garbage lines when it
    starts one packet earlier than the server's flight):

    - from its alert, after the server's flight: when the flight came nothing of the client was
      in the capture, so the session read it as TLS after the 220 and marked the 220
      (``Reply.tls_follows``); the client's ClientHello is in a hole, so the verdict is
      incomplete by the holes, the detail naming what the server sent and the client's alert,
      a record that starts cleanly after its holes (read: its ``tls-alert`` finding);
    - from its acknowledgement of the 220 or from its ClientHello: its ClientHello as its first
      bytes shows it read the 220, and the holes before it are read as in a capture that lost
      them in its middle (the 220 answers the STARTTLS lost there, inferred): the handshake
      after the 220 is whole, and the client's fatal alert bad_certificate ended it, as the
      capture without the server's banner already read it."""
    path = CAPTURES / name
    conv = _conv(name)
    ((hello, version),) = _as_tls(path, "tls.handshake.type == 2", "frame.number", "tls.handshake.version")
    ((cert,),) = _as_tls(path, "tls.handshake.type == 11", "frame.number")
    client_hello = [int(f) for (f,) in _as_tls(path, "tls.handshake.type == 1", "frame.number")]
    ((alert, desc),) = _as_tls(path, "tls.alert_message", "frame.number", "tls.alert_message.desc")
    assert version == "0x0303" and desc == "42"
    ready = _ready_frame(name)
    # the server's data segments acknowledge 25, 10 and 166 bytes of the client (EHLO, STARTTLS,
    # ClientHello); the capture holds the client's from its first packet's sequence number on
    acks = tshark_fields(path, "tcp.srcport == 25 && tcp.len > 0", "frame.number", "tcp.ack_raw")
    client = tshark_fields(path, "tcp.dstport == 25", "frame.number", "tcp.seq_raw", "tcp.len")
    first_client, seq = int(client[0][0]), int(client[0][1])
    rises = [(int(f), int(b) - int(a)) for (_, a), (f, b) in zip(acks, acks[1:]) if int(b) != int(a)]
    assert rises == [(4, 25), (ready, 10), (int(hello), 166)]
    # the holes: the bytes acknowledged below the client's first sequence number in the capture
    holes = [int(f) for (_, a), (f, b) in zip(acks, acks[1:]) if int(a) < int(b) <= seq]
    gaps = [("tcp-gap", "capture", f) for f in holes]
    assert first_client > ready
    assert frames_matching(path, "tcp.flags.syn == 1 && tcp.flags.ack == 0") == []
    tls = {"client_hello_frame": client_hello[0] if client_hello else None, "server_hello_frame": int(hello),
           "alert": {"side": "client", "level": 2, "description": 42, "name": "bad_certificate",
                     "encrypted": False, "frame": int(alert)},
           "established": False, "version": "TLS 1.2", "sni": "mx.example.com" if client_hello else None}
    assert conv["tls"] == tls
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": None}
    assert conv["certificate"]["sans"] == ["mx.example.com"]
    if name == "server-tls-client-tap-later.pcap":
        assert first_client > int(hello) and client_hello == [] and holes == [4, ready, int(hello)]
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
        assert conv["detail"] == (
            f"bytes of the decisive exchange were lost; after its 220 (frame {ready}) the server sent a "
            f"ServerHello (frame {hello}, TLS 1.2) and its certificate (frame {cert}); the client sent the "
            f"fatal TLS alert bad_certificate (42) (frame {alert})")
        assert conv["evidence_frame"] == 4
    else:
        # (its acknowledgement of the 220 carries no byte: its ClientHello is its first payload)
        assert first_client < int(hello) and holes == [4, ready]
        assert client_hello == [next(int(f) for f, _, n in client if n != "0")]
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("aborted", "client", "tls-handshake-failed")
        assert conv["detail"] == "the client sent the fatal TLS alert bad_certificate (42) during the handshake"
        assert conv["evidence_frame"] == int(alert)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        *gaps, ("tls-alert", "client", int(alert))]
    assert conv["findings"][-1]["message"] == (
        "the client sent the fatal TLS alert bad_certificate (42) during the handshake")


def test_explain_shows_as_tls_what_the_verdict_reads_as_tls(capsys: pytest.CaptureFixture[str]) -> None:
    """``explain`` prints the session's events: the server's TLS records after the 220 appear as
    TLS exactly where the verdict reads them (its ServerHello frame in ``tls``)."""
    for name in (*sorted(LATE_TAPS), "one-sided-server-tls12-cert.pcap"):
        main(["explain", str(CAPTURES / name)])
        out = capsys.readouterr().out
        tls = _conv(name)["tls"]
        frame = tls["server_hello_frame"]
        assert frame is not None
        assert [ln.split()[0] for ln in out.splitlines() if "[TLS ServerHello:" in ln] == [str(frame)]
        # (no record of the server's flight printed as a garbage line: they start \x16 or \x0c)
        assert not [ln for ln in out.splitlines() if "S: \\x" in ln], out
        if tls["alert"] is not None:
            assert [ln.split()[0] for ln in out.splitlines() if "[TLS alert: fatal bad_certificate (42)]" in ln] == [
                str(tls["alert"]["frame"])]


def test_a_server_only_alert_after_the_220_is_the_servers_tls_alert_finding() -> None:
    """The server's fatal alert answering the ClientHello (not captured) after its 220: the
    ``tls-alert`` finding of the server, in the words of a two-direction capture, at tshark's alert
    frame; why it refused is in the ClientHello, so the verdict blames no one."""
    name = "one-sided-server-alert.pcap"
    path = CAPTURES / name
    conv = _conv(name)
    ((alert, desc),) = _as_tls(path, "tls.alert_message", "frame.number", "tls.alert_message.desc")
    assert desc == "40"
    assert frames_matching(path, "tcp.dstport == 25") == []
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "valid", "requested": True, "reply_code": 220, "frame": None}
    assert conv["detail"] == (
        f"{NO_CLIENT}; the server's reply after its greeting (frame {_ehlo_reply_frames(name)[0]}) is an EHLO "
        f"reply that offers STARTTLS, but what the client did is not in the capture; after its 220 (frame "
        f"{_ready_frame(name)}) the server sent the fatal TLS alert handshake_failure (40) (frame {alert})")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-alert", "server", int(alert))]
    assert conv["findings"][1]["message"] == (
        "the server sent the fatal TLS alert handshake_failure (40) during the handshake")
    assert conv["tls"]["alert"]["frame"] == int(alert) and conv["tls"]["alert"]["side"] == "server"
    assert "tlsrpt_result" not in conv
    assert conv["evidence_frame"] == 1


def test_a_client_that_only_acknowledged_is_no_one_sided_capture() -> None:
    """The server's banner, the client's acknowledgement of it, then the end of the capture: the
    client's direction is there (tshark: its segments, none with payload), it sent nothing else.
    No ``one-sided`` finding, and the detail does not say one direction was captured."""
    name = "silent-client-acks-only.pcap"
    path = CAPTURES / name
    client = frames_matching(path, "tcp.dstport == 25")
    assert client and frames_matching(path, "tcp.dstport == 25 && tcp.len > 0") == []
    assert frames_matching(path, "tcp.dstport == 25 && (tcp.flags.fin == 1 || tcp.flags.reset == 1)") == []
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["detail"] == "the capture ends before the client's next step"
    assert conv["evidence_frame"] == 1
    assert conv["findings"] == []


def test_a_client_only_starttls_handshake_reads_the_clienthello() -> None:
    """Port 25 in the client's direction only: after its STARTTLS the client sent a TLS
    ClientHello (it read a 220 the capture does not show), its alert and its close. Its bytes
    after STARTTLS are TLS: the ClientHello's frame and SNI, the alert, cross-checked with tshark
    decoding the port as TLS (without the 220 it dissects them as SMTP text). Still incomplete:
    the server's answer, which would tell why the client refused it, is not in the capture."""
    name = "one-sided-client-starttls-alert.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 25") == []
    ((starttls,),) = tshark_fields(path, 'smtp.command_line contains "STARTTLS"', "frame.number")
    ((hello, sni, version),) = _as_tls(path, "tls.handshake.type == 1", "frame.number",
                                       "tls.handshake.extensions_server_name", "tls.handshake.version")
    ((alert, desc),) = _as_tls(path, "tls.alert_message", "frame.number", "tls.alert_message.desc")
    ((fin,),) = tshark_fields(path, "tcp.flags.fin == 1", "frame.number")
    assert (sni, version, desc) == ("mx.example.com", "0x0303", "48")
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": None, "frame": int(starttls)}
    assert conv["tls"] == {"client_hello_frame": int(hello), "server_hello_frame": None,
                           "alert": {"side": "client", "level": 2, "description": 48, "name": "unknown_ca",
                                     "encrypted": False, "frame": int(alert)},
                           "established": False, "version": None, "sni": "mx.example.com"}
    assert conv["detail"] == (
        f"{NO_SERVER}; the client sent STARTTLS (frame {starttls}), then a ClientHello (frame {hello}), then "
        f"the fatal TLS alert unknown_ca (48) (frame {alert}), then closed the connection (frame {fin}), but "
        "the server's side of the handshake, which would tell why, is not in the capture")
    assert conv["evidence_frame"] == 1
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-alert", "client", int(alert))]
    _one_sided_finding(conv, NO_SERVER)


def test_plaintext_after_a_client_only_starttls_stays_plaintext() -> None:
    """Control: the client's bytes after STARTTLS are no TLS record (QUIT, 2 s later): they stay
    commands, no TLS is read, and the verdict says the capture does not show the answer."""
    name = "one-sided-client-starttls-plaintext.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 25") == []
    ((starttls,),) = tshark_fields(path, 'smtp.command_line contains "STARTTLS"', "frame.number")
    ((quit_,),) = tshark_fields(path, 'smtp.req.command == "QUIT"', "frame.number")
    assert _as_tls(path, "tls.record", "frame.number") == []
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": None, "frame": int(starttls)}
    assert conv["tls"] == {"client_hello_frame": None, "server_hello_frame": None, "alert": None,
                           "established": False}
    assert conv["detail"].startswith("the capture does not show the answer to STARTTLS")
    assert conv["evidence_frame"] == int(starttls)
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [("one-sided", "capture", 1)]
    out = io.StringIO()
    main(["explain", str(path)], out=out)
    assert f"{int(quit_):>3}  C: QUIT" in out.getvalue().splitlines()


def test_the_220_the_servers_tls_follows_answered_starttls_even_after_another_220() -> None:
    """Two 220s, then the server's TLS, in the server's direction only: a server starts TLS only
    after its 220 to STARTTLS (RFC 3207 4), so the 220 right before its TLS answered STARTTLS,
    whatever came before it (a second banner would be followed by the client's STARTTLS and its
    220 before any TLS). The capture of both directions of the same conversation reads the same
    220 as the answer to STARTTLS, and the same certificate."""
    name, whole = "one-sided-server-two-220.pcap", "server-two-220-whole.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.dstport == 25") == []
    ((hello,),) = _as_tls(path, "tls.handshake.type == 2", "frame.number")
    # (tshark takes the TLS for more SMTP text: the responses before it are the two 220s)
    responses = [(frame, lines) for frame, lines in _responses(name) if frame < int(hello)]
    assert [lines[0].split(" ", 1)[0] for _, lines in responses] == ["220", "220"]
    ready = responses[1][0]
    ((cert,),) = _as_tls(path, "tls.handshake.type == 11", "frame.number")
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": None}
    assert conv["detail"] == (f"{NO_CLIENT}; after its 220 (frame {ready}) the server sent a ServerHello (frame "
                              f"{hello}, TLS 1.2) and its certificate (frame {cert})")
    assert conv["evidence_frame"] == 1
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-certificate", "server", int(cert))]
    both = _conv(whole)
    ((st_frame,),) = tshark_fields(CAPTURES / whole, 'smtp.command_line contains "STARTTLS"', "frame.number")
    ((both_ready,),) = tshark_fields(CAPTURES / whole, 'smtp.response.code == 220 && frame.number > '
                                     + st_frame, "frame.number")
    assert both["starttls"] == {"offered": "unknown", "requested": True, "reply_code": 220, "frame": int(st_frame)}
    assert int(both_ready) > int(st_frame)
    assert both["certificate"] == conv["certificate"]
    assert [f["code"] for f in both["findings"]][:1] == ["tls-certificate"]


def test_a_clienthello_read_before_the_server_showed_up_is_no_220(tmp_path: Path) -> None:
    """The client-only STARTTLS capture with the server's FIN after all (a tap that lost the
    server's packets but its last one): the ClientHello was read as TLS while nothing of the
    server had come (SmtpSession._client_tls_unanswered), but the server is in the capture, so
    its answer to STARTTLS is what the capture lacks (every byte of it a hole), and the client's
    alert is no refusal the verdict may rest on: incomplete, at STARTTLS, no tls-alert blame
    (the review of 9cf64c4 found aborted/client/tls-handshake-failed)."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import transforms as T
    cap = T.load(CAPTURES / "one-sided-client-starttls-alert.pcap")
    last = [s for s in cap.frames if isinstance(s, T.Seg)][-1]
    fin = T.Seg(last.ts_ns + 1_000_000, last.dst, last.src, last.dport, last.sport, last.ack,
                (last.seq + len(last.payload) + 1) % (1 << 32), T.FIN | T.ACK, ttl=52)
    path = T.save(cap.with_frames([*cap.frames, fin]), tmp_path / "with-server-fin.pcap")
    (conv,) = analyze_path(str(path))
    ((starttls,),) = tshark_fields(path, 'smtp.command_line contains "STARTTLS"', "frame.number")
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["evidence_frame"] == int(starttls)
    assert conv["detail"].startswith("the capture does not show the answer to STARTTLS")
    assert not any(f["code"] in ("tls-alert", "one-sided") for f in conv["findings"])
    assert {f["code"] for f in conv["findings"]} == {"tcp-gap"}


def test_live_reads_a_side_seen_by_its_acks_as_offline(tmp_path: Path) -> None:
    """A client's direction plus the server's pure acknowledgements (its data lost by the tap):
    the server was captured, so no ``one-sided`` finding, in live mode's early verdict (judged
    at MAIL, before the flow's close says which sides sent segments) as offline (the review of
    d1440be found the early verdict still one-sided)."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import transforms as T
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
    cap = T.load(CAPTURES / "client-did-not-request.pcap")
    (client, _server), = T.conversations(cap).values()
    kept = [s for s in cap.frames if isinstance(s, T.Seg) and (
        (s.src, s.sport) == client or not (s.payload or s.flags & (T.SYN | T.FIN | T.RST)))]
    path = T.save(cap.with_frames(kept), tmp_path / "client-plus-server-acks.pcap")
    offline = analyze_file(str(path)).conversations
    early = analyze_file(str(path), AnalysisConfig(early=True), fast=False).conversations
    for (conv,) in (offline, early):
        assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
        assert "one-sided" not in [f["code"] for f in conv["findings"]], conv["findings"]


def _client_only_starttls_detail(path: Path, then: str, start: str = NO_SERVER) -> str:
    """The detail of a client-only STARTTLS handshake that ended with the client's alert and
    close: STARTTLS, ``then`` (what came after it before the alert), the alert, the FIN."""
    ((starttls,),) = tshark_fields(path, 'tcp.payload contains "STARTTLS"', "frame.number")
    ((alert, desc),) = _as_tls(path, "tls.alert_message", "frame.number", "tls.alert_message.desc")
    ((fin,),) = tshark_fields(path, "tcp.flags.fin == 1", "frame.number")
    assert desc == "48"
    return (f"{start}; the client sent STARTTLS (frame {starttls}), then {then}, then the fatal TLS alert "
            f"unknown_ca (48) (frame {alert}), then closed the connection (frame {fin}), but the server's side "
            "of the handshake, which would tell why, is not in the capture")


def test_a_client_only_starttls_capture_with_the_servers_syn_ack() -> None:
    """one-sided-client-starttls-alert's conversation with the server's SYN-ACK kept: TCP then
    knows where the server's stream starts, and the client's acknowledgements prove its bytes
    lost (holes: the banner, the EHLO reply, the answer to STARTTLS, the server's flight, at the
    client's data segments whose acknowledgement rises, as tshark's ``tcp.ack_raw`` shows). The
    server's answer to STARTTLS is in a hole, so the client's ClientHello after STARTTLS is read as
    TLS as when nothing of the server is in the capture (the review found it held as plaintext,
    the detail "the capture does not show the answer to STARTTLS"), and the detail begins with the
    words the contract gives a capture that holds the server's SYN-ACK: for an admin the remedy
    is the same as for a capture of one direction (capture the server's), and the SYN-ACK says the
    tap saw the server's handshake but nothing after it."""
    name = "one-sided-client-starttls-synack.pcap"
    path = CAPTURES / name
    (synack,) = frames_matching(path, "tcp.srcport == 25")
    assert frames_matching(path, "tcp.flags.syn == 1 && tcp.flags.ack == 1") == [synack]
    ((hello, sni),) = _as_tls(path, "tls.handshake.type == 1", "frame.number",
                              "tls.handshake.extensions_server_name")
    ((alert,),) = _as_tls(path, "tls.alert_message", "frame.number")
    data = tshark_fields(path, "tcp.dstport == 25 && tcp.len > 0", "frame.number", "tcp.ack_raw")
    ((_, start),) = tshark_fields(path, "tcp.flags.syn == 1 && tcp.flags.ack == 1", "frame.number", "tcp.seq_raw")
    base, holes = int(start) + 1, []
    for frame, ack in data:
        if int(ack) > base:
            holes.append((int(frame), int(ack) - base))
            base = int(ack)
    assert [n for _, n in holes] == [34, 122, 30, 913]
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"]["requested"] is True and conv["starttls"]["reply_code"] is None
    assert conv["tls"] == {"client_hello_frame": int(hello), "server_hello_frame": None,
                           "alert": {"side": "client", "level": 2, "description": 48, "name": "unknown_ca",
                                     "encrypted": False, "frame": int(alert)},
                           "established": False, "version": None, "sni": sni}
    words = "no packet of the server after its SYN-ACK is in the capture"
    assert conv["detail"] == _client_only_starttls_detail(path, f"a ClientHello (frame {hello})", words)
    assert conv["evidence_frame"] == 1
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), *[("tcp-gap", "capture", f) for f, _ in holes],
        ("tls-alert", "client", int(alert))]
    _one_sided_finding(conv, words)


def test_a_clienthello_in_the_segment_of_starttls_is_read_as_tls() -> None:
    """STARTTLS and the ClientHello in one segment (a client that did not wait for the 220), in
    the client's direction only: the ClientHello is read as TLS as when it comes after a 220 the
    capture does not show (the contract says a client sends one only to start the TLS its
    STARTTLS asked for, after a 220 or in the same segment without waiting: not "only after a
    220"). tshark, decoding the port as TLS, finds the ClientHello in the frame of STARTTLS."""
    name = "one-sided-client-starttls-one-segment.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 25") == []
    ((starttls, payload),) = tshark_fields(path, 'tcp.payload contains "STARTTLS"', "frame.number", "tcp.payload")
    assert bytes.fromhex(payload.replace(":", "")).startswith(b"STARTTLS\r\n\x16\x03")
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["starttls"] == {"offered": "unknown", "requested": True, "reply_code": None, "frame": int(starttls)}
    assert conv["tls"]["client_hello_frame"] == int(starttls) and conv["tls"]["sni"] == "mx.example.com"
    assert conv["detail"] == _client_only_starttls_detail(path, f"a ClientHello (frame {starttls})")
    ((alert,),) = _as_tls(path, "tls.alert_message", "frame.number")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tls-alert", "client", int(alert))]


def test_bytes_after_a_hole_that_followed_starttls_are_no_injection() -> None:
    """The client's direction only: STARTTLS, then a ClientHello whose first segment is not in the
    capture (tshark: ``lost_segment`` on the next), its alert and its close. The bytes after the
    hole are the rest of the TLS the client started (the hole took the ClientHello's head), never
    plaintext injected after STARTTLS (the review found a false ``starttls-command-injection``):
    read as TLS once the record framing is found again (the alert, as tshark decodes it)."""
    name = "one-sided-client-starttls-hello-hole.pcap"
    path = CAPTURES / name
    assert frames_matching(path, "tcp.srcport == 25") == []
    (lost,) = frames_matching(path, "tcp.analysis.lost_segment")
    ((alert,),) = _as_tls(path, "tls.alert_message", "frame.number")
    assert _as_tls(path, "tls.handshake.type == 1", "frame.number") == []
    conv = _conv(name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    assert conv["tls"]["client_hello_frame"] is None and conv["tls"]["alert"]["frame"] == int(alert)
    assert conv["detail"] == _client_only_starttls_detail(
        path, f"TLS whose first bytes the capture lost (frame {lost})")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("one-sided", "capture", 1), ("tcp-gap", "capture", lost), ("tls-alert", "client", int(alert))]
    out = io.StringIO()
    main(["explain", str(path)], out=out)
    assert "starttls-command-injection" not in out.getvalue()
    assert [ln.split()[0] for ln in out.getvalue().splitlines()
            if ln.split("   <---")[0].endswith("C: [TLS alert: fatal unknown_ca (48)]")] == [alert]
