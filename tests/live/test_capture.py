"""LiveSource and its pcapng writer, on the real loopback interface (no pipeline needed)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pcapsmtp.capture.base import LINKTYPE, RawFrame
from pcapsmtp.errors import BackendUnavailable, UsageError

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tcp_exchange(port: int, payloads: list[bytes], connections: int = 1) -> None:
    """``connections`` TCP connections to 127.0.0.1:port, each sending ``payloads``."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)

    def serve() -> None:
        for _ in range(connections):
            a, _ = srv.accept()
            with a:
                while a.recv(65536):
                    pass

    t = threading.Thread(target=serve)
    t.start()
    for _ in range(connections):
        with socket.create_connection(("127.0.0.1", port)) as c:
            for p in payloads:
                c.sendall(p)
    t.join(timeout=10)
    srv.close()


def _collect(src: object, until_idle: int = 3) -> list[RawFrame]:
    """Frames until ``until_idle`` consecutive idle wake-ups."""
    frames: list[RawFrame] = []
    idle = 0
    for f in src.frames():  # type: ignore[attr-defined]
        if f is None:
            idle += 1
            if idle >= until_idle:
                break
            continue
        idle = 0
        frames.append(f)
    return frames


def _read_pcapng(path: Path) -> list[tuple[int, bytes, int, int]]:
    """(linktype, data, wirelen, ts_ns) per record, read with scapy's own pcapng reader."""
    from scapy.utils import RawPcapNgReader

    out = []
    with RawPcapNgReader(str(path)) as r:
        for data, meta in r:
            ts = (meta.tshigh << 32 | meta.tslow) * (1_000_000_000 // meta.tsresol)
            out.append((meta.linktype, data, meta.wirelen, ts))
    return out


# ---------------------------------------------------------------------------------------------
# the writer alone (no privileges)


def test_pcapng_writer_round_trip_through_scapy_and_tshark(tmp_path: Path) -> None:
    from pcapsmtp.capture.live import PcapngWriter

    path = tmp_path / "w.pcapng"
    w = PcapngWriter(str(path), LINKTYPE["ETHERNET"], 262144, "eth0")
    frames = [(1_700_000_000_123_456_789 + i, bytes(range(i % 256)) * 3, 3 * (i % 256) + 7)
              for i in range(1, 40)]
    for i, (ts, data, wirelen) in enumerate(frames, 1):
        assert w.write(ts, data, wirelen) == i
    w.close()
    assert path.stat().st_size == w.size
    got = _read_pcapng(path)
    assert [(d, wl, ts) for _, d, wl, ts in got] == [(d, wl, ts) for ts, d, wl in frames]
    assert {lt for lt, *_ in got} == {1}
    if shutil.which("tshark"):
        r = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number",
                            "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"],
                           capture_output=True, text=True, check=True)
        rows = [line.split("\t") for line in r.stdout.splitlines()]
        assert len(rows) == len(frames)
        num, epoch, flen, caplen = rows[5]
        ts, data, wirelen = frames[5]
        assert (int(num), int(flen), int(caplen)) == (6, wirelen, len(data))
        assert epoch == f"{ts // 10**9}.{ts % 10**9:09d}"


def test_rotating_writer_numbers_each_file_from_one(tmp_path: Path) -> None:
    from pcapsmtp.capture.live import RotatingWriter

    w = RotatingWriter(str(tmp_path / "cap.pcapng"), 1, 65535, "lo", rotate_mb=1)
    for i in range(2000):             # 2000 blocks of 1432 bytes, ~2.9 MB -> three files
        w.write(1_000_000_000 + i, i.to_bytes(2, "big") * 700, 1400)
    w.close()
    names = [Path(p).name for _, p in w.files]
    assert names == ["cap.pcapng", "cap.1.pcapng", "cap.2.pcapng"]
    counts = [len(_read_pcapng(Path(p))) for _, p in w.files]
    assert sum(counts) == 2000
    for size in (Path(p).stat().st_size for _, p in w.files[:-1]):
        assert 1_000_000 <= size < 1_000_000 + 1500
    # global frame n+1 is the first frame of the second file
    second_start = counts[0] + 1
    assert w.locate(second_start) == (str(tmp_path / "cap.1.pcapng"), 1)
    assert w.locate(second_start - 1) == (str(tmp_path / "cap.pcapng"), counts[0])
    assert w.locate(2000) == (str(tmp_path / "cap.2.pcapng"), counts[2])
    ts_of = {ts for *_, ts in _read_pcapng(tmp_path / "cap.1.pcapng")}
    assert min(ts_of) == 1_000_000_000 + counts[0]


