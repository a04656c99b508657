"""What tests/perf/test_compiled_equivalence.py compares, and the process that computes it on
the pure-Python path.

The compiled core modules (``pcapsmtp.COMPILED_CORE``) replace their ``.py`` at import, so a
process runs either all of them compiled or, with ``PCAPSMTP_NO_EXTENSIONS=1``, none: the test
runs the compiled path in its own process and asks this module, started as a script with that
variable set, for the pure-Python outputs::

    PCAPSMTP_NO_EXTENSIONS=1 PYTHONPATH=. python tests/perf/_pure_outputs.py < jobs.json > outputs.json

A job is ``[path, config name (CONFIGS), stream]``; the answer is one ``dump`` string a job.
The script first checks that nothing compiled is loaded.
"""
from __future__ import annotations

import json
import sys

from pcapsmtp.engine.analyzer import AnalysisConfig, FileResult, analyze_file

CONFIGS: dict[str, AnalysisConfig | None] = {
    "default": None,
    "ports": AnalysisConfig(ports=frozenset({80, 443})),
    "no-content": AnalysisConfig(detect_by_content=False),
    "tiny-tables": AnalysisConfig(max_tracked=3, max_flows=2),
    "evicting": AnalysisConfig(max_tracked=500, max_flows=20, idle_timeout_ns=50_000_000),
}


def dump(res: FileResult) -> str:
    return json.dumps({"conversations": res.conversations, "summary": res.summary,
                       "notes": res.notes, "error": None if res.error is None else str(res.error)},
                      default=repr)


def output(path: str, config: str, stream: bool) -> str:
    """One job in this process, on whatever path it runs."""
    if not stream:
        return dump(analyze_file(path, CONFIGS[config]))
    got: list[dict] = []
    res = analyze_file(path, CONFIGS[config], emit=got.append)
    res.conversations = got
    return dump(res)


def main() -> None:
    import pcapsmtp
    from pcapsmtp.engine import accel
    jobs = json.load(sys.stdin)
    out = [output(path, config, stream) for path, config, stream in jobs]
    compiled = [name for name, why in pcapsmtp.compiled_core().items() if not why]
    compiled += [name for name in pcapsmtp.COMPILED_CORE
                 if not str(getattr(sys.modules.get(name), "__file__", ".py")).endswith(".py")]
    if compiled or accel.compiled():
        raise SystemExit(f"not the pure-Python path: {compiled or 'the file loop'} compiled")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
