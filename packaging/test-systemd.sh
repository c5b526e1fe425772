#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Checks the Debian packages that `make deb` put in DIST under a real, booted systemd: what the
# units' sandboxing (ProtectSystem=strict, capabilities, system call filters) allows only shows
# when systemd runs them.
#
#     sudo packaging/test-systemd.sh DIST   # one PASS/FAIL line per check, then "N passed, N failed"
#
# How: in a private mount namespace, an overlay of this machine's own root (upper layer on a
# tmpfs) is booted with systemd-nspawn --boot --private-network; DIST and a results directory are
# bound into it. Oneshot units in the overlay run this script again inside the container
# (--inner), where it plays the admin:
#   boot 1: dpkg -i (postinst enables and starts portcullisd, leaves the agent alone); the
#           control plane answers; `portcullis host token` prints the enrollment line, which
#           runs setup.sh: the agent is enabled with systemctl and sshd configured and reloaded;
#           the agent service rewrites /etc/ssh/portcullis, renews a due host certificate and
#           reloads ssh.service from inside its sandbox; then the container reboots
#   boot 2: everything came back; an upgrade (dpkg -i again) restarts the daemons; a principals
#           request socket-activates the stopped agent (also without /etc/ssh/portcullis);
#           dpkg -r undoes sshd's configuration, dpkg -P removes the rest; the container powers off.
# This machine's /etc, /usr and /var are only read (the overlay's lower layer); afterwards nothing
# runs or is mounted. A machine that cannot boot the container (no systemd-nspawn, no cgroups,
# ...) gets "SKIP systemd units: REASON" and "0 passed, 0 failed, 1 skipped";
# PC_TEST_SYSTEMD_REQUIRE=1 makes that a failure. PC_TEST_SYSTEMD_KEEP=DIR keeps the container's
# logs and journal; PC_TEST_SYSTEMD_TIMEOUT (seconds, default 150) limits both boots together.
set -eu

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'PASS %s\n' "$1"; }
bad() { # bad NAME [DETAIL...]: detail lines are printed indented under the FAIL line
    FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$1"; shift
    for d in "$@"; do printf '%s\n' "$d" | sed 's/^/    /'; done
}
die() { printf 'test-systemd: error: %s\n' "$*" >&2; exit 2; }

# ================================ inside the container ========================================
# `test-systemd.sh --inner DIST IO BOOT`, run by the oneshot unit of boot 1 or 2. PASS/FAIL lines
# are appended to IO/results, command output to IO/inner.log.

