"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright
(tests/html/html_browser.py). Each page must load with no console error and no request but
its own file, list every conversation, draw a conversation's ladder when it is opened with the
guilty line marked, filter, and show hostile text as text.

Screenshots for people to look at are written to tests/artifacts/ (git-ignored):
``seed-ladder.png`` (the seed capture's ladder), ``overview.png``, ``diff-asa-masked.png``,
``report-printed.pdf`` (a page with an open ladder, printed)."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from pcapsmtp.commands.main import main
from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file, analyze_files

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CAPTURES = REPO / "captures"
ARTIFACTS = REPO / "tests" / "artifacts"
SEED = CAPTURES / "seed-starttls-first-line.pcap"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(CAPTURES))
import html_browser  # noqa: E402
import scenarios_html  # noqa: E402

#: the list's rows per page (report.js ``PAGE``)
PAGE = 500

why_not = html_browser.available()
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")


@pytest.fixture(scope="module")
def browser() -> Iterator[html_browser.Browser]:
    yield from html_browser.browser()


def _report(tmp_path: Path, *files: Path | str, name: str = "report.html", extra: tuple[str, ...] = ()) -> Path:
    dest = tmp_path / name
    rc = main(["report", *map(str, files), "-o", str(dest), *extra], out=io.StringIO(), err=io.StringIO())
    assert rc in (0, 1), rc
    return dest


def _clean(o: html_browser.Opened, path: Path) -> None:
    assert o.problems() == []
    assert o.requests == [path.resolve().as_uri()], o.requests


