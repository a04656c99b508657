"""Two real taps, one per direction, merged with a clock offset: the verdicts of a capture of both.

An admin with a tap pair, or with one SPAN session per direction, gets one file per direction and
merges them with ``mergecap``; the two capture clocks differ by milliseconds, so in the merged file
a packet can come before the packet that caused it (a reply before its command, the client's
first bytes before the server's SYN-ACK, a client's reset before the server's last replies, a
closed socket's reset without ACK before the segment it answers: a ClientHello sent after the
server closed, a closing TLS alert).

Everything here is real: the SMTP sessions are real clients (Python smtplib, swaks, curl, msmtp)
against the real-client harness's server (tests/realclients/realclients_harness.py) in several
STARTTLS modes and a plaintext-only one. Three tcpdumps run at once: the client's tap, the
server's tap, and one of both directions (the reference, what one capture point in the path
would see). On loopback the taps keep the packets sent to the servers' ports and those sent
from them; over a veth pair between two network namespaces (smtplib and swaks as the live tests
run them) they are ``tcpdump -Q in`` and ``-Q out`` on the server's end. The client's file is
shifted with ``editcap -t``, both merged with ``mergecap -w`` (time order), and ``pcapsmtp
analyze --format json`` reads the merged file and the reference.

Frames have other numbers in the merged file, so every frame number of the output (``frame``,
``frames``, ``*_frame``) is compared through the packet it names: its direction, raw TCP sequence
and acknowledgement numbers, flags, length and how many identical packets came before it in its
own direction (each tap keeps its own order), as tshark reads them. Everything else of a
conversation must be the same, except the capture's own bookkeeping: the file, the times, the
stream index and first frame (checked against tshark on the merged file instead) and frame-number
filters. One capture session is shared by every case (module fixtures), so the whole file takes
a few seconds beyond the clients' own time.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "realclients"))
import realclients_harness as h  # noqa: E402

pytestmark = pytest.mark.live

#: the servers: STARTTLS works, is refused with 454, is answered 220 and then the server closes,
#: is answered 220 and then a fatal alert; and a server that does not offer STARTTLS at all
MODES: dict[str, h.Behaviour] = {
    "tls": h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="tls"),
    "454": h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="454"),
    "close": h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="close"),
    "alert": h.Behaviour(ehlo=h.SHAPES["C1"], on_starttls="alert"),
    "plaintext": h.Behaviour(ehlo=h.SHAPES["none"], on_starttls="tls"),
}

#: the real clients, each in its opportunistic mode (msmtp: TLS required, so it quits instead of
#: sending in the clear)
CLIENTS: dict[str, Callable[..., h.ClientRun]] = {
    "smtplib": h.run_smtplib,
    "swaks": h.run_swaks,
    "curl": h.run_curl,
    "msmtp": h.run_msmtp,
}
TOOLS = {"smtplib": "", "swaks": "swaks", "curl": "curl", "msmtp": "msmtp"}

#: how far the client's tap is off (seconds; negative: its clock is behind, so its packets come
#: earlier). A loopback round trip is tens of microseconds and a whole session here a few
#: milliseconds, so 20 ms puts one direction wholly before or after the other; 0.5 s also
#: interleaves neighbouring sessions. All within the reassembler's causal window of 2 s.
SKEWS = (-0.5, -0.02, 0.02, 0.5)

#: each mode's verdict in the reference, whichever client: (caused_by, reason, finding codes,
#: outcomes). The outcome after a refusal or a server without STARTTLS is the client's choice:
#: ``plaintext`` (sent in the clear: swaks, curl, smtplib without an offer) or ``aborted`` (msmtp,
#: which requires TLS here; smtplib, which raises on the 454)
EXPECTED: dict[str, tuple[str, str, list[str], set[str]]] = {
    "tls": ("none", "tls-established", [], {"tls"}),
    "454": ("server", "starttls-refused", [], {"plaintext", "aborted"}),
    "close": ("server", "tls-handshake-failed", [], {"aborted"}),
    "alert": ("server", "tls-handshake-failed", ["tls-alert"], {"aborted"}),
    "plaintext": ("server", "starttls-not-offered", [], {"plaintext", "aborted"}),
}


def _tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (tests/run.sh installs it on Debian 12)")


# ------------------------------------------------------------------------------ reading the files

@dataclass
class Reading:
    """pcapsmtp's and tshark's reading of one capture file."""

    path: Path
    conversations: list[dict[str, Any]]
    status: int                         #: analyze's exit status
    packet: dict[int, tuple[Any, ...]]  #: frame number -> the packet's identity
    stream: dict[int, int]              #: frame number -> tshark's tcp.stream
    ports: dict[int, tuple[int, int]]   #: frame number -> (source port, destination port)

    def conversation(self, client_port: int, server_port: int) -> dict[str, Any]:
        found = [c for c in self.conversations
                 if (c["client"]["port"], c["server"]["port"]) == (client_port, server_port)]
        assert len(found) == 1, f"{self.path.name}: {len(found)} conversations {client_port} -> {server_port}"
        return found[0]


def read(path: Path) -> Reading:
    # a PYTHONPATH given first (another checkout's pcapsmtp on this checkout's captures), then this
    # one; not run from the checkout, whose pcapsmtp/ ``-m`` would take before either
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(REPO)))))
    p = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json", str(path)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=path.parent)
    assert p.returncode in (0, 1), f"{path.name}: exit {p.returncode}: {p.stderr[-2000:]}"
    convs = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    convs = [c for c in convs if "summary" not in c]
    t = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
                        "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport",
                        "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.flags", "-e", "tcp.len"],
                       capture_output=True, text=True, timeout=120)
    assert t.returncode == 0, t.stderr
    packet: dict[int, tuple[Any, ...]] = {}
    stream: dict[int, int] = {}
    ports: dict[int, tuple[int, int]] = {}
    seen: dict[tuple[str, ...], int] = {}
    for line in t.stdout.splitlines():
        frame, strm, sport, dport, *rest = line.split("\t")
        ident = (sport, dport, *rest)
        seen[ident] = seen.get(ident, 0) + 1
        packet[int(frame)] = (*ident, seen[ident])
        stream[int(frame)] = int(strm)
        ports[int(frame)] = (int(sport), int(dport))
    return Reading(path, convs, p.returncode, packet, stream, ports)


#: what a merged file may number or time differently from the reference: the file, the capture
#: times, the stream index and first frame (both checked against tshark), a filter of frame numbers
BOOKKEEPING = frozenset({"file", "started_ns", "ended_ns", "stream", "first_frame", "evidence_filter"})


def by_packet(value: Any, packet: dict[int, tuple[Any, ...]], key: str = "") -> Any:
    """``value`` (a conversation or part of it) with every frame number replaced by the packet it
    names and the bookkeeping left out."""
    if isinstance(value, dict):
        return {k: by_packet(v, packet, k) for k, v in value.items()
                if k not in BOOKKEEPING and not (k == "wireshark_filter" and "frame.number" in str(v))}
    if key == "frame" or key.endswith("_frame"):
        return None if value is None else packet[value]
    if key == "frames" or key.endswith("_frames"):
        return [packet[f] for f in value]
    if isinstance(value, list):
        return [by_packet(v, packet, key) for v in value]
    return value


# ----------------------------------------------------------------------------------- the session

@dataclass
class Taps:
    dir: Path
    cases: dict[tuple[str, str], tuple[int, int]]       #: (mode, client) -> (client port, server port)
    outputs: dict[tuple[str, str], str]                 #: (mode, client) -> what the client said
    reference: Reading
    c2s: Path                                           #: the client's tap (to the servers)
    s2c: Path                                           #: the server's tap (from the servers)
    merged: dict[float, Reading] = field(default_factory=dict)

    def merge(self, skew: float) -> Reading:
        """The client's tap ``skew`` seconds off (``editcap -t``), merged with the server's."""
        if skew not in self.merged:
            shifted = self.dir / f"c2s{skew:+g}.pcapng"
            out = self.dir / f"merged{skew:+g}.pcapng"
            for argv in (["editcap", "-t", f"{skew:g}", str(self.c2s), str(shifted)],
                         ["mergecap", "-w", str(out), str(shifted), str(self.s2c)]):
                p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                assert p.returncode == 0, f"{argv[0]}: {p.stderr}"
            self.merged[skew] = read(out)
        return self.merged[skew]


def _tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("tcpdump needs root (CI runs these as root)")
    for tool in ("tcpdump", "tshark", "editcap", "mergecap"):
        _tool(tool)


def _taps(d: Path, ports: dict[str, int], clients: list[str], outputs: dict[tuple[str, str], str],
          taps: tuple[h.Tcpdump, h.Tcpdump, h.Tcpdump]) -> Taps:
    """The session's :class:`Taps`, from the three tcpdumps (both directions, the client's, the
    server's), once they stopped. The clients connected one after the other, in the order of
    ``clients``: a server's conversations in the reference's order are its clients'."""
    for t in taps:
        assert not t.dropped, f"{t.path.name}: tcpdump dropped {t.dropped} packets"
    reference = read(taps[0].path)
    cases: dict[tuple[str, str], tuple[int, int]] = {}
    for mode, port in ports.items():
        convs = sorted((c for c in reference.conversations if c["server"]["port"] == port),
                       key=lambda c: c["first_frame"])
        assert len(convs) == len(clients), f"{mode}: {len(convs)} conversations in the reference"
        for name, conv in zip(clients, convs):
            cases[(mode, name)] = (conv["client"]["port"], port)
    return Taps(d, cases, outputs, reference, taps[1].path, taps[2].path)


