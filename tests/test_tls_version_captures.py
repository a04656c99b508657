"""The captures of captures/scenarios_tlsversion.py: a handshake that ended on a TLS version
RFC 8996 deprecates blames the side stuck on it, with the ServerHello or ClientHello as the
evidence frame (where tshark sees it), the case's explanation, and the controls left to whoever
ended the handshake; a close before an alert is what ended the handshake."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pcapsmtp.analysis.reasons import REASON_CASES, REASONS
from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


def _convs(name: str) -> list[dict[str, Any]]:
    return analyze_path(str(CAPTURES / name))


def _verdict(c: dict[str, Any]) -> tuple[str, str, str]:
    return c["outcome"], c["caused_by"], c["reason"]


def _explains(conv: dict[str, Any], case: str | None) -> None:
    info = REASON_CASES[("tls-handshake-failed", case)] if case else REASONS["tls-handshake-failed"]
    assert conv["explanation"] == {"client_does": info.client_does, "ask": info.remedy}
    if case:
        assert conv["caused_by"] == info.caused_by


def test_server_that_chose_tls10_is_blamed_at_its_serverhello() -> None:
    name = "tls-server-old-version.pcap"
    convs = _convs(name)
    hellos = frames_matching(CAPTURES / name, "tls.handshake.type == 2")
    alerts = frames_matching(CAPTURES / name, "tls.alert_message && tcp.dstport == 25")
    resets = frames_matching(CAPTURES / name, "tcp.flags.reset == 1 && tcp.dstport == 25")
    assert len(convs) == 3 and len(hellos) == 3 and len(alerts) == 2 and len(resets) == 1
    for conv, hello in zip(convs, hellos):
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
        assert conv["evidence_frame"] == hello
        (mismatch,) = [f for f in conv["findings"] if f["code"] == "tls-version-mismatch"]
        assert (mismatch["side"], mismatch["frame"]) == ("server", hello)
        assert mismatch["message"].startswith("the server chose TLS 1.0")
        assert "offered up to TLS 1.3" in mismatch["message"]
        assert mismatch["rfc"] == "RFC 8996"
        _explains(conv, "server-old-tls")
    # the client's alerts are still reported, at their frames, as the client's
    assert [f["frame"] for c in convs for f in c["findings"] if f["code"] == "tls-alert"] == alerts
    assert all(f["side"] == "client" for c in convs for f in c["findings"] if f["code"] == "tls-alert")


def test_client_that_offered_only_tls10_is_blamed_at_its_clienthello() -> None:
    name = "tls-client-old-version.pcap"
    (conv,) = _convs(name)
    (hello,) = frames_matching(CAPTURES / name, "tls.handshake.type == 1 && tls.handshake.version == 0x0301")
    (alert,) = frames_matching(CAPTURES / name, "tls.alert_message.desc == 70 && tcp.srcport == 25")
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == hello
    codes = {f["code"]: (f["side"], f["frame"]) for f in conv["findings"]}
    assert codes == {"tls-version-mismatch": ("client", hello), "tls-alert": ("server", alert)}
    _explains(conv, "client-old-tls")


def test_controls_stay_with_whoever_ended_the_handshake() -> None:
    name = "tls-version-controls.pcap"
    convs = _convs(name)
    alerts = frames_matching(CAPTURES / name, "tls.alert_message")
    assert [_verdict(c)[1] for c in convs] == ["client", "client", "server"]
    for conv, alert in zip(convs, alerts):
        assert conv["reason"] == "tls-handshake-failed" and conv["evidence_frame"] == alert
        assert [f["code"] for f in conv["findings"]] == ["tls-alert"]
        _explains(conv, None)


def test_a_close_before_the_alert_is_what_ended_the_handshake() -> None:
    name = "tls-close-then-alert.pcap"
    (conv,) = _convs(name)
    (fin,) = frames_matching(CAPTURES / name, "tcp.flags.fin == 1")
    (alert,) = frames_matching(CAPTURES / name, "tls.alert_message.desc == 50")
    assert fin < alert
    assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
    assert conv["evidence_frame"] == fin
    (found,) = conv["findings"]
    assert (found["code"], found["side"], found["frame"]) == ("tls-alert", "client", alert)
    assert "after the server had closed" in found["message"]


def test_server_with_a_1024_bit_group_is_blamed_at_its_key_exchange() -> None:
    name = "tls-server-weak-dh.pcap"
    convs = _convs(name)
    kx = frames_matching(CAPTURES / name, "tls.handshake.type == 12 && tls.handshake.p_len == 128")
    assert len(convs) == 2 and len(kx) == 2
    for conv, frame in zip(convs, kx):
        assert _verdict(conv) == ("aborted", "server", "tls-handshake-failed")
        assert conv["evidence_frame"] == frame
        (weak,) = [f for f in conv["findings"] if f["code"] == "tls-weak-dh"]
        assert (weak["side"], weak["frame"], weak["rfc"]) == ("server", frame, "RFC 7919")
        assert weak["message"].startswith("the server's Diffie-Hellman group has 1024 bits")
        _explains(conv, "server-weak-dh")


def test_weak_dh_controls() -> None:
    """A 2048-bit group refused anyway stays with the client that ended it; a 1024-bit group a
    client accepted is TLS, with nothing to blame."""
    name = "tls-weak-dh-controls.pcap"
    big, accepted = _convs(name)
    (alert,) = frames_matching(CAPTURES / name, "tls.alert_message")
    assert frames_matching(CAPTURES / name, "tls.handshake.type == 12 && tls.handshake.p_len == 256")
    assert _verdict(big) == ("aborted", "client", "tls-handshake-failed") and big["evidence_frame"] == alert
    _explains(big, None)
    assert _verdict(accepted) == ("tls", "none", "tls-established") and accepted["findings"] == []


def test_an_alert_as_the_servers_first_bytes_answers_the_held_clienthello() -> None:
    """The capture starts at STARTTLS and lacks the 220: the server's first payload, a TLS
    alert, answers the client's ClientHello held behind STARTTLS (as a ServerHello would), so
    the ClientHello is read and the client's TLS 1.0 offer is the cause; before, the alert was
    read as TLS already under way and the verdict was a STARTTLS the server closed on."""
    name = "tls-late-alert-answers-starttls.pcap"
    (conv,) = _convs(name)
    # (tshark, without the 220, reads neither side as TLS: the record headers are matched)
    server_payload = frames_matching(CAPTURES / name, "tcp.srcport == 25 && tcp.len > 0")
    (alert,) = frames_matching(CAPTURES / name, "tcp.srcport == 25 && tcp.payload[0:3] == 15:03:03")
    assert server_payload == [alert]                      # no 220 in the capture
    (hello,) = frames_matching(CAPTURES / name, "tcp.dstport == 25 && tcp.payload[0:3] == 16:03:01")
    assert _verdict(conv) == ("aborted", "client", "tls-handshake-failed")
    assert conv["evidence_frame"] == hello
    codes = {f["code"]: (f["side"], f["frame"]) for f in conv["findings"]}
    assert codes == {"midstream": ("capture", 1), "tls-version-mismatch": ("client", hello),
                     "tls-alert": ("server", alert)}
    assert conv["starttls"]["requested"] is True and conv["starttls"]["reply_code"] is None
