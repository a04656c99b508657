"""Exim 4 (Debian 12's exim4-daemon-light) as a real client: its ``smtp`` transport, run from an
unpacked package with a private configuration.

Debian's ``exim4`` and ``postfix`` both provide mail-transport-agent, so installing Exim through
apt would remove the Postfix the other tests need. ``tests/run.sh`` therefore only downloads
``exim4-daemon-light`` (``apt-get download``), unpacks it with ``dpkg-deb -x`` into
``tests/realclients/.exim`` (ignored by git), installs the libraries it links against, and creates
the system user ``Debian-exim`` that the binary has compiled in (without it, it exits at once:
'failed to find uid for user name "Debian-exim"').

Each delivery gets a fresh :class:`EximInstance`: a 0755 temporary directory (the re-executed
delivery process runs as Debian-exim and must reach it) holding the configuration, the spool and
the logs. The configuration (passed with ``-C``, which root may use) has

- ``exim_path`` = the unpacked binary: Exim re-executes itself (``-Mc``) to deliver;
- one ``manualroute`` router, for the recipient's domain only, to 127.0.0.1 (``self = send``),
  and the ``smtp`` transport with the test server's port and ``allow_localhost``; Exim's TLS
  defaults are kept (``hosts_try_tls = *``, ``tls_tempfail_tryclear = true``,
  ``tls_try_verify_hosts = *``: verification is tried, not required), a copy of the test
  certificate (or of another CA's) is its trust anchor, and a test may add transport options
  (``tls_verify_hosts = *`` to require verification);
- a fresh spool per delivery, so no retry record of an earlier test delays the next one; a bounce
  (to the sender's domain) has no route and stays frozen in that spool instead of reaching the
  server.

:meth:`EximInstance.deliver` runs ``exim -C conf -odf -oi -f FROM TO < message``: reception and
the delivery attempt in the foreground, so every connection is over when it returns.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import realclients_harness as h

EXIM_USER = "Debian-exim"
UNPACKED = h.HERE / ".exim" / "usr" / "sbin" / "exim4"
INSTALL_HINT = ("cd tests/realclients && apt-get download exim4-daemon-light && "
                "dpkg-deb -x exim4-daemon-light_*.deb .exim, plus the system user Debian-exim; "
                "tests/run.sh does both")

CONFIG = """\
exim_path = {binary}
primary_hostname = client.example.org
qualify_domain = example.org
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
log_selector = +all
keep_environment =
exim_user = {user}
exim_group = {group}

begin routers

to_byteserver:
  driver = manualroute
  domains = {domain}
  route_list = * 127.0.0.1 byname
  self = send
  transport = byteserver_smtp

begin transports

byteserver_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  tls_verify_certificates = {ca}
{extra}
begin retry

* * F,1m,1m
"""


def short_timeout(seconds: float) -> str:
    """The smtp transport's option that bounds every wait for the server, as a transport option
    line for :class:`EximInstance` (the hang tests: seconds, not minutes): ``command_timeout``
    (default 5m) is the wait for each reply, the answer to STARTTLS included, and (observed)
    for the GnuTLS handshake after it ("TLS session: (gnutls_handshake): timed out")."""
    return f"command_timeout = {seconds:g}s"


def exim_binary() -> Path | None:
    """$REALCLIENTS_EXIM, the package unpacked in tests/realclients/.exim, or an installed exim4."""
    for cand in (os.environ.get("REALCLIENTS_EXIM", ""), str(UNPACKED), shutil.which("exim4") or ""):
        if cand and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def skip_reason() -> str:
    """Why the Exim tests cannot run here (empty when they can)."""
    if os.geteuid() != 0:
        return "tcpdump on lo and a private Exim (-C as root) need root (CI runs these as root)"
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed (apt-get install tcpdump)"
    if exim_binary() is None:
        return "Exim is not unpacked: " + INSTALL_HINT
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return (f"the user {EXIM_USER}, compiled into Debian's exim4, is missing "
                f"(useradd --system --user-group --no-create-home {EXIM_USER}; tests/run.sh does it)")
    return ""


def version(binary: Path) -> str:
    """``4.96`` from ``exim -bV`` (empty when it does not say)."""
    try:
        p = subprocess.run([str(binary), "-bV"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(rb"Exim version (\S+)", p.stdout + p.stderr)
    return m.group(1).decode() if m else ""


class EximInstance:
    """One private Exim (its own configuration, spool and logs) relaying to 127.0.0.1:``port``."""

    def __init__(self, binary: Path, port: int, ca: Path, transport_options: str = "") -> None:
        """``ca``: the trust anchor (``tls_verify_certificates``); ``transport_options``: more
        lines for the smtp transport (e.g. ``tls_verify_hosts = *``)."""
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="pcapsmtp-realclients-exim-"))
        self.dir.chmod(0o755)
        pw = pwd.getpwnam(EXIM_USER)
        for sub in ("spool", "log"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, pw.pw_uid, pw.pw_gid)
        # the delivery process (Debian-exim) cannot read pytest's 0700 tree: its own copy
        trust = self.dir / "ca.pem"
        shutil.copyfile(ca, trust)
        trust.chmod(0o644)
        self.conf = self.dir / "exim.conf"
        self.conf.write_text(CONFIG.format(
            binary=binary, d=self.dir, user=EXIM_USER, group=EXIM_USER, port=port, ca=trust,
            domain=h.RCPT_TO.split("@", 1)[1],
            extra="".join(f"  {ln.strip()}\n" for ln in transport_options.splitlines() if ln.strip())))
        self.conf.chmod(0o644)          # Exim refuses a -C file writable by others

    def deliver(self, timeout: float = 120) -> h.ClientRun:
        """Receives the test message and attempts its delivery in the foreground."""
        return h._run("exim", [str(self.binary), "-C", str(self.conf), "-odf", "-oi", "-f", h.MAIL_FROM,
                               h.RCPT_TO], stdin=h.MESSAGE, timeout=timeout, cwd=self.dir)

    def log(self) -> str:
        parts = []
        for name in ("mainlog", "paniclog", "rejectlog"):
            try:
                parts.append((self.dir / "log" / name).read_text(errors="replace"))
            except OSError:
                pass
        return "".join(parts)

    def deliveries(self) -> list[str]:
        """The mainlog's delivery lines: ``=>`` delivered, ``==`` deferred, ``**`` failed."""
        return [ln for ln in self.log().splitlines() if re.search(r" (=>|==|\*\*) ", ln)]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
