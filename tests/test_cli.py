"""The command line as a user runs it: formats, exit codes, explain, check-ehlo, stdin, -j."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
CORPUS = ROOT / "tests" / "corpus"
SEED = CAPTURES / "seed-starttls-first-line.pcap"
TWIN = CAPTURES / "seed-compliant-twin.pcap"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=120,
                          text=stdin is None)


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_seed_case_names_the_server_and_exits_1() -> None:
    p = run("analyze", str(SEED))
    assert p.returncode == 1, p.stderr
    row = [ln for ln in p.stdout.splitlines() if "192.0.2.10" in ln]
    assert len(row) == 1
    assert "server" in row[0] and "starttls-misplaced" in row[0] and "misplaced" in row[0]


def test_compliant_twin_exits_0() -> None:
    p = run("analyze", str(TWIN))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "tls-established" in p.stdout


def test_json_keeps_the_contract_keys() -> None:
    p = run("analyze", "--format", "json", str(SEED))
    (conv,) = jsonl(p.stdout)
    for key in ("file", "stream", "client", "server", "first_frame", "banner", "greeting",
                "ehlo_reply", "starttls", "tls", "outcome", "caused_by", "reason", "findings",
                "community_id", "wireshark_filter"):
        assert key in conv, key
    assert conv["banner"] == "220 mail.domain1.com ESMTP Service ready"
    assert conv["greeting"] == {"command": "EHLO", "argument": "ESA.com", "frame": 6}
    assert conv["ehlo_reply"]["frames"] == [8, 9]
    assert conv["ehlo_reply"]["lines"][:2] == ["STARTTLS", "mail.domain1.com"]
    assert conv["starttls"] == {"offered": "misplaced", "requested": False, "reply_code": None,
                                "frame": None}
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == ("plaintext", "server",
                                                                   "starttls-misplaced")
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("ehlo-keyword-as-domain", "server", 8)]
    assert conv["wireshark_filter"] == ("ip.addr == 192.0.2.10 && tcp.port == 40312 && "
                                        "ip.addr == 198.51.100.25 && tcp.port == 25")
    assert conv["community_id"].startswith("1:")
    assert "postfix" in conv["clients"]["downgrade"] and "swaks" in conv["clients"]["see_starttls"]


def test_csv_has_one_row_per_conversation() -> None:
    p = run("analyze", "--format", "csv", str(SEED), str(CAPTURES / "tls-fallback.pcap"))
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [(r["stream"], r["reason"]) for r in rows] == [
        ("0", "starttls-misplaced"), ("0", "tls-handshake-failed"), ("1", "tls-fallback")]


def test_explain_marks_the_guilty_line() -> None:
    p = run("explain", str(SEED))
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    marked = [ln for ln in lines if "<---" in ln]
    assert marked and "250-STARTTLS" in marked[0] and "ehlo-keyword-as-domain" in marked[0]
    assert any(ln.startswith("What a strict client does:") for ln in lines)
    assert any(ln.startswith("What to ask, and of whom:") for ln in lines)
    assert any("tshark -r" in ln and "frame.number" in ln for ln in lines)


def test_explain_unknown_stream_is_a_usage_error() -> None:
    p = run("explain", str(SEED), "--stream", "7")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "tcp.stream 7" in p.stderr


def test_stdin_is_read_with_dash() -> None:
    p = run("analyze", "--format", "json", "-", stdin=SEED.read_bytes())
    (conv,) = jsonl(p.stdout.decode())
    assert conv["file"] == "-" and conv["reason"] == "starttls-misplaced"


def test_jobs_output_equals_serial() -> None:
    files = sorted(str(p) for p in CAPTURES.glob("*.pcap"))[:20]
    serial = run("analyze", "--format", "json", *files)
    parallel = run("analyze", "--format", "json", "-j", "2", *files)
    assert serial.stdout == parallel.stdout and serial.returncode == parallel.returncode
    assert len(jsonl(serial.stdout)) >= 20


def test_summary_flags_a_server_whose_offer_varies() -> None:
    p = run("analyze", "--format", "json", "--summary", str(CAPTURES / "port-reuse.pcap"))
    *convs, last = jsonl(p.stdout)
    assert [c["starttls"]["offered"] for c in convs] == ["valid", "absent"]
    (srv,) = last["summary"]["servers"]
    assert srv["inconsistent_offer"] is True and srv["conversations"] == 2
    assert srv["downgraded"] == {"client-did-not-request": 1, "starttls-not-offered": 1}


def test_tlsrpt_report_counts_failures() -> None:
    p = run("analyze", "--format", "tlsrpt", str(SEED), str(TWIN))
    rep = json.loads(p.stdout)
    (pol,) = rep["policies"]
    assert pol["summary"] == {"total-successful-session-count": 1,
                              "total-failure-session-count": 1}
    (det,) = pol["failure-details"]
    assert det["result-type"] == "starttls-not-supported"
    assert det["failure-reason-code"] == "starttls-misplaced"
    assert det["sending-mta-ip"] == "192.0.2.10" and det["receiving-ip"] == "198.51.100.25"


def test_tlsrpt_leaves_out_an_incomplete_conversation() -> None:
    """A capture of the server's direction only with a certificate for another name: the
    certificate is checked and reported, but the session's result is unknown (incomplete), so
    TLS-RPT counts it neither as a success nor as a failure."""
    cap = str(CAPTURES / "one-sided-server-tls12-cert.pcap")
    (conv,) = jsonl(run("analyze", "--format", "json", cap).stdout)
    assert conv["outcome"] == "incomplete" and "tlsrpt_result" not in conv
    assert "tls-certificate" in {f["code"] for f in conv["findings"]}
    (pol,) = json.loads(run("analyze", "--format", "tlsrpt", cap).stdout)["policies"]
    assert pol["summary"] == {"total-successful-session-count": 0,
                              "total-failure-session-count": 0}
    assert pol["failure-details"] == []


def test_check_ehlo_on_a_pasted_reply() -> None:
    pasted = b"<-  250-STARTTLS\n<-  250-mail.domain1.com\n<-  250 SIZE 30000000\n"
    p = run("check-ehlo", stdin=pasted)
    out = p.stdout.decode()
    assert p.returncode == 1
    assert "STARTTLS offered: misplaced" in out and "ehlo-keyword-as-domain" in out
    good = run("check-ehlo", stdin=b"250-mx.example.com\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
    assert good.returncode == 0 and "STARTTLS offered: valid" in good.stdout.decode()


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    p = run("analyze", str(tmp_path / "nope.pcap"))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "nope.pcap" in p.stderr and "Traceback" not in p.stderr


def test_corrupt_file_keeps_results_before_the_damage() -> None:
    bad = CORPUS / "OISF__suricata-verify" / "tests__smtp-to-comma__10.7.29.101_49898-178.63.41.150_25.pcap"
    p = run("analyze", "--format", "json", str(bad))
    assert p.returncode == 2
    convs = jsonl(p.stdout)
    assert len(convs) == 1 and convs[0]["greeting"]["command"] in ("EHLO", "HELO")
    (line,) = p.stderr.splitlines()
    assert "byte offset 3695" in line and "smtp-to-comma" in line


def test_redact_addresses_hides_names_and_envelope() -> None:
    plain = run("analyze", "--format", "json", str(SEED)).stdout
    assert "mail.domain1.com" in plain
    for cmd in (("analyze", "--format", "json"), ("analyze",), ("explain",)):
        p = run(*cmd, "--redact-addresses", "--redact-key", "k1", str(SEED))
        assert p.returncode == 1, p.stderr
        for secret in ("mail.domain1.com", "ESA.com", "alice@", "bob@", "example.org"):
            assert secret not in p.stdout, (cmd, secret)
    a = run("analyze", "--format", "json", "--redact-addresses", "--redact-key", "k1", str(SEED))
    b = run("analyze", "--format", "json", "--redact-addresses", "--redact-key", "k1", str(SEED))
    assert a.stdout == b.stdout  # the same key gives the same pseudonyms
    bad = run("analyze", "--redact-key", "k1", str(SEED))
    assert bad.returncode == 2 and "--redact-addresses" in bad.stderr


def test_findings_table_carries_display_filters() -> None:
    p = run("analyze", "--findings", str(SEED))
    assert "frame.number == 8" in p.stdout
    assert "ip.addr == 192.0.2.10 && tcp.port == 40312" in p.stdout
    assert "frame.number in {8}" in p.stdout


def test_diff_is_a_subcommand() -> None:
    pairs = CAPTURES / "pairs"
    p = run("diff", "--format", "json", str(pairs / "asa-masked.outside.pcap"),
            str(pairs / "asa-masked.inside.pcap"))
    assert p.returncode == 1, p.stderr
    rep = json.loads(p.stdout)
    (pair,) = rep["pairs"]
    assert (pair["verdict"]["caused_by"], pair["verdict"]["reason"]) == ("middlebox", "starttls-masked")


def test_explain_fallback_marks_and_explains_the_final_verdict() -> None:
    p = run("explain", str(CAPTURES / "tls-fallback.pcap"), "--stream", "1")
    marked = [ln for ln in p.stdout.splitlines() if "<--- verdict" in ln]
    assert len(marked) == 1 and "MAIL FROM" in marked[0] and "tls-fallback" in marked[0]
    assert "client-did-not-request:" not in p.stdout.split("Verdict:")[1].split("What to ask")[0]
    assert "sender came back without STARTTLS" in p.stdout
    j = jsonl(run("analyze", "--format", "json", str(CAPTURES / "tls-fallback.pcap")).stdout)
    assert j[1]["fallback_of"]["stream"] == 0 and j[1]["tlsrpt_result"] == "validation-failure"
    assert "After a failed handshake" in j[1]["explanation"]["client_does"]


def test_explain_marks_the_verdict_on_the_line_its_finding_points_at() -> None:
    """The masked keyword shares frame 8 with the whole EHLO reply: the verdict goes to the
    250-XXXXXXXA line its finding names, not to the frame's first line."""
    p = run("explain", str(CAPTURES / "starttls-masked.pcap"))
    lines = p.stdout.splitlines()
    at = next(i for i, ln in enumerate(lines) if "<--- verdict starttls-masked" in ln)
    owner = next(ln for ln in reversed(lines[:at + 1]) if " S: " in ln)
    assert "250-XXXXXXXA" in owner, owner
