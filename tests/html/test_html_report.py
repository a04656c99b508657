"""The HTML report without a browser: what the page is made of (escaping, the Content-Security-
Policy, no remote reference, redaction) and the data the ladders are drawn from (the guilty
line, times, kinds, the lines a box changed). tests/html/test_html_browser.py opens the pages."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings, strategies as st

from pcapsmtp.analysis.exchange import middlebox_role
from pcapsmtp.analysis.vantage import diff_conversations
from pcapsmtp.commands.main import main
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
from pcapsmtp.render.html.data import _cut, conversation_data, diff_data, server_rows
from pcapsmtp.render.html.page import embed_json

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "captures"
SEED = CAPTURES / "seed-starttls-first-line.pcap"
HOSTILE = CAPTURES / "xss-html-injection.pcap"
sys.path.insert(0, str(CAPTURES))
import scenarios_html  # noqa: E402

HOSTILE_STRINGS = [scenarios_html.HOSTILE_EHLO, scenarios_html.HOSTILE_BANNER_NAME,
                   scenarios_html.HOSTILE_SENDER, scenarios_html.HOSTILE_RECIPIENT]


#: The elements the report is built of (the template's; the script adds its own in the browser).
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "nav", "a", "main", "section",
             "h2", "h3", "table", "thead", "tbody", "tr", "th", "td", "p", "b", "span", "figure", "figcaption",
             "svg", "g", "text", "rect", "div", "label", "select", "option", "input", "button", "noscript",
             "footer", "script"}


def _convs(path: Path) -> list[dict[str, Any]]:
    return analyze_file(str(path), AnalysisConfig(keep_exchange=True)).conversations


def _report(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    dest = tmp_path / "report.html"
    rc = main(["report", *args, "-o", str(dest)], out=out, err=err)
    return rc, dest.read_text(encoding="utf-8") if dest.exists() else "", err.getvalue()


class _Page(HTMLParser):
    """Every tag with its attributes, and the text of each inline <style> and <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: dict[str, list[str]] = {"style": [], "script": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.inline:
            self._in = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline[self._in][-1] += data


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# ----------------------------------------------------------------------------- the page itself

def test_hostile_capture_is_text_only(tmp_path: Path) -> None:
    rc, html, _ = _report(tmp_path, str(HOSTILE))
    assert rc == 1
    page = _parse(html)
    tags = {t for t, _ in page.tags}
    # Only the page's own structure: no image, frame, object, form, link, base...
    assert tags <= PAGE_TAGS, tags - PAGE_TAGS
    assert [t for t, _ in page.tags].count("script") == 2        # the JSON data and the page's script
    assert [t for t, _ in page.tags].count("style") == 1
    handlers = [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert handlers == []
    for s in HOSTILE_STRINGS + [scenarios_html.HOSTILE_DOMAIN_LINE]:
        assert s not in html, s                                   # never raw in the markup
    data = json.loads(page.inline["script"][0])
    texts = data["shared"]["t"]
    assert f"EHLO {scenarios_html.HOSTILE_EHLO}" in texts         # ...but there, as data
    assert any(scenarios_html.HOSTILE_SENDER in t for t in texts)
    assert data["convs"][0]["h"] == scenarios_html.HOSTILE_EHLO


def test_content_security_policy_allows_only_the_page_itself(tmp_path: Path) -> None:
    _, html, _ = _report(tmp_path, str(SEED))
    page = _parse(html)
    csp = next(a["content"] for t, a in page.tags
               if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy")
    assert csp is not None
    rules = dict((r.strip().split(" ", 1) + [""])[:2] for r in csp.split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["style-src"] == _sha(page.inline["style"][0])
    code = page.inline["script"][1]
    assert rules["script-src"] == _sha(code)
    assert "unsafe" not in csp and "http" not in csp and "*" not in csp
    # No reference to anything outside the file.
    for tag, attrs in page.tags:
        for k, v in attrs.items():
            if k in ("src", "href", "action", "xlink:href", "poster", "data"):
                assert v is not None and v.startswith(("#", "data:")), (tag, k, v)
    assert re.search(r"https?://(?!www\.w3\.org/2000/svg)", html) is None
    assert "@import" not in html and "url(" not in page.inline["style"][0]


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_embedded_json_cannot_close_its_element(value: Any) -> None:
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == json.loads(json.dumps(value))


def test_redacted_report_names_no_one(tmp_path: Path) -> None:
    rc, html, _ = _report(tmp_path, str(SEED), "--redact-addresses", "--redact-key", "k")
    assert rc == 1
    for secret in ("alice@example.org", "bob@example.com", "mail.domain1.com", "ESA.com"):
        assert secret.lower() not in html.lower(), secret
    data = json.loads(_parse(html).inline["script"][0])
    c = data["convs"][0]
    assert re.fullmatch(r"host-[0-9a-f]{6}\.example", c["sn"])
    assert c["r"] == "starttls-misplaced"
    # the pseudonymised line is still the guilty one
    guilty = [ln for ln in c["L"] if ln[6] == 1]
    assert [data["shared"]["t"][ln[2]] for ln in guilty] == ["250-STARTTLS"]


def test_report_exit_status_and_damaged_input(tmp_path: Path) -> None:
    assert _report(tmp_path, str(CAPTURES / "seed-compliant-twin.pcap"))[0] == 0
    damaged = tmp_path / "damaged.pcap"
    data = SEED.read_bytes()
    damaged.write_bytes(data + b"\xff" * 40)      # a record header claiming 4 GB after the last record
    rc, html, err = _report(tmp_path, str(damaged))
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and str(damaged) in err and "Traceback" not in err
    data_ = json.loads(_parse(html).inline["script"][0])
    assert len(data_["convs"]) == 1 and data_["files"][0]["error"]       # what was read is kept
    out, err2 = io.StringIO(), io.StringIO()
    assert main(["report", str(SEED)], out=out, err=err2) == 2          # -o is required
    assert main(["report", str(tmp_path / "absent.pcap"), "-o", str(tmp_path / "x.html")],
                out=out, err=err2) == 2


def test_capture_without_smtp(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(SEED.read_bytes()[:24])            # the file header only
    rc, html, err = _report(tmp_path, str(empty))
    assert (rc, err) == (0, "")
    assert "No SMTP conversation was found in this capture." in html
    assert json.loads(_parse(html).inline["script"][0])["convs"] == []


def test_report_to_standard_output() -> None:
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "report", str(SEED), "-o", "-"],
                       capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("<!DOCTYPE html>") and r.stdout.rstrip().endswith("</html>")


# ----------------------------------------------------------------------------- the data

def test_seed_ladder_data_marks_the_first_ehlo_line() -> None:
    conv = _convs(SEED)[0]
    d = conversation_data(conv, 0, 0, conv["started_ns"], str(SEED))
    rows = d["L"]
    guilty = [r for r in rows if r[6] == 1]
    assert len(guilty) == 1
    frame, side, text, ms, kind, marks, _ = guilty[0]
    assert (frame, side, text, kind) == (8, "S", "250-STARTTLS", "smtp")
    assert marks and marks[0].startswith("ehlo-keyword-as-domain:")
    # the guilty line is the first line of the EHLO reply: right after the client's EHLO
    k = rows.index(guilty[0])
    assert rows[k - 1][2] == "EHLO ESA.com" and rows[k + 1][2] == "250-mail.domain1.com"
    # every line has its capture time, in order
    times = [r[3] for r in rows]
    assert all(t is not None for t in times) and times == sorted(times)
    assert ms is not None and 0 < ms < 1000
    kinds = {r[2]: r[4] for r in rows}
    assert kinds["[message content: 53 octets, not shown]"] == "body"
    assert kinds["[FIN]"] == "end"
    assert d["tc"] == f"tshark -r {SEED} -Y 'frame.number in {{8}}'"
    assert d["ef"] == 8 and d["o"] == "plaintext" and d["cb"] == "server"
    assert d["mb"] == 0


def test_masked_verdict_points_at_the_masked_keyword_and_draws_the_box() -> None:
    conv = _convs(CAPTURES / "starttls-masked.pcap")[0]
    d = conversation_data(conv, 0, 0, conv["started_ns"])
    guilty = [r for r in d["L"] if r[6] == 1]
    assert [(r[0], r[2]) for r in guilty] == [(8, "250-XXXXXXXA")]
    assert d["mb"] == 1
    # a box named only by a finding still gets its lifeline, without the verdict's blame
    import copy
    other = copy.deepcopy(conv)
    other["caused_by"] = "client"
    assert conversation_data(other, 0, 0, conv["started_ns"])["mb"] == 2
    assert (middlebox_role(conv), middlebox_role(other)) == ("blamed", "named")
    del other["findings"][:]
    assert conversation_data(other, 0, 0, conv["started_ns"])["mb"] == 0
    assert middlebox_role(other) is None


def test_gap_is_a_break_in_the_ladder() -> None:
    conv = _convs(CAPTURES / "gap-in-ehlo-reply.pcap")[0]
    d = conversation_data(conv, 0, 0, conv["started_ns"])
    gaps = [r for r in d["L"] if r[4] == "gap"]
    assert len(gaps) == 1 and gaps[0][1] == "!" and "missing in the capture" in gaps[0][2]


def test_tls_handshake_lines_are_tls_arrows_and_nobody_is_guilty() -> None:
    conv = _convs(CAPTURES / "seed-compliant-twin.pcap")[0]
    d = conversation_data(conv, 0, 0, conv["started_ns"])
    assert [r[6] for r in d["L"] if r[6]] == [2]            # the deciding line, not a guilty one
    assert [r[0] for r in d["L"] if r[6]] == [conv["evidence_frame"]]
    tls = [(r[1], r[2]) for r in d["L"] if r[4] == "tls"]
    assert tls[0][0] == "C" and tls[0][1].startswith("[TLS ClientHello")
    assert tls[1][0] == "S" and tls[1][1].startswith("[TLS ServerHello")


def test_diff_data_marks_what_the_box_changed() -> None:
    out_c = _convs(CAPTURES / "pairs" / "asa-masked.outside.pcap")
    in_c = _convs(CAPTURES / "pairs" / "asa-masked.inside.pcap")
    report = dict(diff_conversations(out_c, in_c), outside_file="o.pcap", inside_file="i.pcap")
    d = diff_data(report, out_c, in_c)
    (pair,) = d["pairs"]
    assert (pair["cb"], pair["r"], pair["tampered"]) == ("middlebox", "starttls-masked", True)
    assert [x["pv"] for x in pair["diffs"]] == [True, True]
    texts = d["shared"]["t"]
    outside, inside = pair["views"]
    changed_o = [(r[0], texts[r[2]], r[7]) for r in outside["L"] if r[7]]
    changed_i = [(r[0], texts[r[2]], r[7]) for r in inside["L"] if r[7]]
    assert (8, "250-XXXXXXXA", "masked") in changed_o and (9, "250-STARTTLS", "masked") in changed_i
    assert changed_o[0][0] == 4 and changed_i[0][0] == 4                 # the masked banner
    assert len(changed_o) == len(changed_i) == len(pair["diffs"]) == 2
    # one side alone would blame the client (inside); the pair's verdict rules, nobody is red
    assert not any(r[6] for v in pair["views"] for r in v["L"])


def test_diff_data_marks_nothing_a_capture_only_lacks() -> None:
    """A line only one capture shows, where the other simply stopped (or lost the bytes the receiver
    acknowledged), is no change by the box: not highlighted, not proven, and the pair is not counted as changed
    (the summary counts it apart); a RST the box injected is."""
    for case in ("inside-ends-early", "capture-lost-offer"):
        out_c = _convs(CAPTURES / "pairs" / f"{case}.outside.pcap")
        in_c = _convs(CAPTURES / "pairs" / f"{case}.inside.pcap")
        d = diff_data(dict(diff_conversations(out_c, in_c), outside_file="o", inside_file="i"), out_c, in_c)
        (pair,) = d["pairs"]
        assert not pair["tampered"] and [x["pv"] for x in pair["diffs"]] == [False]
        assert None in (pair["diffs"][0]["of"], pair["diffs"][0]["if"])
        assert not any(r[7] for v in pair["views"] for r in v["L"])
        assert (d["summary"]["identical"], d["summary"]["tampered"], d["summary"]["unproven"]) == (0, 0, 1)
    out_c = _convs(CAPTURES / "pairs" / "dpi-reset.outside.pcap")
    in_c = _convs(CAPTURES / "pairs" / "dpi-reset.inside.pcap")
    d = diff_data(dict(diff_conversations(out_c, in_c), outside_file="o", inside_file="i"), out_c, in_c)
    (pair,) = d["pairs"]
    texts = d["shared"]["t"]
    assert pair["tampered"] and (pair["cb"], pair["r"]) == ("middlebox", "tls-handshake-failed")
    assert all(x["pv"] for x in pair["diffs"]) and d["summary"]["unproven"] == 0
    assert [(r[0], texts[r[2]], r[7]) for r in pair["views"][0]["L"] if r[7]] == [(15, "[RST]", "added")]


def test_server_rows_flag_a_varying_offer() -> None:
    convs = (_convs(CAPTURES / "seed-starttls-first-line.pcap") + _convs(CAPTURES / "seed-compliant-twin.pcap")
             + _convs(CAPTURES / "client-did-not-request.pcap"))
    rows = {r["ip"]: r for r in server_rows(convs)}
    r = rows["198.51.100.25"]
    assert r["conversations"] == 3 and r["varies"]
    assert dict(r["offered"]) == {"valid": 2, "misplaced": 1}
    assert (r["tls"], r["plaintext"]) == (1, 2)
    assert not server_rows(_convs(SEED))[0]["varies"]


def test_diff_format_html(tmp_path: Path) -> None:
    dest = tmp_path / "diff.html"
    out, err = io.StringIO(), io.StringIO()
    rc = main(["diff", str(CAPTURES / "pairs" / "asa-masked.outside.pcap"),
               str(CAPTURES / "pairs" / "asa-masked.inside.pcap"), "--format", "html", "-o", str(dest)],
              out=out, err=err)
    assert rc == 1 and err.getvalue() == "" and out.getvalue() == ""
    page = _parse(dest.read_text())
    data = json.loads(page.inline["script"][0])
    assert data["kind"] == "diff" and data["summary"]["tampered"] == 1
    assert main(["diff", "a.pcap", "b.pcap", "--format", "svg"], out=out, err=err) == 2


_SEED_CONV = None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
                | st.sampled_from(["<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>",
                                   "</script><!--", "]]><svg onload=alert(1)>", "{{ 7*7 }}{% raw %}"]),
                min_size=5, max_size=5))
def test_any_capture_text_stays_text(texts: list[str]) -> None:
    """Whatever a capture says, in any field the page shows, the page's markup is only its own."""
    global _SEED_CONV
    import copy
    import dataclasses

    from pcapsmtp.render.html import render_report, report_data
    if _SEED_CONV is None:
        _SEED_CONV = _convs(SEED)[0]
    conv = copy.deepcopy(_SEED_CONV)
    conv["server_name"] = texts[0]
    conv["greeting"]["argument"] = texts[1]
    conv["detail"] = texts[2]
    conv["findings"][0]["message"] = texts[3]
    conv["file"] = texts[4] or "x"
    conv["_exchange"] = [dataclasses.replace(ln, text=texts[k % 5] + ln.text, marks=[texts[3]] if ln.marks else [])
                         for k, ln in enumerate(conv["_exchange"])]
    html = render_report(report_data([{"path": conv["file"], "packets": 1, "conversations": 1, "error": texts[2]}],
                                     [conv]))
    page = _parse(html)
    assert {t for t, _ in page.tags} <= PAGE_TAGS
    assert [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")] == []
    assert [t for t, _ in page.tags].count("script") == 2
    data = json.loads(page.inline["script"][0])
    assert data["convs"][0]["h"] == _cut(texts[1], 120)          # the text itself, as data


def test_diff_html_redacted(tmp_path: Path, capsys: Any) -> None:
    dest = tmp_path / "diff.html"
    pair = [str(CAPTURES / "pairs" / "asa-masked.outside.pcap"), str(CAPTURES / "pairs" / "asa-masked.inside.pcap")]
    out, err = io.StringIO(), io.StringIO()
    rc = main(["diff", *pair, "--format", "html", "-o", str(dest), "--redact-addresses", "--redact-ips"],
              out=out, err=err)
    assert (rc, err.getvalue()) == (1, "")
    html = dest.read_text()
    for secret in ("alice@example.org", "bob@example.com", "mx1.example.net", "client.example.org",
                   "203.0.113.5", "10.0.0.25", "198.51.100.25"):
        assert secret not in html, secret
    data = json.loads(_parse(html).inline["script"][0])
    (p,) = data["pairs"]
    texts = data["shared"]["t"]
    # the box's changes were found on the real lines and are still marked on the pseudonymised ones
    assert (8, "250-XXXXXXXA", "masked") in [(r[0], texts[r[2]], r[7]) for r in p["views"][0]["L"] if r[7]]
    assert (9, "250-STARTTLS", "masked") in [(r[0], texts[r[2]], r[7]) for r in p["views"][1]["L"] if r[7]]
    assert p["diffs"][0]["il"].startswith("220 host-") and p["r"] == "starttls-masked"
    capsys.readouterr()
    assert main(["diff", *pair, "--redact-addresses"]) == 2
    assert "--redact-addresses goes with --format html" in capsys.readouterr().err
