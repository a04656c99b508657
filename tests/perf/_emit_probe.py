"""Records what ``analyze_file(emit=...)`` hands out, and how much of it came while the file
was still being read (from ``OrderedEmitter.check``, which the file loop calls while it
reads, not from ``finish`` at the end), for the streaming tests."""
from __future__ import annotations

import sys
from typing import Any


class EmitProbe:
    def __init__(self) -> None:
        self.first_frames: list[int] = []
        self.during_read = 0

    def __call__(self, conv: dict[str, Any]) -> None:
        self.first_frames.append(conv["first_frame"])
        f: Any = sys._getframe(1)
        while f is not None:
            if f.f_code.co_name == "check":      # handed out from inside the reading loop
                self.during_read += 1
                break
            f = f.f_back