# check NAME COMMAND...: PASS when COMMAND succeeds, else FAIL with its output
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds (0) or the time is up (1)
wait_for() {
    n=$(($1 * 5)); shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2; n=$((n - 1))
    done
    return 1
}
unit_is() { [ "$(systemctl "$1" "$2" 2>/dev/null)" = "$3" ]; }  # unit_is is-active UNIT active
cursor() { journalctl -q -n 0 --show-cursor 2>/dev/null | sed -n 's/^-- cursor: //p'; }
journal_since() { # journal_since CURSOR UNIT: the unit's messages after CURSOR
    if [ -n "$1" ]; then journalctl -q --no-pager -o cat --after-cursor "$1" -u "$2"
    else journalctl -q --no-pager -o cat -u "$2"; fi
}
logged() { journal_since "$1" "$2" | grep -q -- "$3"; }   # logged CURSOR UNIT PATTERN
sighups() { journalctl -q --no-pager -o cat -u ssh.service | grep -c 'Received SIGHUP' || true; }
sighups_above() { [ "$(sighups)" -gt "$1" ]; }
ssh_pid() { systemctl show -p MainPID --value ssh.service; }
# check_ssh_reloaded NAME: PASS when ssh.service was reloaded since pid0/hup0 were taken
# (pid0=$(ssh_pid) hup0=$(sighups)): a new "Received SIGHUP", the same MainPID, still active
check_ssh_reloaded() {
    wait_for 5 sighups_above "$hup0"
    pid1=$(ssh_pid) hup1=$(sighups)
    if [ "$pid1" = "$pid0" ] && [ "$pid1" != 0 ] && [ "$hup1" -gt "$hup0" ] &&
       unit_is is-active ssh.service active; then
        ok "$1"
    else
        bad "$1" "MainPID before $pid0, after $pid1; 'Received SIGHUP' in its journal: $hup0 before, $hup1 after" \
            "$(journalctl -q --no-pager -n 10 -u ssh.service 2>&1)"
    fi
}
new_failed() { # units failed now that had not failed at the first boot, before any package
    systemctl --failed --no-legend --plain 2>/dev/null | awk '{ print $1 }' | sort >"$T/failed"
    comm -13 "$T/failed.boot" "$T/failed"
}
failed_note() { # what new_failed leaves out (nothing on a machine whose own units all start)
    [ -s "$T/failed.boot" ] && printf ' (ignoring what failed at boot already: %s)' \
        "$(tr '\n' ' ' <"$T/failed.boot" | sed 's/ $//')"
}
exposure() {
    systemd-analyze security "$1" 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
# The certificates the running sshd presents on port 22 (ssh-keyscan -c), and the one in
# host-cert.pub (its base64 part)
keyscan_cert() { ssh-keyscan -c -T 3 -t ed25519 127.0.0.1 2>/dev/null | grep -- -cert-v01 || true; }
file_cert() { awk '{ print $2 }' /etc/ssh/portcullis/host-cert.pub 2>/dev/null; }
presents() { [ -n "$1" ] && keyscan_cert | grep -qF -- "$1"; }
no_cert() { # sshd answers with its plain key and presents no certificate
    ssh-keyscan -T 3 -t ed25519 127.0.0.1 2>/dev/null | grep -q ssh-ed25519 && [ -z "$(keyscan_cert)" ]
}

URL=https://127.0.0.1:8443
health() { curl -fsSk --max-time 5 --pinnedpubkey "$PIN" "$URL/v1/health"; }
principals() { # as sshd calls it: AuthorizedPrincipalsCommand as portcullis-principals
    timeout 20 runuser -u portcullis-principals -- /usr/sbin/portcullis-principals \
        root pc-test 1 "$(ssh-keygen -l -f "$T/ca.pub" | awk '{ print $2 }')"
}
agent_pid() { systemctl show -p MainPID --value portcullis-agent.service; }
cp_pid() { systemctl show -p MainPID --value portcullisd.service; }

first_boot() {
    systemctl --failed --no-legend --plain 2>/dev/null | awk '{ print $1 }' | sort >"$T/failed.boot"
    for p in portcullis-server portcullis-agent portcullis-cli; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
            bad "container starts without $p (this machine has it installed)"
            return 1
        fi
    done

    # ---- 1. dpkg -i under systemd: postinst enables and starts portcullisd, not the agent ----
    debs=$(ls "$DIST"/portcullis-server_*.deb "$DIST"/portcullis-agent_*.deb "$DIST"/portcullis-cli_*.deb)
    # shellcheck disable=SC2086
    if out=$(dpkg -i $debs </dev/null 2>&1); then
        ok "dpkg -i the three packages under systemd"
    else
        bad "dpkg -i the three packages under systemd" "$out"
    fi
    check "postinst enabled portcullisd.service" unit_is is-enabled portcullisd.service enabled
    if wait_for 10 unit_is is-active portcullisd.service active; then
        ok "postinst started portcullisd.service (active)"
    else
        bad "postinst started portcullisd.service (active)" \
            "$(systemctl status --no-pager -n 20 portcullisd.service 2>&1)"
    fi
    st=$(for u in portcullis-agent.service portcullis-agent.socket; do
        printf '%s: %s/%s\n' "$u" "$(systemctl is-enabled "$u" 2>&1)" "$(systemctl is-active "$u" 2>&1)"
    done)
    if [ "$(printf '%s\n' "$st" | grep -c ': disabled/inactive$')" = 2 ]; then
        ok "agent .service and .socket neither enabled nor started by install (no agent.conf)"
    else
        bad "agent .service and .socket neither enabled nor started by install (no agent.conf)" "$st"
    fi
    sleep 1   # a unit that dies right after its start shows up as failed
    f=$(new_failed)
    if [ -z "$f" ]; then ok "systemctl --failed: nothing failed after install$(failed_note)"
    else bad "systemctl --failed: nothing failed after install$(failed_note)" "$f"; fi

    # ---- 2. systemd-analyze security of the loaded units --------------------------------------
    e=$(exposure portcullisd.service)
    if [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e <= 2.0) }'; then
        ok "systemd-analyze security portcullisd.service (loaded unit): exposure $e <= 2.0"
    else
        bad "systemd-analyze security portcullisd.service (loaded unit): exposure ${e:-?} <= 2.0" \
            "$(systemd-analyze security portcullisd.service 2>&1 | grep -v '^  *✓' | tail -n 30)"
    fi
    e=$(exposure portcullis-agent.service)
    if [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e <= 3.0) }'; then
        ok "systemd-analyze security portcullis-agent.service (loaded unit): exposure $e <= 3.0"
    else
        bad "systemd-analyze security portcullis-agent.service (loaded unit): exposure ${e:-?} <= 3.0"
    fi

    # ---- 3. the control plane answers; the admin token is where the README says -----------
    PIN=$(runuser -u portcullis -- /usr/sbin/portcullisd --data-dir /var/lib/portcullis --print-pin 2>>"$LOG") || PIN=
    echo "$PIN" >"$T/pin"
    export PORTCULLIS_PIN="$PIN"
    if [ -n "$PIN" ] && wait_for 15 health; then
        ok "portcullisd.service answers GET /v1/health (pin from portcullisd --print-pin)"
    else
        bad "portcullisd.service answers GET /v1/health (pin from portcullisd --print-pin)" \
            "pin: ${PIN:-none}" "$(health 2>&1)" \
            "$(journalctl -q --no-pager -n 20 -u portcullisd.service 2>&1)"
    fi
    check "admin token /var/lib/portcullis/admin.token (portcullis, 0600)" sh -c \
        '[ -s /var/lib/portcullis/admin.token ] && stat -c %U:%a /var/lib/portcullis/admin.token | grep -qx portcullis:600'
    check "the installed CLI works with that token (portcullis host list)" portcullis host list

    # ---- 4. enroll this container as an admin does; setup.sh starts the agent via systemctl --
    sed -i 's|^PORTCULLISD_OPTS=.*|PORTCULLISD_OPTS="--public-url https://127.0.0.1:8443"|' \
        /etc/default/portcullisd
    systemctl restart portcullisd.service >>"$LOG" 2>&1 || true
    if unit_is is-active portcullisd.service active && wait_for 15 health; then
        ok "portcullisd.service restarted with PORTCULLISD_OPTS from /etc/default/portcullisd"
    else
        bad "portcullisd.service restarted with PORTCULLISD_OPTS from /etc/default/portcullisd" \
            "$(journalctl -q --no-pager -n 20 -u portcullisd.service 2>&1)"
    fi
    mkdir -p "$T/before/pam.d"
    cp -a /etc/ssh "$T/before/"
    cp -a /etc/pam.d/sshd "$T/before/pam.d/"
    pid0=$(ssh_pid) hup0=$(sighups)
    cmd=$(portcullis --json host token --hostname "$(hostname)" --label env=systemd-test --ttl 10m \
        2>>"$LOG" |
        sed -n 's/.*"command": *"\([^"]*\)".*/\1/p' | sed 's|\\/|/|g')
    command -v sudo >/dev/null 2>&1 || cmd=$(printf '%s\n' "$cmd" | sed 's/| *sudo /| /')
    printf 'enrollment line: %s\n' "$cmd" >>"$LOG"
    case $cmd in
    *"https://127.0.0.1:8443/v1/setup.sh && echo "*"; } | "*"bash -s") ok "portcullis host token --json prints the setup.sh line with the public URL" ;;
    *) bad "portcullis host token --json prints the setup.sh line with the public URL" "command: $cmd" ;;
    esac
    if out=$(bash -c "$cmd" </dev/null 2>&1); then
        case $out in
        *"portcullis-agent.service is enabled and running"*)
            ok "the enrollment line (curl | sudo bash setup.sh) succeeds and starts the agent with systemctl" ;;
        *) bad "the enrollment line (curl | sudo bash setup.sh) succeeds and starts the agent with systemctl" "$out" ;;
        esac
    else
        bad "the enrollment line (curl | sudo bash setup.sh) succeeds and starts the agent with systemctl" "$out"
    fi
    printf '%s\n' "$out" >>"$LOG"
    st=$(for u in portcullis-agent.service portcullis-agent.socket; do
        printf '%s: %s/%s\n' "$u" "$(systemctl is-enabled "$u" 2>&1)" "$(systemctl is-active "$u" 2>&1)"
    done)
    if [ "$(printf '%s\n' "$st" | grep -c ': enabled/active$')" = 2 ]; then
        ok "portcullis-agent.service and .socket enabled and active after setup.sh"
    else
        bad "portcullis-agent.service and .socket enabled and active after setup.sh" "$st" \
            "$(journalctl -q --no-pager -n 30 -u portcullis-agent.service 2>&1)"
    fi
    check "/run/portcullis/agent.sock: socket, root:portcullis-principals, 0660" sh -c \
        'stat -c "%F %U:%G %a" /run/portcullis/agent.sock | grep -qx "socket root:portcullis-principals 660" ||
         { stat -c "%F %U:%G %a" /run/portcullis/agent.sock; exit 1; }'
    check "portcullis-agent status: enrolled, control plane reachable" portcullis-agent status
    check_ssh_reloaded "configure reloaded ssh.service (SIGHUP, same MainPID)"
    T_=$(sshd -T 2>&1) || true
    miss=
    for want in 'trustedusercakeys /etc/ssh/portcullis/user_ca.pub' \
                'hostcertificate /etc/ssh/portcullis/host-cert.pub' \
                'revokedkeys /etc/ssh/portcullis/revoked.krl' \
                'authorizedprincipalscommand /usr/sbin/portcullis-principals %u' \
                'authenticationmethods publickey,keyboard-interactive:pam'; do
        printf '%s\n' "$T_" | grep -qi "^$want" || miss="$miss
