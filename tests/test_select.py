"""The conversation selection of analyze, explain and report (--server, --client, --outcome,
--caused-by, --reason, --server-name): exact streams selected on generated captures, AND across
options and OR within one, IPv6, usage errors, and what the summary, the exit status, -j N,
explain and report say under a selection."""
from __future__ import annotations

import io
import ipaddress
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mixedcap import make_mixed
from pcapsmtp.analysis.reasons import REASONS
from pcapsmtp.commands.main import main
from pcapsmtp.commands.status import needs_attention

ROOT = Path(__file__).resolve().parents[1]
CAP = ROOT / "captures"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def convs(out: str) -> list[dict[str, Any]]:
    return [c for c in (json.loads(line) for line in out.splitlines() if line) if "summary" not in c]


def keys(cs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(Path(c["file"]).name, c["stream"]) for c in cs]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A relay-like capture and its unselected conversations (the reference to select from)."""
    path = str(make_mixed(tmp_path_factory.mktemp("select"), 30000, 7))
    rc, out, _ = run("analyze", "--format", "json", "-q", path)
    allc = convs(out)
    assert len(allc) > 50 and rc in (0, 1)
    return path, allc


# --- exact streams on the small generated captures --------------------------------------------

def test_caused_by_and_reason_pick_exact_streams_of_port_reuse() -> None:
    f = str(CAP / "port-reuse.pcap")
    assert keys(convs(run("analyze", "--format", "json", f, "--caused-by", "server")[1])) == [
        ("port-reuse.pcap", 1)]
    assert keys(convs(run("analyze", "--format", "json", f, "--caused-by", "client")[1])) == [
        ("port-reuse.pcap", 0)]
    assert keys(convs(run("analyze", "--format", "json", f, "--reason",
                          "client-did-not-request")[1])) == [("port-reuse.pcap", 0)]
    # OR within one option
    assert keys(convs(run("analyze", "--format", "json", f, "--caused-by", "client",
                          "--caused-by", "server")[1])) == [("port-reuse.pcap", 0), ("port-reuse.pcap", 1)]
    # AND across options: server blamed and the client's reason: nothing
    rc, out, _ = run("analyze", "--format", "json", f, "--caused-by", "server", "--reason",
                     "client-did-not-request")
    assert convs(out) == [] and rc == 0


def test_outcome_over_several_files() -> None:
    files = [str(CAP / n) for n in ("tls-fallback.pcap", "fallback-helo.pcap",
                                    "fallback-server-offered-nothing.pcap", "port-reuse.pcap")]
    got = keys(convs(run("analyze", "--format", "json", *files, "--outcome", "aborted")[1]))
    assert got == [("tls-fallback.pcap", 0), ("fallback-helo.pcap", 0),
                   ("fallback-server-offered-nothing.pcap", 0)]
    got = keys(convs(run("analyze", "--format", "json", *files, "--reason", "tls-fallback",
                         "--reason", "starttls-refused")[1]))
    assert got == [("tls-fallback.pcap", 1), ("fallback-helo.pcap", 0), ("fallback-helo.pcap", 1)]
    # the tls-fallback verdict needs the earlier, unselected, failure: selection comes after it
    got = keys(convs(run("analyze", "--format", "json", *files, "--outcome", "plaintext",
                         "--caused-by", "server", "--server", "198.51.100.25")[1]))
    assert ("port-reuse.pcap", 1) in got and ("port-reuse.pcap", 0) not in got


def test_ipv6_forms() -> None:
    files = [str(CAP / "seed-ipv6.pcap"), str(CAP / "port-reuse.pcap")]
    for form in ("2001:db8:0:2::25", "[2001:db8:0:2::25]", "[2001:db8:0:2::25]:25",
                 "2001:db8:0:2::/64", "[2001:DB8:0:2:0:0:0:25]:25"):
        got = keys(convs(run("analyze", "--format", "json", *files, "--server", form)[1]))
        assert got == [("seed-ipv6.pcap", 0)], form
    assert convs(run("analyze", "--format", "json", *files, "--server", "[2001:db8:0:2::25]:587")[1]) == []
    got = keys(convs(run("analyze", "--format", "json", *files, "--client", "[2001:db8:0:1::10]:40312",
                         "--client", "192.0.2.10")[1]))
    assert got == [("seed-ipv6.pcap", 0), ("port-reuse.pcap", 0), ("port-reuse.pcap", 1)]
    # an IPv4 network never matches an IPv6 address
    assert keys(convs(run("analyze", "--format", "json", *files, "--server", "0.0.0.0/0")[1])) == [
        ("port-reuse.pcap", 0), ("port-reuse.pcap", 1)]


@pytest.mark.parametrize("argv, msg", [
    (["--reason", "no-such-code"], "--reason: unknown reason code 'no-such-code' (valid: "),
    (["--server", "mx.example.com"], "--server: not an IP address: 'mx.example.com'"),
    (["--client", "192.0.2.10:99999"], "--client: not a TCP port"),
    (["--server", "[2001:db8::1"], "--server: not ADDR[:PORT]"),
])
def test_bad_selection_is_one_line_exit_2(argv: list[str], msg: str) -> None:
    for cmd in (["analyze"], ["explain"], ["report", "-o", "-"]):
        rc, out, err = run(*cmd, str(CAP / "port-reuse.pcap"), *argv)
        assert rc == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("pcapsmtp: error: " + msg), err
    if argv[0] == "--reason":
        assert all(code in err for code in REASONS)


def test_outcome_and_side_values_come_from_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    from pcapsmtp.commands.selection import OUTCOMES, SIDES
    assert set(OUTCOMES) == {"tls", "plaintext", "aborted", "incomplete"}
    assert set(SIDES) == {"none", "client", "server", "middlebox", "unknown"}
    rc, _, _ = run("analyze", str(CAP / "port-reuse.pcap"), "--outcome", "fine")
    assert rc == 2 and "--outcome: invalid choice: 'fine'" in capsys.readouterr().err


# --- the relay-like capture: every option against the reference -------------------------------

def _expected(allc: list[dict[str, Any]], **want: Any) -> list[tuple[str, int]]:
    def ok(c: dict[str, Any]) -> bool:
        for key in ("outcome", "caused_by", "reason"):
            if key in want and c[key] not in want[key]:
                return False
        for side in ("server", "client"):
            if side in want and not any(
                    ipaddress.ip_address(c[side]["ip"]) in ipaddress.ip_network(net)
                    and (port is None or c[side]["port"] == port) for net, port in want[side]):
                return False
        if "name" in want and want["name"] not in (c.get("server_name") or "").lower():
            return False
        return True
    return keys([c for c in allc if ok(c)])


def test_every_option_on_a_relay_capture(mixed: tuple[str, list[dict[str, Any]]]) -> None:
    path, allc = mixed
    ports = Counter((c["server"]["ip"], c["server"]["port"]) for c in allc)
    (ip1, port1), _ = ports.most_common(1)[0]
    ip2 = next(c["server"]["ip"] for c in allc if c["server"]["ip"] != ip1)
    client = allc[5]["client"]
    name = next(c["server_name"] for c in allc if c.get("server_name"))
    cases: list[tuple[list[str], dict[str, Any]]] = [
        (["--server", ip1], {"server": [(ip1, None)]}),
        (["--server", f"{ip1}:{port1}", "--server", ip2],
         {"server": [(ip1, port1), (ip2, None)]}),
        (["--client", f"{client['ip']}:{client['port']}"], {"client": [(client["ip"], client["port"])]}),
        (["--client", "10.20.0.0/14"], {"client": [("10.20.0.0/14", None)]}),
        (["--outcome", "tls"], {"outcome": {"tls"}}),
        (["--outcome", "aborted", "--outcome", "plaintext"], {"outcome": {"aborted", "plaintext"}}),
        (["--caused-by", "middlebox"], {"caused_by": {"middlebox"}}),
        (["--reason", "starttls-not-offered", "--reason", "client-used-helo"],
         {"reason": {"starttls-not-offered", "client-used-helo"}}),
        (["--outcome", "plaintext", "--caused-by", "server", "--client", "10.0.0.0/8"],
         {"outcome": {"plaintext"}, "caused_by": {"server"}, "client": [("10.0.0.0/8", None)]}),
        (["--server-name", name.upper()[:8]], {"name": name.lower()[:8]}),
    ]
    for argv, want in cases:
        expected = _expected(allc, **want)
        assert expected and len(expected) < len(allc), argv   # each case is selective
        rc, out, err = run("analyze", "--format", "json", "-q", path, *argv)
        assert keys(convs(out)) == expected, argv
        assert rc == (1 if any(needs_attention(c) for c in convs(out)) else 0), argv
        # csv and table print the same conversations
        rows = run("analyze", "--format", "csv", "-q", path, *argv)[1].splitlines()
        assert len(rows) == 1 + len(expected), argv
        table = run("analyze", "-q", path, *argv)[1].splitlines()
        assert sorted(int(r.split()[0]) for r in table[2:] if r.strip()) == sorted(s for _, s in expected)


def test_exit_status_follows_the_selection(mixed: tuple[str, list[dict[str, Any]]]) -> None:
    path, allc = mixed
    assert any(needs_attention(c) for c in allc)
    rc_all = run("analyze", "--format", "json", "-q", path)[0]
    rc_tls = run("analyze", "--format", "json", "-q", path, "--reason", "tls-established")[0]
    rc_bad = run("analyze", "--format", "json", "-q", path, "--outcome", "plaintext")[0]
    assert (rc_all, rc_tls, rc_bad) == (1, 0, 1)


def test_summary_describes_the_selection(mixed: tuple[str, list[dict[str, Any]]]) -> None:
    path, allc = mixed
    _, out, _ = run("analyze", "--format", "json", "-q", "--summary", path)
    whole = json.loads(out.splitlines()[-1])["summary"]
    assert "selected_from" not in whole
    _, out, _ = run("analyze", "--format", "json", "-q", "--summary", path, "--caused-by", "server")
    lines = out.splitlines()
    summ = json.loads(lines[-1])["summary"]
    sel = convs(out)
    assert summ["conversations"] == len(sel) == len(_expected(allc, caused_by={"server"}))
    assert summ["selected_from"] == len(allc)
    assert summ["reasons"] == dict(Counter(c["reason"] for c in sel))
    assert sum(s["conversations"] for s in summ["servers"]) == len(sel)
    assert {s["ip"] for s in summ["servers"]} == {c["server"]["ip"] for c in sel}
    # the capture's counters stay the capture's
    for k in ("packets", "frames", "reassembly", "no_payload_attempts"):
        assert summ.get(k) == whole.get(k), k
    # a selection of everything summarises as no selection does
    _, out, _ = run("analyze", "--format", "json", "-q", "--summary", path,
                    *[a for o in ("tls", "plaintext", "aborted", "incomplete") for a in ("--outcome", o)])
    every = json.loads(out.splitlines()[-1])["summary"]
    assert every.pop("selected_from") == len(allc)
    assert every == whole
    # the table says it is a selection
    _, out, _ = run("analyze", "-q", "--summary", path, "--caused-by", "server")
    assert f"{len(sel)} selected of {len(allc)} SMTP conversation(s)" in out


def test_jobs_and_rotated_select_as_the_serial_run(mixed: tuple[str, list[dict[str, Any]]],
                                                 tmp_path: Path) -> None:
    path, _ = mixed
    argv = ["--summary", "--outcome", "plaintext", "--outcome", "aborted", "--server", "198.51.100.0/26"]
    serial = run("analyze", "--format", "json", "-q", path, *argv)
    assert len(convs(serial[1])) > 3
    assert run("analyze", "--format", "json", "-q", "-j", "2", path, *argv) == serial
    files = [path, str(CAP / "port-reuse.pcap"), str(CAP / "tls-fallback.pcap")]
    assert run("analyze", "--format", "json", "-q", "-j", "2", *files, *argv) == run(
        "analyze", "--format", "json", "-q", *files, *argv)
    for fmt in ("csv", "tlsrpt"):
        assert run("analyze", "--format", fmt, "-q", "-j", "2", path, *argv) == run(
            "analyze", "--format", fmt, "-q", path, *argv)


def test_tlsrpt_covers_the_selection(mixed: tuple[str, list[dict[str, Any]]]) -> None:
    path, allc = mixed
    _, out, _ = run("analyze", "--format", "tlsrpt", "-q", path, "--outcome", "tls")
    rep = json.loads(out)
    text = json.dumps(rep)
    assert "failure-details" not in text or all(
        d.get("failed-session-count", 0) == 0 for p in rep["policies"] for d in p.get("failure-details", []))
    total = sum(p["summary"]["total-successful-session-count"] for p in rep["policies"])
    assert total == len(_expected(allc, outcome={"tls"}))


# --- explain and report -----------------------------------------------------------------------

def test_explain_honours_the_selection() -> None:
    f = str(CAP / "port-reuse.pcap")
    rc, out, _ = run("explain", f, "--caused-by", "server")
    assert re.findall(r"^stream (\d+):", out, re.M) == ["1"] and rc == 1
    rc, out, _ = run("explain", f, "--server", "198.51.100.25:25", "--client", "192.0.2.10")
    assert re.findall(r"^stream (\d+):", out, re.M) == ["0", "1"]
    rc, out, _ = run("explain", f, "--stream", "0", "--caused-by", "server")
    assert out == "no SMTP conversation matches the selection (2 found)\n" and rc == 0
    rc, out, _ = run("explain", f, "--stream", "1", "--caused-by", "server")
    assert re.findall(r"^stream (\d+):", out, re.M) == ["1"] and rc == 1


def _report_convs(html: str) -> list[tuple[int, str, str]]:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m
    data = json.loads(m.group(1))
    return [(c["s"], c["o"], c["cb"]) for c in data["convs"]]


def test_report_holds_the_selected_conversations(tmp_path: Path) -> None:
    files = [str(CAP / "port-reuse.pcap"), str(CAP / "tls-fallback.pcap")]
    whole = tmp_path / "all.html"
    assert run("report", *files, "-o", str(whole))[0] == 1
    assert len(_report_convs(whole.read_text())) == 4
    page = tmp_path / "sel.html"
    rc, _, _ = run("report", *files, "-o", str(page), "--caused-by", "client")
    html = page.read_text()
    assert _report_convs(html) == [(0, "plaintext", "client")] and rc == 1
    assert "<title>pcapsmtp report: port-reuse.pcap, tls-fallback.pcap (1 selected of 4 " \
           "conversations: --caused-by client)</title>" in html
    rc, _, _ = run("report", *files, "-o", str(page), "--outcome", "aborted")
    assert _report_convs(page.read_text()) == [(0, "aborted", "server")] and rc == 1
    # a selection of nothing that needs attention: exit 0
    rc, _, _ = run("report", str(CAP / "port-reuse.pcap"), str(CAP / "implicit-tls-465.pcap"),
                   "-o", str(page), "--outcome", "tls")
    assert rc == 0 and [o for _, o, _ in _report_convs(page.read_text())] == ["tls"]
    # redaction: the title does not name the selected addresses
    sel = ["--server-name", "MX.EXAMPLE", "--server", "198.51.100.25", "--caused-by", "server"]
    run("report", *files, "-o", str(page), *sel)
    plain = _report_convs(page.read_text())
    assert len(plain) == 3 and "198.51.100.25" in page.read_text()
    run("report", *files, "-o", str(page), *sel, "--redact-addresses", "--redact-ips")
    html = page.read_text()
    assert "198.51.100.25" not in html and "mx.example" not in html.lower()
    assert _report_convs(html) == plain
    assert "(3 selected of 4 conversations)</title>" in html


def test_docs_and_help_say_what_a_selection_covers(capsys: pytest.CaptureFixture[str]) -> None:
    from pcapsmtp.commands.selection import OUTCOMES, SIDES
    doc = (ROOT / "docs" / "output.md").read_text()
    part = doc[doc.index("### Under a selection"):doc.index("\n## ", doc.index("### Under a selection"))]
    for value in (*OUTCOMES, *SIDES):
        assert f"`{value}`" in part, value
    for opt in ("--server", "--client", "--outcome", "--caused-by", "--reason", "--server-name",
                "`summary.selected_from`", "exit status", "TLS-RPT", "-j N"):
        assert opt in part, opt
    readme = (ROOT / "README.md").read_text()
    assert "--server ADDR[:PORT]" in readme and "--caused-by SIDE" in readme
    for cmd in ("analyze", "explain", "report"):
        assert main([cmd, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "the exit status, --summary (its per-server table included) and the TLS-RPT " \
               "report describe the selected conversations only" in text, cmd
        assert "--server ADDR[:PORT]" in text and "never a name" in text, cmd


def test_rotated_pieces_select_as_the_whole_file(mixed: tuple[str, list[dict[str, Any]]],
                                                 tmp_path: Path) -> None:
    """The pieces of the capture (editcap -c), read --rotated, serially and with -j 2, select
    the conversations the whole file selects."""
    import shutil
    import subprocess
    if shutil.which("editcap") is None:
        pytest.skip("editcap (tshark's package) is not installed")
    path, allc = mixed
    subprocess.run(["editcap", "-c", "7000", path, str(tmp_path / "piece.pcap")], check=True,
                   capture_output=True, timeout=120)
    pieces = [str(p) for p in sorted(tmp_path.glob("piece_*"))]
    assert len(pieces) >= 4
    argv = ["--summary", "--caused-by", "server", "--caused-by", "middlebox", "--server", "198.51.100.0/25"]
    want = [(c["stream"], c["reason"]) for c in convs(run("analyze", "--format", "json", "-q", path, *argv)[1])]
    serial = run("analyze", "--format", "json", "-q", "--rotated", *pieces, *argv)
    assert [(c["stream"], c["reason"]) for c in convs(serial[1])] == want and len(want) > 3
    assert run("analyze", "--format", "json", "-q", "-j", "2", "--rotated", *pieces, *argv) == serial
    summ = json.loads(serial[1].splitlines()[-1])["summary"]
    assert summ["conversations"] == len(want) and summ["selected_from"] == len(allc)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A relay's port-25 capture (bench/mixgen.py --relay, IPv4 and IPv6) and its generator's
    truth: every conversation's stream, client and server, known without pcapsmtp."""
    import subprocess
    import sys
    path = tmp_path_factory.mktemp("relay") / "relay.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "mixgen.py"), "--relay", "--packets",
                    "30000", "--seed", "5", "-o", str(path)], check=True, capture_output=True,
                   timeout=300)
    truth = json.loads(path.with_suffix(".truth.json").read_text())["conversations"]
    return str(path), truth


