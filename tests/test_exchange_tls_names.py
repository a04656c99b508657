"""TLS records in the exchange (``explain``, the HTML ladder, ``diff``'s compared lines) are named in one style:
each handshake message as the RFCs' prose and Wireshark write it (ClientHello, ServerHello, Certificate,
ServerKeyExchange, ServerHelloDone, NewSessionTicket...), not ``ServerHello`` beside ``server_key_exchange``."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pcapsmtp.analysis.exchange import message_name
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.smtp.tls import HANDSHAKE_NAMES, handshake_name
from tsharkfilter import tshark_fields

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CAPTURES.glob("*.pcap")) + sorted(p for p in CORPUS.rglob("*") if p.name.endswith(
    (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")))
#: what a TLS line of the exchange may start with: a message name in one word, an alert, an encrypted or
#: application-data record, bytes that are not TLS, TLS from the first byte / already under way
_TLS_LINE = re.compile(r"^\[(TLS ([A-Z][A-Za-z]+[]:]|alert[,:]|encrypted |handshake type \d+\]|from |already )"
                       r"|not TLS: )")


def test_message_names() -> None:
    assert [message_name(HANDSHAKE_NAMES[t]) for t in (1, 2, 4, 8, 11, 12, 13, 14, 15, 16, 20, 21, 26)] == [
        "ClientHello", "ServerHello", "NewSessionTicket", "EncryptedExtensions", "Certificate", "ServerKeyExchange",
        "CertificateRequest", "ServerHelloDone", "CertificateVerify", "ClientKeyExchange", "Finished",
        "CertificateURL", "EKTKey"]
    assert message_name(handshake_name(99)) == "handshake type 99"
    # one word each, no two types alike
    names = [message_name(n) for n in HANDSHAKE_NAMES.values()]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Z][A-Za-z]+", n) for n in names)


def _tls_lines(name: str | Path, stream: int | None = None) -> list[tuple[int | None, str, str]]:
    res = analyze_file(str(CAPTURES / name), AnalysisConfig(keep_exchange=True))
    assert res.error is None or CORPUS in Path(name).parents, res.error     # (a few corpus files are cut short)
    return [(ln.frame, ln.side, ln.text) for c in res.conversations if stream in (None, c["stream"])
            for ln in c["_exchange"] if ln.text.startswith(("[TLS", "[not TLS"))]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_tls_line_of_every_capture_is_named_in_one_style(path: Path) -> None:
    bad = [t for _f, _s, t in _tls_lines(path) if not _TLS_LINE.match(t)]
    assert bad == []


@pytest.mark.tshark
def test_the_server_flight_is_named_as_wireshark_names_it() -> None:
    """tls-server-weak-dh.pcap: the server's TLS 1.2 flight, record by record, as tshark's Info column names the
    handshake messages (its words run together), at the same frames."""
    name = "tls-server-weak-dh.pcap"
    lines = [(f, t) for f, s, t in _tls_lines(name, 0) if s == "S" and not t.startswith("[TLS alert")]
    rows = tshark_fields(CAPTURES / name, "tcp.stream == 0 && tls.handshake && tcp.srcport == 25",
                         "frame.number", "_ws.col.Info")
    want: list[tuple[int, str]] = []
    for frame, info in rows:
        want += [(int(frame), part.strip().replace(" ", "")) for part in info.split(",")]
    got = [(f, t[5:].split(":", 1)[0].rstrip("]")) for f, t in lines][:len(want)]
    assert got == want
    assert [t for _f, t in lines if "Diffie-Hellman" in t] == [
        "[TLS ServerKeyExchange: Diffie-Hellman group of 1024 bits]"]
    assert "[TLS ServerHelloDone]" in [t for _f, t in lines]