missing: $want"
    done
    if [ -z "$miss" ]; then ok "sshd -T shows the Portcullis settings"
    else bad "sshd -T shows the Portcullis settings" "$miss"; fi
    if wait_for 10 presents "$(file_cert)"; then
        ok "the running sshd presents the host certificate from /etc/ssh/portcullis (ssh-keyscan -c)"
    else
        bad "the running sshd presents the host certificate from /etc/ssh/portcullis (ssh-keyscan -c)" \
            "presented: $(keyscan_cert | cut -c1-100)" "file:      $(file_cert | cut -c1-60)"
    fi

    # ---- 5. the sandboxed service writes /etc/ssh/portcullis ----------------------------------
    # It syncs revoked.krl and user_ca.pub when it starts and every krl_interval (60 s).
    rm -f /etc/ssh/portcullis/revoked.krl
    c=$(cursor)
    systemctl restart portcullis-agent.service >>"$LOG" 2>&1 || true
    if wait_for 15 test -s /etc/ssh/portcullis/revoked.krl &&
       wait_for 5 logged "$c" portcullis-agent.service 'event=krl_sync result=updated'; then
        ok "portcullis-agent.service (ProtectSystem=strict) rewrote the deleted /etc/ssh/portcullis/revoked.krl"
    else
        bad "portcullis-agent.service (ProtectSystem=strict) rewrote the deleted /etc/ssh/portcullis/revoked.krl" \
            "$(ls -l /etc/ssh/portcullis 2>&1)" "$(journal_since "$c" portcullis-agent.service 2>&1 | tail -n 20)"
    fi

    # ---- 6. the sandboxed service renews the host certificate and reloads sshd ----------------
    # portcullisd's shortest --host-cert-ttl is 1h (renewal after 40 min), too slow for a test:
    # instead the agent finds a certificate that is past 2/3 of its life (signed by a throwaway
    # CA, valid from 50 min ago for 1 h) and renews it the way it does at 2/3: from its
    # maintenance thread, then runs reload_command (systemctl reload ssh) in its sandbox.
    ssh-keygen -q -t ed25519 -N '' -C pc-test-throwaway-ca -f "$T/ca" >>"$LOG" 2>&1
    cp /etc/ssh/ssh_host_ed25519_key.pub "$T/host.pub"
    ssh-keygen -q -s "$T/ca" -I pc-test-expiring -h -n "$(hostname)" -V -50m:+10m "$T/host.pub" >>"$LOG" 2>&1
    pid0=$(ssh_pid) hup0=$(sighups) c=$(cursor)
    cp "$T/host-cert.pub" /etc/ssh/portcullis/host-cert.pub.pc-test
    mv /etc/ssh/portcullis/host-cert.pub.pc-test /etc/ssh/portcullis/host-cert.pub
    if wait_for 25 logged "$c" portcullis-agent.service 'event=sshd_reload' &&
       logged "$c" portcullis-agent.service 'event=host_cert_renew result=ok' &&
       logged "$c" portcullis-agent.service 'event=sshd_reload result=ok'; then
        ok "portcullis-agent.service renewed the due host certificate and ran reload_command (systemctl reload ssh)"
    else
        bad "portcullis-agent.service renewed the due host certificate and ran reload_command (systemctl reload ssh)" \
            "$(journal_since "$c" portcullis-agent.service 2>&1 | tail -n 20)"
    fi
    cafp=$(ssh-keygen -l -f /etc/ssh/portcullis/host_ca.pub 2>/dev/null | awk '{ print $2 }')
    if [ -n "$cafp" ] && ssh-keygen -L -f /etc/ssh/portcullis/host-cert.pub 2>/dev/null |
            grep -q "Signing CA: .*$cafp" &&
       ! ssh-keygen -L -f /etc/ssh/portcullis/host-cert.pub | grep -q 'pc-test-expiring'; then
        ok "the service wrote the renewed host-cert.pub, signed by the control plane's host CA"
    else
        bad "the service wrote the renewed host-cert.pub, signed by the control plane's host CA" \
            "host CA: ${cafp:-?}" "$(ssh-keygen -L -f /etc/ssh/portcullis/host-cert.pub 2>&1 | head -n 8)"
    fi
    check_ssh_reloaded "ssh.service reloaded by the agent (SIGHUP, same MainPID)"
    if wait_for 10 presents "$(file_cert)"; then
        ok "the running sshd presents the renewed certificate (ssh-keyscan -c)"
    else
        bad "the running sshd presents the renewed certificate (ssh-keyscan -c)" \
            "presented: $(keyscan_cert | cut -c1-100)" "file:      $(file_cert | cut -c1-60)"
    fi
    denied=$(journalctl -q --no-pager -o cat -u portcullis-agent.service |
        grep -iE 'permission denied|operation not permitted|read-only file system|access denied|EACCES|EPERM|EROFS' || true)
    if [ -z "$denied" ]; then ok "no permission error in portcullis-agent.service's journal"
    else bad "no permission error in portcullis-agent.service's journal" "$denied"; fi
}