def test_relay_ipv6_and_ipv4_servers_by_the_generators_truth(
        relay: tuple[str, list[dict[str, Any]]]) -> None:
    path, truth = relay
    v6 = Counter((c["server"]["ip"], c["server"]["port"]) for c in truth if ":" in c["server"]["ip"])
    assert v6, "the relay capture has IPv6 conversations"
    (ip6, port6), _ = v6.most_common(1)[0]
    v4 = next(c["client"]["ip"] for c in truth if ":" not in c["client"]["ip"])

    def streams(pred: Any) -> list[int]:
        return [c["stream"] for c in truth if pred(c)]

    def ip_eq(a: str, b: str) -> bool:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    cases = [
        ([f"[{ip6}]:{port6}"], streams(lambda c: ip_eq(c["server"]["ip"], ip6)
                                       and c["server"]["port"] == port6)),
        ([ip6], streams(lambda c: ip_eq(c["server"]["ip"], ip6))),
        ([f"[{ip6}]", "--client", v4], []),   # AND: that IPv4 client never spoke IPv6
        ([f"[{ip6}]:{port6}", "--server", "198.51.100.7:25"],
         streams(lambda c: (ip_eq(c["server"]["ip"], ip6) and c["server"]["port"] == port6)
                 or (c["server"]["ip"] == "198.51.100.7" and c["server"]["port"] == 25))),
    ]
    for argv, want in cases:
        rc, out, _ = run("analyze", "--format", "json", "-q", path, "--server", *argv)
        assert [c["stream"] for c in convs(out)] == want, argv
        if argv[0] == ip6:
            assert want and len(want) < len(truth)
            assert run("analyze", "--format", "json", "-q", "-j", "2", path, "--server", *argv) == (
                rc, out, "")
