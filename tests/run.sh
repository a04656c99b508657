#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash tests/run.sh [pytest arguments]
# apt packages: tshark (Wireshark engine and cross-checks), tcpdump and tcpflow (benchmark
# floor and peers), swaks (a real SMTP client for the live tests), iproute2 (namespaces),
# libcap2-bin (capsh, to test running without privileges), time (GNU time, peak RSS), and
# the real SMTP clients of tests/realclients: curl, msmtp, golang-go (net/smtp), nodejs and
# npm (Nodemailer), postfix (its plaintext retry after a failed handshake; the system
# instance is stopped: the tests run a throwaway one on a loopback port).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in tshark tcpdump tcpflow swaks ip capsh /usr/bin/time curl msmtp go node npm \
        /usr/sbin/postfix; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/run.sh: missing ${need[*]}; run as root (or install: tshark tcpdump tcpflow swaks iproute2 libcap2-bin time curl msmtp golang-go nodejs npm postfix)" >&2
    else
        export DEBIAN_FRONTEND=noninteractive
        printf '%s\n' "wireshark-common wireshark-common/install-setuid boolean false" \
            "postfix postfix/main_mailer_type select Local only" \
            "postfix postfix/mailname string pcapsmtp.invalid" | debconf-set-selections 2>/dev/null || true
        pkgs="tshark tcpdump tcpflow swaks iproute2 libcap2-bin time curl ca-certificates msmtp
              golang-go postfix"
        # Node.js: this machine kind ships it (with npm); Debian's npm conflicts with that build,
        # so Debian's packages are only a fallback where node is absent.
        command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends --no-upgrade $pkgs >/dev/null
        # nothing of ours may listen on port 25: the tests start their own Postfix
        postfix stop >/dev/null 2>&1 || service postfix stop >/dev/null 2>&1 || true
    fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
if command -v npm >/dev/null 2>&1 && [ ! -d tests/realclients/.node/node_modules/nodemailer ]; then
    npm install --silent --no-audit --no-fund --prefix tests/realclients/.node nodemailer >/dev/null 2>&1 \
        || echo "tests/run.sh: npm could not install nodemailer; its tests will be skipped" >&2
fi
exec python3 -m pytest -q "$@"