second_boot() {
    PIN=$(cat "$T/pin") && export PORTCULLIS_PIN="$PIN"
    st=$(for u in portcullisd.service portcullis-agent.socket portcullis-agent.service ssh.service; do
        printf '%s: %s\n' "$u" "$(systemctl is-active "$u" 2>&1)"
    done)
    if [ "$(printf '%s\n' "$st" | grep -c ': active$')" = 4 ]; then
        ok "after a reboot: portcullisd, portcullis-agent.socket, portcullis-agent.service and ssh active"
    else
        bad "after a reboot: portcullisd, portcullis-agent.socket, portcullis-agent.service and ssh active" \
            "$st" "$(journalctl -q --no-pager -b -n 20 -u portcullis-agent.service -u portcullisd.service 2>&1)"
    fi
    if wait_for 15 health && out=$(principals 2>&1); then
        ok "after a reboot: the control plane answers and the agent answers principals requests"
    else
        bad "after a reboot: the control plane answers and the agent answers principals requests" \
            "health: $(health 2>&1)" "principals: $out"
    fi
    if wait_for 10 presents "$(file_cert)"; then
        ok "after a reboot: sshd presents the host certificate"
    else
        bad "after a reboot: sshd presents the host certificate" "presented: $(keyscan_cert | cut -c1-100)"
    fi
    f=$(new_failed)
    if [ -z "$f" ]; then ok "after a reboot: systemctl --failed: nothing failed$(failed_note)"
    else bad "after a reboot: systemctl --failed: nothing failed$(failed_note)" "$f"; fi

    # ---- upgrade (the same packages again): postinst restarts what runs ------------------------
    apid0=$(agent_pid) cpid0=$(cp_pid)
    debs=$(ls "$DIST"/portcullis-server_*.deb "$DIST"/portcullis-agent_*.deb "$DIST"/portcullis-cli_*.deb)
    # shellcheck disable=SC2086
    if out=$(dpkg -i $debs </dev/null 2>&1); then
        ok "dpkg -i again (upgrade) while everything runs"
    else
        bad "dpkg -i again (upgrade) while everything runs" "$out"
    fi
    printf '%s\n' "$out" >>"$LOG"
    wait_for 10 unit_is is-active portcullis-agent.service active
    apid1=$(agent_pid) cpid1=$(cp_pid)
    if [ "$apid1" != 0 ] && [ "$apid1" != "$apid0" ] && [ "$cpid1" != 0 ] && [ "$cpid1" != "$cpid0" ] &&
       unit_is is-active portcullis-agent.socket active; then
        ok "upgrade restarted portcullisd.service and portcullis-agent.service (new MainPIDs), socket active"
    else
        bad "upgrade restarted portcullisd.service and portcullis-agent.service (new MainPIDs), socket active" \
            "portcullisd MainPID $cpid0 -> $cpid1, agent $apid0 -> $apid1," \
            "socket $(systemctl is-active portcullis-agent.socket)"
    fi
    if wait_for 15 health && out=$(principals 2>&1) && grep -q 'public-url' /etc/default/portcullisd &&
       portcullis-agent configure --status >/dev/null 2>&1; then
        ok "after the upgrade: both answer, /etc/default/portcullisd and sshd's configuration kept"
    else
        bad "after the upgrade: both answer, /etc/default/portcullisd and sshd's configuration kept" \
            "health: $(health 2>&1)" "principals: $out" "$(grep OPTS /etc/default/portcullisd)" \
            "configure --status: $(portcullis-agent configure --status 2>&1)"
    fi
    f=$(new_failed)
    if [ -z "$f" ]; then ok "after the upgrade: systemctl --failed: nothing failed$(failed_note)"
    else bad "after the upgrade: systemctl --failed: nothing failed$(failed_note)" "$f"; fi

    # ---- 7. socket activation --------------------------------------------------------------
    systemctl stop portcullis-agent.service >>"$LOG" 2>&1 || true
    st="service $(systemctl is-active portcullis-agent.service), socket $(systemctl is-active portcullis-agent.socket)"
    if [ "$st" = "service inactive, socket active" ] && [ -S /run/portcullis/agent.sock ]; then
        ok "systemctl stop portcullis-agent.service leaves the socket listening"
    else
        bad "systemctl stop portcullis-agent.service leaves the socket listening" "$st"
    fi
    if out=$(principals 2>&1) && unit_is is-active portcullis-agent.service active; then
        ok "a principals request on the socket (as portcullis-principals) starts the service and is answered"
    else
        bad "a principals request on the socket (as portcullis-principals) starts the service and is answered" \
            "principals: $out" "service: $(systemctl is-active portcullis-agent.service)" \
            "$(journalctl -q --no-pager -n 15 -u portcullis-agent.service 2>&1)"
    fi
    check "portcullis-agent.service started by the socket (TriggeredBy)" sh -c \
        'systemctl show -p TriggeredBy --value portcullis-agent.service | grep -qw portcullis-agent.socket'

    # ---- the agent serves logins even without /etc/ssh/portcullis -----------------------------
    # (an admin removed it; a host that does not use the CA: the agent writes nothing there then,
    # portcullis-agent.conf(5) says it creates ssh_dir when needed). An agent that cannot start
    # fails every login (and under failmode=safe lets users in without a second factor).
    systemctl stop portcullis-agent.service >>"$LOG" 2>&1
    mv /etc/ssh/portcullis /etc/ssh/portcullis.pc-test
    c=$(cursor)
    if out=$(principals 2>&1) && unit_is is-active portcullis-agent.service active; then
        ok "without /etc/ssh/portcullis the socket still starts the service and it answers"
    else
        bad "without /etc/ssh/portcullis the socket still starts the service and it answers" \
            "principals: $out" "service: $(systemctl is-active portcullis-agent.service)" \
            "$(journal_since "$c" portcullis-agent.service 2>&1 | tail -n 10)"
    fi
    systemctl stop portcullis-agent.service >>"$LOG" 2>&1
    systemctl reset-failed portcullis-agent.service >>"$LOG" 2>&1
    rm -rf /etc/ssh/portcullis
    mv /etc/ssh/portcullis.pc-test /etc/ssh/portcullis
    systemctl start portcullis-agent.service >>"$LOG" 2>&1

    # ---- 8. dpkg -r while configured, then purge ----------------------------------------------
    pid0=$(ssh_pid) hup0=$(sighups)
    if out=$(dpkg -r portcullis-agent </dev/null 2>&1); then
        case $out in
        *"running 'portcullis-agent unconfigure'"*) ok "dpkg -r portcullis-agent runs unconfigure and succeeds" ;;
        *) bad "dpkg -r portcullis-agent runs unconfigure and succeeds" "$out" ;;
        esac
    else
        bad "dpkg -r portcullis-agent runs unconfigure and succeeds" "$out"
    fi
    printf '%s\n' "$out" >>"$LOG"
    # (/etc/ssh and sshd's PAM stack: the rest of /etc/pam.d is this machine's live lower layer,
    # where other test suites may add files while this runs)
    if d=$(diff -r -x portcullis "$T/before/ssh" /etc/ssh 2>&1 &&
           diff "$T/before/pam.d/sshd" /etc/pam.d/sshd 2>&1); then
        ok "sshd and PAM files are back as before setup.sh (byte for byte)"
    else
        bad "sshd and PAM files are back as before setup.sh (byte for byte)" "$d"
    fi
    check_ssh_reloaded "ssh.service reloaded with the original configuration and still active"
    if wait_for 10 no_cert; then
        ok "the running sshd no longer presents a host certificate"
    else
        bad "the running sshd no longer presents a host certificate" "$(keyscan_cert | cut -c1-100)"
    fi
    st=$(for u in portcullis-agent.service portcullis-agent.socket; do
        printf '%s: %s/%s\n' "$u" "$(systemctl show -p LoadState --value "$u")" "$(systemctl is-active "$u" 2>&1)"
    done)
    if [ "$(printf '%s\n' "$st" | grep -c ': not-found/inactive$')" = 2 ] && [ ! -e /run/portcullis/agent.sock ]; then
        ok "agent .service and .socket stopped and gone (not-found), socket file removed"
    else
        bad "agent .service and .socket stopped and gone (not-found), socket file removed" "$st" \
            "$(ls -l /run/portcullis 2>&1)"
    fi
    if out=$(dpkg -P portcullis-agent portcullis-server portcullis-cli </dev/null 2>&1); then
        ok "dpkg -P portcullis-agent portcullis-server portcullis-cli"
    else
        bad "dpkg -P portcullis-agent portcullis-server portcullis-cli" "$out"
    fi
    st="$(systemctl show -p LoadState --value portcullisd.service)/$(systemctl is-active portcullisd.service 2>&1)"
    links=$(find /etc/systemd/system -name 'portcullis*' 2>/dev/null)
    if [ "$st" = not-found/inactive ] && [ -z "$links" ]; then
        ok "portcullisd.service stopped and gone, no enablement symlink left"
    else
        bad "portcullisd.service stopped and gone, no enablement symlink left" "portcullisd.service: $st" "$links"
    fi
    check "no portcullis package left" sh -c "! dpkg -l 'portcullis*' 2>/dev/null | grep -q '^[ir][ic]'"
    sleep 1
    f=$(new_failed)
    if [ -z "$f" ]; then ok "systemctl --failed: nothing failed after purge$(failed_note)"
    else bad "systemctl --failed: nothing failed after purge$(failed_note)" "$f"; fi
}

