"""The generated captures of captures/scenarios_giveup.py and captures/scenarios_wild.py
(issue 13, items 2 and 8) through the real pipeline and the CLI: exact outcome, caused_by,
reason and evidence frame, the frames cross-checked against tshark where it sees the same
thing, the no-payload attempts counted in both summaries, and the exit status."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcapsmtp.engine.analyzer import analyze_file, analyze_path
from tsharkfilter import frames_matching

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
EXPECTED: dict[str, Any] = json.loads((CAPTURES / "expected.json").read_text())

#: capture -> (outcome, caused_by, reason, evidence: a tshark display filter whose first match is
#: the evidence frame, or None when the verdict names no frame)
CASES: dict[str, tuple[str, str, str, str | None]] = {
    "giveup-not-offered-quit.pcap": ("aborted", "server", "starttls-not-offered", "smtp.response.code == 250"),
    "giveup-misplaced-quit.pcap": ("aborted", "server", "starttls-misplaced", "smtp.response.code == 250"),
    "giveup-masked-rst.pcap": ("aborted", "middlebox", "starttls-masked", "smtp.response.code == 250"),
    "giveup-ehlo-rejected-close.pcap": ("aborted", "server", "ehlo-rejected", "smtp.response.code == 502"),
    "giveup-ehlo-rejected-helo-quit.pcap": ("aborted", "server", "ehlo-rejected", "smtp.response.code == 500"),
    "giveup-valid-offer-close.pcap": ("aborted", "none", "no-mail-transaction", None),
    "wild-auth-login-not-offered.pcap": ("plaintext", "server", "starttls-not-offered",
                                         "smtp.response.code == 250"),
    "wild-auth-plain-valid-offer.pcap": ("plaintext", "client", "client-did-not-request",
                                         'smtp.req.command == "AUTH"'),
    "wild-auth-cram-md5-helo.pcap": ("plaintext", "client", "client-used-helo", 'smtp.req.command == "HELO"'),
    "wild-client-closes-before-banner.pcap": ("aborted", "none", "no-mail-transaction", None),
    "wild-server-closes-without-greeting.pcap": ("aborted", "server", "greeting-refused",
                                                 "tcp.srcport == 25 && tcp.flags.fin == 1"),
    "wild-server-closes-without-greeting-silent-client.pcap": (
        "aborted", "server", "greeting-refused", "tcp.srcport == 25 && tcp.flags.fin == 1"),
    "wild-server-resets-without-greeting.pcap": ("aborted", "server", "greeting-refused",
                                                 "tcp.srcport == 25 && tcp.flags.reset == 1"),
    "wild-server-silent-greeting-timeout.pcap": ("aborted", "server", "greeting-refused",
                                                 "tcp.dstport == 25 && tcp.flags.fin == 1"),
    "wild-server-silent-greeting-quit.pcap": ("aborted", "server", "greeting-refused",
                                              'smtp.req.command == "QUIT"'),
    "wild-server-silent-talked-first.pcap": ("aborted", "server", "greeting-refused",
                                             "tcp.dstport == 25 && tcp.flags.fin == 1"),
    "wild-server-silent-talked-first-mail.pcap": ("plaintext", "server", "greeting-refused",
                                                  "tcp.dstport == 25 && tcp.flags.fin == 1"),
    "wild-forged-reset-before-greeting.pcap": ("aborted", "middlebox", "greeting-refused",
                                               "tcp.srcport == 25 && tcp.flags.reset == 1"),
    "wild-harmless-hole.pcap": ("plaintext", "client", "client-did-not-request", 'smtp.req.command == "MAIL"'),
    "wild-auth-equals-legacy.pcap": ("plaintext", "client", "client-did-not-request",
                                     'smtp.req.command == "MAIL"'),
}


def test_every_generated_giveup_and_wild_capture_is_covered() -> None:
    names = {n for n in EXPECTED if n.startswith(("giveup-", "wild-"))}
    assert names == set(CASES) | {"wild-scan-probes.pcap", "wild-client-impatient-greeting.pcap",
                                  "wild-smtps-no-payload.pcap"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_and_evidence_frame(name: str) -> None:
    outcome, caused_by, reason, evidence = CASES[name]
    (conv,) = analyze_path(str(CAPTURES / name))
    want = EXPECTED[name]["conversations"][0]
    assert (conv["outcome"], conv["caused_by"], conv["reason"]) == (outcome, caused_by, reason)
    assert (want["outcome"], want["caused_by"], want["reason"]) == (outcome, caused_by, reason)
    if evidence is None:
        assert conv["evidence_frame"] is None
        return
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    proc = subprocess.run(["tshark", "-n", "-r", str(CAPTURES / name), "-Y", evidence, "-T", "fields",
                           "-e", "frame.number"], capture_output=True, text=True, timeout=60, check=False)
    frames = [int(x) for x in proc.stdout.split()]
    assert frames and conv["evidence_frame"] == frames[0], (frames, conv["evidence_frame"])


def test_giveup_ehlo_frames_agree_with_expected() -> None:
    for name in CASES:
        (conv,) = analyze_path(str(CAPTURES / name))
        want = EXPECTED[name]["conversations"][0]["frames"]
        if conv["reason"] in ("starttls-not-offered", "starttls-misplaced", "starttls-masked",
                              "ehlo-rejected"):
            assert conv["evidence_frame"] == want["ehlo_reply"][0], name


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], capture_output=True, text=True,
                          timeout=120, cwd=str(REPO), check=False)


def test_no_payload_attempts_are_counted_not_reported() -> None:
    path = str(CAPTURES / "wild-scan-probes.pcap")
    res = analyze_file(path)
    assert [(c["stream"], c["reason"]) for c in res.conversations] == [(2, "starttls-not-offered")]
    assert res.summary["no_payload_attempts"] == 2
    assert res.summary["conversations"] == 1
    assert EXPECTED["wild-scan-probes.pcap"]["no_payload_streams"] == [0, 1]

    proc = _cli("analyze", "--format", "json", "--summary", path)
    objs = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert [o["stream"] for o in objs if "summary" not in o] == [2]
    assert objs[-1]["summary"]["no_payload_attempts"] == 2
    assert not any(o.get("reason") == "incomplete" for o in objs)
    assert proc.returncode == 1          # the real conversation went in plaintext

    table = _cli("analyze", "--summary", path).stdout
    assert "2 connection attempt(s) to an SMTP port without payload" in table
    assert "incomplete" not in table and "Capture again" not in table

    # Two files: the merged summary adds the counts.
    merged = _cli("analyze", "--format", "json", "--summary", path, path).stdout.splitlines()
    assert json.loads(merged[-1])["summary"]["no_payload_attempts"] == 4


@pytest.mark.parametrize("name", ["wild-server-silent-greeting-timeout.pcap",
                                  "wild-server-silent-greeting-quit.pcap"])
def test_a_greeting_never_sent_is_the_servers_no_answer(name: str) -> None:
    """The client gave up 30 s or more after the connection opened, nothing of the server since:
    case ``no-answer``, its finding at the client's giving up (the evidence frame), the wait in
    the words."""
    (conv,) = analyze_path(str(CAPTURES / name))
    assert conv["case"] == "no-answer"
    (finding,) = conv["findings"]
    assert (finding["code"], finding["side"], finding["frame"]) == ("no-answer", "server", conv["evidence_frame"])
    waited = "300 s" if "timeout" in name else "31 s"
    assert f"no byte of it for {waited} from the conversation's first frame (1)" in conv["detail"]
    assert conv["explanation"]["client_does"].startswith("The server accepted the TCP connection")


def test_a_client_that_did_not_wait_for_the_greeting_is_an_attempt() -> None:
    """5 s without a greeting, then the client's close without a byte: servers delay their
    greeting on purpose that long (GREETING_WAIT_NS), so it is counted, not judged."""
    res = analyze_file(str(CAPTURES / "wild-client-impatient-greeting.pcap"))
    assert res.conversations == [] and res.summary["no_payload_attempts"] == 1
    assert EXPECTED["wild-client-impatient-greeting.pcap"]["no_payload_streams"] == [0]


def test_no_greeting_is_due_on_an_smtps_port() -> None:
    """Port 465: the server closing before any byte (no ClientHello came) and a client leaving
    after 60 s without its ClientHello are attempts, not the server's refusal."""
    res = analyze_file(str(CAPTURES / "wild-smtps-no-payload.pcap"))
    assert res.conversations == [] and res.summary["no_payload_attempts"] == 2
    assert EXPECTED["wild-smtps-no-payload.pcap"]["no_payload_streams"] == [0, 1]


