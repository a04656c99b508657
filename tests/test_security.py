"""Issue #8: terminal safety, secrets and privacy, and the passive guarantee.

- every output format (table, JSON, CSV, explain, annotate's packet comments read back with tshark)
  of every hostile capture is free of raw control characters and of any credential;
- ``Redactor`` gives stable pseudonyms and leaves no address or host name behind;
- ``analyze``, ``explain`` and ``annotate`` (in-process) and ``live`` (a subprocess, as root) run
  with socket connect and name resolution made to fail: nothing is contacted, nothing resolved.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "captures" / "hostile"
sys.path.insert(0, str(REPO / "captures"))

from generate_hostile import secrets  # noqa: E402

from pcapsmtp.commands.main import main  # noqa: E402
from pcapsmtp.render.redact import Redactor  # noqa: E402

CAPTURES = sorted(p for p in HOSTILE.glob("*.pcap") if p.stat().st_size < 100_000)
AUTH = [p for p in CAPTURES if p.name.startswith("auth-")]
ESCAPES = [HOSTILE / "ansi-escapes.pcap", HOSTILE / "nul-8bit.pcap"]
FORMATS = [["analyze", "--format", "json"], ["analyze", "--format", "table", "--findings", "--summary"],
           ["analyze", "--format", "csv"], ["analyze", "--format", "tlsrpt"], ["explain"]]


def _run(args: list[str]) -> tuple[int, bytes, bytes]:
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", *args], capture_output=True, cwd=REPO,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr


def _windows(secret: str, n: int = 12) -> set[str]:
    """Every ``n``-character piece of a secret: a cut prefix of a credential is a leak too."""
    return {secret[i:i + n] for i in range(0, max(1, len(secret) - n + 1))}


SECRET_PIECES = sorted(set().union(*(_windows(s) for s in secrets())) - {""})


def _leaks(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace")
    return [p for p in SECRET_PIECES if p in text]


def _raw_controls(data: bytes) -> list[int]:
    """Bytes a terminal would act on: C0 controls other than LF, and DEL; C1 (U+0080-U+009F)
    and bidi controls once decoded as UTF-8."""
    bad = sorted({b for b in data if (b < 0x20 and b != 0x0A) or b == 0x7F})
    text = data.decode("utf-8", "replace")
    bad += sorted({ord(c) for c in text if 0x80 <= ord(c) <= 0x9F or c in
                   "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"})
    return bad


def test_hostile_captures_present() -> None:
    assert len(AUTH) >= 8 and all(p.is_file() for p in ESCAPES), \
        "run `python captures/generate_hostile.py`"


# ----------------------------------------------------------------------------- terminal safety

@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: "-".join(f[:3]).replace("--", ""))
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_no_raw_control_character_and_no_secret_in_output(path: Path, fmt: list[str]) -> None:
    rc, out, err = _run([*fmt, str(path)])
    assert rc in (0, 1), err.decode(errors="replace")
    assert out, "no output"
    assert _raw_controls(out) == [], f"raw control characters in stdout of {fmt}"
    assert _raw_controls(err) == []
    assert _leaks(out) == [] and _leaks(err) == [], f"credential pieces in the output of {fmt}"


def test_ansi_banner_is_shown_escaped() -> None:
    """The escape sequence is visible as text (\\x1b...), not interpreted and not dropped."""
    rc, out, _ = _run(["explain", str(HOSTILE / "ansi-escapes.pcap")])
    text = out.decode()
    assert "\\x1b[31m\\x1b]0;pwned\\x07" in text
    assert "\\x08\\x08\\x08\\x08\\rFAKE" in text
    assert "MAIL FROM:<ev\\x1b[0mil\\r\\x08@example.org>" in text
    rc, out, _ = _run(["analyze", "--format", "table", str(HOSTILE / "ansi-escapes.pcap")])
    assert b"\x1b" not in out


def test_json_round_trips_the_escaped_banner() -> None:
    """JSON keeps the banner's control characters as JSON escapes: a program reading it gets
    the bytes the server sent (as text), a terminal printing it gets none."""
    rc, out, _ = _run(["analyze", "--format", "json", str(HOSTILE / "ansi-escapes.pcap")])
    conv = json.loads(out.splitlines()[0])
    assert "\x1b]0;pwned\x07" in conv["banner"]


def test_message_bodies_are_never_printed() -> None:
    for fmt in FORMATS:
        rc, out, _ = _run([*fmt, str(HOSTILE / "ansi-escapes.pcap")])
        assert b"BODYSECRET" not in out and b"body-escape" not in out, fmt


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_annotate_comments_hold_no_secret_and_no_control(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pcapng"
    rc, _, err = _run(["annotate", str(path), "-o", str(out)])
    assert rc in (0, 1), err.decode(errors="replace")
    r = subprocess.run(["tshark", "-n", "-r", str(out), "-T", "fields", "-e", "frame.comment"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    comments = r.stdout
    if path in ESCAPES:   # these have findings on frames: the comments exist
        assert b"pcapsmtp" in comments, "no comment written"
    assert _leaks(comments) == []
    assert _raw_controls(comments.replace(b"\t", b"")) == []
    assert _leaks(err) == [] and _raw_controls(err) == []


# ----------------------------------------------------------------------------- redaction

def _conv(path: Path, **kw: Any) -> dict[str, Any]:
    from pcapsmtp.engine.analyzer import AnalysisConfig, analyze_file
    return analyze_file(str(path), AnalysisConfig(keep_exchange=True, **kw)).conversations[0]


MASKED = REPO / "captures" / "starttls-masked.pcap"
PRIVATE = ["alice@example.org", "bob@example.com", "client.example.org", "mx1.example.net",
           "mx.example.com", "example.org", "example.com", "example.net"]


def _all_text(conv: dict[str, Any]) -> str:
    from pcapsmtp.render.explain import render_explain
    from pcapsmtp.render.text import render_csv, render_jsonl, render_table
    return "\n".join([render_jsonl(conv), render_explain(conv), render_table([conv]),
                      render_csv([conv])])


@pytest.mark.parametrize("path", [MASKED, REPO / "captures" / "seed-starttls-first-line.pcap",
                                  HOSTILE / "ansi-escapes.pcap", HOSTILE / "auth-login.pcap"],
                         ids=lambda p: p.name)
def test_redaction_leaves_no_address_or_host_name(path: Path) -> None:
    conv = _conv(path)
    before = _all_text(conv)
    red = Redactor(b"k").redact(conv)
    text = _all_text(red)
    assert any(p in before for p in PRIVATE + ["mail.domain1.com", "ESA.com"])
    for p in PRIVATE + ["mail.domain1.com", "ESA.com", "alice", "domain1"]:
        assert p not in text, p
    assert "host-" in text and ".example" in text
    assert _all_text(conv) == before, "redact() must not change its input"


def test_redaction_pseudonyms_are_stable_with_a_key_and_differ_without() -> None:
    conv = _conv(MASKED)
    a, b = Redactor(b"key").redact(conv), Redactor(b"key").redact(conv)
    assert a["greeting"] == b["greeting"] and a["server_name"] == b["server_name"]
    assert a["greeting"]["argument"].startswith("host-") and a["greeting"]["argument"].endswith(".example")
    c = Redactor().redact(conv)
    assert c["greeting"]["argument"] != a["greeting"]["argument"]
    r = Redactor(b"key")
    assert r.address("alice@example.org") == r.address("ALICE@Example.org")
    assert r.address("alice@example.org").endswith(r.address("bob@example.org").split("@")[1])
    assert r.address("alice@example.org") != r.address("bob@example.org")
    assert r.host("mx.example.com") == r.host("MX.example.com.")


def test_redaction_keeps_ips_unless_asked_and_keeps_the_verdict() -> None:
    conv = _conv(MASKED)
    red = Redactor(b"k").redact(conv)
    assert red["client"] == conv["client"] and red["wireshark_filter"] == conv["wireshark_filter"]
    for k in ("outcome", "caused_by", "reason", "stream", "first_frame", "evidence_frame"):
        assert red[k] == conv[k]
    assert [f["code"] for f in red["findings"]] == [f["code"] for f in conv["findings"]]
    red = Redactor(b"k", ips=True).redact(conv)
    text = _all_text(red)
    assert "192.0.2.10" not in text and "198.51.100.25" not in text
    assert red["client"]["ip"].startswith("10.") and red["client"]["ip"] in red["wireshark_filter"]
    assert red["community_id"] != conv["community_id"]
    assert "RFC 5321 4.1.1.1" in _all_text(_conv(REPO / "captures" / "seed-starttls-first-line.pcap"))


def test_redact_summary() -> None:
    s = {"servers": [{"ip": "198.51.100.25", "names": ["mx.example.com", "ESMTP"]}]}
    out = Redactor(b"k", ips=True).redact_summary(s)
    assert out["servers"][0]["names"][0].startswith("host-")
    assert out["servers"][0]["ip"] != "198.51.100.25"
    assert s["servers"][0]["names"][0] == "mx.example.com"


# ----------------------------------------------------------------------------- passive guarantee

class _Network:
    """Records (and refuses) every attempt to connect or resolve a name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def refuse(self, what: str) -> Any:
        def f(*a: Any, **k: Any) -> Any:
            self.calls.append(f"{what}{a!r}")
            raise OSError(f"pcapsmtp test: {what} is forbidden (passive guarantee)")
        return f


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Network]:
    net = _Network()
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, net.refuse(f"socket.{name}"))
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                 "gethostbyaddr", "getnameinfo", "getfqdn"):
        monkeypatch.setattr(socket, name, net.refuse(name))
    yield net


