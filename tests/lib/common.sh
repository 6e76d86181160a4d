# common.sh - sourced by every integration test (tests/integration/test_*.sh).
#
# Gives: BIN_DIR, SRC_DIR, TEST_TMPDIR (fresh, removed by the runner);
#   fail MSG            - print "FAIL: MSG" and exit 1 (cleanup runs)
#   skip MSG            - print "SKIP: MSG" and exit 77
#   pass MSG            - print "ok: MSG"
#   free_ports N        - N free loopback ports, space separated
#   start_bg NAME CMD...- run CMD in the background, stdout+stderr to
#                         $TEST_TMPDIR/NAME.log, PID remembered and stopped
#                         (TERM, then KILL) when the test exits
#   stop_bg NAME        - SIGTERM one of those, wait for it, return its status
#   wait_port PORT [S]  - wait up to S seconds (default 10) for a listener
#   wait_log FILE RE [S]- wait up to S seconds for a line matching RE
#   check_sanitizers    - fail if any *.log in TEST_TMPDIR has an ASan, LSan
#                         or UBSan report (call after stopping processes)
#   expect_eq A B MSG, expect_contains HAYSTACK NEEDLE MSG,
#   expect_not_contains HAYSTACK NEEDLE MSG
set -u
set -o pipefail

: "${BIN_DIR:?BIN_DIR must point at the bin directory of the build}"
: "${SRC_DIR:?SRC_DIR must point at the source tree}"
: "${TEST_TMPDIR:=$(mktemp -d)}"
export BIN_DIR SRC_DIR TEST_TMPDIR
export PATH="$BIN_DIR:$PATH"
# Sanitizer builds: report and stop on the first error, keep leak checking.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

declare -A _BG_PIDS=()

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
pass() { echo "ok: $*"; }

free_ports() { "$BIN_DIR/free-port" "${1:-1}" | tr '\n' ' '; }

start_bg() {
    local name=$1; shift
    "$@" >"$TEST_TMPDIR/$name.log" 2>&1 &
    _BG_PIDS[$name]=$!
}

bg_pid() { echo "${_BG_PIDS[$1]}"; }

stop_bg() {
    local name=$1 pid=${_BG_PIDS[$1]:-} rc=0 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null; rc=$?
    unset "_BG_PIDS[$name]"
    return $rc
}

_cleanup_bg() {
    local name
    for name in "${!_BG_PIDS[@]}"; do stop_bg "$name" || true; done
}
trap _cleanup_bg EXIT

wait_port() {
    local port=$1 secs=${2:-10} i
    for i in $(seq 1 $((secs * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

wait_log() {
    local file=$1 re=$2 secs=${3:-10} i
    for i in $(seq 1 $((secs * 20))); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

check_sanitizers() {
    local f
    for f in "$TEST_TMPDIR"/*.log; do
        [ -e "$f" ] || continue
        if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
            sed -n '1,60p' "$f" >&2
            fail "sanitizer report in $(basename "$f")"
        fi
    done
}

expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: '$2' not found in: $1" ;; esac; }
expect_not_contains() { case "$1" in *"$2"*) fail "$3: '$2' found in: $1" ;; esac; }
