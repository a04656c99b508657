"""Writes docs/verdicts.md from pcapsmtp/analysis/reasons.py and captures/expected.json.

Run: python docs/gen_verdicts.py  (tests/test_docs.py checks the file is current)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pcapsmtp.analysis.reasons import (  # noqa: E402
    FINDINGS,
    GIVE_UP_REASONS,
    REASON_CASES,
    REASONS,
    TLSRPT_RESULT,
)


#: findings no file capture can show: (the example column, how the finding is produced and tested)
NO_CAPTURE: dict[str, tuple[str, str]] = {
    "capture-loss": (
        "`live` only (below)",
        "Only `pcapsmtp live` knows that packets were lost: it reads the kernel's drop counters "
        "(`PACKET_STATISTICS`), and every conversation open during a window between two reads in "
        "which they rose gets this finding (frame null: a loss is known as a window of time, not "
        "a frame); a verdict that would blame a side on bytes at or after the loss becomes "
        "`incomplete`/`unknown` (docs/live.md). A capture file records no drops, so `analyze` "
        "never emits it and no file here can show it. Tested by "
        "`tests/analysis/test_capture_loss.py` (the rule: losses noted on the analyzer while "
        "generated captures are fed) and `tests/live/test_live_loss.py` (a relay's traffic "
        "replayed with `tcpreplay` into a veth pair while `live` runs with a 128 KiB buffer: the "
        "drops are reported, the conversations they touch carry the finding, and none is blamed "
        "on a side where the offline analysis of the same file does not blame it)."),
}


def examples() -> tuple[dict[str, str], dict[str, str]]:
    exp = json.loads((ROOT / "captures" / "expected.json").read_text())
    by_reason: dict[str, str] = {}
    by_finding: dict[str, str] = {}
    caused: dict[str, str] = {}
    named: dict[str, str] = {}     # a capture named for the finding: made to show it
    for name, cap in sorted(exp.items()):
        for conv in cap["conversations"]:
            here = f"captures/{name} (stream {conv['stream']})"
            cases = [(reason, case) for (reason, case), info in REASON_CASES.items()
                     if conv["reason"] == reason and conv["caused_by"] == info.caused_by
                     and any(f["code"] == info.finding for f in conv["findings"])]
            in_case = bool(cases)
            # (the truth names no case: of the cases a conversation fits, a capture named for one
            # shows that one, not another of the same reason, blame and finding, such as
            # client-tls13-only beside client-old-tls)
            named_case = [rc for rc in cases if rc[1] in name]
            for reason, case in named_case or cases:
                by_reason.setdefault(f"case:{reason}:{case}", here)
            if conv["reason"] in GIVE_UP_REASONS and conv["outcome"] == "aborted":
                # (a case's conversation, an EHLO never answered, shows no client giving up
                # after a defect of the offer)
                if not in_case:
                    by_reason.setdefault("give-up:" + conv["reason"], here)
                continue
            # (the reason's own row shows a conversation of no case: a case's blame and remedy
            # may differ from the reason's, as implicit-tls-mismatch's client-tls-port)
            by_reason.setdefault(conv["reason"] if not in_case else "any-case:" + conv["reason"], here)
            for f in conv["findings"]:
                # (a conversation whose verdict the finding's side caused shows it best: the
                # finding is then the verdict's evidence, not a note beside another cause)
                example = f"captures/{name} (frame {f['frame']})"
                if f["code"] in name:
                    named.setdefault(f["code"], example)
                if conv["caused_by"] == f["side"]:
                    caused.setdefault(f["code"], example)
                by_finding.setdefault(f["code"], example)
    by_finding.update(caused)
    by_finding.update(named)
    for key in [k for k in by_reason if k.startswith("any-case:")]:
        by_reason.setdefault(key[len("any-case:"):], by_reason.pop(key))
    # Reasons only the two-vantage diff gives (starttls-stripped): an example from captures/pairs/.
    pairs = json.loads((ROOT / "captures" / "pairs" / "expected.json").read_text())
    for _name, sc in sorted(pairs.items()):
        for p in sc["pairs"]:
            by_reason.setdefault(p["reason"], f"captures/pairs/{sc['outside']} + {sc['inside']} "
                                              f"(pcapsmtp diff, outside stream {p['outside_stream']})")
    return by_reason, by_finding


def render() -> str:
    by_reason, by_finding = examples()
    out = ["# Verdict reference", "",
           "Every conversation gets an `outcome` (tls, plaintext, aborted, incomplete), the side",
           "that caused it (`caused_by`: none, client, server, middlebox, unknown) and a `reason`.",
           "Findings name RFC deviations and capture problems, each with its evidence frame.",
           "This file is generated by `docs/gen_verdicts.py` from `pcapsmtp/analysis/reasons.py`.",
           "", "## Reasons", ""]
    for code, r in REASONS.items():
        out.append(f"### `{code}`")
        out.append("")
        out.append(f"{r.title}. Usual outcome `{r.outcome}`, caused by `{r.caused_by}`"
                   + (" (or the side that ended the handshake; `middlebox` from `diff`, when a box between "
                      "the two captures dropped the ClientHello or the server's answer, or reset the connection "
                      "itself)" if code in ("tls-handshake-failed",) else "")
                   + (" (the side of the earlier failure)" if code == "tls-fallback" else "") + "."
                   + (" Outcome `aborted` (same side, same reason) when the client then leaves "
                      "without mail or credentials: a client that requires TLS gives up there."
                      if code in GIVE_UP_REASONS else ""))
        out.append("")
        out.append(f"- What a strict client does: {r.client_does}")
        out.append(f"- What to ask, and of whom: {r.remedy}")
        if code in TLSRPT_RESULT:
            out.append(f"- TLS-RPT (RFC 8460) result type: `{TLSRPT_RESULT[code]}`")
        if code in by_reason:
            out.append(f"- Example: `{by_reason[code]}`")
        if "give-up:" + code in by_reason:
            out.append(f"- Example of a client giving up: `{by_reason['give-up:' + code]}`")
        for (reason, case), cinfo in REASON_CASES.items():
            if reason != code:
                continue
            out += ["", f"Case `{case}`: {cinfo.title} (with a `{cinfo.finding}` finding; the "
                        f"conversation's `case` is `{case}` and its `explanation` is this case's).", "",
                    f"- What a strict client does: {cinfo.client_does}",
                    f"- What to ask, and of whom: {cinfo.remedy}"]
            if f"case:{reason}:{case}" in by_reason:
                out.append(f"- Example: `{by_reason[f'case:{reason}:{case}']}`")
        out.append("")
    out += ["## Findings", "", "| code | side | RFC | what | example |", "|---|---|---|---|---|"]
    for code, info in FINDINGS.items():
        example = by_finding.get(code) or NO_CAPTURE.get(code, ("-", ""))[0]
        out.append(f"| `{code}` | {info.side} | {info.rfc or '-'} | {info.title} | {example} |")
    out += ["", "### What to do about each finding", ""]
    for code, info in FINDINGS.items():
        out.append(f"- `{code}`: {info.action}")
    for code, (_, how) in NO_CAPTURE.items():
        out += ["", f"### `{code}`: no example capture", "", how]
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    (ROOT / "docs" / "verdicts.md").write_text(render())
