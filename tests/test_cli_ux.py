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
