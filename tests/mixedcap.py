"""A generated relay-like capture (bench/mixgen.py: HTTP, TLS and DNS with SMTP of every
kind), made once per test session in a temporary directory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_mixed(directory: Path, packets: int = 30000, seed: int = 7) -> Path:
    path = directory / f"mixed-{packets}-{seed}.pcap"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "mixgen.py"), "--packets",
                        str(packets), "--seed", str(seed), "-o", str(path)],
                       check=True, capture_output=True, timeout=300)
    return path
