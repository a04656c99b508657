"""Sendmail 8.17 (Debian 12's sendmail-bin) as a real client: its ``esmtp`` mailer, run from the
unpacked packages with a private configuration.

Debian's ``sendmail-bin`` and ``postfix`` both provide mail-transport-agent, so installing
Sendmail through apt would remove the Postfix the other tests need. ``tests/run.sh`` therefore
only downloads ``sendmail-bin``, ``sendmail-base`` and ``sendmail-cf`` (``apt-get download``),
unpacks them with ``dpkg-deb -x`` into ``tests/realclients/.sendmail`` (ignored by git), and
installs what the binary links against and is not there (``libwrap0`` on a Debian 12 with Postfix)
and ``m4``, which turns the ``.mc`` below into a ``sendmail.cf`` with the unpacked ``cf/`` tree.

Each delivery gets a fresh :class:`SendmailInstance`: a 0700 temporary directory (Sendmail runs
as root throughout, so nobody else needs to reach it) with the ``sendmail.cf``, the queue, the
certificates and the syslog socket. The configuration has

- ``SMART_HOST`` ``esmtp:[127.0.0.1]`` (brackets: no MX lookup) and the ``esmtp`` mailer's
  arguments ``TCP $h PORT``, so every message goes to the test server's port;
- the client side of STARTTLS as Sendmail's documentation describes it (``confCACERT``,
  ``confCACERT_PATH``, ``confCLIENT_CERT``, ``confCLIENT_KEY``; the test certificate is both the
  trust anchor and the client certificate), and no ``TLSFallbacktoClear`` and no ``tls_server``
  rules: Sendmail's defaults, opportunistic STARTTLS whatever the verification says;
- ``DontBlameSendmail=TrustStickyBit``: the directory lies under the sticky, world-writable
  ``/tmp``, and without it Sendmail ignores the certificate files ("unsafe: World writable
  directory");
- ``FEATURE(nocanonify)``, a private hosts file and ``hosts files`` as service switch: no DNS;
- ``confTO_QUIT`` 3 s instead of 2 minutes: after the C4 reply shape the server, still reading
  the message, never answers QUIT.
- for the hang tests, ``mc_extra`` = :func:`short_starttls_timeout`: ``confTO_STARTTLS`` in
  seconds instead of an hour.

Sendmail qualifies the machine's own name before it reads its configuration, from ``/etc/hosts``,
and sleeps 60 s ("My unqualified host name ... unknown; sleeping for retry") when the name has
no dot, as on many test machines. And it logs only through syslog (``/dev/log``), where its
STARTTLS lines are (``STARTTLS=client, relay=..., verify=OK``). So each run happens in its own
mount namespace (``unshare --mount``), where the instance's hosts file (``client.example.org`` for
the machine's name) is bind-mounted on ``/etc/hosts`` and a small tmpfs ``/dev`` holds the
devices Sendmail needs (bound from the real ``/dev``) and a ``/dev/log`` that is a link to the
instance's datagram socket, read by a thread: :meth:`SendmailInstance.log`. Nothing outside the
namespace sees either. Where no private mount namespace can be made (no CAP_SYS_ADMIN, or ``/``
is not a mount point, as in a plain chroot), :func:`namespace_problem` says so in one line, and
the tests fail with it instead of skipping.

:meth:`SendmailInstance.deliver` runs ``sendmail -C conf -odi -oi -v -f FROM TO < message``:
reception and the delivery attempt in the foreground, so every connection is over when it
returns; :meth:`SendmailInstance.queue_run` runs the queue once in the foreground (``-qf``).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import realclients_harness as h

UNPACKED = h.HERE / ".sendmail"
BINARY = UNPACKED / "usr" / "libexec" / "sendmail" / "sendmail"
CF_DIR = UNPACKED / "usr" / "share" / "sendmail" / "cf"
INSTALL_HINT = ("cd tests/realclients && apt-get download sendmail-bin sendmail-base sendmail-cf && "
                "for d in sendmail-*.deb; do dpkg-deb -x $d .sendmail; done, plus apt-get install m4 libwrap0; "
                "tests/run.sh does it")

MC = """\
divert(-1)
divert(0)dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `client.example.org')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {port}')dnl
define(`QUEUE_DIR', `{d}/queue')dnl
define(`STATUS_FILE', `{d}/statistics')dnl
define(`ALIAS_FILE', `')dnl
define(`confPID_FILE', `{d}/sendmail.pid')dnl
define(`confSERVICE_SWITCH_FILE', `{d}/service.switch')dnl
define(`confHOSTS_FILE', `{d}/hosts')dnl
define(`confCACERT_PATH', `{d}/certs')dnl
define(`confCACERT', `{d}/certs/ca.pem')dnl
define(`confCLIENT_CERT', `{d}/certs/client.pem')dnl
define(`confCLIENT_KEY', `{d}/certs/client.key')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`confLOG_LEVEL', `14')dnl
define(`confTO_QUIT', `3s')dnl
{extra}FEATURE(`nocanonify')dnl
MAILER(`smtp')dnl
"""

#: in the namespace: the private hosts file, a /dev with the devices and the instance's log socket
NAMESPACE_SCRIPT = """set -e
d=$0
mount --bind "$d/hosts" /etc/hosts
mount --rbind /dev "$d/dev"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero random urandom; do : > /dev/$n; mount --bind "$d/dev/$n" /dev/$n; done
ln -s "$d/log.sock" /dev/log
exec "$@"
"""

SYSLOG_PREFIX = re.compile(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d sendmail\[\d+\]: ")


def short_starttls_timeout(seconds: float) -> str:
    """The ``.mc`` line (``mc_extra`` of :class:`SendmailInstance`) for ``Timeout.starttls``
    (``confTO_STARTTLS``, default 1h): the wait for the answer to STARTTLS and for the TLS
    handshake (the hang tests: seconds, not an hour). Sendmail rounds to whole seconds."""
    return f"define(`confTO_STARTTLS', `{max(1, round(seconds))}s')dnl\n"


def sendmail_binary() -> Path | None:
    """$REALCLIENTS_SENDMAIL or the binary unpacked in tests/realclients/.sendmail."""
    for cand in (os.environ.get("REALCLIENTS_SENDMAIL", ""), str(BINARY)):
        if cand and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def version(binary: Path) -> str:
    """``8.17.1.9`` from ``sendmail -d0.1 -bt``, which prints it first (empty when it does not run).
    The process is ended once the line is read: outside the rig's namespace it would then sleep
    60 s on a machine whose name has no dot."""
    try:
        p = subprocess.Popen([str(binary), "-d0.1", "-bt"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    except OSError:
        return ""
    assert p.stdout is not None
    try:
        first = p.stdout.readline()
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    m = re.match(rb"Version (\S+)", first)
    return m.group(1).decode() if m else ""


def skip_reason() -> str:
    """Why the Sendmail tests cannot run here (empty when they can)."""
    if os.geteuid() != 0:
        return "tcpdump on lo, a private Sendmail (-C as root) and its mount namespace need root"
    for tool, pkg in (("tcpdump", "tcpdump"), ("m4", "m4"), ("unshare", "util-linux"), ("mount", "mount")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {pkg})"
    binary = sendmail_binary()
    if binary is None or not (CF_DIR / "m4" / "cf.m4").is_file():
        return "Sendmail is not unpacked: " + INSTALL_HINT
    if not version(binary):
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        missing = [ln.strip() for ln in ldd.splitlines() if "not found" in ln]
        return f"{binary} does not run ({'; '.join(missing) or 'no version'}): " + INSTALL_HINT
    return ""


def namespace_problem() -> str:
    """Why the private mount namespace cannot be made here (empty when it can): not a reason to
    skip, since CI must run these tests, but to fail with, in one line, before Sendmail or mount
    says something confusing."""
    return h.mount_namespace_problem("the Sendmail rig (its /etc/hosts and its /dev with the log socket)")


class SendmailInstance:
    """One private Sendmail (its own sendmail.cf, queue, certificates and syslog) relaying
    everything to 127.0.0.1:``port``."""

    def __init__(self, binary: Path, port: int, cert: tuple[Path, Path], ca: Path | None = None,
                 mc_extra: str = "") -> None:
        """``cert`` (certificate, key) is the client certificate, and the trust anchor unless
        ``ca`` names another; ``mc_extra``: more ``define(...)dnl`` lines for the ``.mc`` (e.g.
        :data:`SHORT_STARTTLS_TIMEOUT`)."""
        problem = namespace_problem()
        if problem:
            raise RuntimeError(problem)
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="pcapsmtp-realclients-sendmail-"))
        for sub in ("queue", "certs", "dev"):
            (self.dir / sub).mkdir(mode=0o700)
        for name, src in (("ca.pem", ca or cert[0]), ("client.pem", cert[0]), ("client.key", cert[1])):
            shutil.copyfile(src, self.dir / "certs" / name)
            (self.dir / "certs" / name).chmod(0o600)    # Sendmail refuses a key others may read
        (self.dir / "service.switch").write_text("hosts files\naliases files\n")
        (self.dir / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 client.example.org {socket.gethostname()}\n")
        mc = self.dir / "sendmail.mc"
        mc.write_text(MC.format(port=port, d=self.dir, extra=mc_extra))
        p = subprocess.run(["m4", f"-D_CF_DIR_={CF_DIR}/", str(CF_DIR / "m4" / "cf.m4"), str(mc)],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"m4 {mc}: {p.stderr}")
        self.conf = self.dir / "sendmail.cf"
        self.conf.write_text(p.stdout)
        self.conf.chmod(0o644)
        # /dev/log of the namespace: a datagram socket read by a thread (a full socket would
        # block Sendmail's syslog() and with it the delivery)
        self._log: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.dir / "log.sock"))
        self._sock.settimeout(0.1)
        self._stop = False
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        while not self._stop:
            try:
                msg = self._sock.recv(65536)
            except OSError:
                continue
            self._log.append(SYSLOG_PREFIX.sub("", msg.decode("utf-8", "replace")).rstrip("\n"))

    def _run(self, args: list[str], stdin: str | None, timeout: float) -> h.ClientRun:
        argv = [*h.UNSHARE, "sh", "-c", NAMESPACE_SCRIPT,
                str(self.dir), str(self.binary), "-C", str(self.conf), *args]
        return h._run("sendmail", argv, stdin=stdin, timeout=timeout, cwd=self.dir)

    def deliver(self, timeout: float = 120) -> h.ClientRun:
        """Receives the test message and attempts its delivery in the foreground. ``-N never``:
        a failed delivery gives no bounce, which the smart host would otherwise carry to the
        test server on a second connection. (The test server offers no DSN, so the RCPT TO
        command carries no NOTIFY parameter.)"""
        return self._run(["-odi", "-oi", "-v", "-N", "never", "-f", h.MAIL_FROM, h.RCPT_TO], h.MESSAGE, timeout)

    def queue_run(self, timeout: float = 120) -> h.ClientRun:
        """One run of the queue in the foreground: the next delivery attempt of what is deferred."""
        return self._run(["-qf", "-v"], None, timeout)

    def queued(self) -> list[str]:
        """The queue's control files (``qf...``): the messages still waiting."""
        return sorted(p.name for p in (self.dir / "queue").glob("qf*"))

    def log(self) -> list[str]:
        """The syslog lines so far, without the ``<pri>date sendmail[pid]:`` prefix."""
        return list(self._log)

    def remove(self) -> None:
        self._stop = True
        self._reader.join(timeout=5)
        self._sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
