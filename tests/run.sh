#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: bash tests/run.sh [pytest arguments]
# apt packages: tshark (Wireshark engine and cross-checks), tcpdump and tcpflow (benchmark
# floor and peers), swaks (a real SMTP client for the live tests), iproute2 (namespaces),
# libcap2-bin (capsh, to test running without privileges), time (GNU time, peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in tshark tcpdump tcpflow swaks ip capsh /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/run.sh: missing ${need[*]}; run as root (or install: tshark tcpdump tcpflow swaks iproute2 libcap2-bin time)" >&2
    else
        export DEBIAN_FRONTEND=noninteractive
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends tshark tcpdump tcpflow swaks iproute2 \
            libcap2-bin time >/dev/null
    fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
exec python3 -m pytest -q "$@"
