"""atheris fuzz target for the offline input path: ``open_frames`` + ``Decoder``.

Invariant: whatever the bytes, reading them as a capture raises nothing but
``CaptureError`` and terminates, and decoding any frame raises nothing at all.

Each input is used twice:
1. as a whole capture file, fed through ``open_frames("-", stdin=BytesIO(data))`` (so
   pcap, pcapng and gzip parsing are all reachable) and every frame decoded;
2. as raw frames for the decoder alone: the first byte picks a link type, the rest is
   split on ``b"\\xff\\xfe"`` into frames decoded by one ``Decoder`` (so IP fragment
   reassembly sees several frames).

Run from the repository root (a seed corpus makes it much more effective; any capture
files will do, e.g. ``captures/`` or the public corpus)::

    python fuzz/fuzz_readers.py -atheris_runs=200000 /tmp/fuzz-work captures/
    python fuzz/fuzz_readers.py -max_total_time=600 -rss_limit_mb=2048 /tmp/fuzz-work
    python fuzz/fuzz_readers.py crash-<hash>        # replay one crashing input

The tests run it for a few thousand iterations (``-atheris_runs=N``) in a subprocess and
also call ``check_one`` directly with Hypothesis-generated inputs.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    import atheris  # type: ignore[import-untyped]

    # coverage feedback from pcapsmtp only (instrumenting everything is slow)
    with atheris.instrument_imports(include=["pcapsmtp"]):
        from pcapsmtp.capture.decode import Decoder
        from pcapsmtp.capture.pcapfile import open_frames
        from pcapsmtp.errors import CaptureError
else:
    from pcapsmtp.capture.decode import Decoder
    from pcapsmtp.capture.pcapfile import open_frames
    from pcapsmtp.errors import CaptureError

LINKTYPES = (1, 0, 101, 108, 113, 228, 229, 276, 12, 14, 147, 239, 117)


def check_one(data: bytes) -> None:
    """Exercise the reader and the decoder on one input; raise only on a real bug."""
    dec = Decoder()
    try:
        for frame in open_frames("-", stdin=io.BytesIO(data)):
            dec.decode(frame)
    except CaptureError as exc:
        assert exc.message and "\n" not in exc.message, repr(exc.message)
    if data:
        linktype = LINKTYPES[data[0] % len(LINKTYPES)]
        dec = Decoder()
        for number, body in enumerate(data[1:].split(b"\xff\xfe"), 1):
            seg = dec.decode_raw(linktype, body, len(body) + (data[0] >> 4) * 64, number,
                                 number * 1_000_000_000)
            if seg is not None:
                assert seg.frame == number and seg.missing >= 0
                assert 0 <= seg.sport < 65536 and 0 <= seg.dport < 65536


def main(argv: list[str]) -> None:
    import atheris

    atheris.Setup(argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