@pytest.fixture(scope="module")
def taps(tmp_path_factory: pytest.TempPathFactory) -> Taps:
    """Loopback: the taps keep the packets to the servers' ports and from them (a BPF filter)."""
    _tools()
    clients = {n: f for n, f in CLIENTS.items() if not TOOLS[n] or shutil.which(TOOLS[n])}
    if len(clients) < 2:
        pytest.skip("fewer than two of the real clients are installed (swaks, curl, msmtp)")
    d = tmp_path_factory.mktemp("taps")
    cert = h.make_cert(d / "cert")
    servers = {m: h.ByteServer(b, *cert).start() for m, b in MODES.items()}
    outputs: dict[tuple[str, str], str] = {}
    try:
        ports = {m: s.port for m, s in servers.items()}
        first, *rest = ports.values()
        with h.Tcpdump(d / "both.pcap", first, tuple(rest)) as tb, \
                h.Tcpdump(d / "c2s.pcap", first, tuple(rest), direction="dst") as tc, \
                h.Tcpdump(d / "s2c.pcap", first, tuple(rest), direction="src") as ts:
            for mode, port in ports.items():
                for name, run in clients.items():
                    outputs[(mode, name)] = run(port, cert[0], d, wait=5, limit=20).output
        for mode, s in servers.items():
            assert len(s.conns) == len(clients), f"{mode}: {len(s.conns)} connections, {len(clients)} clients"
    finally:
        for s in servers.values():
            s.stop()
    return _taps(d, ports, list(clients), outputs, (tb, tc, ts))


