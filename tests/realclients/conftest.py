"""Fixtures for the real-client tests (see realclients_harness.py and docs/realclients.md).

Every test here sniffs the loopback interface with tcpdump, so it is marked ``live`` and skipped,
with the reason, without root (CI runs as root). A client that is not installed is skipped with
the package to install.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realclients_harness as h  # noqa: E402
from runshared import built_once  # noqa: E402  (tests/: realclients_harness puts it on the path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: sniffs a real interface; needs root or CAP_NET_RAW")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(autouse=True)
def _needs_root_and_tcpdump(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("live"):
        if os.geteuid() != 0:
            pytest.skip("tcpdump on lo needs root (CI runs these as root)")
        if shutil.which("tcpdump") is None:
            pytest.skip("tcpdump is not installed (apt-get install tcpdump)")


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return h.make_cert(tmp_path_factory.mktemp("realclients-tls"))


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The Go client, compiled once per run (with pytest-xdist, once for every worker)."""
    return built_once(tmp_path_factory, "realclients-go", h.build_go)


@pytest.fixture(scope="session")
def node_prefix() -> Path | None:
    return h.nodemailer_dir() if shutil.which("node") else None


def _version(argv: list[str], pattern: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(pattern, (p.stdout + p.stderr).decode("utf-8", "replace"))
    return m.group(1) if m else ""


@pytest.fixture(scope="session")
def versions(node_prefix: Path | None) -> dict[str, str]:
    """The version of every real client found here (empty string when missing)."""
    out = {
        "python-smtplib": sys.version.split()[0],
        "swaks": _version(["swaks", "--version"], r"version (\S+)") if shutil.which("swaks") else "",
        "curl": _version(["curl", "--version"], r"curl (\S+)") if shutil.which("curl") else "",
        "msmtp": _version(["msmtp", "--version"], r"msmtp version (\S+)") if shutil.which("msmtp") else "",
        "go-net-smtp": _version(["go", "version"], r"go version go(\S+)") if shutil.which("go") else "",
        "postfix": _version(["postconf", "-d", "mail_version"], r"= (\S+)") if shutil.which("postconf") else "",
        "nodemailer": "",
        "ruby-net-smtp": _version(["ruby", "-rnet/smtp", "-e", "print Net::SMTP::VERSION, ' ruby ', RUBY_VERSION"],
                                  r"^(.+)$") if shutil.which("ruby") else "",
        "phpmailer": _version(["php", "-r", f"require '{h.PHPMAILER_AUTOLOAD}'; "
                               "echo PHPMailer\\PHPMailer\\PHPMailer::VERSION, ' php ', PHP_VERSION;"], r"^(.+)$")
                     if shutil.which("php") and h.PHPMAILER_AUTOLOAD.is_file() else "",
    }
    if node_prefix is not None:
        import json
        pkg = node_prefix / "node_modules" / "nodemailer" / "package.json"
        out["nodemailer"] = json.loads(pkg.read_text())["version"]
    return out
