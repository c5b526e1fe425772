#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Portcullis installer: turns this server into one protected by Portcullis.
#
#   { curl -fsSk --pinnedpubkey sha256//PIN https://CP:PORT/v1/setup.sh && echo TOKEN; } | sudo bash -s
#
# The enrollment token is the line after the script on standard input (echo is a shell builtin,
# so the token is in no process's argv, which every local user sees in ps and sudo logs), or
# from --token-file FILE, or typed at a prompt on the terminal (not echoed).
# portcullisd serves this file at /v1/setup.sh with its own URL and pin filled in below.
# Steps (each one is skipped when already done, so a second run changes nothing):
#   1. install the portcullis-agent package (apt-get / dnf from a repository you configured,
#      or --package FILE)
#   2. write /etc/portcullis/agent.conf
#   3. portcullis-agent enroll     (trades the one-time token for this host's token)
#   4. start the agent service     (systemd, else in the background; --no-service skips it)
#   5. portcullis-agent configure  (sshd + PAM, validated with sshd -t / sshd -T, rolled back on
#                                   any failure; undo with: portcullis-agent unconfigure)
# The logic lives in portcullis-agent; see portcullis-agent(8).
set -eu

PORTCULLIS_URL_DEFAULT=''
PORTCULLIS_PIN_DEFAULT=''

CONFIG=/etc/portcullis/agent.conf
PRINCIPALS_USER=portcullis-principals

usage() {
    cat <<'EOF'
Usage: { curl ... /v1/setup.sh && echo TOKEN; } | sudo bash -s [-- OPTION...]
       setup.sh [--token-file FILE] [--url URL] [--pin PIN] [--package FILE] [--no-service]
                [--breakglass-group GROUP] [--agent-path PATH] [--no-reload]

The one-time enrollment token (portcullis host token) is read from --token-file, else from
the line after the script on standard input, else from a prompt on the terminal (not echoed).

  --token-file FILE        read the enrollment token from the first line of FILE
  --token TOKEN            the token on the command line: visible to every local user in ps
                           and logged by sudo (kept for old scripts; a warning says so)
  --url URL                the control plane, https://HOST:PORT (default: where this script came from)
  --pin PIN                its key pin, sha256//BASE64 (default: the pin of that server)
  --package FILE           install portcullis-agent from this .deb or .rpm
  --no-service             do not start the agent service
  --breakglass-group GROUP members of GROUP log in with an SSH key alone
  --agent-path PATH        use this portcullis-agent binary (default: the one on PATH)
  --no-reload              configure sshd but do not reload it
EOF
}

say() { echo "portcullis setup: $*"; }
warn() { echo "portcullis setup: warning: $*" >&2; }
die() { echo "portcullis setup: error: $*" >&2; exit 1; }

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

parse_args() {
    url=$PORTCULLIS_URL_DEFAULT pin=$PORTCULLIS_PIN_DEFAULT token='' token_file='' package=''
    service=yes
    breakglass='' agent='' reload=yes
    while [ $# -gt 0 ]; do
        case $1 in
        --url) need_value "$@"; url=$2; shift 2 ;;
        --pin) need_value "$@"; pin=$2; shift 2 ;;
        --token) need_value "$@"; token=$2; shift 2 ;;
        --token-file) need_value "$@"; token_file=$2; shift 2 ;;
        --package) need_value "$@"; package=$2; shift 2 ;;
        --breakglass-group) need_value "$@"; breakglass=$2; shift 2 ;;
        --agent-path) need_value "$@"; agent=$2; shift 2 ;;
        --no-service) service=no; shift ;;
        --no-reload) reload=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    [ -n "$url" ] || die "--url is required (this script was not downloaded from portcullisd)"
    [ -n "$pin" ] || die "--pin is required (portcullisd --print-pin on the control plane)"
}

