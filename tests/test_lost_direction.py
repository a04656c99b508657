"""captures/scenarios_lostdirection.py: every byte of the server's direction is missing from the
capture, though the client's ACKs and the server's FIN show it sent them. Such a server did not
stay silent: the verdict is incomplete, never "closed without a greeting" (greeting-refused) or a
handshake the client broke off; the two holes are named where tshark sees what proves them."""
from __future__ import annotations

from pathlib import Path

import pytest

from pcapsmtp.engine.analyzer import analyze_path
from tsharkfilter import frames_matching

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


@pytest.mark.parametrize(("name", "port", "first_proof"), [
    ("lost-server-direction.pcap", 25, "smtp.req.command == \"QUIT\""),
    ("lost-server-direction-465.pcap", 465, "tls.handshake.type == 1"),
])
def test_a_server_whose_bytes_were_all_lost_is_not_silent(name: str, port: int, first_proof: str) -> None:
    path = CAPTURES / name
    # the capture holds no payload of the server, but the client acknowledges its bytes
    assert frames_matching(path, f"tcp.srcport == {port} && tcp.len > 0") == []
    assert frames_matching(path, f"tcp.dstport == {port} && tcp.ack > 1 && tcp.len > 0")
    (conv,) = analyze_path(str(path))          # 465 is an SMTP port too
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    gaps = [f["frame"] for f in conv["findings"] if f["code"] == "tcp-gap"]
    (proof,) = frames_matching(path, first_proof)
    # the last hole at the first FIN past it: the server's (tshark's lost_segment), or the client's
    # when that comes first and acknowledges it (the close does not overtake the bytes)
    fin = frames_matching(path, "tcp.flags.fin == 1")[0]
    assert gaps == [proof, fin] and conv["evidence_frame"] == proof
    assert all(f["side"] == "capture" for f in conv["findings"])


@pytest.mark.parametrize(("name", "port", "first_proof"), [
    ("lost-server-direction.pcap", 25, "smtp.req.command == \"QUIT\""),
    ("lost-server-direction-465.pcap", 465, "tls.handshake.type == 1"),
])
def test_without_the_synack_too_nobody_is_blamed(name: str, port: int, first_proof: str) -> None:
    """Without the SYN-ACK (the server's start told by the client's handshake ACK) the client's
    ACKs of the server's bytes come before any segment of the server, which a capture of the
    client's direction alone looks like too: no hole is declared while nothing of the server is
    in the capture. The server's own first segment, its ACK past the bytes the client
    acknowledged, shows the capture is of both directions: the holes are then declared in
    hindsight where the client's acknowledgements proved them (``HalfStream.seen``), the frames
    of the whole capture, tshark's; the second at the first FIN (the server's, or the client's
    that acknowledges it when that comes first). Nothing of the server's TLS
    or SMTP is in the capture and bytes of it were lost, so the client's close is not what ended
    the handshake for sure."""
    import cuts
    path = CAPTURES / name
    cap = cuts.load(path)
    segments = [s for s in cap.segments if not (s.flags & 0x12 == 0x12)]   # SYN+ACK
    assert len(segments) == len(cap.segments) - 1
    (conv,) = cuts.analyze(segments, cap.name)
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("incomplete", "unknown", "incomplete")
    (proof,) = frames_matching(path, first_proof)
    fin = frames_matching(path, "tcp.flags.fin == 1")[0]
    first = next(s.frame for s in segments if s.sport == port)
    assert proof < first
    assert [(f["code"], f["frame"]) for f in conv["findings"]] == [("tcp-gap", proof), ("tcp-gap", fin)]
