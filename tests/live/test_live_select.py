"""``pcapsmtp live`` with a selection (``--outcome``, ``--server``, ...): ``tcpreplay`` replays a
relay's SMTP traffic (bench/mixgen.py, a dozen conversations to different servers, IPv4 and
IPv6) on one end of a veth pair between two network namespaces made here; ``pcapsmtp live``
sniffs the other end.

- exactly the selected conversations are printed (JSON lines, table rows), with the verdicts
  ``analyze`` gives for the same file; what is selected is computed here from the offline
  verdicts, independently of pcapsmtp's selection code;
- the summary on exit counts the selected conversations (``selected_from``: all of them), the
  capture's counters (packets received, dropped by the kernel, reassembly) stay the whole
  capture's;
- the exit status is 1 only when a *selected* conversation lost TLS or shows a violation;
- ``--write`` keeps every packet: the file written analyses to every conversation.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.live, pytest.mark.netns]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from vethns import analyze_offline, relay_capture, replay_link, sniff_replay  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """(namespace of the capture, namespace of the replay), joined by pcss0 <-> pcss1."""
    tag = f"{os.getpid() % 100000}"
    with replay_link((f"pcs-scap-{tag}", f"pcs-srep-{tag}"), ("pcss0", "pcss1")) as link:
        yield link


@pytest.fixture(scope="module")
def relay_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A relay's view: the SMTP packets of a generated mixed capture."""
    return relay_capture(tmp_path_factory.mktemp("relay"), 4000, 17)


def _packets(pcap: Path) -> int:
    r = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True,
                       check=True, timeout=60)
    return len(r.stdout.splitlines())


def _replay(veth: tuple[str, str], pcap: Path, out: Path, *live_args: str) -> tuple[int, str]:
    """Replay ``pcap`` while ``pcapsmtp live`` sniffs with ``live_args``; its stdout goes to ``out``.
    Returns (exit status, stderr). At 4000 packets/s: the rate test_live_loss.py shows live
    sustains with no drop on a larger relay capture (and every test here asserts no drop)."""
    return sniff_replay(veth, ("pcss0", "pcss1"), pcap, out, live_args, ("--pps=4000",))


def _key(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c["client"]["ip"], c["client"]["port"], c["server"]["ip"], c["server"]["port"],
            c["outcome"], c["caused_by"], c["reason"])


def test_outcome_and_server_selection_json(veth: tuple[str, str], relay_pcap: Path,
                                           tmp_path: Path) -> None:
    offline, _ = analyze_offline(relay_pcap)
    assert len(offline) >= 8
    net = ipaddress.ip_network("198.51.100.0/25")
    want = [c for c in offline if c["outcome"] in ("plaintext", "aborted")
            and ipaddress.ip_address(c["server"]["ip"]) in net]
    # the selection must keep some and drop some on each option, or it tests nothing
    assert 0 < len(want) < len(offline)
    assert any(c["outcome"] in ("plaintext", "aborted") and c not in want for c in offline)
    assert any(ipaddress.ip_address(c["server"]["ip"]) in net and c not in want
               for c in offline if ipaddress.ip_address(c["server"]["ip"]).version == 4)
    written = tmp_path / "tee.pcapng"
    out = tmp_path / "live.json"
    rc, err = _replay(veth, relay_pcap, out, "--format", "json", "--write", str(written),
                      "--outcome", "plaintext", "--outcome", "aborted",
                      "--server", str(net))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    convs = [x for x in lines if "summary" not in x]
    summaries = [x["summary"] for x in lines if "summary" in x]
    assert sorted(map(_key, convs)) == sorted(map(_key, want)), err
    assert len(summaries) == 1 and "summary" in lines[-1]
    s = summaries[0]
    assert s["conversations"] == len(want)
    assert s["selected_from"] == len(offline)
    assert sum(s["outcomes"].values()) == len(want)
    assert set(s["outcomes"]) <= {"plaintext", "aborted"}
    assert {x["ip"] for x in s["servers"]} == {c["server"]["ip"] for c in want}
    # the capture's counters are the whole capture's
    assert s["capture"]["dropped_by_kernel"] == 0, err
    assert s["capture"]["received"] == _packets(relay_pcap)
    assert s["packets"] == _packets(relay_pcap)
    assert s["reassembly"]["candidates"] >= len(offline)
    # mail in the clear among the selected: exit status 1 (docs/output.md)
    assert any(c["outcome"] == "plaintext" for c in want) and rc == 1
    # the file written is the whole capture, not the selection
    whole, _ = analyze_offline(written)
    assert sorted(map(_key, whole)) == sorted(map(_key, offline))
    # and analyze selects the same conversations from it
    same, arc = analyze_offline(written, "--outcome", "plaintext", "--outcome", "aborted",
                         "--server", str(net))
    assert sorted(map(_key, same)) == sorted(map(_key, want)) and arc == rc


