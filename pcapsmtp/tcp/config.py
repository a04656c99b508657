"""Configuration and counters of the TCP reassembler."""
from __future__ import annotations

from dataclasses import dataclass, fields

from pcapsmtp.model import SMTP_PORTS

__all__ = ["ReassemblyConfig", "ReassemblyStats"]


@dataclass(frozen=True, eq=False, repr=False)
class ReassemblyConfig:
    smtp_ports: frozenset[int] = SMTP_PORTS
    """A conversation with one of these ports on either side is an SMTP candidate."""
    detect_by_content: bool = True
    """Also follow conversations whose first payload is an SMTP greeting or EHLO/HELO/LHLO."""
    detect_segments: int = 64
    """Segments held per conversation on another port while its first bytes do not decide yet
    whether it is SMTP (a greeting cut into 1-byte segments, or whose first bytes arrive after
    later ones); past the bound it is decided from the bytes known then. Also the bound of a
    late start's first segments, per side, held to start it at their lowest sequence number
    whatever their order (``HalfStream.soft``)."""
    detect_bytes: int = 4096
    """Payload bytes held per such conversation (same rule; per side for a late start)."""
    max_pending: int = 4096
    """Such undecided conversations held at once; a new one past the bound decides the oldest."""
    causal_window_ns: int = 2 * 10**9
    """Causal order between the two directions: a segment whose acknowledgement covers bytes
    of the other side not seen yet waits for them (they are late, not lost: captures merged
    from two taps, ``-i any`` on a multi-queue NIC) until a segment of the conversation comes
    this much capture time later ... (also how long a late start's first bytes, and a
    conversation held for its handshake ACK, wait at most)"""
    max_held_segments: int = 4096
    """... or the segments waiting (those that wait and the later ones of their side behind
    them, both sides together) are more than this many, or hold more than ``max_ooo_bytes`` of
    payload (whichever comes first); the bytes still missing then are a gap (lost by the
    capture). The conversation's end releases them too. A bound of what is held, not of the
    segments that pass meanwhile: those cost nothing to hold, and a capture of one-byte
    segments crosses over a thousand of them in the 300 ms two taps can be apart. It bounds
    the memory of the hold (about 250 bytes per segment besides its payload: 1 MiB at the
    bound) and its time: a segment that comes while segments wait costs O(segments held),
    every one of them once the bound is reached. A conversation held for its handshake ACK
    holds as many at most (``_Pending``)."""
    tunnel_limit: int = 4096
    """Bytes per side watched for a proxy handshake (HTTP CONNECT, SOCKS5) on other ports
    before giving up on finding SMTP inside."""
    max_flows: int = 100_000
    """SMTP candidate flows followed at once; the least recently active one is evicted."""
    max_tracked: int = 65_536
    """Light entries (4-tuple -> tcp.stream) kept for stream numbering. Past the bound the
    entries not touched for the longest are evicted (two generations, close to an LRU).
    An entry costs ~200 bytes (packed int, key tuple and dict slot; ~330 bytes of RSS under
    a scan of new 4-tuples, address strings included), so the default bounds the table at
    ~21 MiB, within the 64 MiB target for a whole run. Trade-off: a conversation that stays
    silent while this many newer conversations start is forgotten; if it comes back it is a
    new conversation with a new stream index, and from then on our tcp.stream numbers are
    one higher than Wireshark's (whose table has no bound). An ordinary 1M-packet capture
    has ~50k conversations in all and never evicts."""
    closed_grace_ns: int | None = 20 * 10**9
    """Capture time after which the light entry of a *closed* conversation (RST seen, or FIN
    seen each way) is forgotten, if it has not changed since it closed. None: never (only
    ``max_tracked`` bounds the table). Closed conversations are most of a long capture's
    table: forgetting them keeps it at about (new conversations per second) x grace entries
    instead of filling it to ``max_tracked``. Measured on the benchmark's mixed files (~600
    new conversations per second, peak RSS of ``analyze --format json``, 100k / 1M / 4M
    packets): no forgetting 36.7 / 46.1 / 52.7 MiB; grace 10 s 36.6 / 39.5 / 41.6; 20 s
    36.9 / 41.1 / 43.8; 30 s 36.7 / 42.1 / 45.9; 60 s 36.8 / 47.4 / 50.0 (4M within 1.25 x
    100k: 10 s and 20 s; 30 s is at the limit). Trade-off: a segment without SYN that
    comes after the grace (a duplicate delayed that long, a FIN retransmitted after many
    lost ACKs, traffic that goes on after an RST the endpoints did not all see) starts a new
    conversation with a new stream index, and from then on our tcp.stream numbers are one
    higher than Wireshark's, as after an eviction; if it has an SMTP port and payload it is
    reported as a new (midstream) conversation. TCP's TIME_WAIT (2 MSL, 60 s on Linux)
    bounds legitimate late duplicates, so a grace shorter than 60 s trades some of that
    safety for memory: 20 s still covers six retransmissions of a FIN at the minimum RTO of
    200 ms (12.6 s) and the ACKs a TIME_WAIT side sends for them; on the benchmark the
    latest segment after a close comes 0.21 s after it. A close is forgotten up to
    grace/64 later than the grace (close times are kept rounded up, to share one int)."""
    reset_watch_ns: int = 3 * 10**9
    """After a reset closed a candidate, the resetting side's segments of the same connection are
    watched this much capture time longer (``SentAfterReset``: a side that goes on sending after
    its reset did not send it): the other side's reply or retransmission racing the reset (within
    a round trip, or a retransmission timeout: 200 ms to 1 s, doubled each time) comes within
    it. The conversation's ``FlowClosed`` (and so its verdict) waits for it; a SYN that reuses the
    4-tuple and the capture's end end it early. 0: no watch."""
    idle_timeout_ns: int = 600 * 10**9
    """A flow silent for this long in capture time is flushed and closed ("idle")."""
    max_ooo_bytes: int = 256 * 1024
    """Out-of-order bytes buffered per direction before the first hole is declared a gap."""
    retain_bytes: int = 16 * 1024
    """Delivered bytes kept per direction to compare retransmissions against (overlap
    conflicts). Older retransmitted bytes are dropped without comparison."""
    idle_check_every: int = 4096
    """Segments between two idle-timeout sweeps."""
    partition: tuple[int, int] | None = None
    """``(bucket, buckets)``: follow only the candidates whose flow hash
    (``tcp.partition.flow_bucket``) is ``bucket``; the others are numbered and then treated
    as not SMTP. For parallel workers over the same capture; None: follow every candidate."""


