"""What a new user meets on the command line (issue 14): summaries over many files, findings
that name their file, tables that fit the terminal, annotate's output file, one wording for the
same error everywhere, --help texts, check-ehlo on a telnet/swaks paste."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
SEED = CAPTURES / "seed-starttls-first-line.pcap"
TWIN = CAPTURES / "seed-compliant-twin.pcap"
NOT_OFFERED = CAPTURES / "starttls-not-offered.pcap"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcapsmtp", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


def _summary(*files: Path) -> dict:
    p = run("analyze", "--format", "json", "--summary", *map(str, files))
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout.splitlines()[-1])["summary"]


# ------------------------------------------------------------------------ --summary over files

def test_summary_merges_one_server_seen_in_several_files() -> None:
    """The three captures talk to the same server IP under two names: one server entry, the
    counts added up, both names kept."""
    alone = [_summary(f)["servers"] for f in (SEED, TWIN, NOT_OFFERED)]
    assert all(len(s) == 1 and s[0]["ip"] == "198.51.100.25" for s in alone)
    merged = _summary(SEED, TWIN, NOT_OFFERED)
    assert merged["conversations"] == 3
    assert merged["outcomes"] == {"plaintext": 2, "tls": 1}
    [srv] = merged["servers"]
    assert srv["ip"] == "198.51.100.25"
    assert srv["names"] == ["mail.domain1.com", "mx.example.com"]
    assert (srv["conversations"], srv["protected"]) == (3, 1)
    assert srv["downgraded"] == {"starttls-misplaced": 1, "starttls-not-offered": 1}
    assert srv["offered"] == {"misplaced": 1, "valid": 1, "absent": 1}


def test_summary_sees_an_inconsistent_offer_across_files() -> None:
    """Valid STARTTLS in one file and none in another, from the same server: neither file alone
    shows the path-dependent box, the merged summary does."""
    assert not _summary(TWIN)["servers"][0]["inconsistent_offer"]
    assert not _summary(NOT_OFFERED)["servers"][0]["inconsistent_offer"]
    assert _summary(TWIN, NOT_OFFERED)["servers"][0]["inconsistent_offer"] is True


def test_summary_table_has_one_row_per_server() -> None:
    p = run("analyze", "--summary", str(SEED), str(NOT_OFFERED))
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("198.51.100.25 ")]
    assert len(rows) == 1, p.stdout


def test_findings_name_their_file() -> None:
    p = run("analyze", "--findings", str(SEED), str(NOT_OFFERED))
    lines = p.stdout.splitlines()
    hit = [ln for ln in lines if "ehlo-keyword-as-domain" in ln]
    assert len(hit) == 1 and "seed-starttls-first-line.pcap" in hit[0], hit
    flt = [ln for ln in lines if "frame.number in" in ln]
    assert {("seed-starttls-first-line" in ln, "starttls-not-offered" in ln) for ln in flt} == {
        (True, False), (False, True)}, flt


# ------------------------------------------------------------------- tables fit the terminal

def run_tty(args: list[str], columns: int, stdin: str | None = None) -> tuple[int, str, str]:
    """The command with standard output on a pseudo-terminal of ``columns`` columns (the window
    size set on the terminal and COLUMNS, as a shell would), standard error on a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR          # keep "\n" as written
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = {**os.environ, "COLUMNS": str(columns)}
    p = subprocess.Popen([sys.executable, "-m", "pcapsmtp", *args], cwd=ROOT, stdout=slave,
                         stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin is not None else None,
                         env=env)
    os.close(slave)
    if stdin is not None:
        assert p.stdin is not None
        p.stdin.write(stdin.encode())
        p.stdin.close()
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:         # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.stderr is not None
    err = p.stderr.read().decode()
    rc = p.wait(timeout=120)
    return rc, b"".join(chunks).decode(), err


MANY = [str(CAPTURES / n) for n in ("seed-starttls-first-line.pcap", "starttls-not-offered.pcap",
                                     "tls-fallback.pcap", "seed-ipv6.pcap")]


def _widest(text: str) -> int:
    return max(len(ln) for ln in text.splitlines())