# --------------------------------------------------------------------------- over a veth pair

CLIENT_NS, SERVER_NS = "10.231.9.1", "10.231.9.2"
#: the modes served over the veth pair, and its clients (tests/live/conftest.py's)
VETH_MODES = ("tls", "454", "alert", "plaintext")
VETH_CLIENTS = ("smtplib", "swaks")

#: in the server's namespace: the harness's servers on its address; their ports on stdout, then
#: they serve until stdin closes
SERVE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import realclients_harness as h
modes = json.loads(sys.argv[4])
servers = {m: h.ByteServer(h.Behaviour(ehlo=h.SHAPES[e], on_starttls=o), Path(sys.argv[2]), Path(sys.argv[3]),
                           host=sys.argv[5]).start() for m, (e, o) in modes.items()}
print(json.dumps({m: s.port for m, s in servers.items()}), flush=True)
sys.stdin.read()
print(json.dumps({m: len(s.conns) for m, s in servers.items()}), flush=True)
for s in servers.values():
    s.stop()
"""

#: in the client's namespace: the live tests' smtplib and swaks deliveries to each port in turn
DELIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from conftest import deliver_smtplib, deliver_swaks
for port in json.loads(sys.argv[4]):
    for name, send in (("smtplib", lambda p: deliver_smtplib(sys.argv[2], p)),
                       ("swaks", lambda p: deliver_swaks(sys.argv[2], p, sys.argv[3]))):
        try:
            print(name, port, "sent from", send(port), flush=True)
        except (Exception, AssertionError) as exc:
            print(name, port, "failed:", repr(exc)[:300], flush=True)
"""


