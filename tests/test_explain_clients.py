"""The known-clients table of ``explain`` and of the HTML report: read from the EHLO reply the
client acted on and the replies of the EHLOs it sent before (a client that keeps an earlier
offer, MailKit, sees STARTTLS when a second reply withdrew it, as the JSON's ``clients`` says),
and the same with ``--redact-addresses`` (the redacted reply keeps each line's code, so no client's
cell moves)."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from pcapsmtp.analysis.clients import CLIENTS
from pcapsmtp.commands.main import main
from pcapsmtp.render.redact import Redactor

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
_CELL = {"sees STARTTLS": "Y", "downgrades": "N", "error, no mail": "X", "unknown": "?"}
_ALL = {"see STARTTLS": "Y", "downgrade": "N", "fail": "X"}
_ROW = re.compile(r"^(\S+)\s{2,}(sees STARTTLS|downgrades|error, no mail|unknown)\b")
_SAME = re.compile(r"^  all (\d+) known clients (see STARTTLS|downgrade|fail) with this reply$")


def _explain(path: Path, *extra: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["explain", *extra, str(path)], out=out, err=err)
    assert rc in (0, 1), err.getvalue()
    return out.getvalue()


def _cells(text: str) -> dict[str, str]:
    """Client name -> Y/N/X of explain's table (or of its one-line form when all agree)."""
    cells: dict[str, str] = {}
    for line in text.splitlines():
        same = _SAME.match(line)
        if same:
            assert int(same.group(1)) == len(CLIENTS)
            return {r.name: _ALL[same.group(2)] for r in CLIENTS}
        m = _ROW.match(line)
        if m and m.group(1) in {r.name for r in CLIENTS}:
            cells[m.group(1)] = _CELL[m.group(2)]
    return cells


def _json_clients(path: Path) -> dict[str, str]:
    import json
    out = io.StringIO()
    main(["analyze", "--format", "json", str(path)], out=out, err=io.StringIO())
    (conv,) = [json.loads(line) for line in out.getvalue().splitlines()]
    key = {"see_starttls": "Y", "downgrade": "N", "error": "X"}
    return {name: key[k] for k, names in conv["clients"].items() for name in names}


@pytest.mark.parametrize("redact", [(), ("--redact-addresses",)], ids=["plain", "redacted"])
def test_explain_reads_the_earlier_reply_for_mailkit(redact: tuple[str, ...]) -> None:
    """smtp26: the first reply offers STARTTLS, the second (acted on) does not: MailKit keeps the
    flag and sees STARTTLS, every other client downgrades; the table says what the JSON says (it
    said MailKit downgrades: explain read the last reply alone)."""
    path = CAPTURES / "smtp26-second-ehlo-drops-starttls.pcap"
    cells = _cells(_explain(path, *redact))
    assert cells == _json_clients(path)
    assert cells["mailkit"] == "Y" and {c for n, c in cells.items() if n != "mailkit"} == {"N"}


@pytest.mark.parametrize("name", ["starttls-not-offered.pcap", "smtp26-second-ehlo-drops-starttls.pcap",
                                  "reehlo27-first-reply-starttls-on-line-one-then-tls.pcap",
                                  "reehlo27-both-replies-bad-keyword-then-tls.pcap"])
def test_redaction_moves_no_clients_cell(name: str) -> None:
    """``--redact-addresses`` replaces the names in the kept reply, not its codes: every client's
    cell is the unredacted one (the first line ``250-mx.example.com`` was redacted whole, code
    included, and every client then read a reply with no code on line 1)."""
    path = CAPTURES / name
    plain = _cells(_explain(path))
    assert plain and _cells(_explain(path, "--redact-addresses")) == plain


def test_redacted_reply_keeps_each_lines_code() -> None:
    raw = b"250-mx.example.com Hello client.example.org\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    got = Redactor()._redact_bytes(raw, {}, {})
    lines = got.split(b"\r\n")
    assert [ln[:4] for ln in lines[:3]] == [b"250-", b"250-", b"250 "]
    assert b"mx.example.com" not in got and b"client.example.org" not in got
    assert lines[1:] == [b"250-PIPELINING", b"250 STARTTLS", b""]


def test_report_reads_the_earlier_reply_for_mailkit(tmp_path: Path) -> None:
    """The HTML report's table (its data's ``cm`` rows) has MailKit's Y from the earlier reply."""
    html = tmp_path / "r.html"
    path = CAPTURES / "smtp26-second-ehlo-drops-starttls.pcap"
    rc = main(["report", "-o", str(html), str(path)], out=io.StringIO(), err=io.StringIO())
    assert rc in (0, 1)
    text = html.read_text()
    assert re.search(r'\["mailkit","Y","the last EHLO reply: no STARTTLS', text)
    assert re.search(r'\["postfix","N",', text)


def test_explain_marks_each_replys_finding_on_its_own_line() -> None:
    """Both EHLO replies have the same defect (``#PIPELINING``, ``ehlo-bad-keyword``): explain puts
    each finding under its own reply's line (both went under the first reply's line: the exchange
    took the first line marked with the code, whatever its frame)."""
    path = CAPTURES / "reehlo27-both-replies-bad-keyword-then-tls.pcap"
    marked = [line for line in _explain(path).splitlines() if "<--- ehlo-bad-keyword" in line]
    assert len(marked) == 2
    first, second = marked
    assert first.split()[0] == "8" and "#PIPELINING" in first and "in an earlier EHLO reply" in first
    assert second.split()[0] == "12" and "#PIPELINING" in second and "earlier" not in second


def test_mailkit_keeps_no_offer_past_an_earlier_reply_it_fails_on() -> None:
    """MailKit keeps an earlier reply's STARTTLS, but not past a reply it throws on (a line with
    another code: ``SmtpProtocolException``): it would not have sent the later EHLO."""
    from pcapsmtp.analysis.clients import client, explain
    offers = b"250-mx.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    mixed = b"250-mx.example.com\r\n251-PIPELINING\r\n250 8BITMIME\r\n"
    last = b"250-mx.example.com\r\n250 8BITMIME\r\n"
    mk = client("mailkit")
    assert explain(mk, mixed)[0] == "X"
    assert explain(mk, last, (offers,))[0] == "Y"
    assert explain(mk, last, (offers, mixed))[0] == "N"
    assert explain(mk, last, (mixed, offers))[0] == "N"