def test_rotating_writer_keeps_only_the_newest_files(tmp_path: Path) -> None:
    from pcapsmtp.capture.live import RotatingWriter

    w = RotatingWriter(str(tmp_path / "cap.pcapng"), 1, 65535, "lo", rotate_mb=1, keep=2)
    for i in range(3000):
        w.write(i, b"\0" * 1200, 1200)
    w.close()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and "cap.pcapng" not in left


# ---------------------------------------------------------------------------------------------
# live capture on loopback


@pytest.mark.live
def test_loopback_frames_once_each_with_ns_timestamps_and_written_copy(tmp_path: Path) -> None:
    from pcapsmtp.capture.live import LiveSource

    port = _free_port()
    out = tmp_path / "lo.pcapng"
    with LiveSource("lo", f"tcp port {port}", write=str(out), timeout=0.2) as src:
        assert src.linktype == LINKTYPE["ETHERNET"]
        before = time.time_ns()
        t = threading.Thread(target=_tcp_exchange, args=(port, [b"EHLO x\r\n", b"Q" * 200_000]),
                             kwargs={"connections": 3})
        t.start()
        frames = _collect(src)
        t.join()
        after = time.time_ns()
        stats = src.stats()
    assert [f.number for f in frames] == list(range(1, len(frames) + 1))
    # loopback shows every packet twice to a packet socket; we keep one copy: 3 SYNs, 3 SYN-ACKs
    flags = [f.data[14 + 20 + 13] for f in frames]
    assert sum(1 for x in flags if x & 0x12 == 0x02) == 3
    assert sum(1 for x in flags if x & 0x12 == 0x12) == 3
    assert all(before <= f.ts_ns <= after for f in frames)
    assert sum(len(f.data) for f in frames) > 3 * 200_000
    assert stats["received"] == len(frames)
    assert stats["dropped_by_kernel"] == 0
    assert stats["files"] == [str(out)]
    written = _read_pcapng(out)
    assert [(d, wl, ts) for _, d, wl, ts in written] == [(f.data, f.wirelen, f.ts_ns)
                                                         for f in frames]


@pytest.mark.live
def test_kernel_drops_are_reported(tmp_path: Path) -> None:
    from pcapsmtp.capture.live import LiveSource

    port = _free_port()
    with LiveSource("lo", f"tcp port {port}") as src:
        # a tiny receive buffer that nobody reads while a burst goes by
        src._ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        _tcp_exchange(port, [b"x" * 100] * 2000)
        stats = src.stats()
        assert stats["dropped_by_kernel"] > 0
        got = _collect(src, until_idle=2)
        assert len(got) < 2000
        assert src.stats()["received"] == len(got)


@pytest.mark.live
def test_idle_wakeups_and_stop() -> None:
    from pcapsmtp.capture.live import LiveSource

    port = _free_port()
    with LiveSource("lo", f"tcp port {port}", timeout=0.1) as src:
        t0 = time.monotonic()
        it = src.frames()
        assert next(it) is None                    # nothing arrives: an idle wake-up
        assert time.monotonic() - t0 < 1.0
        src.stop()
        assert list(it) == []


def test_unknown_interface_lists_the_real_ones() -> None:
    from pcapsmtp.capture.live import LiveSource

    with pytest.raises(BackendUnavailable) as e:
        LiveSource("nosuchif0", "tcp port 25")
    msg = str(e.value)
    assert "\n" not in msg
    assert "'nosuchif0'" in msg
    for _, name in socket.if_nameindex():
        assert name in msg


@pytest.mark.live
def test_bad_filter_is_a_usage_error() -> None:
    from pcapsmtp.capture.live import LiveSource

    with pytest.raises(UsageError) as e:
        LiveSource("lo", "tcp port 25 and and")
    assert "bad capture filter" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.live
def test_without_cap_net_raw_one_line_says_what_is_missing(tmp_path: Path) -> None:
    capsh = shutil.which("capsh")
    if capsh is None:
        pytest.skip("capsh (libcap2-bin) is needed to drop CAP_NET_RAW")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([capsh, "--drop=cap_net_raw", "--", "-c",
                        f"exec {sys.executable} -m pcapsmtp.commands.live -i lo --duration 1"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "CAP_NET_RAW" in lines[0] and "root" in lines[0] and "setcap" in lines[0]
    assert r.stdout == ""


def test_unknown_interface_via_the_command() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "pcapsmtp.commands.live", "-i", "nosuchif0"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuchif0" in lines[0] and "lo" in lines[0]
