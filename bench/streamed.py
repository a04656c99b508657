#!/usr/bin/env python3
"""pcapsmtp's JSON output written as each conversation is final (``analyze_file(emit=...)``), for
measuring the peak RSS the CLI would have if it streamed (it collects every conversation first):

    /usr/bin/time -f "%e s %M KB" python bench/streamed.py FILE.pcap > OUT.jsonl
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pcapsmtp.engine.analyzer import analyze_file  # noqa: E402
from pcapsmtp.render.text import render_jsonl  # noqa: E402


def main() -> int:
    out = sys.stdout
    res = analyze_file(sys.argv[1], emit=lambda conv: out.write(render_jsonl(conv) + "\n"))
    if res.error is not None:
        print(f"pcapsmtp: error: {res.error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