def _captures() -> list[Path]:
    return sorted(p for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def test_seed_ladder_shows_the_guilty_first_line(browser: html_browser.Browser, tmp_path: Path) -> None:
    path = _report(tmp_path, SEED)
    o = browser.open(path)
    page = o.page
    assert page.locator("tr.conv").count() == 1
    assert page.locator("svg.ladder").count() == 0          # drawn only when opened
    page.click("tr.conv[data-i='0']")
    ladder = page.locator("tr.detail svg.ladder")
    assert ladder.count() == 1
    guilty = ladder.locator("g[data-guilty='1']")
    assert guilty.count() == 1
    assert guilty.get_attribute("data-frame") == "8" and guilty.get_attribute("data-side") == "S"
    assert guilty.locator("text.lbl").text_content() == "250-STARTTLS"
    stroke = guilty.locator("line.arrow").evaluate("e => getComputedStyle(e).stroke")
    assert stroke == "rgb(198, 40, 40)"                          # red
    finding = ladder.locator("g.finding").first.text_content() or ""
    assert "frame 8" in finding and "ehlo-keyword-as-domain" in finding
    # the guilty line is the first line of the EHLO reply, right below the client's EHLO
    rows = ladder.locator("g.row").evaluate_all("gs => gs.map(g => g.querySelector('text.lbl').textContent)")
    k = rows.index("250-STARTTLS")
    assert rows[k - 1] == "EHLO ESA.com" and rows[k + 1] == "250-mail.domain1.com"
    # and what followed: the mail in plaintext, shown as a band starting at MAIL FROM
    assert ladder.get_attribute("data-band") == "plain"
    band = ladder.locator("text.band-t").first.text_content() or ""
    assert "never sends STARTTLS" in band and "plaintext" in band
    verdict = page.locator("tr.detail p.verdict").text_content() or ""
    assert "starttls-misplaced" in verdict and "caused by the server" in verdict
    # the copy buttons carry the Wireshark filter and the tshark command
    codes = page.locator("tr.detail .copyline code").all_text_contents()
    assert "frame.number in {8}" in codes and any(c.startswith("tshark -r ") for c in codes)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("tr.detail .detail-box").screenshot(path=str(ARTIFACTS / "seed-ladder.png"))
    page.locator("tr.detail .copyline button.copy").first.click()
    page.wait_for_function("() => document.querySelector('tr.detail button.copy').textContent !== 'copy'")
    page.click("tr.conv[data-i='0']")                            # closes again
    assert page.locator("tr.detail").count() == 0
    # one file: no frame names a file (the rotated set's headings and attributes are absent)
    page.click("tr.conv[data-i='0']")
    assert page.locator("tr.detail g.file-sep").count() == 0
    assert page.locator("tr.detail g.row[data-file]").count() == 0
    _clean(o, path)


def test_verdict_names_the_case(browser: html_browser.Browser, tmp_path: Path) -> None:
    """A verdict with a case (the ClientHello never reached the server) names it beside the
    reason, as `analyze` JSON's `case`; a verdict without one names none."""
    path = _report(tmp_path, CAPTURES / "path-hello-lost.pcap", SEED)
    o = browser.open(path)
    page = o.page
    texts = {}
    for i in range(page.locator("tr.conv").count()):
        page.click(f"tr.conv[data-i='{i}']")
        texts[i] = page.locator("tr.detail p.verdict").text_content() or ""
        page.click(f"tr.conv[data-i='{i}']")
    lost = [t for t in texts.values() if "tls-handshake-failed" in t]
    seed = [t for t in texts.values() if "starttls-misplaced" in t]
    assert len(lost) == 1 and len(seed) == 1
    assert "caused by the middlebox (tls-handshake-failed, case hello-lost)" in lost[0]
    assert "(starttls-misplaced)" in seed[0] and "case" not in seed[0].split(":")[0]
    _clean(o, path)


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (tshark's package) is not installed")
def test_rotated_ladder_names_the_file_of_every_frame(browser: html_browser.Browser, tmp_path: Path) -> None:
    """``report --rotated`` over tls-fallback.pcap cut every 4 packets (editcap -c 4): each
    ladder line carries the piece that holds its frame, a heading names the file wherever the
    conversation crosses into the next piece, and the callouts, findings and the earlier
    attempt say "frame N of FILE", all as the analysis of the set localised them."""
    src = CAPTURES / "tls-fallback.pcap"
    subprocess.run(["editcap", "-c", "4", str(src), str(tmp_path / "p.pcap")], check=True,
                   capture_output=True, timeout=60)
    pieces = sorted(str(p) for p in tmp_path.glob("p_*.pcap"))
    assert len(pieces) > 4
    path = _report(tmp_path, *pieces, extra=("--rotated",))
    convs = analyze_files(pieces, AnalysisConfig(keep_exchange=True)).conversations
    assert [c["reason"] for c in convs] == ["tls-handshake-failed", "tls-fallback"]
    o = browser.open(path)
    page = o.page
    page.evaluate("() => document.querySelectorAll('tr.conv').forEach(tr => tr.click())")
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('tr.detail .detail-box')).map(b => ({
        rows: Array.from(b.querySelectorAll('svg.ladder g.row')).map(g => [
            g.getAttribute('data-file'), g.getAttribute('data-frame'),
            g.querySelector(':scope > title') ? g.querySelector(':scope > title').textContent : null]),
        heads: Array.from(b.querySelectorAll('svg.ladder g.file-sep')).map(g => g.textContent),
        callouts: Array.from(b.querySelectorAll('svg.ladder g.finding')).map(g => g.textContent),
        findings: Array.from(b.querySelectorAll('ul.findings li')).map(li => li.textContent),
        facts: b.querySelector('dl.facts-grid').textContent}))""")
    assert len(drawn) == len(convs)
    name = os.path.basename
    for c, d in zip(convs, drawn):
        want = [(name(ln.file), str(ln.frame)) for ln in c["_exchange"] if ln.frame is not None]
        assert [(f, n) for f, n, _ in d["rows"] if n] == want
        assert all(f is None for f, n, _ in d["rows"] if not n)
        titled = [(f, n, t) for f, n, t in d["rows"] if n and t]
        assert len(titled) > len(want) // 2
        assert all(t.startswith(f"frame {n} of {f}: ") for f, n, t in titled)
        # a heading for the first file and for each crossing into the next one, in order
        crossings = [f for k, (f, _) in enumerate(want) if k == 0 or want[k - 1][0] != f]
        assert d["heads"] == [f"file {f}" for f in crossings] and len(crossings) > 1
        for f in c["findings"]:
            ref = f"frame {f['frame']} of {name(f['file'])}"
            assert any(li.startswith(ref + ", ") and f["code"] in li for li in d["findings"])
            assert any(ref in t and f["code"] in t for t in d["callouts"])
        if c.get("evidence_frame") is not None:
            assert f"evidence (in {name(c['evidence_file'])}):" in d["facts"]
        if c.get("fallback_of"):
            fb = c["fallback_of"]
            assert f"frame {fb['frame']} of {name(fb['file'])}" in d["facts"]
    assert any(c["findings"] for c in convs) and convs[1].get("fallback_of")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("tr.detail .detail-box").first.screenshot(path=str(ARTIFACTS / "rotated-ladder.png"))
    _clean(o, path)


def _show_all(page: Any, n: int) -> None:
    """The repository's captures hold more conversations than one page of the list (500): the
    first page, then every row through the pager's "show all"."""
    if n <= PAGE:
        assert page.locator("#p-all").count() == 0
        return
    assert page.locator("tr.conv").count() == PAGE
    assert page.text_content("#p-where") == f" rows 1\u2013{PAGE} of {n} (page 1 of {-(-n // PAGE)}) "
    page.click("#p-all")


def test_every_conversation_listed_and_drawn(browser: html_browser.Browser, tmp_path: Path) -> None:
    files = _captures()
    path = _report(tmp_path, *files)
    convs = [c for f in files for c in analyze_file(str(f), AnalysisConfig(keep_exchange=True)).conversations]
    o = browser.open(path)
    page = o.page
    _show_all(page, len(convs))
    assert page.locator("tr.conv").count() == len(convs) >= 60
    assert page.get_attribute("#f-count", "data-shown") == str(len(convs))
    # open them all (the page's own click handler), then compare every ladder with the data
    page.evaluate("() => document.querySelectorAll('tr.conv').forEach(tr => tr.click())")
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('tr.detail svg.ladder')).map(s => ({
        lines: Number(s.getAttribute('data-lines')), rows: s.querySelectorAll('g.row').length,
        guilty: Array.from(s.querySelectorAll("g[data-guilty='1']")).map(g => g.getAttribute('data-frame')),
        evidence: Array.from(s.querySelectorAll("g[data-evidence='1']")).map(g => g.getAttribute('data-frame'))}))""")
    assert len(drawn) == len(convs)
    data = json.loads(page.text_content("#report-data") or "{}")
    for d, c, drawn_one in zip(data["convs"], convs, drawn):
        assert drawn_one["lines"] == drawn_one["rows"] == len(c["_exchange"])
        assert drawn_one["guilty"] == [str(r[0]) for r in d["L"] if r[6] == 1]
        assert drawn_one["evidence"] == [str(r[0]) for r in d["L"] if r[6] == 2]
        if c.get("evidence_frame") is not None and any(ln.frame == c["evidence_frame"] for ln in c["_exchange"]):
            # red where the verdict blames a side; otherwise marked as the deciding line, not as guilt
            blames = c["caused_by"] in ("client", "server", "middlebox")
            assert drawn_one["guilty" if blames else "evidence"] == [str(c["evidence_frame"])], (c["file"], c["stream"])
            assert drawn_one["evidence" if blames else "guilty"] == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.querySelectorAll('tr.conv.open').forEach(tr => tr.click())")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "overview.png"))
    _clean(o, path)


def test_filters(browser: html_browser.Browser, tmp_path: Path) -> None:
    files = _captures()
    path = _report(tmp_path, *files)
    convs = [c for f in files for c in analyze_file(str(f), AnalysisConfig()).conversations]
    o = browser.open(path)
    page = o.page
    _show_all(page, len(convs))

    def shown() -> int:
        n = page.locator("tr.conv:visible").count()
        assert page.get_attribute("#f-count", "data-shown") == str(n)
        return n

    for sel, key in (("#f-outcome", "outcome"), ("#f-cause", "caused_by"), ("#f-reason", "reason")):
        for value in sorted({c[key] for c in convs}):
            page.select_option(sel, value)
            assert shown() == sum(1 for c in convs if c[key] == value), (key, value)
            cells = page.locator("tr.conv:visible").evaluate_all("rs => rs.map(r => r.textContent)")
            assert all(value in t for t in cells)
        page.select_option(sel, "")
    page.select_option("#f-outcome", "plaintext")
    page.select_option("#f-cause", "server")
    assert shown() == sum(1 for c in convs if c["outcome"] == "plaintext" and c["caused_by"] == "server")
    page.click("#f-clear")
    assert shown() == len(convs)
    page.fill("#f-text", "no-such-server.invalid")
    assert shown() == 0 and page.locator("tr.none").text_content() == "no conversation matches these filters"
    page.fill("#f-text", "2001:db8:0:2::25")
    assert shown() == sum(1 for c in convs if c["server"]["ip"] == "2001:db8:0:2::25") > 0
    page.fill("#f-text", "mail.domain1.com")
    assert shown() == sum(1 for c in convs if "mail.domain1.com" in (c.get("server_name") or "")) > 0
    page.fill("#f-text", "")
    # a chart bar filters too
    page.click(".chart g.bar[data-filter='cause'][data-value='middlebox']")
    assert page.input_value("#f-cause") == "middlebox"
    assert shown() == sum(1 for c in convs if c["caused_by"] == "middlebox") > 0
    _clean(o, path)


def test_timeline_opens_and_servers_sort(browser: html_browser.Browser, tmp_path: Path) -> None:
    path = _report(tmp_path, SEED, CAPTURES / "tls-fallback.pcap", CAPTURES / "starttls-masked.pcap",
                   CAPTURES / "pairs" / "asa-masked.inside.pcap", CAPTURES / "seed-ipv6.pcap")
    o = browser.open(path)
    page = o.page
    page.select_option("#f-outcome", "aborted")                 # hides conversation 0
    page.locator("#timeline rect.tl[data-i='0']").dispatch_event("click")
    assert page.locator("tr.conv.open").get_attribute("data-i") == "0"
    assert page.locator("tr.detail svg.ladder").count() == 1
    assert page.input_value("#f-outcome") == ""                 # the filters let it through
    head = page.locator("#server-table th", has_text="conversations")
    head.click()
    col = page.locator("#server-table tbody tr td:nth-child(3)").all_text_contents()
    assert [int(x) for x in col] == sorted(int(x) for x in col)
    head.click()
    col = page.locator("#server-table tbody tr td:nth-child(3)").all_text_contents()
    assert [int(x) for x in col] == sorted((int(x) for x in col), reverse=True)
    assert page.locator("#server-table tr.varies").count() >= 1
    # printing: the controls go, the ladders stay
    page.emulate_media(media="print")
    assert page.locator(".controls").evaluate("e => getComputedStyle(e).display") == "none"
    assert page.locator("tr.detail svg.ladder").is_visible()
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report-printed.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")
    _clean(o, path)


def test_hostile_strings_inject_nothing(browser: html_browser.Browser, tmp_path: Path) -> None:
    path = _report(tmp_path, CAPTURES / "xss-html-injection.pcap")
    o = browser.open(path)
    page = o.page
    page.click("tr.conv[data-i='0']")
    page.wait_for_timeout(300)
    dom = page.evaluate("""() => ({
        img: document.querySelectorAll('img, iframe, object, embed, textarea, svg svg, #conversations b').length,
        styles: document.querySelectorAll('style').length,
        scripts: document.scripts.length,
        handlers: Array.from(document.querySelectorAll('*')).flatMap(e => Array.from(e.attributes))
                       .filter(a => a.name.toLowerCase().startsWith('on')).length,
        ladder: document.querySelector('tr.detail svg.ladder').textContent,
        row: document.querySelector('tr.conv').textContent,
        heads: Array.from(document.querySelectorAll('tr.detail g.headg > title')).map(t => t.textContent),
        title: document.title, hidden: getComputedStyle(document.body).display})""")
    assert dom["img"] == 0 and dom["styles"] == 1 and dom["scripts"] == 2 and dom["handlers"] == 0
    assert dom["hidden"] != "none"                                   # the <style> in a reply did nothing
    for s in (scenarios_html.HOSTILE_EHLO, scenarios_html.HOSTILE_BANNER_NAME, scenarios_html.HOSTILE_SENDER,
              scenarios_html.HOSTILE_RECIPIENT):
        assert s in dom["ladder"], s                                 # shown, as text
    assert any(h.endswith("\nEHLO " + scenarios_html.HOSTILE_EHLO) for h in dom["heads"]), dom["heads"]
    assert '"><svg' in dom["row"]
    assert o.dialogs == []
    _clean(o, path)


def test_the_policy_stops_what_escaping_might_miss(browser: html_browser.Browser, tmp_path: Path) -> None:
    """Belt and braces: markup injected into the page at run time still runs nothing."""
    path = _report(tmp_path, SEED)
    o = browser.open(path)
    page = o.page
    page.evaluate("""() => { document.body.insertAdjacentHTML('beforeend',
        '<img id=probe src="data:," onerror="document.title=\\'pwned\\'" onload="document.title=\\'pwned\\'">' +
        '<script>document.title = "pwned"</' + 'script>'); }""")
    page.wait_for_timeout(300)
    assert page.title() != "pwned"
    assert o.dialogs == [] and o.errors == []
    assert o.requests == [path.resolve().as_uri()]


def test_diff_side_by_side(browser: html_browser.Browser, tmp_path: Path) -> None:
    dest = tmp_path / "diff.html"
    rc = main(["diff", str(CAPTURES / "pairs" / "asa-masked.outside.pcap"),
               str(CAPTURES / "pairs" / "asa-masked.inside.pcap"), "--format", "html", "-o", str(dest)],
              out=io.StringIO(), err=io.StringIO())
    assert rc == 1
    o = browser.open(dest)
    page = o.page
    assert page.locator("tr.conv").count() == 1
    page.click("tr.conv[data-i='0']")
    outside = page.locator(".view-outside svg.ladder")
    inside = page.locator(".view-inside svg.ladder")
    assert outside.count() == inside.count() == 1

    def changed(ladder: Any) -> list[tuple[str, str, str]]:
        return ladder.locator("g[data-changed]").evaluate_all(
            "gs => gs.map(g => [g.getAttribute('data-frame'), g.querySelector('text.lbl').textContent,"
            " g.getAttribute('data-changed')])")

    assert ["8", "250-XXXXXXXA", "masked"] in changed(outside)
    assert ["9", "250-STARTTLS", "masked"] in changed(inside)
    assert len(changed(outside)) == len(changed(inside)) == 2
    assert outside.locator("g[data-guilty]").count() == inside.locator("g[data-guilty]").count() == 0
    heads = page.locator(".view .head-t").all_text_contents()
    assert "middlebox" in heads
    assert "starttls-masked" in (page.locator("tr.detail p.verdict").text_content() or "")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("tr.detail .detail-box").screenshot(path=str(ARTIFACTS / "diff-asa-masked.png"))
    _clean(o, dest)


@pytest.mark.slow
def test_ten_thousand_conversations(browser: html_browser.Browser, tmp_path: Path) -> None:
    import html_bulk
    pcap = tmp_path / "many.pcap"
    truth = html_bulk.write_many(pcap, 10_000)
    dest = tmp_path / "many.html"
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "report", str(pcap), "-o", str(dest)],
                       capture_output=True, text=True, timeout=900, cwd=REPO, check=False)
    assert r.returncode == 1, r.stderr
    t = time.monotonic()
    o = browser.open(dest, timeout_ms=180_000)     # generous: the machine may be shared
    elapsed = time.monotonic() - t
    page = o.page
    assert page.get_attribute("#f-count", "data-shown") == "10000"
    assert page.locator("tr.conv").count() == 500             # one page of the list at a time
    page.select_option("#f-reason", "starttls-misplaced")
    assert page.get_attribute("#f-count", "data-shown") == str(sum(1 for x in truth if x[2] == "starttls-misplaced"))
    page.click("#f-clear")
    page.click("#p-next")
    assert page.locator("tr.conv").first.get_attribute("data-i") == "500"
    # every conversation is reachable: the last one opens from the timeline
    page.locator("#timeline rect.tl[data-i='9999']").dispatch_event("click")
    assert page.locator("tr.conv.open").get_attribute("data-i") == "9999"
    assert page.locator("tr.detail svg.ladder g[data-guilty]").count() == 1   # 9999 % 3 == 0: misplaced
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "ten-thousand.txt").write_text(
        f"10000 conversations: {dest.stat().st_size} bytes, page ready in {elapsed:.1f} s "
        f"(script {page.get_attribute('body', 'data-build-ms')} ms)\n")
    _clean(o, dest)


def test_diff_shows_what_a_tls_killing_box_did(browser: html_browser.Browser, tmp_path: Path) -> None:
    """The new kinds of difference (TLS records dropped, a RST the box injected) are highlighted on both ladders."""
    dest = tmp_path / "diff.html"
    rc = main(["diff", str(CAPTURES / "pairs" / "dpi-reset.outside.pcap"),
               str(CAPTURES / "pairs" / "dpi-reset.inside.pcap"), "--format", "html", "-o", str(dest)],
              out=io.StringIO(), err=io.StringIO())
    assert rc == 1
    o = browser.open(dest)
    page = o.page
    page.click("tr.conv[data-i='0']")
    outside = page.locator(".view-outside svg.ladder")
    inside = page.locator(".view-inside svg.ladder")

    def changed(ladder: Any) -> list[list[str]]:
        return ladder.locator("g[data-changed]").evaluate_all(
            "gs => gs.map(g => [g.getAttribute('data-frame'), g.querySelector('text.lbl').textContent,"
            " g.getAttribute('data-changed')])")

    # (the ladder labels drop the brackets of '[RST]', '[TLS ...]')
    assert changed(outside) == [["15", "RST", "added"]]
    got_in = changed(inside)
    assert got_in[-1] == ["17", "RST", "added"]
    assert [(r[0], r[1].split(":")[0], r[2]) for r in got_in[:-1]] == [
        ("16", f"TLS {name}", "removed")
        for name in ("ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone")]
    assert "tls-handshake-failed" in (page.locator("tr.detail p.verdict").text_content() or "")
    assert "middlebox" in page.locator(".view .head-t").all_text_contents()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("tr.detail .detail-box").screenshot(path=str(ARTIFACTS / "diff-dpi-reset.png"))
    _clean(o, dest)


def _facts(page: Any) -> dict[str, Any]:
    """The open pair's facts: each <dt> with the <dd> after it (text, and the rows of a table in it)."""
    return page.locator("tr.detail dl.facts-grid").evaluate(
        "dl => { const out = {}; dl.querySelectorAll('dt').forEach(dt => { const dd = dt.nextElementSibling;"
        " out[dt.textContent] = {text: dd.textContent, rows: Array.from(dd.querySelectorAll('table > tbody > tr')).map("
        "tr => Array.from(tr.children).map(td => td.textContent))}; }); return out; }")