@pytest.fixture(scope="module")
def veth_taps(tmp_path_factory: pytest.TempPathFactory) -> Taps:
    """A client namespace and a server namespace joined by a veth pair (a real Ethernet link);
    the taps are ``tcpdump -Q in`` and ``-Q out`` on the server's end, the reference a tcpdump
    of both there."""
    _tools()
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed (apt-get install swaks)")
    sys.path.insert(0, str(REPO / "tests" / "live"))
    from vethns import ip, veth_namespaces
    d = tmp_path_factory.mktemp("veth-taps")
    cert = h.make_cert(d / "cert")
    tag = os.getpid() % 100000
    names, devs = (f"tapc{tag}", f"taps{tag}"), (f"tapc{tag}", f"taps{tag}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(REPO)))))
    with veth_namespaces(names, devs) as (cns, sns):
        for ns, dev, addr in ((cns, devs[0], CLIENT_NS), (sns, devs[1], SERVER_NS)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        modes = {m: ("none" if m == "plaintext" else "C1", "tls" if m == "plaintext" else m) for m in VETH_MODES}
        server = subprocess.Popen(["ip", "netns", "exec", sns, sys.executable, "-c", SERVE,
                                   str(REPO / "tests" / "realclients"), *map(str, cert), json.dumps(modes),
                                   SERVER_NS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert server.stdout is not None and server.stdin is not None
            ports: dict[str, int] = json.loads(server.stdout.readline())
            first, *rest = ports.values()
            dev = devs[1]
            with h.Tcpdump(d / "both.pcap", first, tuple(rest), iface=dev, netns=sns) as tb, \
                    h.Tcpdump(d / "c2s.pcap", first, tuple(rest), iface=dev, netns=sns, inout="in") as tc, \
                    h.Tcpdump(d / "s2c.pcap", first, tuple(rest), iface=dev, netns=sns, inout="out") as ts:
                p = subprocess.run(["ip", "netns", "exec", cns, sys.executable, "-c", DELIVER,
                                    str(REPO / "tests" / "live"), SERVER_NS, CLIENT_NS,
                                    json.dumps(list(ports.values()))],
                                   capture_output=True, text=True, timeout=120, env=env)
            assert p.returncode == 0, p.stderr[-3000:]
            server.stdin.close()
            conns = json.loads(server.stdout.readline())
            assert conns == {m: len(VETH_CLIENTS) for m in ports}, (conns, p.stdout)
        finally:
            if server.poll() is None:
                server.kill()
            server.wait(10)
    outputs = {(m, c): p.stdout for m in ports for c in VETH_CLIENTS}
    return _taps(d, ports, list(VETH_CLIENTS), outputs, (tb, tc, ts))


CASES = [(m, c) for m in MODES for c in CLIENTS]

def named(value: Any) -> set[tuple[Any, ...]]:
    """The packets a conversation (after :func:`by_packet`) names as evidence."""
    if isinstance(value, dict):
        return set().union(*(named(v) for v in value.values()))
    if isinstance(value, tuple):
        return {value}
    if isinstance(value, list):
        return set().union(*(named(v) for v in value))
    return set()


def _case(taps: Taps, mode: str, client: str) -> tuple[int, int]:
    if (mode, client) not in taps.cases:
        pytest.skip(f"{client} is not installed")
    return taps.cases[(mode, client)]


def keep(into: Path, taps: Taps, merged: Reading, skew: float, case: str, ports: tuple[int, int],
         diff: dict[str, Any]) -> None:
    """With TAPS_KEEP=DIR: the case's files (both taps, the reference, the merged file) and a
    note of what differs, in DIR/CASE, for whoever looks into it."""
    d = into / case
    d.mkdir(parents=True, exist_ok=True)
    for f in (taps.reference.path, taps.c2s, taps.s2c, merged.path):
        shutil.copy(f, d / f.name)
    where = {r.path.name: {v: k for k, v in r.packet.items()} for r in (taps.reference, merged)}
    packets = sorted(set().union(*(named(v) for pair in diff.values() for v in pair)))
    ref = taps.reference.conversation(*ports)
    (d / "NOTE.txt").write_text(
        f"conversation {ref['client']['ip']}:{ports[0]} -> {ref['server']['ip']}:{ports[1]}; "
        f"the client's tap {skew:+g} s off\n"
        f"reference: {taps.reference.path.name}; merged: {merged.path.name} "
        f"(editcap -t {skew:g} {taps.c2s.name}, then mergecap -w with {taps.s2c.name})\n"
        "differences (reference, merged), a frame as (sport, dport, seq_raw, ack_raw, flags, len, nth):\n"
        + "".join(f"  {k}: {v!r}\n" for k, v in sorted(diff.items()))
        + "those frames' numbers:\n"
        + "".join(f"  {p}: " + ", ".join(f"{n} {m.get(p)}" for n, m in where.items()) + "\n"
                  for p in packets))


# ----------------------------------------------------------------------------------------- tests

def crossing(want: dict[str, Any], have: dict[str, Any]) -> bool:
    """Whether ``tls.alert`` (after :func:`by_packet`) names, in ``want`` and ``have``, alerts of
    the two sides whose segments crossed: neither acknowledges the other's first byte."""
    a, b = ((x["tls"] or {}).get("alert") or {} for x in (want, have))
    if not (a.get("frame") and b.get("frame")) or a["side"] == b["side"]:
        return False
    def acks(x: tuple[Any, ...], y: tuple[Any, ...]) -> bool:     # x's ACK covers y's first byte
        return 0 < (int(x[3]) - int(y[2])) % 2**32 < 2**31

    return not acks(a["frame"], b["frame"]) and not acks(b["frame"], a["frame"])


def check_reference(taps: Taps, mode: str, client: str) -> None:
    conv = taps.reference.conversation(*_case(taps, mode, client))
    caused_by, reason, codes, outcomes = EXPECTED[mode]
    output = taps.outputs[(mode, client)][-1500:]
    assert (conv["caused_by"], conv["reason"], [f["code"] for f in conv["findings"]]) == \
        (caused_by, reason, codes), output
    assert conv["outcome"] in outcomes
    assert conv["mail"] is (conv["outcome"] == "plaintext"), output


def check_skewed(taps: Taps, skew: float, mode: str, client: str) -> None:
    ports = _case(taps, mode, client)
    merged = taps.merge(skew)
    ref, got = taps.reference.conversation(*ports), merged.conversation(*ports)
    # the skew did reorder this conversation's packets across the directions
    order_ref = [taps.reference.packet[f] for f in sorted(taps.reference.packet)
                 if set(taps.reference.ports[f]) == set(ports)]
    order_got = [merged.packet[f] for f in sorted(merged.packet) if set(merged.ports[f]) == set(ports)]
    assert sorted(order_ref) == sorted(order_got)
    assert order_ref != order_got, "the skew did not move a packet of this conversation"
    want, have = by_packet(ref, taps.reference.packet), by_packet(got, merged.packet)
    assert (have["outcome"], have["caused_by"], have["reason"]) == \
        (want["outcome"], want["caused_by"], want["reason"]), have["detail"]
    assert have["starttls"] == want["starttls"]
    assert [(f["code"], f["side"]) for f in have["findings"]] == \
        [(f["code"], f["side"]) for f in want["findings"]]
    if crossing(want, have):
        # Both sides closed TLS at once: each alert left before the other arrived, so which
        # came first is no fact (one capture point sees one order, two taps either), and
        # ``tls.alert``, the first alert in the capture, may be either.
        have["tls"]["alert"] = want["tls"]["alert"]
    diff = {k: (want.get(k), have.get(k)) for k in want.keys() | have.keys() if want.get(k) != have.get(k)}
    if diff and os.environ.get("TAPS_KEEP"):
        keep(Path(os.environ["TAPS_KEEP"]), taps, merged, skew, f"{taps.dir.name}-{skew:+g}s-{mode}-{client}",
             ports, diff)
    assert not diff, f"(reference, merged {skew:+g} s) = {diff}"


def check_streams(taps: Taps, skew: float) -> None:
    merged = taps.merge(skew)
    assert len(merged.conversations) == len(taps.reference.conversations)
    for conv in merged.conversations:
        ends = {conv["client"]["port"], conv["server"]["port"]}
        frames = sorted(f for f, p in merged.ports.items() if set(p) == ends)
        assert {merged.stream[f] for f in frames} == {conv["stream"]}, ends
        assert conv["first_frame"] == frames[0], ends
    assert merged.status == taps.reference.status


SKEW_IDS = {"ids": lambda s: f"{s * 1000:+g}ms"}


def test_the_two_taps_hold_what_the_reference_holds(taps: Taps) -> None:
    """The unshifted merge has the reference's packets, each once: a tap saw all of its direction."""
    assert sorted(taps.merge(0.0).packet.values()) == sorted(taps.reference.packet.values())


@pytest.mark.parametrize("mode,client", CASES)
def test_reference(taps: Taps, mode: str, client: str) -> None:
    """What each case is about, in the reference capture of both directions."""
    check_reference(taps, mode, client)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("skew", SKEWS, **SKEW_IDS)
def test_skewed_taps_keep_the_verdict(taps: Taps, skew: float, mode: str, client: str) -> None:
    """The merged file of two skewed taps gives the conversation the reference gives it: verdict,
    STARTTLS and TLS facts, findings with their sides and packets, the same packets as evidence."""
    check_skewed(taps, skew, mode, client)


@pytest.mark.parametrize("skew", SKEWS, **SKEW_IDS)
def test_tshark_numbers_the_merged_streams_as_we_do(taps: Taps, skew: float) -> None:
    """Each conversation's ``stream`` is tshark's ``tcp.stream`` of its packets in the merged file,
    its ``first_frame`` the first of them, and analyze's exit status is the reference's."""
    check_streams(taps, skew)


@pytest.mark.parametrize("skew", (-3.0, 3.0), ids=lambda s: f"{s:+g}s")
def test_beyond_the_causal_window_no_side_is_blamed_wrongly(taps: Taps, skew: float) -> None:
    """Past the reassembler's causal window (2 s) a segment no longer waits for the other side's
    segment it acknowledges: a conversation may come out ``incomplete``, but never with the blame
    on another side than the reference's."""
    merged = taps.merge(skew)
    for ref in taps.reference.conversations:
        got = merged.conversation(ref["client"]["port"], ref["server"]["port"])
        assert got["caused_by"] in (ref["caused_by"], "unknown"), (ref["reason"], got["reason"], got["detail"])


VETH_CASES = [(m, c) for m in VETH_MODES for c in VETH_CLIENTS]


def test_veth_taps_hold_what_the_reference_holds(veth_taps: Taps) -> None:
    """``-Q in`` and ``-Q out`` on one veth end split its packets: together, the reference's."""
    assert sorted(veth_taps.merge(0.0).packet.values()) == sorted(veth_taps.reference.packet.values())


@pytest.mark.parametrize("mode,client", VETH_CASES)
def test_veth_reference(veth_taps: Taps, mode: str, client: str) -> None:
    check_reference(veth_taps, mode, client)


@pytest.mark.parametrize("client", VETH_CLIENTS)
@pytest.mark.parametrize("mode", VETH_MODES)
@pytest.mark.parametrize("skew", SKEWS, **SKEW_IDS)
def test_veth_skewed_taps_keep_the_verdict(veth_taps: Taps, skew: float, mode: str, client: str) -> None:
    """As over loopback, on an Ethernet link, with taps that split by the interface's direction,
    not by port."""
    check_skewed(veth_taps, skew, mode, client)


@pytest.mark.parametrize("skew", SKEWS, **SKEW_IDS)
def test_veth_tshark_numbers_the_merged_streams_as_we_do(veth_taps: Taps, skew: float) -> None:
    check_streams(veth_taps, skew)