@dataclass(slots=True)
class ReassemblyStats:
    segments: int = 0
    """TcpSegments fed."""
    flows_seen: int = 0
    """TCP conversations numbered (tcp.stream indexes handed out)."""
    candidates: int = 0
    """SMTP candidate flows opened (FlowOpened events)."""
    reused: int = 0
    """Conversations that got a new stream index because a SYN reused their 4-tuple."""
    evicted: int = 0
    """Light entries evicted because the table held max_tracked entries."""
    forgotten: int = 0
    """Light entries of closed conversations deleted after closed_grace_ns."""
    flows_evicted: int = 0
    """Candidate flows closed because the flow table was full (or their light entry went)."""
    idle_closed: int = 0
    """Candidate flows closed by the idle timeout."""
    pending: int = 0
    """Conversations on other ports held until their first bytes decided (see detect_segments)."""
    causal_held: int = 0
    """Segments that acknowledged bytes of the other side not delivered yet (not seen, or a
    late start's first bytes still put in sequence order), held until they came."""
    causal_late: int = 0
    """... of which the awaited bytes arrived within the window (late, not lost)."""
    acked_gap_bytes: int = 0
    """Bytes declared a gap as soon as the peer acknowledged them (lost by the capture)."""
    ooo_dropped_bytes: int = 0
    """Bytes declared a gap because the out-of-order buffer bound forced delivery on."""
    retransmitted_bytes: int = 0
    """Payload bytes dropped because they had already been delivered (or buffered)."""
    conflicts: int = 0
    """OverlapConflict events."""
    keepalives: int = 0
    """Keep-alive segments ignored."""
    after_fin_bytes: int = 0
    """Payload bytes at or past a side's FIN, or after the side ended; ignored."""
    after_close_segments: int = 0
    """Segments of a candidate conversation that arrived after its flow was closed."""
    ignored_resets: int = 0
    """Resets of a followed conversation outside any window the receiver could have: 2^24 or
    more from their side's next byte, or behind the receiver's highest acknowledgement of that
    side (a stack drops them, RFC 9293 3.10.7.4, RFC 5961 3.2): the conversation went on."""
    gaps: int = 0
    """StreamGap events."""
    gap_bytes: int = 0
    """Bytes reported missing by StreamGap events."""
    snaplen_cut_segments: int = 0
    """Segments of a followed conversation whose frame the snap length cut (payload bytes on
    the wire but not captured)."""
    snaplen_gap_bytes: int = 0
    """... of ``gap_bytes``: bytes cut by the snap length (``GapCause.SNAPLEN``), not lost."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
