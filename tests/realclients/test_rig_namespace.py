"""The OpenSMTPD and Sendmail rigs where no private mount namespace can be made.

Both run their daemon under ``unshare --mount --propagation private`` (realclients_harness.UNSHARE)
and bind-mount over its compiled-in paths. Where that namespace cannot be made, the rig must say so
up front, in one line naming what is needed, and their tests must fail (CI must run them), not
skip and not show the daemon's or mount's own error:

- without CAP_SYS_ADMIN (an unprivileged container), checked by dropping it with ``capsh``;
- where ``/`` is not a mount point (a plain chroot), checked in a real chroot: a directory with
  the machine's /usr, /etc, Python and this repository bound into it, entered with ``chroot``,
  all inside a private namespace of the test's own, so nothing shows outside.

Needs root (and ``capsh``, libcap2-bin, for the first); the end-to-end failure of the MTA tests
also needs their unpacked packages.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import opensmtpd_rig
import realclients_harness as h
import sendmail_rig

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces and chroot need root (CI runs as root)")

REPO = h.HERE.parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(h.HERE), str(REPO)])}
PRINT_PROBLEMS = ("import opensmtpd_rig, sendmail_rig; "
                  "print(opensmtpd_rig.namespace_problem()); print(sendmail_rig.namespace_problem())")


def capsh_without_sys_admin(argv: list[str]) -> list[str]:
    if shutil.which("capsh") is None:
        pytest.skip("capsh is not installed (apt-get install libcap2-bin)")
    return ["capsh", "--drop=cap_sys_admin", "--", "-c", 'exec "$0" "$@"', *argv]


def test_mountinfo_root_is_mount_point() -> None:
    host = ("27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "30 27 0:5 / /dev rw,nosuid - devtmpfs udev rw\n")
    chroot = ("612 611 0:5 / /dev rw,nosuid - devtmpfs udev rw\n"
              "615 611 254:0 /usr /usr rw,relatime - ext4 /dev/vda rw\n")
    assert h.root_is_mount_point(host) and not h.root_is_mount_point(chroot)
    assert not h.root_is_mount_point("")


def test_namespace_can_be_made_here() -> None:
    """The machine the MTA tests run on must allow it (else they fail with the line below)."""
    assert opensmtpd_rig.namespace_problem() == "" and sendmail_rig.namespace_problem() == ""


def test_without_cap_sys_admin_one_clear_line() -> None:
    p = subprocess.run(capsh_without_sys_admin([sys.executable, "-c", PRINT_PROBLEMS]), capture_output=True,
                       text=True, timeout=60, env=ENV, cwd=h.HERE)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["the OpenSMTPD rig", "the Sendmail rig"], lines
    for ln in lines:
        assert "which this process may not create" in ln and "Operation not permitted" in ln, ln
        assert "CAP_SYS_ADMIN" in ln, ln


#: builds a chroot in "$1" (the arguments after it: directories to bind into it, at the same path),
#: then runs the rest of the command in it; run inside a private namespace of the test's own
CHROOT_SCRIPT = r"""set -e
r=$1; shift
for n in bin lib lib64 sbin; do
    if [ -L "/$n" ]; then ln -s "$(readlink "/$n")" "$r/$n"; elif [ -d "/$n" ]; then set -- "/$n" "$@"; fi
done
while [ "$1" != "--" ]; do
    mkdir -p "$r$1"; mount --rbind "$1" "$r$1"; mount -o remount,bind,ro "$r$1" 2>/dev/null || true; shift
done
shift
mkdir -p "$r/proc" "$r/dev"
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
cd /
exec chroot "$r" "$@"
"""


def test_in_a_chroot_one_clear_line(tmp_path: Path) -> None:
    """In a chroot, ``/`` is not a mount point: unshare cannot make it private ("cannot change
    root filesystem propagation: Invalid argument"), and the rig says what is needed."""
    if h.mount_namespace_problem("the test's own chroot"):
        pytest.skip("no private mount namespace here for the test's own chroot: "
                    + h.mount_namespace_problem("the test's own chroot"))
    root = tmp_path / "chroot"
    root.mkdir()
    binds = sorted({"/usr", "/etc", sys.prefix, sys.base_prefix, str(REPO)})
    p = subprocess.run([*h.UNSHARE, "sh", "-c", CHROOT_SCRIPT, "sh", str(root), *binds, "--",
                        sys.executable, "-c", PRINT_PROBLEMS], capture_output=True, text=True, timeout=120,
                       env=ENV)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["the OpenSMTPD rig", "the Sendmail rig"], lines
    for ln in lines:
        assert "/ is not a mount point here (a plain chroot?)" in ln, ln
        assert "cannot change root filesystem propagation" in ln and "mount --bind DIR DIR" in ln, ln


@pytest.mark.parametrize("module, rig, missing", [
    ("test_opensmtpd.py", "the OpenSMTPD rig", opensmtpd_rig.missing),
    ("test_sendmail.py", "the Sendmail rig", sendmail_rig.skip_reason),
])
def test_mta_tests_fail_rather_than_skip(module: str, rig: str, missing: object) -> None:
    """The MTA's own tests, run without CAP_SYS_ADMIN: the test fails with the rig's line (pytest
    reports an error in the fixture), nothing is skipped."""
    assert callable(missing)
    why = missing()
    if why:
        pytest.skip(why)
    p = subprocess.run(capsh_without_sys_admin([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                "-k", "starttls_delivery", str(h.HERE / module)]),
                       capture_output=True, text=True, timeout=300, env=ENV, cwd=REPO)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "1 error" in out and "skipped" not in out and "passed" not in out, out
    # the fixture's pytest.fail: the rig's line alone, no traceback
    [line] = [ln for ln in out.splitlines() if ln.startswith(f"{rig} (")]
    assert "which this process may not create" in line and "Traceback" not in out, out
