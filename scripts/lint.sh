#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Static checks over the source tree (no build needed). One "PASS name" or "FAIL name: why" line
# per check, the findings indented below a failure, then "N passed, N failed".
#   scripts/lint.sh [CHECK...]     CHECK: format cppcheck shellcheck spdx (default: all four)
#   format      every C file is as clang-format (.clang-format) would write it
#               (to reformat: git ls-files '*.c' '*.h' | xargs clang-format -i)
#   cppcheck    cppcheck over lib/ agent/ control-plane/ pam_module/ tests/ (and any other folder
#               with C sources): no finding; false positives carry a commented inline
#               `cppcheck-suppress ID ; why`, whole-tree ones are in scripts/cppcheck.supp
#   'shellcheck'  every shell script in the repository (by name or #! line): no finding; settings
#               in .shellcheckrc, exceptions as commented `# shellcheck disable=SCxxxx` lines
#   spdx        every source file (C, Python, shell, m4, Makefile.am, units...) carries its
#               SPDX-License-Identifier line near the top
# Needs clang-format, cppcheck and shellcheck (scripts/install-deps.sh installs them).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src" || exit 1
passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { # name why [file with details]
  echo "FAIL $1: $2"
  [ -n "${3:-}" ] && head -n 60 "$3" | sed 's/^/    /'
  failed=$((failed + 1))
}
# The repository's files (tracked, and new ones not ignored), outside build trees.
files() { git ls-files --cached --others --exclude-standard -- "$@" | while read -r f; do [ -f "$f" ] && echo "$f"; done; }

check_format() {
  local n=0 f
  : >"$out"
  while read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "$f" >>"$out"
      n=$((n + 1))
    fi
  done < <(files '*.c' '*.h')
  if [ "$n" -eq 0 ]; then pass "format (clang-format, .clang-format)"
  else fail "format (clang-format, .clang-format)" "$n file(s) not formatted (git ls-files '*.c' '*.h' | xargs clang-format -i)" "$out"; fi
}

check_cppcheck() {
  local dirs
  dirs=$(files '*.c' | cut -d/ -f1 | grep -v '\.c$' | sort -u | tr '\n' ' ')
  dirs=${dirs% }
  # --enable: all but 'information' (missing system headers) and unusedFunction (off with -j);
  # -D__GNUC__: the headers' GCC-only branches, as the build sees them.
  # shellcheck disable=SC2086  # one folder per word
  if cppcheck -q -j 2 --std=c11 --library=posix -D__GNUC__ -I lib \
       --enable=warning,style,performance,portability --inline-suppr \
       --suppressions-list=scripts/cppcheck.supp --error-exitcode=1 \
       $dirs >"$out" 2>&1; then
    pass "cppcheck ($dirs)"
  else
    fail "cppcheck ($dirs)" "$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: ' "$out") finding(s)" "$out"
  fi
}

# Shell scripts: *.sh, the debian maintainer scripts, and any file whose #! names a shell.
shell_scripts() {
  local f
  files | while read -r f; do
    case "$f" in
      *.sh|*/debian/*.postinst|*/debian/*.postrm|*/debian/*.preinst|*/debian/*.prerm) echo "$f" ;;
      *) head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f" ;;
    esac
  done
}

check_shellcheck() {
  local list
  list=$(shell_scripts)
  # shellcheck disable=SC2086  # one script per word (no spaces in our paths)
  if shellcheck $list >"$out" 2>&1; then
    pass "shellcheck ($(echo "$list" | wc -l) scripts)"
  else
    fail "shellcheck" "$(grep -c '^In ' "$out") finding(s)" "$out"
  fi
}

# Every source file names its license in its first lines (LICENSE: BSD-2-Clause).
check_spdx() {
  local f
  : >"$out"
  while read -r f; do
    head -n 5 "$f" | grep -q 'SPDX-License-Identifier: BSD-2-Clause' || echo "$f" >>"$out"
  done < <({ files '*.c' '*.h' '*.py' '*.sh' '*.am' '*.ac' '*.exp' '*.service' '*.socket' '*.spec' '*.sysusers' \
               'man/*' '.ci/run' '.clang-format' '.shellcheckrc' 'scripts/cppcheck.supp'
             shell_scripts; } | sort -u)
  if [ -s "$out" ]; then fail "spdx" "$(wc -l <"$out") file(s) without the SPDX line" "$out"
  else pass "spdx (SPDX-License-Identifier in every source)"; fi
}

checks=${*:-format cppcheck shellcheck spdx}
for c in $checks; do
  case "$c" in
    format) check_format ;;
    cppcheck) check_cppcheck ;;
    shellcheck) check_shellcheck ;;
    spdx) check_spdx ;;
    *) fail "$c" "no such check (format cppcheck shellcheck spdx)" ;;
  esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