inner() { # inner DIST IO BOOT
    set +e        # every check runs; the count at the end says what failed
    DIST=$1 IO=$2 BOOT=$3
    T=/var/tmp/pc-test-systemd            # kept across the reboot (the overlay's upper layer)
    LOG=$IO/inner.log                     # commands' output, for the details of a FAIL
    mkdir -p "$T"
    echo "boot $BOOT" >>"$IO/booted"
    exec >>"$IO/results"
    export PORTCULLIS_URL="$URL" PORTCULLIS_TOKEN_FILE=/var/lib/portcullis/admin.token
    if [ "$BOOT" = 1 ]; then
        first_boot || exit 1              # the unit fails: the container powers off
        echo "test-systemd: first boot done, rebooting" >>"$LOG"
        touch "$T/first-boot-done"        # the unit's SuccessAction reboots
        exit 0
    fi
    second_boot
    journalctl -q --no-pager -o short-monotonic -u portcullisd.service -u portcullis-agent.service \
        -u portcullis-agent.socket -u ssh.service >"$IO/journal.log" 2>&1
    printf '%d passed, %d failed\n' "$(grep -c '^PASS ' "$IO/results")" "$(grep -c '^FAIL ' "$IO/results")"
    exit 0                                # the unit's SuccessAction powers off
}

