"""The sixteenth session's transform sweep, kept as a sample (``/tmp/sweep`` ran it over every
capture of ``captures/`` and of the corpus: no verdict moved under these): the same packets
under the link types and file formats test_transforms.py does not write, captured twice (at both
ends of the path) and merged with another capture.

- *links and formats*: Linux cooked v1, raw IP, BSD loopback (host order and network order),
  pcap with nanosecond timestamps, pcapng with two interfaces of different link types and
  timestamp resolutions: every conversation keeps its verdict, its case and its findings, frame
  for frame (one record per frame: the numbers do not move);
- *two taps*: every segment twice, the second copy 0.3 ms later with a TTL three hops lower (a
  capture on each host, ``mergecap``): every conversation keeps its verdict and case, and its
  findings but the ``tcp-`` ones of retransmitted bytes;
- *two captures merged*: another capture's conversations (its hosts moved to 10.0.0.0/8, its
  clock to 1 ms after the first starts) interleaved by time: each conversation of either keeps
  the verdict and case it has alone.

Frame numbers are compared only where the transform keeps them. Run time: a few seconds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import transforms as T
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file

REPO = Path(__file__).resolve().parents[1]

#: a sample of captures/: TLS, a fallback after a failure, holes the acknowledgements prove, a
#: forged reset (TTL), IPv6 with extension headers, IPv4 fragments, a reused 4-tuple, a timing
#: reading (the server's silence), a masking firewall, pipelining
SAMPLE = [
    "tls-fallback.pcap",
    "server-tls-client-tap-ack.pcap",
    "tcp-reset-forged-starttls.pcap",
    "tcp-reset-forged-hello-ipv6.pcap",
    "seed-ipv4-fragments.pcap",
    "port-reuse.pcap",
    "hang-tls-stall.pcap",
    "ehlo-masked-keyword.pcap",
    "hole-closes-reply-mail.pcap",
]

LINKS = {
    "sll": [T.sll()],
    "raw": [T.raw_ip()],
    "null": [T.null()],
    "loop": [T.loop()],
    "nanosecond": [T.nanosecond()],
    "two-interfaces": [T.sll2(), T.two_interfaces()],
    "raw+ipv6+nanosecond": [T.raw_ip(), T.to_ipv6(), T.nanosecond()],
}


def _analyze(path: Path, ports: frozenset[int]) -> list[dict[str, Any]]:
    res = analyze_file(str(path), AnalysisConfig(ports=ports))
    assert res.error is None, f"{path.name}: {res.error}"
    return res.conversations


def _facts(c: dict[str, Any], frames: bool = True) -> tuple[Any, ...]:
    st = c["starttls"]
    found = sorted((f["code"], f["side"], f.get("frame") if frames else None) for f in c["findings"]
                   if frames or not f["code"].startswith("tcp-"))
    return (c["outcome"], c["caused_by"], c["reason"], c.get("case"),
            (st["offered"], st["requested"], st["reply_code"]), found)


def _ends(c: dict[str, Any]) -> tuple[int, int, int]:
    return (c["client"]["port"], c["server"]["port"], c["first_frame"])


def _by_ports(convs: list[dict[str, Any]], frames: bool) -> list[tuple[Any, ...]]:
    return sorted(((c["client"]["port"], c["server"]["port"]) + _facts(c, frames) for c in convs),
                  key=repr)


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[T.Capture, frozenset[int]]]:
    out = {}
    for name in SAMPLE:
        cap = T.load(REPO / "captures" / name)
        assert any(isinstance(f, T.Seg) for f in cap.frames), name
        out[name] = (cap, cap.ports)
    return out


def _reference(cap: T.Capture, tmp_path: Path) -> list[dict[str, Any]]:
    """The capture as transforms.py writes it back unchanged (Ethernet, pcap)."""
    return _analyze(T.save(cap, tmp_path / "identity.pcap"), cap.ports)


@pytest.mark.parametrize("name", SAMPLE)
def test_every_link_type_and_format_keeps_every_finding(
        name: str, loaded: dict[str, tuple[T.Capture, frozenset[int]]], tmp_path: Path) -> None:
    cap, _ = loaded[name]
    ref = _reference(cap, tmp_path)
    assert ref, name
    want = _by_ports(ref, frames=True)
    bad = []
    for link, steps in LINKS.items():
        got = _by_ports(_analyze(T.save(T.apply(cap, *steps), tmp_path / f"{link}.pcap"), cap.ports),
                        frames=True)
        if got != want:
            bad.append(f"{link}: {got} where Ethernet/pcap has {want}")
    assert not bad, "\n".join(bad)


def test_the_link_headers_are_the_ones_named(tmp_path: Path,
                                             loaded: dict[str, tuple[T.Capture, frozenset[int]]]) -> None:
    """Not vacuous: each file carries the link type (and magic) its step names, and the
    two-interface pcapng really spreads the frames over two interfaces of two link types."""
    import struct

    from pcapsmtp.capture.pcapfile import iter_records
    cap, _ = loaded["tls-fallback.pcap"]
    for steps, magic, linktype in (([T.sll()], 0xA1B2C3D4, 113), ([T.raw_ip()], 0xA1B2C3D4, 101),
                                   ([T.null()], 0xA1B2C3D4, 0), ([T.loop()], 0xA1B2C3D4, 108),
                                   ([T.nanosecond()], 0xA1B23C4D, 1)):
        data = T.save(T.apply(cap, *steps), tmp_path / "x.pcap").read_bytes()
        assert struct.unpack_from("<I", data, 0)[0] == magic
        assert struct.unpack_from("<I", data, 20)[0] == linktype
    path = T.save(T.apply(cap, T.sll2(), T.two_interfaces()), tmp_path / "two.pcapng")
    recs = list(iter_records(str(path)))
    assert {r[2] for r in recs} == {276, 1} and len({r[6] for r in recs}) == 2


@pytest.mark.parametrize("name", SAMPLE)
def test_a_capture_at_both_ends_merged_keeps_every_verdict(
        name: str, loaded: dict[str, tuple[T.Capture, frozenset[int]]], tmp_path: Path) -> None:
    cap, _ = loaded[name]
    want = _by_ports(_reference(cap, tmp_path), frames=False)
    out = T.apply(cap, T.second_tap())
    assert len(out.frames) > len(cap.frames)
    got = _by_ports(_analyze(T.save(out, tmp_path / "taps.pcap"), cap.ports), frames=False)
    assert got == want


def test_two_captures_merged_keep_each_verdict(
        loaded: dict[str, tuple[T.Capture, frozenset[int]]], tmp_path: Path) -> None:
    """Each capture of the sample merged with the next one (a ring): every conversation of
    either keeps the verdict and case it has alone."""
    alone = {}
    for name in SAMPLE:
        cap, _ = loaded[name]
        alone[name] = sorted((c["client"]["port"], c["server"]["port"]) + _facts(c, frames=False)[:4]
                             for c in _reference(cap, tmp_path))
    bad = []
    for a, b in zip(SAMPLE, SAMPLE[1:] + SAMPLE[:1]):
        ca, cb = loaded[a][0], loaded[b][0]
        if any(isinstance(f, T.Seg) and ":" in f.src for f in cb.frames):
            continue            # (its hosts are moved by IPv4 address)
        merged = T.apply(ca, T.merged_with(cb))
        got = _analyze(T.save(merged, tmp_path / "merged.pcap"), merged.ports)
        mine = sorted((c["client"]["port"], c["server"]["port"]) + _facts(c, frames=False)[:4]
                      for c in got if not c["client"]["ip"].startswith("10."))
        theirs = sorted((c["client"]["port"], c["server"]["port"]) + _facts(c, frames=False)[:4]
                        for c in got if c["client"]["ip"].startswith("10."))
        if mine != alone[a] or theirs != alone[b]:
            bad.append(f"{a} + {b}: {mine} / {theirs} where alone {alone[a]} / {alone[b]}")
    assert not bad, "\n".join(bad)
