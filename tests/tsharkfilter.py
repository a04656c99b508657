"""The frames tshark's display filter selects in a capture: the cross-check the capture tests make
of every frame number they assert (skips the test where tshark is not installed)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def frames_matching(path: Path, display_filter: str) -> list[int]:
    """``frame.number`` of every frame of ``path`` that ``tshark -Y display_filter`` keeps."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    proc = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields",
                           "-e", "frame.number"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [int(x) for x in proc.stdout.split()]


def tshark_fields(path: Path, display_filter: str, *fields: str, analysis: bool = True) -> list[tuple[str, ...]]:
    """The values of ``fields`` (as tshark prints them) for every frame ``display_filter`` keeps.
    ``analysis=False``: tshark's TCP sequence analysis off (bytes behind a reset's sequence number
    are then handed to the dissectors, not taken for retransmissions)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    args = ["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields"]
    if not analysis:
        args[4:4] = ["-o", "tcp.analyze_sequence_numbers:FALSE"]
    for f in fields:
        args += ["-e", f]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]