def test_a_forged_reset_before_the_greeting_is_the_boxs() -> None:
    """The server's real banner after a reset with its address: the box's reset, not the
    server's refusal (finding ``reset-forged`` at the reset, the evidence frame)."""
    (conv,) = analyze_path(str(CAPTURES / "wild-forged-reset-before-greeting.pcap"))
    assert [(f["code"], f["side"], f["frame"]) for f in conv["findings"]] == [
        ("reset-forged", "middlebox", conv["evidence_frame"])]
    assert "a box on the path reset the connection before the server's greeting" in conv["detail"]
    assert "server went on sending after it" in conv["detail"]


@pytest.mark.parametrize(("name", "status"), [
    ("greeting-refused.pcap", 0), ("wild-server-closes-without-greeting-silent-client.pcap", 0),
    ("wild-server-resets-without-greeting.pcap", 0),
    ("wild-server-silent-greeting-timeout.pcap", 1), ("wild-server-silent-greeting-quit.pcap", 1),
    ("wild-forged-reset-before-greeting.pcap", 1), ("wild-client-impatient-greeting.pcap", 0)])
def test_exit_status_of_a_refused_greeting(name: str, status: int) -> None:
    """docs/output.md, ``greeting-refused``: a refusal or a close exits 0 (nothing went in the
    clear, no RFC broken); the server's silence (its ``no-answer`` finding) and a box's forged
    reset (``reset-forged``) are findings against a side and exit 1."""
    assert _cli("analyze", str(CAPTURES / name)).returncode == status