def test_analyze_fits_80_columns_and_keeps_what_matters() -> None:
    rc, out, err = run_tty(["analyze", "--findings", "--summary", *MANY], 80)
    assert rc == 1, err
    assert _widest(out) <= 80, out
    head = out.splitlines()[:3]
    for col in ("file", "stream", "server", "outcome", "reason"):
        assert any(col in ln for ln in head), (col, head)
    assert "starttls-not-" in out and "tls-handshake-" in out   # wrapped, not cut
    assert "requested" not in out           # the least useful columns went first


def test_analyze_uses_200_columns() -> None:
    rc, out, err = run_tty(["analyze", *MANY], 200)
    assert _widest(out) <= 200, out
    header = out.splitlines()[0]
    for col in ("file", "client", "server name", "STARTTLS offered", "requested", "answer",
                "caused by", "reason"):
        assert col in header, (col, header)
    assert "captures/tls-fallback.pcap" in out and "tls-handshake-failed" in out


def test_piped_output_is_full_width_whatever_columns_says() -> None:
    import os
    p = run("analyze", "--findings", *MANY, env={**os.environ, "COLUMNS": "40"})
    header = p.stdout.splitlines()[0]
    assert "requested" in header and "client" in header
    assert any("tls-handshake-failed" in ln and "tls-fallback.pcap" in ln
               for ln in p.stdout.splitlines())
    # each finding whole on one line, message not cut
    assert any("never see the extension" in ln and "ehlo-keyword-as-domain" in ln
               for ln in p.stdout.splitlines())


def test_explain_fits_80_columns() -> None:
    rc, out, err = run_tty(["explain", str(SEED)], 80)
    assert rc == 1, err
    assert _widest(out) <= 80, [ln for ln in out.splitlines() if len(ln) > 80]
    assert "<--- ehlo-keyword-as-domain" in out and "<--- verdict starttls-misplaced" in out
    rc, wide, err = run_tty(["explain", str(SEED)], 200)
    assert _widest(wide) <= 200
    assert any("250-STARTTLS   <--- ehlo-keyword-as-domain" in ln for ln in wide.splitlines())


def test_live_rows_line_up_with_the_header() -> None:
    """The live table is laid out before the first verdict; later rows (an IPv6 pair, a long
    server name) wrap inside their columns instead of pushing the others right."""
    import io
    import os
    from pcapsmtp.commands.live import _Printer

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def conv(client: str, server: str, name: str, reason: str) -> dict:
        return {"stream": 3, "client": {"ip": client, "port": 40000},
                "server": {"ip": server, "port": 25}, "server_name": name,
                "starttls": {"offered": "valid", "requested": False, "reply_code": None},
                "outcome": "plaintext", "caused_by": "client", "reason": reason}

    for columns in (80, 200):
        os.environ["COLUMNS"] = str(columns)
        try:
            out = Tty()
            pr = _Printer(out, "table")
            pr.conversation(conv("192.0.2.1", "198.51.100.2", "mx.example.com", "tls-fallback"))
            pr.conversation(conv("2001:db8:ffff:ffff:ffff:ffff:ffff:1", "2001:db8::25",
                                 "a-very-long-server-name.mail.example.com", "client-did-not-request"))
        finally:
            del os.environ["COLUMNS"]
        lines = out.getvalue().splitlines()
        assert _widest(out.getvalue()) <= columns, lines
        rule = next(ln for ln in lines if set(ln) <= {"-", " "})
        body = lines[lines.index(rule) + 1:]
        gaps = [i for i in range(len(rule)) if rule[i] == " "]
        for ln in lines[:lines.index(rule)] + body:   # nothing spills into the gaps between columns
            assert all(i >= len(ln) or ln[i] == " " for i in gaps), (columns, ln, rule)
        assert len(body) >= 3    # the second row wrapped inside its columns
        assert any("plaintext" in ln for ln in body)


# ----------------------------------------------------------------------- check-ehlo on a paste

TELNET = """Trying 198.51.100.25...
Connected to mx.example.com.
Escape character is '^]'.
220 mx.example.com ESMTP Postfix
ehlo me
250-mx.example.com
250-PIPELINING
250-SIZE 10240000
250-STARTTLS
250 8BITMIME
quit
221 2.0.0 Bye
Connection closed by foreign host.
"""

