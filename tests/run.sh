#!/usr/bin/env bash
# tests/run.sh: install what the test suite needs, then run the whole suite.
# Usage: bash tests/run.sh [pytest arguments]        (.ci/run calls it with none)
#        bash tests/run.sh tests/test_cli.py         one file (or tests of one file): serially
#        PCAPSMTP_TEST_WORKERS=1 bash tests/run.sh   the whole suite serially
# The suite runs in parallel with pytest-xdist, one worker process per core (see the pytest step
# at the end for what runs serially and why the tests may run side by side).
#
# As root on a fresh Debian 12 (or Ubuntu) machine it installs, through apt, whichever of these
# packages is missing (with --no-install-recommends, so every recommend the tests need is listed):
#   python3 python3-venv        Python 3.11+ and its venv module: Debian's Python refuses
#                               `pip install` outside a virtual environment (PEP 668)
#   tshark                      the tshark engine and the frame-number cross-checks; it Depends on
#                               wireshark-common, which brings editcap and mergecap (the merged
#                               two-tap captures of tests/test_real_taps.py)
#   tcpdump tcpflow             live capture in the tests; the benchmark's peers
#   swaks libnet-ssleay-perl    a real SMTP client; Net::SSLeay (only a Recommends of swaks) gives
#                               it STARTTLS, without it the STARTTLS tests see plaintext
#   msmtp curl ca-certificates  real SMTP clients of tests/realclients
#   golang-go                   Go's net/smtp client (built with CGO_ENABLED=0: no gcc needed)
#   ruby                        Ruby's net-smtp (a gem bundled with Debian's ruby3.1), the way
#                               ActionMailer sends: a real client of tests/realclients
#   php-cli libphp-phpmailer    PHPMailer (Debian's package, /usr/share/php/libphp-phpmailer) on
#                               PHP's command line (its openssl is built in): a real client too
#   nodejs npm                  Nodemailer (npm puts it in tests/realclients/.node); skipped when
#                               node is already there (NodeSource's build conflicts with Debian's npm)
#   postfix                     its plaintext retry after a failed handshake (the tests run a
#                               private instance; the system one is stopped)
#   libevent-2.1-7              a library of OpenSMTPD's smtpd, which is NOT installed: opensmtpd
#                               conflicts with postfix (both provide mail-transport-agent), so the
#                               package is only fetched (apt-get download) and unpacked with
#                               dpkg-deb -x into tests/realclients/.opensmtpd (its other libraries
#                               are already there); as root the script also creates what Debian's
#                               postinst would: the system groups and users opensmtpd and opensmtpq
#                               and the empty chroot directory /var/lib/opensmtpd/empty
#   iproute2 libcap2-bin time   network namespaces, capsh (running without CAP_NET_RAW), GNU time
#   tcpreplay                   replays a relay's traffic into a veth pair (live loss tests)
#   chromium fonts-liberation   the headless browser of the HTML report tests (Playwright drives
#                               it); the fonts are only a Recommends of chromium
#   gcc python3-dev             to build the optional compiled file loop and core modules (pip
#                               builds them in place; without them pcapsmtp runs its pure Python)
#   git                         the docs and install tests list the repository's files with
#                               `git ls-files` (a minimal Debian 12 has no git)
# Exim (exim4-daemon-light) is downloaded and unpacked into tests/realclients/.exim, never
# installed: it conflicts with postfix (see the Exim step below). So is Sendmail (sendmail-bin,
# sendmail-base, sendmail-cf) into tests/realclients/.sendmail (see the Sendmail step).
# Then, in the virtual environment .venv/ at the repository root (created if absent, ignored by
# git), pcapsmtp itself (editable) with the `test` extra of setup.cfg: pytest, pytest-xdist, hypothesis,
# aiosmtpd, atheris, ruff, mypy, types-tabulate and what other tests declare there.
# Without root nothing is installed through apt: the script names what is missing, and only the
# tests that need such a machine tool (or root itself) are skipped, each with its reason.
#
# Time on a 2-core machine: apt about 3-5 minutes on a fresh machine, the venv about 1 minute,
# the suite about 12 minutes in parallel on the 2 cores (serially it took 1286 s for 20,172 tests
# in the last CI run). Each phase prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