def test_exit_status_of_a_give_up_is_1_and_of_a_probe_after_a_valid_offer_0() -> None:
    assert _cli("analyze", str(CAPTURES / "giveup-not-offered-quit.pcap")).returncode == 1
    assert _cli("analyze", str(CAPTURES / "giveup-valid-offer-close.pcap")).returncode == 0
    assert _cli("analyze", str(CAPTURES / "wild-client-closes-before-banner.pcap")).returncode == 0


def test_explain_after_refused_ehlo_describes_no_clients() -> None:
    out = _cli("explain", str(CAPTURES / "giveup-ehlo-rejected-close.pcap")).stdout
    assert "ehlo-rejected" in out
    assert "Known clients" not in out and "downgrade with this reply" not in out


def test_check_ehlo_legacy_auth_equals_is_a_note_with_exit_0() -> None:
    reply = "250-mx.example.com\r\n250-AUTH LOGIN PLAIN\r\n250-AUTH=LOGIN PLAIN\r\n250 STARTTLS\r\n"
    proc = subprocess.run([sys.executable, "-m", "pcapsmtp", "check-ehlo", "-"], input=reply,
                          capture_output=True, text=True, timeout=60, cwd=str(REPO), check=False)
    assert "ehlo-legacy-keyword" in proc.stdout and "ehlo-bad-keyword" not in proc.stdout
    assert proc.returncode == 0, proc.stdout
    bad = reply.replace("AUTH=LOGIN PLAIN", "_X!BAD")
    proc = subprocess.run([sys.executable, "-m", "pcapsmtp", "check-ehlo", "-"], input=bad,
                          capture_output=True, text=True, timeout=60, cwd=str(REPO), check=False)
    assert "ehlo-bad-keyword" in proc.stdout and proc.returncode == 1


def test_legacy_keyword_capture_exit_status_comes_from_the_plaintext_mail_only() -> None:
    """wild-auth-equals-legacy.pcap went in plaintext (exit 1 for that); its note is no violation."""
    from pcapsmtp.commands.status import violations
    (conv,) = analyze_path(str(CAPTURES / "wild-auth-equals-legacy.pcap"))
    assert [f["code"] for f in conv["findings"]] == ["ehlo-legacy-keyword"]
    assert conv["findings"][0]["frame"] == EXPECTED["wild-auth-equals-legacy.pcap"]["conversations"][0][
        "findings"][0]["frame"]
    assert not violations(conv)


def test_a_helo_fallback_after_a_refused_ehlo_is_named_in_the_detail() -> None:
    """EHLO refused 500, the client's HELO, then QUIT: the detail names the fallback instead of
    saying the client left "as a client that requires TLS does" (such a client sends no HELO)."""
    (conv,) = analyze_path(str(CAPTURES / "giveup-ehlo-rejected-helo-quit.pcap"))
    assert conv["detail"] == ("the server refused EHLO with 500, so STARTTLS could not be negotiated; the client "
                              "then fell back to HELO (frame 10) and left without a mail transaction")
    assert frames_matching(CAPTURES / "giveup-ehlo-rejected-helo-quit.pcap", 'smtp.req.command == "HELO"') == [10]
