"""OpenSMTPD's relay client (``mta``) as a real client, run from an unpacked Debian package.

Debian's ``opensmtpd`` conflicts with ``postfix`` (both provide mail-transport-agent), and the
Postfix tests need Postfix, so OpenSMTPD is never installed: ``tests/run.sh`` fetches the package
(``apt-get download opensmtpd``) and unpacks it with ``dpkg-deb -x`` into
``tests/realclients/.opensmtpd`` (ignored by git). ``$REALCLIENTS_OPENSMTPD_ROOT`` names another
unpacked tree.

The binary's paths are compiled in: the queue is ``/var/spool/smtpd``, the control socket
``/var/run/smtpd.sock``, the chroot of the unprivileged processes ``/var/lib/opensmtpd/empty``,
and the privilege-separation users are ``opensmtpd`` and ``opensmtpq`` (Debian's names). So each
:class:`OpenSMTPDInstance` runs ``smtpd -d`` in its own mount namespace (``unshare --mount``) where
a fresh directory of the instance is bind-mounted on ``/var/spool`` and another on ``/run``: every
instance starts with an empty queue and its own control socket, and nothing outside the namespace
sees either. The users and the (empty, root-owned) chroot directory must exist on the machine:
``tests/run.sh`` creates them as root; :func:`missing` says what is missing. Where no private
mount namespace can be made (no CAP_SYS_ADMIN, or ``/`` is not a mount point, as in a plain
chroot), :func:`namespace_problem` says so in one line, and the tests fail with it instead of
skipping.

The instance listens on a private loopback port, where :meth:`OpenSMTPDInstance.submit` injects
the harness's message, and relays everything to ``smtp://127.0.0.1:PORT``: opportunistic STARTTLS
(no ``tls`` option, so the certificate is checked, logged, and not required).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import realclients_harness as h

UNPACKED = h.HERE / ".opensmtpd"
USERS = ("opensmtpd", "opensmtpq")
CHROOT = Path("/var/lib/opensmtpd/empty")
#: where the package's own paths point; each is replaced inside the instance's mount namespace
SPOOL_PARENT = "/var/spool"
RUN_DIR = "/run"

#: ``mta limit session-keepalive 0``: after its last message an mta session "hangs on" for
#: ``session-keepalive`` seconds (10 by default: limit.c's ``limit_mta_set_defaults``) in case more
#: mail for the same relay comes, then sends QUIT (mta_session.c, state MTA_READY: "last
#: connection: hanging on for %llds"). The test server gets no more mail, so the 10 s were idle
#: time in every test; with 0 the session sends the same QUIT at once. The key is parse.y's
#: ``mta limit`` grammar, read by ``limit_mta_set`` (not in smtpd.conf(5) of 6.8.0p2, but in its
#: binary and source); it touches nothing of the STARTTLS decision, the downgrade or the timeouts.
SMTPD_CONF = """\
mta limit session-keepalive 0
listen on 127.0.0.1 port {inject}
action "relay" relay host smtp://127.0.0.1:{relay} helo client.example.org
match from any for any action "relay"
"""

#: in the namespace: the instance's directories over the compiled-in ones, then smtpd itself
NAMESPACE_SCRIPT = 'mount --bind "$1" {spool} && mount --bind "$2" {run} && exec "$3" -d -v -f "$4"'.format(
    spool=SPOOL_PARENT, run=RUN_DIR)


def smtpd_binary() -> Path | None:
    """The unpacked ``usr/sbin/smtpd`` ($REALCLIENTS_OPENSMTPD_ROOT or tests/realclients/.opensmtpd)."""
    for root in (os.environ.get("REALCLIENTS_OPENSMTPD_ROOT", ""), str(UNPACKED)):
        if root and (Path(root) / "usr" / "sbin" / "smtpd").is_file():
            return Path(root).resolve() / "usr" / "sbin" / "smtpd"
    return None


def version(binary: Path) -> str:
    """``6.8.0p2`` from ``smtpd -h`` (it prints its version with the usage)."""
    p = subprocess.run([str(binary), "-h"], capture_output=True, timeout=20)
    m = re.search(r"OpenSMTPD (\S+)", (p.stdout + p.stderr).decode("utf-8", "replace"))
    return m.group(1) if m else ""


def missing() -> str:
    """Why an instance cannot run here (empty when it can)."""
    if os.geteuid() != 0:
        return "OpenSMTPD runs as root (privilege separation, chroot, a mount namespace); CI runs as root"
    binary = smtpd_binary()
    if binary is None:
        return ("OpenSMTPD is not unpacked (tests/run.sh does it: apt-get download opensmtpd; "
                "dpkg-deb -x opensmtpd_*.deb tests/realclients/.opensmtpd)")
    import pwd
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} is missing (tests/run.sh creates it as root: groupadd/useradd --system)"
    if not CHROOT.is_dir():
        return f"{CHROOT} (OpenSMTPD's chroot) is missing (tests/run.sh creates it as root)"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare and mount (util-linux, mount) are needed for the private queue"
    p = subprocess.run(["ldd", str(binary)], capture_output=True, timeout=20)
    libs = [ln.split()[0] for ln in p.stdout.decode(errors="replace").splitlines() if "not found" in ln]
    if libs:
        return f"libraries of the unpacked smtpd are missing: {' '.join(libs)} (apt-get install them)"
    return ""


def namespace_problem() -> str:
    """Why the private mount namespace cannot be made here (empty when it can): not a reason to
    skip, since CI must run these tests, but to fail with, in one line, before smtpd says
    something confusing."""
    return h.mount_namespace_problem("the OpenSMTPD rig (its queue on /var/spool, its control socket on /run)")


# ------------------------------------------------------------------------------------ the log

#: ``<session id> mta <event> ...`` lines of smtpd -d (one session = one connection)
_MTA_LINE = re.compile(r"^(?P<sid>[0-9a-f]{16}) mta (?P<event>\S+)(?P<rest>.*)$")
_RESULT = re.compile(r'result="(?P<result>[^"]*)"')


@dataclass(frozen=True)
class MtaEvent:
    session: str
    event: str     #: connecting, connected, tls, server-cert-check, delivery, error, disconnected, ...
    rest: str

    @property
    def result(self) -> str:
        """A delivery line's result: Ok, TempFail, PermFail or Loop."""
        m = _RESULT.search(self.rest)
        return m.group("result") if m else ""


