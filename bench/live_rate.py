#!/usr/bin/env python3
"""How fast can ``pcapsmtp live`` read a relay's traffic without losing it? (a benchmark, not a test)

    sudo python3 bench/live_rate.py [--packets 300000] [--rates 5000,10000,20000,40000,0]

Builds two network namespaces joined by a veth pair (only inside namespaces it creates, torn
down at the end), replays a generated all-SMTP capture (bench/mixgen.py --all-smtp: a relay's
traffic, bodies included) with ``tcpreplay --pps RATE`` (0: ``--topspeed``) on one end while
``pcapsmtp live`` listens on the other, and compares each run with the offline analysis of the
same file: conversations with the same verdict, conversations missing, conversations blamed
differently (must be 0), and the kernel's dropped-packet count as live reports it. The highest
rate without drops and with every verdict equal is the sustained rate (docs/performance.md).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BLAME = {"client", "server", "middlebox"}


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def verdicts(lines: list[str]) -> tuple[dict[tuple[Any, ...], list[tuple[str, str, str]]],
                                         dict[str, Any]]:
    out: dict[tuple[Any, ...], list[tuple[str, str, str]]] = {}
    summary: dict[str, Any] = {}
    for ln in lines:
        d = json.loads(ln)
        if "summary" in d:
            summary = d["summary"]
            continue
        k = (d["client"]["ip"], d["client"]["port"], d["server"]["ip"], d["server"]["port"])
        out.setdefault(k, []).append((d["outcome"], d["caused_by"], d["reason"]))
    return out, summary


def compare(offline: dict[Any, Any], live: dict[Any, Any]) -> dict[str, int]:
    same = missing = wrong_blame = 0
    for k, v in offline.items():
        got = live.get(k)
        if got is None:
            missing += 1
            continue
        if got == v:
            same += 1
        for x in got:
            if x[1] in BLAME and x not in v:
                wrong_blame += 1
    for k, got in live.items():
        if k not in offline:
            wrong_blame += sum(1 for x in got if x[1] in BLAME)
    return {"same": same, "missing": missing, "wrong_blame": wrong_blame}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=300000)
    ap.add_argument("--rates", default="5000,10000,20000,40000,0",
                    help="packets per second, comma separated; 0 means --topspeed")
    ap.add_argument("--out", default=str(BENCH / "out"))
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("live_rate: needs root (network namespaces, packet capture)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / f"allsmtp-{args.packets}.pcap"
    if not pcap.exists():
        subprocess.run([sys.executable, str(BENCH / "mixgen.py"), "--packets", str(args.packets),
                        "--seed", "5", "--all-smtp", "-o", str(pcap)], check=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    off = subprocess.run([sys.executable, "-m", "pcapsmtp", "analyze", "--format", "json",
                          str(pcap)], capture_output=True, text=True, env=env)
    offline, _ = verdicts(off.stdout.splitlines())
    tag = os.getpid() % 100000
    a, b = f"pcsbl-a-{tag}", f"pcsbl-b-{tag}"
    sh("ip", "netns", "add", a)
    try:
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "pcsbl0", "netns", a, "type", "veth", "peer", "name", "pcsbl1",
           "netns", b)
        for ns, dev in ((a, "pcsbl0"), (b, "pcsbl1")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        print(f"{pcap.name}: {len(offline)} conversations offline; "
              f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
        print(f"{'rate (pps)':>12} {'sent pps':>9} {'received':>9} {'dropped':>8} {'same':>6} "
              f"{'missing':>8} {'wrong blame':>11}")
        for rate in (int(r) for r in args.rates.split(",")):
            result = out / f"live-{rate}.json"
            with open(result, "w") as fh:      # a file: a full pipe would stall the reader
                live = subprocess.Popen(
                    ["ip", "netns", "exec", a, sys.executable, "-m", "pcapsmtp", "live", "-i",
                     "pcsbl0", "--format", "json"], stdout=fh, stderr=subprocess.PIPE,
                    text=True, env=env)
            assert live.stderr is not None
            live.stderr.readline()          # "listening on ..."
            speed = ["--topspeed"] if rate == 0 else [f"--pps={rate}"]
            rep = sh("ip", "netns", "exec", b, "tcpreplay", "-i", "pcsbl1", *speed, str(pcap))
            sent = next((ln.split(",")[-1].strip() for ln in rep.stdout.splitlines()
                         if "Rated:" in ln), "?")
            time.sleep(3)
            live.send_signal(signal.SIGINT)
            live.communicate(timeout=300)
            got, summary = verdicts(result.read_text().splitlines())
            cap = summary.get("capture", {})
            c = compare(offline, got)
            print(f"{rate or 'topspeed':>12} {sent.split()[0]:>9} {cap.get('received', '?'):>9} "
                  f"{cap.get('dropped_by_kernel', '?'):>8} {c['same']:>6} {c['missing']:>8} "
                  f"{c['wrong_blame']:>11}", flush=True)
    finally:
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