SWAKS = """=== Trying mx.example.com:25...
=== Connected to mx.example.com.
<-  220 mx.example.com ESMTP
 -> EHLO client.example
<-  250-STARTTLS
<-  250-mx.example.com
<-  250 SIZE 1000
 -> STARTTLS
<-  220 2.0.0 Ready to start TLS
=== TLS started with cipher TLS_AES_256_GCM_SHA384
 ~> EHLO client.example
<~  250-mx.example.com
<~  250 SIZE 1000
"""


def _check(text: str) -> subprocess.CompletedProcess[str]:
    return run("check-ehlo", stdin=text)


def test_check_ehlo_reads_a_telnet_session_lf_or_crlf() -> None:
    """Banner and typed command are not part of the reply; the reply ends at QUIT."""
    for paste in (TELNET, TELNET.replace("\n", "\r\n")):
        p = _check(paste)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "STARTTLS offered: valid" in p.stdout
        assert "server domain (line 1): mx.example.com" in p.stdout
        assert "no RFC 5321 finding" in p.stdout


def test_check_ehlo_reads_a_swaks_session() -> None:
    """swaks' <- / -> prefixes; the first EHLO's reply, not the one after TLS."""
    p = _check(SWAKS)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "STARTTLS offered: misplaced (in the domain slot of line 1)" in p.stdout
    assert "line 1: ehlo-keyword-as-domain" in p.stdout