PASSIVE_CASES = [
    ["analyze", "--format", "json"], ["analyze", "--format", "table", "--summary", "--findings"],
    ["analyze", "--format", "csv"], ["analyze", "--format", "tlsrpt"], ["explain"],
]


@pytest.mark.parametrize("args", PASSIVE_CASES, ids=lambda a: "-".join(a[:3]).replace("--", ""))
def test_offline_commands_contact_nothing(no_network: _Network, args: list[str]) -> None:
    files = [str(MASKED), str(HOSTILE / "ansi-escapes.pcap"), str(HOSTILE / "auth-plain.pcap"),
             str(REPO / "captures" / "tls-alert-server.pcap")]
    for f in files:
        out, err = io.StringIO(), io.StringIO()
        rc = main([*args, f], out=out, err=err)
        assert rc in (0, 1), err.getvalue()
        assert out.getvalue()
    assert no_network.calls == []


def test_annotate_contacts_nothing(no_network: _Network, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = main(["annotate", str(MASKED), "-o", str(tmp_path / "a.pcapng")], out=out, err=err)
    assert rc == 0, err.getvalue()     # annotate's status is about writing the file
    assert (tmp_path / "a.pcapng").stat().st_size > 0
    assert no_network.calls == []


def test_the_guard_itself_catches_a_resolution(no_network: _Network) -> None:
    """The fixture must be able to fail: a lookup is recorded and refused."""
    with pytest.raises(OSError):
        socket.getaddrinfo("example.com", 25)
    assert no_network.calls and no_network.calls[0].startswith("getaddrinfo")


_SITECUSTOMIZE = textwrap.dedent("""
    import os, socket, sys
    _log = os.environ["PCAPSMTP_NET_LOG"]
    def _refuse(what):
        def f(*a, **k):
            with open(_log, "a") as fh:
                fh.write(what + repr(a)[:200] + "\\n")
            raise OSError("passive guarantee: " + what)
        return f
    for _n in ("connect", "connect_ex"):
        setattr(socket.socket, _n, _refuse("socket." + _n))
    for _n in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
               "gethostbyaddr", "getnameinfo", "getfqdn"):
        setattr(socket, _n, _refuse(_n))
""")


def _can_sniff() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    except (OSError, AttributeError):
        return False
    s.close()
    return True


@pytest.mark.live
@pytest.mark.skipif(not _can_sniff(), reason="live capture needs root (CI runs this as root)")
def test_live_contacts_nothing(tmp_path: Path) -> None:
    """``live`` on lo with connect/resolve refused in the whole process (sitecustomize): it may
    open its AF_PACKET socket, nothing else. A guard self-test proves the hook is active."""
    (tmp_path / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "net.log"
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}", PCAPSMTP_NET_LOG=str(log))
    probe = subprocess.run([sys.executable, "-c", "import socket\ntry:\n socket.getaddrinfo('x', 1)\n"
                            "except OSError:\n print('refused')"], env=env, capture_output=True,
                           text=True, timeout=30)
    assert probe.stdout.strip() == "refused", "sitecustomize hook not active"
    log.unlink()
    r = subprocess.run([sys.executable, "-m", "pcapsmtp", "live", "-i", "lo", "--duration", "2",
                        "--format", "json", "-w", str(tmp_path / "tee.pcapng")],
                       env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert not log.exists(), log.read_text()
