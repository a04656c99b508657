#!/usr/bin/env python3
"""Save the outputs of pcapsmtp on a set of captures, and compare a later run against them.

For speed work that must leave the output byte for byte as it was:

    bench/equal_outputs.py save DIR [FILES...]      # on the code before the change
    bench/equal_outputs.py compare DIR [FILES...]   # after each change: lists what differs

Without FILES, ``save`` takes every captures/*.pcap and every capture under tests/corpus, and
``compare`` every file saved in DIR. Each file is run
in this process (``pcapsmtp.commands.main.main``) as ``analyze --format json --summary``,
``analyze --format csv`` and ``explain`` (``--report`` adds ``report``, the HTML page); the
outputs go to DIR as ``<n>.<kind>`` with an index ``files.txt``. Run it with the checkout under
test first on the path (``PYTHONPATH=$PWD``); ``PCAPSMTP_NO_EXTENSIONS=1`` for the pure-Python
loop. Exit status 1 when anything differs.
"""
from __future__ import annotations

import argparse
import glob
import io
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _default_files() -> list[str]:
    files = sorted(glob.glob(os.path.join(ROOT, "captures", "*.pcap")))
    for dirpath, _dirs, names in sorted(os.walk(os.path.join(ROOT, "tests", "corpus"))):
        for n in sorted(names):
            if n.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")):
                files.append(os.path.join(dirpath, n))
    return files


def _run(argv: list[str]) -> str:
    from pcapsmtp.commands.main import main
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, out=out, err=err)
    return f"exit {rc}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def _outputs(path: str, report: bool) -> dict[str, str]:
    res = {
        "json": _run(["analyze", "-q", "--format", "json", "--summary", path]),
        "csv": _run(["analyze", "-q", "--format", "csv", path]),
        "explain": _run(["explain", path]),
    }
    if report:
        with tempfile.TemporaryDirectory() as tmp:
            page = os.path.join(tmp, "r.html")
            head = _run(["report", "-o", page, path])
            body = open(page, encoding="utf-8").read() if os.path.exists(page) else ""
            res["report"] = head + "--- page\n" + body
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("save", "compare"))
    ap.add_argument("dir")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--report", action="store_true", help="also the HTML report")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    index = os.path.join(a.dir, "files.txt")
    if a.mode == "save":
        files = a.files or _default_files()
        with open(index, "w", encoding="utf-8") as fh:
            fh.write("".join(f + "\n" for f in files))
    else:               # the files saved (or those of FILES among them)
        saved = open(index, encoding="utf-8").read().split("\n")[:-1]
        files = [f for f in saved if not a.files or f in a.files]
    known = open(index, encoding="utf-8").read().split("\n")[:-1]
    bad = 0
    for f in files:
        n = known.index(f)
        for kind, text in _outputs(f, a.report).items():
            # the report page names the file it was written for, not the capture: fine
            p = os.path.join(a.dir, f"{n}.{kind}")
            if a.mode == "save":
                with open(p, "w", encoding="utf-8") as fh:
                    fh.write(text)
            else:
                if not os.path.exists(p):
                    continue
                old = open(p, encoding="utf-8").read()
                if old != text:
                    bad += 1
                    print(f"DIFFERS: {kind} {f}")
    print(f"{len(files)} files, {'saved' if a.mode == 'save' else f'{bad} outputs differ'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