phase_start=$SECONDS
phase() {   # phase NAME: report the previous phase's time, announce the next
    local now=$SECONDS
    [ -n "${phase_name:-}" ] && echo "tests/run.sh: ${phase_name} took $((now - phase_start)) s"
    phase_name=$1
    phase_start=$now
    [ -n "$1" ] && echo "tests/run.sh: ${phase_name}..."
    return 0
}

# ------------------------------------------------------------------------------------ apt packages
apt_pkgs=(python3 python3-venv tshark tcpdump tcpflow swaks libnet-ssleay-perl msmtp curl
          ca-certificates golang-go postfix iproute2 libcap2-bin time chromium fonts-liberation
          gcc python3-dev tcpreplay git libevent-2.1-7 ruby php-cli libphp-phpmailer)
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${apt_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
fi
phase "apt packages"
if [ ${#missing[@]} -eq 0 ]; then
    echo "tests/run.sh: every apt package is there"
elif [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: not root, so not installing: ${missing[*]}" >&2
    echo "tests/run.sh: (as root: apt-get install --no-install-recommends ${missing[*]})" >&2
else
    echo "tests/run.sh: apt-get install --no-install-recommends ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    printf '%s\n' "wireshark-common wireshark-common/install-setuid boolean false" \
        "postfix postfix/main_mailer_type select Local only" \
        "postfix postfix/mailname string pcapsmtp.invalid" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
    # nothing of ours may listen on port 25: the tests start their own Postfix
    postfix stop >/dev/null 2>&1 || service postfix stop >/dev/null 2>&1 || true
fi

# --------------------------------------------------------------------------------- Python (a venv)
phase "Python virtual environment .venv"
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "tests/run.sh: $py is missing or older than 3.11 (apt-get install python3 python3-venv)" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv; then
        rm -rf .venv
        echo "tests/run.sh: could not create .venv (apt-get install python3-venv)" >&2
        exit 2
    fi
fi
venv_py=$PWD/.venv/bin/python
echo "tests/run.sh: pip install -e '.[test]' into .venv"
"$venv_py" -m pip install -q --disable-pip-version-check -e '.[test]'
# the compiled file loop and core modules must have been built in place when a compiler is there:
# their equality test with the pure Python (tests/perf/test_compiled_equivalence.py) then fails
# instead of skipping, and the rest of the suite runs on the compiled path
if command -v gcc >/dev/null 2>&1; then
    export PCAPSMTP_REQUIRE_EXTENSIONS=1
fi

if command -v npm >/dev/null 2>&1 && [ ! -d tests/realclients/.node/node_modules/nodemailer ]; then
    phase "npm install nodemailer (tests/realclients/.node)"
    npm install --silent --no-audit --no-fund --prefix tests/realclients/.node nodemailer >/dev/null 2>&1 \
        || echo "tests/run.sh: npm could not install nodemailer; its tests will be skipped" >&2
fi

# MTAs that conflict with postfix are fetched and unpacked, never installed:
# fetch_debs DIR PKG...: apt-get download the packages into DIR (writable by apt's _apt sandbox
# user), running apt-get update once and retrying if the first try fails; success when every
# PKG_*.deb is there (apt's messages are in DIR/err)
fetch_debs() {
    local dir=$1 p
    shift
    chmod 755 "$dir"
    command -v chown >/dev/null 2>&1 && chown _apt "$dir" 2>/dev/null || true
    if ! (cd "$dir" && apt-get download -qq "$@" 2>"$dir/err"); then
        [ "$(id -u)" -eq 0 ] && apt-get update -qq || true
        (cd "$dir" && apt-get download -qq "$@" 2>"$dir/err") || true
    fi
    for p in "$@"; do
        ls "$dir/${p}"_*.deb >/dev/null 2>&1 || return 1
    done
}
# install_missing_libs WHAT DEB [PKG | -LIB]...: apt-get install the lib* packages of DEB's Depends
# (and the PKGs) that are not installed, except each -LIB: a library that only binaries of the
# package the tests never run link against
install_missing_libs() {
    local what=$1 deb=$2 p
    shift 2
    local want=() skip=" "
    for p in "$@"; do
        case $p in
            -*) skip+="${p#-} " ;;
            *) want+=("$p") ;;
        esac
    done
    for p in $(dpkg-deb -f "$deb" Depends | tr ',|' '\n\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' \
               | grep '^lib' || true); do
        [[ $skip == *" $p "* ]] || want+=("$p")
    done
    local missing_libs=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing_libs+=("$p")
    done
    if [ ${#missing_libs[@]} -gt 0 ]; then
        echo "tests/run.sh: apt-get install --no-install-recommends ${missing_libs[*]} ($what)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
            "${missing_libs[@]}" >/dev/null
    fi
}

# OpenSMTPD (tests/realclients/test_opensmtpd.py): fetched and unpacked, never installed (see above)
osmtpd=tests/realclients/.opensmtpd
if [ ! -x "$osmtpd/usr/sbin/smtpd" ] && command -v apt-get >/dev/null 2>&1; then
    phase "OpenSMTPD: apt-get download opensmtpd, dpkg-deb -x into $osmtpd"
    debdir=$(mktemp -d)
    if fetch_debs "$debdir" opensmtpd; then
        mkdir -p "$osmtpd"
        dpkg-deb -x "$debdir"/opensmtpd_*.deb "$osmtpd"
    else
        echo "tests/run.sh: apt-get download opensmtpd failed; its tests will be skipped" >&2
    fi
    rm -rf "$debdir"
fi
if [ "$(id -u)" -eq 0 ] && [ -x "$osmtpd/usr/sbin/smtpd" ]; then
    # its privilege-separation users and chroot, as Debian's postinst makes them (idempotent)
    for u in opensmtpd opensmtpq; do
        getent group "$u" >/dev/null || groupadd --system "$u"
        getent passwd "$u" >/dev/null || useradd --system --gid "$u" --home-dir /var/lib/opensmtpd/empty \
            --no-create-home --shell /usr/sbin/nologin "$u"
    done
    mkdir -p /var/lib/opensmtpd/empty
fi

# Exim's smtp transport as a real client. exim4 and postfix both provide mail-transport-agent,
# so `apt-get install exim4` would remove Postfix: exim4-daemon-light is only downloaded and
# unpacked into tests/realclients/.exim (ignored by git; the setuid bit dropped, root runs it),
# the libraries it depends on come from apt, and the system user Debian-exim that the binary has
# compiled in is created the way exim4-base's postinst does.
exim_bin=tests/realclients/.exim/usr/sbin/exim4
if [ ! -x "$exim_bin" ] || ldd "$exim_bin" 2>/dev/null | grep -q 'not found' \
        || ! getent passwd Debian-exim >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh: not root (or no apt), so Exim is not unpacked; its tests will be skipped" >&2
    else
        phase "Exim: exim4-daemon-light unpacked into tests/realclients/.exim"
        exim_tmp=$(mktemp -d)
        if ! fetch_debs "$exim_tmp" exim4-daemon-light; then
            cat "$exim_tmp/err" >&2
            echo "tests/run.sh: apt-get download exim4-daemon-light failed; the Exim tests will be skipped" >&2
        else
            exim_deb=$(ls "$exim_tmp"/exim4-daemon-light_*.deb | head -n 1)
            install_missing_libs "Exim's libraries" "$exim_deb"
            rm -rf tests/realclients/.exim
            dpkg-deb -x "$exim_deb" tests/realclients/.exim
            chmod u-s,g-s "$exim_bin"
            getent passwd Debian-exim >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
                --home-dir /var/spool/exim4 --shell /usr/sbin/nologin Debian-exim
        fi
        rm -rf "$exim_tmp"
    fi
fi

# Sendmail's esmtp mailer as a real client. sendmail-bin and postfix both provide
# mail-transport-agent, so it is not installed either: sendmail-bin, sendmail-base and sendmail-cf
# are only downloaded and unpacked into tests/realclients/.sendmail (ignored by git; the setgid
# bit dropped, root runs it), the lib* packages of sendmail-bin's Depends that are missing come
# from apt (libwrap0 on a Debian 12 with Postfix), and m4, which makes the tests' sendmail.cf out
# of the unpacked cf/ tree. Not liblockfile1: of the package's binaries only mail.local links it
# (ldd), and the tests run only sendmail (their sendmail.cf's local mailer is procmail, and
# nothing is delivered locally: every recipient goes to the smart host, and -N never sends no
# bounce).
sm_bin=tests/realclients/.sendmail/usr/libexec/sendmail/sendmail
if [ ! -x "$sm_bin" ] || ! command -v m4 >/dev/null 2>&1 \
        || ldd "$sm_bin" 2>/dev/null | grep -q 'not found'; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh: not root (or no apt), so Sendmail is not unpacked; its tests will be skipped" >&2
    else
        phase "Sendmail: sendmail-bin, -base, -cf unpacked into tests/realclients/.sendmail"
        sm_tmp=$(mktemp -d)
        sm_pkgs=(sendmail-bin sendmail-base sendmail-cf)
        if ! fetch_debs "$sm_tmp" "${sm_pkgs[@]}"; then
            cat "$sm_tmp/err" >&2
            echo "tests/run.sh: apt-get download ${sm_pkgs[*]} failed; the Sendmail tests will be skipped" >&2
        else
            sm_deb=$(ls "$sm_tmp"/sendmail-bin_*.deb | head -n 1)
            install_missing_libs "Sendmail's libraries, m4" "$sm_deb" m4 -liblockfile1
            rm -rf tests/realclients/.sendmail
            for deb in "$sm_tmp"/sendmail-*.deb; do
                dpkg-deb -x "$deb" tests/realclients/.sendmail
            done
            chmod g-s "$sm_bin"
        fi
        rm -rf "$sm_tmp"
    fi
fi

# ----------------------------------------------------------------------------------------- pytest
phase "pytest"
# In parallel (pytest-xdist, from the `test` extra) on every core the machine gives this process
# (nproc; PCAPSMTP_TEST_WORKERS=N overrides it, 1 runs serially), each worker a process of its
# own, the tests split between the workers and a worker that runs out taking half of what
# another has left (--dist worksteal). Dealing out whole files (--dist loadfile) would do nearly as well today (a
# run's test times dealt out by file: 3385 s, where worksteal took 3357 s for 6515 s of test time
# on a loaded 2-core machine: both workers busy to the end), but its balance rests on the
# largest file (tests/tcp/test_tcp_tshark.py, 12% of the suite) staying small beside the rest,
# and the sweeps over every capture grow each session. The tests are safe to run side by side:
# ports from the kernel, temporary paths of their own, network namespaces named after the
# worker's pid; a one-time build the workers share is made once, under a lock, and the two tests
# that would see each other's packets on lo's SMTP ports take a lock of the run
# (tests/runshared.py). Serial when
# the arguments name one test file (or tests in one file): starting the workers and collecting
# the suite in each costs more than it saves there. Arguments that choose themselves (-n,
# --numprocesses, -p no:xdist) are passed on untouched.
workers=${PCAPSMTP_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
parallel=1
files=()
for arg in "$@"; do
    case $arg in
        -n | -n* | --numprocesses | --numprocesses=* | no:xdist) parallel=0 ;;
    esac
    target=${arg%%::*}
    if [ -d "$target" ]; then
        files+=("$target/" "$target//")        # a folder: more than one file
    elif [[ $target == *.py ]] && [ -f "$target" ]; then
        files+=("$target")
    fi
done
if [ ${#files[@]} -gt 0 ] && [ "$(printf '%s\n' "${files[@]}" | sort -u | wc -l)" -eq 1 ]; then
    parallel=0
fi
xdist=()
if [ "$parallel" -eq 1 ] && [ "$workers" -gt 1 ]; then
    xdist=(-n "$workers" --dist worksteal)
    echo "tests/run.sh: pytest on $workers workers (pytest-xdist)"
fi
rc=0
"$venv_py" -m pytest -q --durations=15 ${xdist[@]+"${xdist[@]}"} "$@" || rc=$?
phase ""
if [ "$rc" -eq 5 ]; then
    echo "tests/run.sh: pytest collected no tests (exit 5): nothing was checked" >&2
fi
echo "tests/run.sh: total $SECONDS s, pytest exit status $rc"
exit "$rc"