class OpenSMTPDInstance:
    """One ``smtpd -d`` relaying to ``127.0.0.1:relay``; see the module docstring."""

    def __init__(self, binary: Path, relay: int, base: Path) -> None:
        self.binary = binary
        self.relay = relay
        self.dir = base
        self.inject = h.free_port()
        self.logfile = base / "smtpd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        problem = namespace_problem()
        if problem:
            raise RuntimeError(problem)
        d = self.dir
        for sub in ("spool", "run"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        conf = d / "smtpd.conf"
        conf.write_text(SMTPD_CONF.format(inject=self.inject, relay=self.relay))
        conf.chmod(0o644)
        with open(self.logfile, "wb") as log:
            self.proc = subprocess.Popen(
                [*h.UNSHARE, "sh", "-c", NAMESPACE_SCRIPT,
                 "sh", str(d / "spool"), str(d / "run"), str(self.binary), str(conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"smtpd exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.inject), 1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("smtpd did not listen:\n" + self.log()[-3000:])

    def submit(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.inject, local_hostname="submitter.example.org", timeout=20) as s:
            s.sendmail(h.MAIL_FROM, [h.RCPT_TO], h.MESSAGE)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def events(self) -> list[MtaEvent]:
        out = []
        for line in self.log().splitlines():
            m = _MTA_LINE.match(line)
            if m:
                out.append(MtaEvent(m["sid"], m["event"], m["rest"]))
        return out

    def results(self) -> list[str]:
        return [e.result for e in self.events() if e.event == "delivery"]

    def wait_done(self, timeout: float = 40) -> list[MtaEvent]:
        """Waits for a delivery result and for every relay connection to have ended (logged as
        ``disconnected``, or ``error`` when OpenSMTPD drops it; after the last message it sends
        QUIT at once, ``session-keepalive`` being 0 in :data:`SMTPD_CONF`); returns the mta events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events()
            opened = {e.session for e in evs if e.event == "connected"}
            ended = {e.session for e in evs if e.event in ("disconnected", "error")}
            if any(e.event == "delivery" for e in evs) and opened <= ended:
                return evs
            time.sleep(0.2)
        return self.events()

    def stop(self) -> None:
        """SIGTERM to smtpd's parent (it stops its children); SIGKILL to the session if it hangs."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)       # after exec, our child is smtpd's parent process
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)    # the session we started: smtpd and its children
            p.wait(5)


# ------------------------------------------------------------------------------------ one run

@dataclass
class Relayed:
    """One message through a fresh instance: what the test server saw on each connection, the
    capture of the relay port, and OpenSMTPD's own account (mta events, full log)."""

    conns: list[h.ConnRecord]
    pcap: Path
    port: int
    events: list[MtaEvent]
    log: str

    def describe(self) -> str:
        evs = [f"{e.event}{e.rest[:90]}" for e in self.events]
        return f"server saw {[c.commands for c in self.conns]}; mta {evs}"


#: OpenSMTPD's relay waits this long for the server (seconds), a value compiled in
#: (``io_set_timeout(s->io, 300000)`` in mta_session.c's ``mta_connect``; smtpd.conf(5) has no
#: option for it): what a hang costs it
MTA_TIMEOUT = 300.0


def relay_once(binary: Path, behaviour: h.Behaviour, cert: tuple[Path, Path], tmp: Path,
               wait: float = 40) -> Relayed:
    """Starts a test server with ``behaviour`` and an instance relaying to it, captures the relay
    port while one message goes through, and waits (up to ``wait`` seconds) until OpenSMTPD has a
    delivery result and has closed every connection; both are stopped whatever happens."""
    tmp.mkdir(parents=True, exist_ok=True)
    srv = h.ByteServer(behaviour, *cert).start()
    inst = OpenSMTPDInstance(binary, srv.port, tmp / "opensmtpd")
    pcap = tmp / "relay.pcap"
    try:
        inst.start()
        with h.Tcpdump(pcap, srv.port):
            inst.submit()
            events = inst.wait_done(wait)
    finally:
        inst.stop()
        srv.stop()
    return Relayed(list(srv.conns), pcap, srv.port, events, inst.log())