def test_check_ehlo_without_the_command_skips_the_banner() -> None:
    p = _check("220 mx.example.com ESMTP\n250-mx.example.com\n250 STARTTLS\n")
    assert p.returncode == 0 and "server domain (line 1): mx.example.com" in p.stdout, p.stdout
    only = _check("250-mx.example.com\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
    assert only.returncode == 0 and "STARTTLS offered: valid" in only.stdout


def test_check_ehlo_keeps_lines_after_a_premature_end() -> None:
    """C4: the reply ends at line 1; the lines after it are stray, and STARTTLS among them is
    misplaced (a swaks paste's ``<-`` prefixes removed)."""
    p = _check("<-  220 mx ESMTP\n -> EHLO me\n<-  250 mx.example.com\n<-  250-STARTTLS\n"
               "<-  250 SIZE 1000\n")
    assert p.returncode == 1
    assert "STARTTLS offered: misplaced (after the premature end of the reply)" in p.stdout


def test_check_ehlo_garbage_or_empty_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for paste in ("", "\n\n", "hello world\nthis is not smtp\n", "ehlo me\n"):
        p = _check(paste)
        assert p.returncode == 2, (paste, p.stdout, p.stderr)
        assert p.stdout == "" and p.stderr.count("\n") == 1, (paste, p.stderr)
        assert p.stderr.startswith("pcapsmtp: error: standard input: no EHLO reply found")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    p = run("check-ehlo", str(junk))
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1
    assert str(junk) in p.stderr


# ------------------------------------------------------------- one wording for the same error

COMMANDS = [["analyze"], ["analyze", "--format", "json"], ["analyze", "--format", "csv"],
            ["analyze", "--summary"], ["explain"], ["check-ehlo"],
            ["annotate", "-o", "/dev/null/never"], ["diff", str(SEED)]]


def _bad_input(cmd: list[str], path: Path, prefix: list[str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    args = [*cmd[:1], str(path), *cmd[1:]] if cmd[0] != "diff" else ["diff", str(path), cmd[1]]
    return subprocess.run([*(prefix or []), sys.executable, "-m", "pcapsmtp", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_missing_file_and_directory_same_words_everywhere(tmp_path: Path) -> None:
    for path, words in ((tmp_path / "nope.pcap", "no such file"),
                        (tmp_path, "is a directory, not a")):
        for cmd in COMMANDS:
            p = _bad_input(cmd, path)
            assert p.returncode == 2, (cmd, p.stderr)
            assert p.stdout == "", (cmd, p.stdout)
            assert p.stderr == f"pcapsmtp: error: {path}: {words}" + p.stderr.split(words, 1)[1], cmd
            assert p.stderr.count("\n") == 1, (cmd, p.stderr)


def test_permission_denied_same_words_everywhere(tmp_path: Path) -> None:
    """An unreadable file. Root reads any file, so as root the commands run without the
    capabilities that let it (capsh, as CI has it)."""
    import os
    import shutil
    locked = tmp_path / "locked.pcap"
    locked.write_bytes(SEED.read_bytes())
    locked.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        assert capsh, "capsh (libcap2-bin, installed by tests/run.sh) is needed as root"
        prefix = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                  'exec "$@"', "sh"]
    for cmd in COMMANDS:
        p = _bad_input(cmd, locked, prefix)
        assert (p.returncode, p.stdout) == (2, ""), (cmd, p.stdout, p.stderr)
        assert p.stderr == f"pcapsmtp: error: {locked}: permission denied\n", (cmd, p.stderr)


# -------------------------------------------------------------------------------- annotate

def test_annotate_writes_with_the_umask_and_exits_0(tmp_path: Path) -> None:
    import os
    import stat
    out = tmp_path / "seed.annotated.pcapng"
    p = subprocess.run(["sh", "-c", f'umask 022 && exec "{sys.executable}" -m pcapsmtp annotate '
                        f'"{SEED}" -o "{out}"'], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr          # the seed downgrades, but the file was written
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert p.stdout == "" and "wrote" in p.stderr
    out.chmod(0o640)                            # an existing file keeps its mode
    assert run("annotate", str(SEED), "-o", str(out)).returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


def test_annotate_refuses_a_directory_as_output(tmp_path: Path) -> None:
    p = run("annotate", str(SEED), "-o", str(tmp_path))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and f"{tmp_path}: is a directory" in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == []


def test_diff_and_check_ehlo_fit_80_and_use_200_columns() -> None:
    pair = [str(CAPTURES / "pairs" / f"box-454.{side}.pcap") for side in ("outside", "inside")]
    for columns in (80, 200):
        rc, out, err = run_tty(["diff", *pair], columns)
        assert rc == 1, err
        assert _widest(out) <= columns, [ln for ln in out.splitlines() if len(ln) > columns]
        assert "starttls-refused" in out and "client->server" in out
        rc, out, err = run_tty(["check-ehlo"], columns, stdin=SWAKS)
        assert rc == 1, err
        assert _widest(out) <= columns, [ln for ln in out.splitlines() if len(ln) > columns]
        assert "ehlo-keyword-as-domain" in out and "postfix" in out
    rc, wide, _ = run_tty(["diff", *pair], 200)
    assert any("454 4.7.0 TLS not available due to local problem" in ln for ln in wide.splitlines())


# ----------------------------------------------------------------------------------- --help

def test_every_command_and_option_has_a_help_text() -> None:
    """Walk the real parser: every command has a one-line summary (the list of commands) and a
    description (its own --help), and every argument and option says what it is for."""
    import argparse
    from pcapsmtp.commands.main import _parser
    top = _parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {ch.dest: ch.help for ch in sub._choices_actions}
    assert {"analyze", "explain", "annotate", "check-ehlo", "diff", "live"} <= set(sub.choices)
    missing = []
    for name, parser in sub.choices.items():
        if not (summaries.get(name) or "").strip() or "\n" in summaries[name]:
            missing.append(f"{name}: one-line summary")
        if not (parser.description or "").strip():
            missing.append(f"{name}: description")
        for act in parser._actions:
            if isinstance(act, argparse._HelpAction):
                continue
            if not (act.help or "").strip() or act.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(act.option_strings) or act.dest}")
    assert not missing, missing


def test_help_of_every_command_runs_and_exits_0() -> None:
    for cmd in ("analyze", "explain", "annotate", "check-ehlo", "diff", "live"):
        p = run(cmd, "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"usage: pcapsmtp {cmd}"), (cmd, p.stderr)


def test_live_any_says_in_one_line_that_it_is_not_supported() -> None:
    """Checked before any socket is opened, so it holds without root too."""
    p = run("live", "-i", "any", "--duration", "1")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "-i any is not supported" in p.stderr, p.stderr
    assert "tcpdump -i any -w FILE" in p.stderr


def test_a_cooked_capture_of_any_is_read_by_analyze() -> None:
    """What the message proposes works: tcpdump -i any writes Linux cooked (SLL) frames."""
    p = run("analyze", "--format", "json", str(CAPTURES / "seed-sll.pcap"))
    assert p.returncode in (0, 1), p.stderr
    assert [json.loads(ln)["reason"] for ln in p.stdout.splitlines()] == ["starttls-misplaced"]