def test_selection_of_sound_conversations_exits_0_table(veth: tuple[str, str],
                                                        relay_pcap: Path,
                                                        tmp_path: Path) -> None:
    offline, whole_rc = analyze_offline(relay_pcap)
    # TLS conversations whose only findings are about the certificate: no exit-1 material
    want = [c for c in offline if c["outcome"] == "tls"]
    assert want and all(f["code"] == "tls-certificate" for c in want for f in c["findings"])
    assert whole_rc == 1, "the whole capture needs attention, the selection does not"
    out = tmp_path / "live.txt"
    rc, err = _replay(veth, relay_pcap, out, "--outcome", "tls", "--caused-by", "none")
    assert rc == 0, err
    text = out.read_text()
    table, _, summary = text.partition("\n\n")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["stream", "client", "server"], text
    # a row begins with its stream number; a value too long for its column wraps onto a
    # continuation line whose stream column is blank
    rows = {int(r[:6]): r for r in lines[2:] if r[:6].strip().isdigit()}
    assert sorted(rows) == sorted(c["stream"] for c in want), text
    for c in want:
        assert rows[c["stream"]].split()[-3:] == ["tls", "none", c["reason"]], text
    said = summary.splitlines()
    assert said[0] == f"capture: {_packets(relay_pcap)} packets seen on pcss0, 0 dropped by the " \
        "kernel", text
    assert said[1].startswith(f"{len(want)} selected of {len(offline)} SMTP conversation(s): "), text


@pytest.mark.parametrize("args, says", [
    (["--reason", "no-such-reason"], "--reason: unknown reason code 'no-such-reason'"),
    (["--server", "mx.example.com"], "--server: not an IP address: 'mx.example.com'"),
])
def test_bad_selection_is_one_line_before_the_capture_opens(args: list[str], says: str) -> None:
    """A bad selection is a usage error (exit 2, one line) found before the interface is
    opened: no 'listening on' line, and the unknown interface is not what is reported."""
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "live", "-i", "pcs-nosuch0", *args],
                       capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], r.stderr


def test_server_address_and_port_selection(veth: tuple[str, str], relay_pcap: Path,
                                           tmp_path: Path) -> None:
    """``--server [IPv6]:PORT`` and ``--server IPv4:PORT`` (OR): the port must match too; an
    IPv4 server given with a port it was not reached on selects nothing of it."""
    offline, _ = analyze_offline(relay_pcap)
    v6 = next(c["server"] for c in offline if ":" in c["server"]["ip"])
    v4 = next(c["server"] for c in offline if "." in c["server"]["ip"])
    other_port = 2525 if v4["port"] != 2525 else 587
    want = [c for c in offline if c["server"]["ip"] == v6["ip"] and c["server"]["port"] == v6["port"]]
    assert want and any(c["server"]["ip"] == v4["ip"] for c in offline)
    out = tmp_path / "live.json"
    rc, err = _replay(veth, relay_pcap, out, "--format", "json",
                      "--server", f"[{v6['ip']}]:{v6['port']}",
                      "--server", f"{v4['ip']}:{other_port}")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    convs = [x for x in lines if "summary" not in x]
    assert sorted(map(_key, convs)) == sorted(map(_key, want)), err
    s = lines[-1]["summary"]
    assert s["conversations"] == len(want) and s["selected_from"] == len(offline)
    assert [x["ip"] for x in s["servers"]] == [v6["ip"]]


@pytest.fixture(scope="module")
def big_relay_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A relay's view large enough (about 2.5 MB) for ``--rotate-mb 1`` to cut it twice."""
    return relay_capture(tmp_path_factory.mktemp("bigrelay"), 120000, 23)


def test_selection_with_rotated_files(veth: tuple[str, str], big_relay_pcap: Path,
                                      tmp_path: Path) -> None:
    """``--rotate-mb`` and a selection together: exactly the selected conversations, each
    naming the rotated file that holds its first frame (``file``, ``first_frame``), as
    ``analyze --rotated`` with the same selection reads the files written; the summary counts
    the selection, and ``capture.files`` lists every file."""
    offline, _ = analyze_offline(big_relay_pcap)
    want = [c for c in offline if c["outcome"] in ("plaintext", "aborted")]
    assert 0 < len(want) < len(offline)
    written = tmp_path / "rot.pcapng"
    out = tmp_path / "live.json"
    rc, err = _replay(veth, big_relay_pcap, out, "--format", "json", "--write", str(written),
                      "--rotate-mb", "1", "--outcome", "plaintext", "--outcome", "aborted")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    convs = [x for x in lines if "summary" not in x]
    s = lines[-1]["summary"]
    files = s["capture"]["files"]
    assert len(files) >= 3 and all(Path(f).is_file() for f in files), (files, err)
    assert sorted(map(_key, convs)) == sorted(map(_key, want)), err
    assert s["conversations"] == len(want) and s["selected_from"] == len(offline)
    assert s["capture"]["dropped_by_kernel"] == 0, err
    assert {c["file"] for c in convs} <= set(files) and len({c["file"] for c in convs}) >= 2
    # the files written, read as one rotated set with the same selection: the same
    # conversations, each in the same file at the same first frame
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--rotated", "--format",
                        "json", "--outcome", "plaintext", "--outcome", "aborted", *files],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == rc == 1, r.stderr
    again = [json.loads(x) for x in r.stdout.splitlines()]

    def placed(c: dict[str, Any]) -> tuple[Any, ...]:
        return (*_key(c), c["file"], c["first_frame"])

    assert sorted(map(placed, again)) == sorted(map(placed, convs))