# Sets token (maybe empty: enroll() then prompts) from --token-file, --token or the line after
# the script on stdin. Runs before any other command, so none of them can read that line first.
read_token() {
    if [ -n "$token_file" ]; then
        [ -r "$token_file" ] || die "--token-file $token_file: cannot read it"
        IFS= read -r token <"$token_file" || true
        [ -n "$token" ] || die "--token-file $token_file holds no token"
    elif [ -n "$token" ]; then
        warn "--token puts the enrollment token in the process list (ps) of every local user" \
            "and in sudo's log: pipe it in after the script or use --token-file FILE"
    elif [ ! -t 0 ]; then
        # curl ... && echo TOKEN: bash reads a piped script as it runs it, so the rest of stdin
        # is what came after the script
        IFS= read -r token || true
    fi
    check_token
}

# The token is one word of printable characters (a CR from a file written on Windows is dropped).
check_token() {
    token=${token%$'\r'}
    case $token in
    *[![:graph:]]*) die "the enrollment token has spaces or control characters: not a token" ;;
    esac
}

# Asks for the token on the terminal (echo off), when there is one. Echo goes off before the
# prompt is shown: `read -s` alone turns it off only once read starts, so a token typed (or
# pasted) right after the prompt appeared could still be echoed.
prompt_token() {
    local saved=''
    (exec </dev/tty) 2>/dev/null || return 0
    saved=$(stty -g </dev/tty 2>/dev/null) || saved=''
    stty -echo </dev/tty 2>/dev/null || true
    printf 'portcullis setup: enrollment token (portcullis host token; not shown): ' >/dev/tty
    IFS= read -rs token </dev/tty || token=''
    if [ -n "$saved" ]; then stty "$saved" </dev/tty 2>/dev/null || true; fi
    printf '\n' >/dev/tty
    check_token
}

# Sets distro to debian, rhel or amazon (from /etc/os-release).
detect_distro() {
    local id='' like=''
    if [ -r /etc/os-release ]; then
        # shellcheck source=/dev/null  # the host's file, not ours
        id=$(. /etc/os-release && echo "${ID:-}")
        # shellcheck source=/dev/null  # the host's file, not ours
        like=$(. /etc/os-release && echo "${ID_LIKE:-}")
    fi
    case " $id $like " in
    *" amzn "*) distro=amazon ;;
    *" debian "*|*" ubuntu "*) distro=debian ;;
    *" rhel "*|*" fedora "*|*" centos "*|*" rocky "*|*" almalinux "*) distro=rhel ;;
    *) distro=unknown ;;
    esac
    say "distribution: ${id:-unknown} ($distro)"
}

install_package() {
    if [ -n "$agent" ]; then
        [ -x "$agent" ] || die "--agent-path $agent is not an executable file"
        return
    fi
    if agent=$(command -v portcullis-agent); then
        say "portcullis-agent is installed: $agent"
        return
    fi
    local ok=no
    if [ -n "$package" ]; then
        [ -r "$package" ] || die "--package $package: no such file"
        say "installing $package"
        case $distro in
        debian) { dpkg -i "$package" || apt-get -f install -y; } </dev/null && ok=yes ;;
        rhel|amazon) dnf install -y "$package" </dev/null && ok=yes ;;
        esac
    else
        say "installing portcullis-agent from the package repositories"
        case $distro in
        debian) apt-get install -y portcullis-agent </dev/null && ok=yes ;;
        rhel|amazon) dnf install -y portcullis-agent </dev/null && ok=yes ;;
        esac
    fi
    agent=$(command -v portcullis-agent) || ok=no
    [ "$ok" = yes ] || die "could not install portcullis-agent on this $distro system.
  Add the Portcullis package repository (then run this again), or download the package
  (portcullis-agent_*.deb or portcullis-agent-*.rpm) and run this again with --package FILE."
}

