#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Checks the .rpm packages of `make rpm` without installing them: rpmlint (no errors; warnings
# are shown), the files, scriptlets and dependencies of each package (rpm -qlp, --scripts,
# --requires), the agent's %preun run against a stub portcullis-agent, and the PAM module
# extracted with rpm2cpio | cpio. Debian 12, as root: what it needs comes from
# scripts/install-deps.sh (the one package list). It changes nothing else.
#
#     sudo sh packaging/test-rpm.sh         # builds first: make rpm, out of tree, in a temp dir,
#                                           # from a copy of this work tree (as a fresh clone)
#     sudo sh packaging/test-rpm.sh DIST    # checks the .rpm files make rpm put in DIST
#                                           # (packaging/test-packages.sh)
# Output: one PASS/FAIL line per check, then "N passed, N failed".
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=""
CHECKS_NAME=test-rpm
. "$SRC/packaging/checks.sh"

[ "$(id -u)" = 0 ] || die "run as root (it installs what it needs with apt-get)"

[ $# -le 1 ] || die "usage: $0 [DIST]"
DIST=""
if [ $# = 1 ]; then
    [ -d "$1" ] || die "$1: no such directory (the one make rpm wrote the .rpm files to)"
    DIST=$(cd "$1" && pwd)
fi

# ---- dependencies: the one list (rpm, rpmlint, rpm2cpio, cpio are on it) -------------------
sh "$SRC/scripts/install-deps.sh"

WORK=$(mktemp -d /tmp/pc-test-rpm.XXXXXX)
cleanup() {
    [ -n "$WORK" ] && rm -rf "$WORK"
    return 0
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- build: a copy of the work tree, as a fresh clone would be, then out of tree -----------
# (the copy keeps the source tree as it was: autoreconf and make dist run in $WORK)
TREE=$SRC
if [ -z "$DIST" ]; then
    if command -v git >/dev/null 2>&1 && git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1
    then
        mkdir "$WORK/src"
        (cd "$SRC" && git ls-files -co --exclude-standard | while IFS= read -r f; do
            if [ -e "$f" ]; then printf '%s\n' "$f"; fi; done >"$WORK/files")
        (cd "$SRC" && tar -cf - -T "$WORK/files") | tar -C "$WORK/src" -xf -
        TREE=$WORK/src
        (cd "$TREE" && autoreconf -fi >"$WORK/autoreconf.log" 2>&1) ||
            { tail -20 "$WORK/autoreconf.log"; die "autoreconf failed"; }
    fi  # else a release tarball: configure is there already
    say "building in $WORK"
    mkdir "$WORK/build"
    (cd "$WORK/build" && "$TREE/configure" >"$WORK/configure.log" 2>&1) || {
        tail -20 "$WORK/configure.log"; die "configure failed"; }
    if (cd "$WORK/build" && make rpm >"$WORK/rpm.log" 2>&1); then
        ok "make rpm"
    else
        tail -40 "$WORK/rpm.log"
        bad "make rpm"
        finish
        exit 1
    fi
    DIST=$WORK/build/dist
fi
for p in server agent cli; do
    f=""
    for r in "$DIST/portcullis-$p-"[0-9]*.rpm; do if [ -f "$r" ]; then f=$r; fi; done
    eval "RPM_$p=\$f"
    check "dist/ has portcullis-$p-*.rpm" test -n "$f"
done
if [ -z "$RPM_server" ] || [ -z "$RPM_agent" ] || [ -z "$RPM_cli" ]; then finish; exit 1; fi

# ---- rpmlint: no errors (warnings are printed) ------------------------------------------------
rpmlint -r "$TREE/packaging/rpm/portcullis.rpmlintrc" "$DIST"/*.rpm \
    "$TREE/packaging/rpm/portcullis.spec" >"$WORK/rpmlint.log" 2>&1 || true
summary=$(grep 'packages and .* specfiles checked' "$WORK/rpmlint.log" || true)
say "rpmlint: ${summary:-no summary}"
grep ': [EW]: ' "$WORK/rpmlint.log" | sed 's/^/    /' || true
if printf '%s\n' "$summary" | grep -q ' 0 errors,' && ! grep -q ': E: ' "$WORK/rpmlint.log"; then
    ok "rpmlint: 0 errors"
else
    sed 's/^/    /' "$WORK/rpmlint.log"
    bad "rpmlint: 0 errors"
fi

# ---- files ----------------------------------------------------------------------------------
for p in server agent cli; do
    eval "f=\$RPM_$p"
    rpm -qlp "$f" >"$WORK/$p.files" 2>/dev/null
    # mode, owner, group, path: one line per entry
    rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$f" \
        >"$WORK/$p.modes" 2>/dev/null
    rpm -qp --requires "$f" >"$WORK/$p.requires" 2>/dev/null
    rpm -qp --scripts "$f" >"$WORK/$p.scripts" 2>/dev/null
    mkdir "$WORK/root-$p"
    (cd "$WORK/root-$p" && rpm2cpio "$f" | cpio -idm --quiet) >/dev/null 2>&1
done
has() { grep -Eq "^$2\$" "$WORK/$1.files"; } # has PKG REGEX: the package lists that path
MAN='(\.gz|\.bz2|\.xz|\.zst)?'

check "server: /usr/sbin/portcullisd" has server /usr/sbin/portcullisd
check "server: unit portcullisd.service" has server /usr/lib/systemd/system/portcullisd.service
check "server: man page portcullisd.8" has server "/usr/share/man/man8/portcullisd\.8$MAN"
check "server: /etc/default/portcullisd is %config" sh -c \
    "rpm -qcp '$RPM_server' | grep -qx /etc/default/portcullisd"
check "server: unit reads /etc/default/portcullisd" \
    grep -q '^EnvironmentFile=-/etc/default/portcullisd$' \
    "$WORK/root-server/usr/lib/systemd/system/portcullisd.service"
check "server: /var/lib/portcullis is portcullis:portcullis 0700" \
    grep -qx 'drwx------ portcullis portcullis /var/lib/portcullis' "$WORK/server.modes"
check "server: sysusers.d entry for portcullis" \
    grep -q '^u portcullis ' "$WORK/root-server/usr/lib/sysusers.d/portcullis-server.conf"

check "agent: /usr/sbin/portcullis-agent" has agent /usr/sbin/portcullis-agent
check "agent: /usr/sbin/portcullis-principals" has agent /usr/sbin/portcullis-principals
check "agent: PAM module in .../security" has agent '/usr/lib(64)?(/[^/]+)?/security/pam_portcullis\.so'
check "agent: unit portcullis-agent.service" has agent /usr/lib/systemd/system/portcullis-agent.service
check "agent: unit portcullis-agent.socket" has agent /usr/lib/systemd/system/portcullis-agent.socket
for m in man8/portcullis-agent.8 man5/portcullis-agent.conf.5 man8/pam_portcullis.8 \
    man8/portcullis-principals.8; do
    check "agent: man page ${m#*/}" has agent "/usr/share/man/$m$MAN"
done
check "agent: example agent.conf as doc" has agent '/usr/share/doc/portcullis-agent[^/]*/agent\.conf\.example'
check "agent: /etc/portcullis directory" grep -qx 'drwxr-xr-x root root /etc/portcullis' "$WORK/agent.modes"
check "agent: /etc/ssh/portcullis directory" grep -qx 'drwxr-xr-x root root /etc/ssh/portcullis' "$WORK/agent.modes"
check_not "agent: no agent.conf written by the package" has agent /etc/portcullis/agent.conf
check "agent: sysusers.d entry for portcullis-principals" \
    grep -q '^u portcullis-principals ' "$WORK/root-agent/usr/lib/sysusers.d/portcullis-agent.conf"

check "cli: /usr/bin/portcullis" has cli /usr/bin/portcullis
check "cli: man page portcullis.1" has cli "/usr/share/man/man1/portcullis\.1$MAN"

check_not "no .la file in any package" sh -c "cat '$WORK'/*.files | grep -q '\\.la\$'"
check_not "no file in two packages" sh -c \
    "cat '$WORK'/*.modes | grep '^-' | awk '{ print \$4 }' | sort | uniq -d | grep -q ."
check_not "server holds no agent or CLI file" sh -c \
    "grep -E 'portcullis-agent|pam_portcullis|/usr/bin/portcullis' '$WORK/server.files'"
check_not "cli holds no server or agent file" sh -c \
    "grep -E 'portcullisd|portcullis-agent|pam_portcullis|systemd' '$WORK/cli.files'"

# ---- dependencies ---------------------------------------------------------------------------
check "server requires portcullis-cli of the same version" \
    grep -Eq '^portcullis-cli(\(.*\))? = ' "$WORK/server.requires"
check "server and agent require shadow-utils for their users" sh -c \
    "grep -qx shadow-utils '$WORK/server.requires' && grep -qx shadow-utils '$WORK/agent.requires'"
check_not "agent requires neither server nor CLI" grep -q '^portcullis-' "$WORK/agent.requires"
check "agent recommends openssh-server" sh -c "rpm -qp --recommends '$RPM_agent' | grep -q '^openssh-server'"

# ---- scriptlets -----------------------------------------------------------------------------
# the scriptlets with continuation lines joined: one logical line per command
for p in server agent; do
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$WORK/$p.scripts" >"$WORK/$p.joined"
done
check "server %pre creates the portcullis user (getent-guarded)" grep -Eq \
    'getent passwd portcullis >/dev/null \|\| +useradd -r .* portcullis$' "$WORK/server.joined"
check "agent %pre creates the portcullis-principals group (getent-guarded)" grep -Eq \
    'getent group portcullis-principals >/dev/null \|\| +groupadd -r portcullis-principals$' \
    "$WORK/agent.joined"
check "agent %pre creates the portcullis-principals user (getent-guarded)" grep -Eq \
    'getent passwd portcullis-principals >/dev/null \|\| +useradd -r -g portcullis-principals .* portcullis-principals$' \
    "$WORK/agent.joined"
rpm -qp --qf '%{PREUN}' "$RPM_agent" >"$WORK/agent.preun" 2>/dev/null
check "agent %preun: unconfigure-or-refuse on erase" sh -c "
    grep -q '\\\$1 -eq 0' '$WORK/agent.preun' &&
    grep -q 'portcullis-agent configure --status' '$WORK/agent.preun' &&
    grep -q 'portcullis-agent unconfigure' '$WORK/agent.preun' &&
    grep -q 'the package is NOT removed' '$WORK/agent.preun' &&
    grep -q 'exit 1' '$WORK/agent.preun'"
check "agent %preun: unconfigure before the units stop" sh -c "
    a=\$(grep -n 'unconfigure </dev/null' '$WORK/agent.preun' | head -1 | cut -d: -f1)
    b=\$(grep -n 'systemctl\\|systemd_preun\\|systemd-update-helper' '$WORK/agent.preun' | head -1 | cut -d: -f1)
    [ -n \"\$a\" ] && [ -n \"\$b\" ] && [ \"\$a\" -lt \"\$b\" ]"

# Run the agent's %preun against a stub portcullis-agent (and a stub systemctl that logs):
# STATUS is what 'configure --status' returns, UNCONF what 'unconfigure' returns.
stub=$WORK/stub
mkdir "$stub"
cat >"$stub/portcullis-agent" <<'EOF'
#!/bin/sh
echo "portcullis-agent $*" >>"$STUB_LOG"
case "$1 ${2-}" in
    "configure --status") exit "$STUB_STATUS" ;;
    "unconfigure ") exit "$STUB_UNCONF" ;;
esac
exit 0
EOF
cat >"$stub/systemctl" <<'EOF'
#!/bin/sh
echo "systemctl $*" >>"$STUB_LOG"
EOF
chmod +x "$stub/portcullis-agent" "$stub/systemctl"
sed "s|/usr/sbin/portcullis-agent|$stub/portcullis-agent|g" "$WORK/agent.preun" >"$stub/preun.sh"
preun() { # preun ARG STATUS UNCONF: runs the scriptlet, output in $stub/log, $stub/err
    : >"$stub/log"
    STUB_LOG=$stub/log STUB_STATUS=$2 STUB_UNCONF=$3 PATH="$stub:$PATH" \
        sh "$stub/preun.sh" "$1" 2>"$stub/err" >/dev/null
}
if preun 0 0 0 && grep -qx 'portcullis-agent unconfigure' "$stub/log"; then
    ok "agent %preun: erase while configured runs unconfigure, exit 0"
else bad "agent %preun: erase while configured runs unconfigure, exit 0"; fi
if ! preun 0 0 1 && grep -q 'the package is NOT removed' "$stub/err" &&
   ! grep -q '^systemctl' "$stub/log"; then
    ok "agent %preun: unconfigure fails: message, exit 1, units left running"
else bad "agent %preun: unconfigure fails: message, exit 1, units left running"; fi
if preun 0 1 0 && ! grep -q 'unconfigure' "$stub/log"; then
    ok "agent %preun: erase while not configured: no unconfigure, exit 0"
else bad "agent %preun: erase while not configured: no unconfigure, exit 0"; fi
if preun 1 0 1 && ! grep -q '^portcullis-agent' "$stub/log"; then
    ok "agent %preun: upgrade (\$1 = 1) leaves sshd and PAM alone"
else bad "agent %preun: upgrade (\$1 = 1) leaves sshd and PAM alone"; fi

cat "$WORK"/*.scripts >"$WORK/all.scripts"
check_not "no scriptlet edits sshd or PAM (only 'portcullis-agent unconfigure')" \
    grep -Eqi 'sshd_config|pam\.d|/etc/pam|authselect|pam-auth-update|sshd -t|sed -i' "$WORK/all.scripts"
check_not "no scriptlet enables or starts a unit" \
    grep -Eq 'systemctl[^;|&]* (enable|preset|start|restart)|install-system-units' "$WORK/all.scripts"
check_not "no scriptlet removes state" \
    grep -Eq 'rm -[a-z]*[rf][a-z]* .*(/var/lib/portcullis|/etc/portcullis|/etc/ssh/portcullis)' \
    "$WORK/all.scripts"

# ---- the PAM module, extracted from the agent package -----------------------------------------
PAM=$(find "$WORK/root-agent" -path '*/security/pam_portcullis.so' -type f | head -1)
check "PAM module extracted from the agent rpm" test -n "$PAM"
check "PAM module exports pam_sm_authenticate" sh -c \
    "nm -D --defined-only '$PAM' | grep -qw pam_sm_authenticate"
check_not "PAM module links neither libcurl nor libssl" sh -c \
    "ldd '$PAM' | grep -q 'libcurl\\|libssl'"
check "agent unit runs /usr/sbin/portcullis-agent" \
    grep -q '^ExecStart=/usr/sbin/portcullis-agent ' "$WORK/root-agent/usr/lib/systemd/system/portcullis-agent.service"
check "server unit runs /usr/sbin/portcullisd" \
    grep -q '^ExecStart=/usr/sbin/portcullisd ' "$WORK/root-server/usr/lib/systemd/system/portcullisd.service"

finish
