#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Checks the Debian packages that `make deb` put in DIST: lintian, then dpkg -i (+ apt-get -f
# install), the installed files, users, units and man pages, that installing leaves sshd and PAM
# alone, and what remove and purge keep and delete.
#
#     sudo packaging/test-deb.sh DIST       # one PASS/FAIL line per check, then "N passed, N failed"
#
# The installing part runs in a private mount namespace whose /etc, /usr and /var are overlays
# (and /run a tmpfs): dpkg really installs and purges there, and this machine is left as it was.
# The login through the installed files (setup.sh --package, removal while sshd uses the agent)
# is tests/setup/run_setup.py's package mode; packaging/test-packages.sh runs both.
set -eu

ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
CHECKS_NAME=test-deb
. "$(dirname "$0")/checks.sh"

[ "$(id -u)" = 0 ] || die "run as root (it installs and purges packages, in a namespace)"
[ $# -ge 1 ] && [ -d "$1" ] || die "usage: $0 DIST (the directory make deb wrote the .deb files to)"
DIST=$(cd "$1" && pwd)

if [ "${PC_TEST_DEB_IN_NS:-}" != 1 ]; then
    for p in portcullis-server portcullis-agent portcullis-cli; do
        check "dist/ has ${p}_*.deb" test -n "$(ls "$DIST/${p}"_*_*.deb 2>/dev/null)"
    done
    WORK=$(mktemp -d /tmp/pc-test-deb.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    # ---- lintian: no errors, no warnings without an override --------------------------------
    if lintian -L '>=warning' --fail-on error,warning "$DIST"/*.changes >"$WORK/lintian.log" 2>&1; then
        ok "lintian: no errors or warnings"
    else
        sed 's/^/    /' "$WORK/lintian.log"
        bad "lintian: no errors or warnings"
    fi
    # ---- the rest in a namespace with overlays ----------------------------------------------
    for top in etc usr var; do
        mkdir -p "$WORK/$top/upper" "$WORK/$top/work"
    done
    set +e
    # shellcheck disable=SC2016
    PC_TEST_DEB_IN_NS=1 PC_TEST_DEB_WORK=$WORK unshare --mount --propagation private sh -c '
        set -e
        for top in etc usr var; do
            mount -t overlay "pc-test-deb-$top" -o "lowerdir=/$top,upperdir=$PC_TEST_DEB_WORK/$top/upper,workdir=$PC_TEST_DEB_WORK/$top/work" "/$top"
        done
        mount -t tmpfs -o mode=0755 pc-test-deb-run /run
        exec sh "$0" "$1"' "$0" "$DIST" >"$WORK/ns.out" 2>&1
    rc=$?
    set -e
    results_hide "$WORK/ns.out"
    add_counts "$WORK/ns.out" "install checks in a namespace (exit $rc)"
    finish
    exit
fi

# ---- from here: inside the namespace (/etc, /usr, /var are private overlays) --------------
WORK=$PC_TEST_DEB_WORK
for p in portcullis-server portcullis-agent portcullis-cli; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
        die "$p is installed on this machine: these checks need a machine without it"
    fi
done

# ---- install ------------------------------------------------------------------------------
# What install must leave alone (compared after install).
mkdir -p "$WORK/before-install"
cp -a /etc/ssh /etc/pam.d "$WORK/before-install/"
debs=$(ls "$DIST"/portcullis-server_*.deb "$DIST"/portcullis-agent_*.deb "$DIST"/portcullis-cli_*.deb)
# shellcheck disable=SC2086
if dpkg -i $debs >"$WORK/install.log" 2>&1 ||
   DEBIAN_FRONTEND=noninteractive apt-get -f install -y >>"$WORK/install.log" 2>&1; then
    ok "dpkg -i (+ apt-get -f install)"
else
    sed 's/^/    /' "$WORK/install.log"
    bad "dpkg -i (+ apt-get -f install)"
fi
for p in portcullis-server portcullis-agent portcullis-cli; do
    check "$p is installed" sh -c "dpkg-query -W -f='\${Status}' $p | grep -q 'ok installed'"
done

# files
for f in /usr/sbin/portcullisd /usr/sbin/portcullis-agent /usr/bin/portcullis; do
    check "$f is executable" test -x "$f"
    check "$f --version" "$f" --version
done
H=/usr/sbin/portcullis-principals
check "$H: root-owned 0755 (sshd's AuthorizedPrincipalsCommand)" sh -c \
    "[ \"\$(stat -c '%U:%G %a' '$H')\" = 'root:root 755' ]"
check "$H: no libcurl, no libssl" sh -c "! ldd '$H' | grep -q 'libcurl\|libssl\|libgnutls'"
check "$H --help" sh -c "'$H' --help | grep -q 'AuthorizedPrincipalsCommand $H'"
# the agent runs on every server: HTTPS through libssl, not libcurl's tree (GnuTLS, Kerberos, LDAP…)
check "portcullis-agent: no libcurl, no GnuTLS" sh -c \
    "! ldd /usr/sbin/portcullis-agent | grep -q 'libcurl\|libgnutls\|libkrb5'"
PAM=/usr/lib/$ARCH/security/pam_portcullis.so
check "$PAM installed" test -f "$PAM"
check "$PAM exports pam_sm_authenticate" sh -c "nm -D --defined-only '$PAM' | grep -qw pam_sm_authenticate"
check "$PAM: no libcurl, no libssl" sh -c "! ldd '$PAM' | grep -q 'libcurl\|libssl'"
check "no .la file in the security directory" test ! -e "/usr/lib/$ARCH/security/pam_portcullis.la"
for u in portcullisd.service portcullis-agent.service portcullis-agent.socket; do
    check "unit /lib/systemd/system/$u" test -f "/lib/systemd/system/$u"
    check "systemd-analyze verify $u" sh -c \
        "systemd-analyze verify --man=no /lib/systemd/system/$u 2>&1 | { ! grep -q .; }"
done
check "portcullisd.service exposure <= 2.0" sh -c "systemd-analyze security --offline=true \
    /lib/systemd/system/portcullisd.service 2>/dev/null | \
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | \
    awk '{ exit !(\$1 <= 2.0) }'"
for m in portcullisd.8 portcullis.1 portcullis-agent.8 portcullis-agent.conf.5 pam_portcullis.8 \
    portcullis-principals.8; do
    sec=${m##*.}
    check "man page $m" test -f "/usr/share/man/man$sec/$m.gz"
done
check "/etc/default/portcullisd is a conffile" sh -c \
    "dpkg-query -W -f='\${Conffiles}' portcullis-server | grep -q /etc/default/portcullisd"
check "example agent.conf in /usr/share/doc" test -f /usr/share/doc/portcullis-agent/examples/agent.conf.example
check "no /etc/portcullis/agent.conf written by the package" test ! -e /etc/portcullis/agent.conf
check "/etc/ssh/portcullis exists" test -d /etc/ssh/portcullis

# users and directories
# shellcheck disable=SC2016  # the single-quoted script is for sh -c: it expands there
check "system user portcullis" sh -c 'getent passwd portcullis | awk -F: "{ exit !(\$3 < 1000) }"'
# shellcheck disable=SC2016  # the single-quoted script is for sh -c: it expands there
check "system user portcullis-principals" sh -c \
    'getent passwd portcullis-principals | awk -F: "{ exit !(\$3 < 1000) }"'
check "group portcullis-principals" getent group portcullis-principals
# shellcheck disable=SC2016  # the single-quoted script is for sh -c: it expands there
check "/var/lib/portcullis is portcullis:portcullis 0700" sh -c \
    '[ "$(stat -c %U:%G:%a /var/lib/portcullis)" = portcullis:portcullis:700 ]'

# The daemon works from the installed paths as its user: it creates its key in the state dir.
check "portcullisd --print-pin as user portcullis" sh -c \
    'runuser -u portcullis -- /usr/sbin/portcullisd --data-dir /var/lib/portcullis --print-pin | grep -q "^sha256//"'

# Installing changed neither sshd nor PAM.
check "install left sshd alone" diff -r -x portcullis "$WORK/before-install/ssh" /etc/ssh
check "install left PAM alone" diff -r "$WORK/before-install/pam.d" /etc/pam.d

# ---- remove (removing while sshd uses the agent: tests/setup/run_setup.py, package mode) --
check "dpkg -r portcullis-agent" dpkg -r portcullis-agent

# ---- remove keeps state, purge removes it ---------------------------------------------------
mkdir -p /etc/portcullis
echo 00 >/etc/portcullis/host.token
check "agent removed: binary gone" test ! -e /usr/sbin/portcullis-agent
check "agent removed: PAM module gone" test ! -e "$PAM"
check "agent removed: units gone" test ! -e /lib/systemd/system/portcullis-agent.service
check "agent removed: /etc/portcullis kept" test -f /etc/portcullis/host.token
check "dpkg -r portcullis-server" dpkg -r portcullis-server
check "server removed: /var/lib/portcullis kept" test -f /var/lib/portcullis/tls.key
check "dpkg -P portcullis-server" dpkg -P portcullis-server
# configure/ (sshd/PAM backups) belongs to the agent: the server's purge leaves it.
# shellcheck disable=SC2016  # the single-quoted script is for sh -c: it expands there
check "server purged: its state in /var/lib/portcullis gone" sh -c \
    '[ -z "$(find /var/lib/portcullis -mindepth 1 -maxdepth 1 ! -name configure 2>/dev/null)" ]'
check "dpkg -P portcullis-agent" dpkg -P portcullis-agent
check "agent purged: /etc/portcullis gone" test ! -e /etc/portcullis
check "agent purged: /etc/ssh/portcullis gone" test ! -e /etc/ssh/portcullis
check "both purged: /var/lib/portcullis gone" test ! -e /var/lib/portcullis
check "dpkg -P portcullis-cli" dpkg -P portcullis-cli
check "cli purged: /usr/bin/portcullis gone" test ! -e /usr/bin/portcullis
check_not "no portcullis package left" sh -c "dpkg -l 'portcullis*' 2>/dev/null | grep -q '^[ir][ic]'"

finish