def test_diff_keeps_lines_one_capture_lacks_apart(browser: html_browser.Browser, tmp_path: Path) -> None:
    """The outside capture lost the segment with 250-STARTTLS, which the client acknowledged: the line is listed
    apart, as no evidence ("not shown" where that capture has no frame for it), never as a line the box changed;
    the list says the box changed nothing, and nothing is highlighted. A box that killed TLS: its lines are the
    ones it changed, and nothing is listed apart."""
    dest = tmp_path / "diff.html"
    rc = main(["diff", str(CAPTURES / "pairs" / "capture-lost-offer.outside.pcap"),
               str(CAPTURES / "pairs" / "capture-lost-offer.inside.pcap"), "--format", "html", "-o", str(dest)],
              out=io.StringIO(), err=io.StringIO())
    assert rc == 0
    o = browser.open(dest)
    page = o.page
    assert page.locator("tr.conv[data-i='0'] td").last.text_content() == "no (1 line on one side only, no evidence)"
    assert "0 identical, 0 changed by the box (0 blamed on it), 1 with lines only one capture shows (no evidence)" \
        in " ".join((page.locator("#overview p.facts").text_content() or "").split())
    page.click("tr.conv[data-i='0']")
    facts = _facts(page)
    assert facts["Lines the box changed"] == {
        "text": "none that both captures show (the lines below prove nothing)", "rows": []}
    assert facts["Seen on one side only (no evidence)"]["rows"] == [
        ["server->client", "removed", "not shown", "(nothing)", "9", "250-STARTTLS"]]
    assert page.locator("tr.detail svg.ladder g[data-changed]").count() == 0
    _clean(o, dest)

    dest = tmp_path / "diff2.html"
    rc = main(["diff", str(CAPTURES / "pairs" / "dpi-drop-clienthello-fin.outside.pcap"),
               str(CAPTURES / "pairs" / "dpi-drop-clienthello-fin.inside.pcap"), "--format", "html", "-o",
               str(dest)], out=io.StringIO(), err=io.StringIO())
    assert rc == 1
    o = browser.open(dest)
    page = o.page
    assert page.locator("tr.conv[data-i='0'] td").last.text_content() == "YES (1 line)"
    page.click("tr.conv[data-i='0']")
    facts = _facts(page)
    assert facts["Lines the box changed"]["rows"] == [
        ["client->server", "removed", "14", "[TLS ClientHello: versions TLS 1.2, SNI mx.example.com]", "14",
         "(nothing)"]]
    assert "Seen on one side only (no evidence)" not in facts
    assert page.locator(".view-outside svg.ladder g[data-changed]").count() == 1
    _clean(o, dest)