write_config() {
    if [ -e "$CONFIG" ]; then
        say "$CONFIG exists: kept"
        return
    fi
    mkdir -p "$(dirname "$CONFIG")"
    umask 022
    cat >"$CONFIG.tmp" <<EOF
# portcullis-agent configuration, written by setup.sh; see portcullis-agent.conf(5)
url = $url
pin = $pin
host_token_file = /etc/portcullis/host.token
socket = /run/portcullis/agent.sock
principals_user = $PRINCIPALS_USER
socket_group = $PRINCIPALS_USER
EOF
    mv "$CONFIG.tmp" "$CONFIG"
    say "wrote $CONFIG"
}

# sshd runs AuthorizedPrincipalsCommand as this user (not root); it may use the agent socket.
ensure_principals_user() {
    getent passwd "$PRINCIPALS_USER" >/dev/null && return
    local shell
    shell=$(command -v nologin || echo /bin/false)
    useradd --system --user-group --no-create-home --home-dir / --shell "$shell" \
        --comment "Portcullis AuthorizedPrincipalsCommand" "$PRINCIPALS_USER"
    say "created the system user $PRINCIPALS_USER"
}

enroll() {
    if "$agent" status --config "$CONFIG" --json 2>/dev/null | grep -q '"enrolled": *true'; then
        say "already enrolled (the host token exists): kept"
        return
    fi
    [ -n "$token" ] || prompt_token
    [ -n "$token" ] || die "no enrollment token: pipe it in after the script" \
        "({ curl ... && echo TOKEN; } | sudo bash -s), use --token-file FILE, or run this on a" \
        "terminal to be asked for it (portcullis host token makes one)"
    # the token goes through stdin, not the process list
    printf '%s\n' "$token" | "$agent" enroll --config "$CONFIG" --url "$url" --pin "$pin" --token -
}

start_service() {
    if [ "$service" = no ]; then
        say "--no-service: start it yourself: $agent run --config $CONFIG"
    elif [ -d /run/systemd/system ]; then
        systemctl enable --now portcullis-agent </dev/null
        say "portcullis-agent.service is enabled and running"
    elif [ -f /run/portcullis/agent.pid ] && kill -0 "$(cat /run/portcullis/agent.pid)" 2>/dev/null; then
        say "the agent is already running (pid $(cat /run/portcullis/agent.pid))"
    else
        mkdir -p /run/portcullis
        nohup "$agent" run --config "$CONFIG" </dev/null >>/var/log/portcullis-agent.log 2>&1 &
        echo $! >/run/portcullis/agent.pid
        say "no systemd here: started '$agent run' in the background (pid $!, log" \
            "/var/log/portcullis-agent.log); start it at boot yourself"
    fi
}

configure() {
    if "$agent" configure --status >/dev/null 2>&1; then
        say "sshd and PAM are already configured: kept (undo: portcullis-agent unconfigure)"
        return
    fi
    # sshd's AuthorizedPrincipalsCommandUser must be one the agent lets in: the config's
    # principals_user, else root
    local user
    user=$(sed -n 's/^[[:space:]]*principals_user[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        "$CONFIG" | head -n 1)
    set -- --agent-path "$agent" --principals-user "${user:-root}"
    [ -z "$breakglass" ] || set -- "$@" --breakglass-group "$breakglass"
    [ "$reload" = yes ] || set -- "$@" --no-reload
    "$agent" configure "$@" </dev/null
}

main() {
    parse_args "$@"
    [ "$(id -u)" = 0 ] || die "run this as root ({ curl ... && echo TOKEN; } | sudo bash -s)"
    read_token
    detect_distro
    install_package
    ensure_principals_user
    write_config
    enroll
    start_service
    configure
    say "done: this server is enrolled at $url and sshd asks for the second factor"
}

# Everything above is only definitions: bash has read the whole script before anything runs,
# so nothing below can swallow the rest of a piped script from stdin. What follows this line on
# stdin (the token) is data: exit before bash would read it as commands.
main "$@"; exit