if [ "${1:-}" = --inner ]; then
    inner "$2" "$3" "$4"
fi

# ================================ on this machine =============================================
[ "$(id -u)" = 0 ] || die "run as root (namespaces, mounts, systemd-nspawn)"
{ [ $# = 1 ] && [ -d "$1" ]; } || die "usage: $0 DIST (the directory make deb wrote the .deb files to)"
DIST=$(cd "$1" && pwd)
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

skip() {
    printf 'SKIP systemd units: %s\n' "$*"
    if [ "${PC_TEST_SYSTEMD_REQUIRE:-}" = 1 ]; then
        bad "systemd units (PC_TEST_SYSTEMD_REQUIRE=1, but: $*)"
        printf '%d passed, %d failed\n' "$PASS" "$FAIL"
        exit 1
    fi
    printf '%d passed, %d failed, 1 skipped\n' "$PASS" "$FAIL"
    exit 0
}

missing=
for p in portcullis-server portcullis-agent portcullis-cli; do
    [ -n "$(ls "$DIST/${p}"_*_*.deb 2>/dev/null)" ] || missing="$missing ${p}_*.deb"
done
if [ -n "$missing" ]; then
    bad "dist/ has the three packages" "missing in $DIST:$missing"
    printf '%d passed, %d failed\n' "$PASS" "$FAIL"
    exit 1
fi
if dpkg -l 'portcullis*' 2>/dev/null | grep -q '^[ir][ic]'; then
    die "a portcullis package is installed on this machine: the container (an overlay of it) needs one without"
fi

# Can this machine boot a container at all?
command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn not found (package systemd-container)"
command -v unshare >/dev/null 2>&1 || skip "unshare not found (package util-linux)"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd to boot"
[ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ] || skip "no cgroup file system at /sys/fs/cgroup"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || skip "no overlay file system"
grep -qw overlay /proc/filesystems || skip "no overlay file system"

# What must stay as it is on this machine
state() {
    for f in /etc/portcullis /etc/ssh/portcullis /var/lib/portcullis /etc/default/portcullisd \
             /lib/systemd/system/portcullisd.service /lib/systemd/system/portcullis-agent.service \
             /lib/systemd/system/portcullis-agent.socket /usr/sbin/portcullis-agent /usr/sbin/portcullisd \
             /usr/bin/portcullis /run/portcullis; do
        if [ -e "$f" ]; then echo "exists $f"; fi
    done
    sha256sum /etc/ssh/sshd_config /etc/pam.d/sshd 2>/dev/null || true
    ls /etc/ssh/sshd_config.d /etc/systemd/system/multi-user.target.wants \
        /etc/systemd/system/sockets.target.wants 2>/dev/null || true
    dpkg -l 'portcullis*' 2>/dev/null | grep '^[ir][ic]' || true
}

WORK=$(mktemp -d /tmp/pc-test-systemd.XXXXXX)
# PC_TEST_SYSTEMD_KEEP=DIR: keep the container's results, logs and journal in DIR
trap 'if [ -n "${PC_TEST_SYSTEMD_KEEP:-}" ]; then mkdir -p "$PC_TEST_SYSTEMD_KEEP" &&
      cp "$WORK"/*.log "$WORK"/io/* "$PC_TEST_SYSTEMD_KEEP/" 2>/dev/null; fi; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/io" "$WORK/mnt"
state >"$WORK/state.before"
cp "$SELF" "$WORK/io/test-systemd.sh"
LIMIT=${PC_TEST_SYSTEMD_TIMEOUT:-150}   # seconds for boot, checks and poweroff

set +e
# shellcheck disable=SC2016
unshare --mount --propagation private sh -c '
    set -e
    W=$1 DIST=$2 LIMIT=$3
    mount -t tmpfs -o mode=0755 pc-test-systemd "$W/mnt"
    mkdir "$W/mnt/upper" "$W/mnt/work" "$W/mnt/root"
    mount -t overlay pc-test-systemd-root \
        -o "lowerdir=/,upperdir=$W/mnt/upper,workdir=$W/mnt/work" "$W/mnt/root"
    R=$W/mnt/root
    # A booted Debian: no policy-rc.d (container images have one that forbids starting services
    # from maintainer scripts, which would hide what postinst/prerm do with the units).
    rm -f "$R/usr/sbin/policy-rc.d"
    rm -rf "$R/var/tmp/pc-test-systemd"      # state the container keeps across its reboot
    # The test: two oneshot units after multi-user.target. The first boot runs the first (which
    # reboots the container when it succeeds), the second boot the second (which powers it off);
    # a failure or timeout of either powers the container off.
    mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
    for boot in 1 2; do
        if [ "$boot" = 1 ]; then cond="!" action=reboot; else cond="" action=poweroff; fi
        cat >"$R/etc/systemd/system/pc-test-systemd-$boot.service" <<EOF
[Unit]
Description=Portcullis packages under systemd, boot $boot (packaging/test-systemd.sh)
After=multi-user.target
ConditionPathExists=$cond/var/tmp/pc-test-systemd/first-boot-done
SuccessAction=$action
FailureAction=poweroff-force

[Service]
Type=oneshot
Environment=HOME=/root
ExecStart=/bin/sh /pc-test/test-systemd.sh --inner /pc-dist /pc-test $boot
TimeoutStartSec=$((LIMIT - 20))
StandardOutput=append:/pc-test/inner.log
StandardError=append:/pc-test/inner.log

[Install]
WantedBy=multi-user.target
EOF
        ln -s "../pc-test-systemd-$boot.service" "$R/etc/systemd/system/multi-user.target.wants/"
    done
    # systemd-nspawn exits with 133 when the container reboots: boot it again (once).
    set +e
    end=$(($(date +%s) + LIMIT)) boots=0
    while :; do
        boots=$((boots + 1))
        timeout -k 10 $((end - $(date +%s))) systemd-nspawn -q -D "$R" --boot --register=no \
            --keep-unit --private-network --console=read-only \
            --bind="$W/io:/pc-test" --bind-ro="$DIST:/pc-dist" </dev/null >>"$W/console.log" 2>&1
        rc=$?
        echo "boot $boots: systemd-nspawn exit $rc" >>"$W/nspawn.log"
        [ "$rc" = 133 ] && [ "$boots" -lt 2 ] && [ "$(date +%s)" -lt "$end" ] || break
    done
    echo "$rc" >"$W/nspawn.rc"
' sh "$WORK" "$DIST" "$LIMIT" >"$WORK/ns.log" 2>&1
rc=$?
set -e
nsrc=$(cat "$WORK/nspawn.rc" 2>/dev/null || echo none)

console_tail() {
    { cat "$WORK/ns.log"; sed 's/\x1b\[[0-9;]*m//g' "$WORK/console.log" 2>/dev/null; } | tail -n "$1"
}
if [ ! -e "$WORK/io/booted" ]; then
    if [ "$nsrc" = none ]; then
        skip "cannot set up the overlay root (exit $rc): $(console_tail 3 | tr '\n' ' ')"
    fi
    skip "the container did not boot (systemd-nspawn exit $nsrc): $(console_tail 3 | tr '\n' ' ')"
fi

# The container's PASS/FAIL lines count one by one; its last line says it got to the end.
touch "$WORK/io/results"
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/io/results" || true
PASS=$((PASS + $(grep -c '^PASS ' "$WORK/io/results" || true)))
FAIL=$((FAIL + $(grep -c '^FAIL ' "$WORK/io/results" || true)))
if ! grep -q -E '^[0-9]+ passed, [0-9]+ failed' "$WORK/io/results"; then
    bad "the checks in the container ran to the end ($(tr '\n' ' ' <"$WORK/nspawn.log" 2>/dev/null)limit ${LIMIT}s)" \
        "$(tail -n 20 "$WORK/io/inner.log" 2>/dev/null)" "console:" "$(console_tail 15)"
elif grep -q '^FAIL ' "$WORK/io/results"; then
    printf '    (the container'\''s log, last lines)\n'
    tail -n 15 "$WORK/io/inner.log" | sed 's/^/    /'
fi
if [ "$nsrc" = 0 ]; then
    ok "the container powered itself off (systemd-nspawn exit 0)"
else
    bad "the container powered itself off (systemd-nspawn exit 0)" "exit $nsrc" "$(console_tail 10)"
fi

# Nothing left: no container process, no mount, and this machine as it was.
left=$(pgrep -a -f -- "$WORK" || true)
mounts=$(grep -F "$WORK" /proc/self/mountinfo || true)
if [ -z "$left$mounts" ]; then ok "nothing left running or mounted"
else bad "nothing left running or mounted" "$left" "$mounts"; fi
state >"$WORK/state.after"
if d=$(diff "$WORK/state.before" "$WORK/state.after"); then
    ok "this machine unchanged (no portcullis package or file, sshd and PAM as they were)"
else
    bad "this machine unchanged (no portcullis package or file, sshd and PAM as they were)" "$d"
fi
printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" = 0 ]
