#!/usr/bin/env bash
# Stopping details (issue 4: "SIGQUIT (or a second SIGTERM) stops at once").
# The upstream holds every request 4 s, so a request is in flight for sure.
#  - SIGQUIT with a request in flight: mtlsgate exits 0 at once (well
#    before the request could finish); the client gets no answer;
#  - SIGTERM with a request in flight: mtlsgate keeps running (draining);
#    a second SIGTERM stops it at once, exit 0;
#  - SIGTERM with timeouts.drain: 1s and a request that needs 4 s: exit 0
#    after the drain timeout, not after the request.
# The ASan build checks that stopping at once leaks nothing.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_start_db --delay-ms 4000

# in_flight NAME: starts a request to the slow upstream in the background
# (pid in INFLIGHT_PID) and waits until db-service has received it.
in_flight() {
    local before i
    before=$(upstream_count)
    curl -sS --max-time 20 --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
        --key "$GW_PKI/attestor1.key" -o /dev/null -w '%{http_code}' \
        "https://localhost:$GW_PORT/$1" >"$TEST_TMPDIR/$1.code" 2>"$TEST_TMPDIR/$1.err" &
    INFLIGHT_PID=$!
    for i in $(seq 1 100); do
        [ "$(upstream_count)" -gt "$before" ] && return 0
        sleep 0.05
    done
    fail "$1: the request did not reach the upstream within 5 s"
}

# stopped_within NAME MS: waits for NAME to exit; fails unless it exits 0
# within MS milliseconds of T0. Sets EL to the time taken.
stopped_within() {
    gw_wait_exit "$1" 15 || fail "$1: mtlsgate did not exit within 15 s"
    EL=$(($(now_ms) - T0))
    expect_eq "$GW_EXIT_STATUS" 0 "$1: exit status"
    [ "$EL" -lt "$2" ] || fail "$1: exited after $EL ms, expected < $2 ms"
}

# --- SIGQUIT --------------------------------------------------------------------------------
gw_write_config "$GW_CONF" timeouts="{ drain: 30s }"
gw_start_gateway "$GW_CONF" gw-quit
in_flight quit
T0=$(now_ms)
kill -QUIT "$(bg_pid gw-quit)"
stopped_within gw-quit 1500
wait "$INFLIGHT_PID" && fail "SIGQUIT: the request in flight completed ($(cat "$TEST_TMPDIR/quit.code")); it should have been cut"
[ "$(cat "$TEST_TMPDIR/quit.code")" != 200 ] || fail "SIGQUIT: the request in flight got a 200"
grep -q 'SIGQUIT: stopping now' "$GW_LOG" || fail "SIGQUIT: no 'stopping now' line: $(tail -3 "$GW_LOG")"
grep -q 'stopped (immediate)' "$GW_LOG" || fail "SIGQUIT: no 'stopped (immediate)' line"
pass "SIGQUIT with a request in flight: exit 0 after $EL ms, the request cut"

# --- SIGTERM, then a second SIGTERM ------------------------------------------------------------
gw_start_gateway "$GW_CONF" gw-term2
in_flight term2
kill -TERM "$(bg_pid gw-term2)"
sleep 1
kill -0 "$(bg_pid gw-term2)" 2>/dev/null || fail "first SIGTERM: mtlsgate exited with a request in flight and drain 30s"
kill -0 "$INFLIGHT_PID" 2>/dev/null || fail "first SIGTERM: the request in flight ended early: $(cat "$TEST_TMPDIR/term2.err")"
T0=$(now_ms)
kill -TERM "$(bg_pid gw-term2)"
stopped_within gw-term2 1500
wait "$INFLIGHT_PID" && fail "second SIGTERM: the request in flight completed; it should have been cut"
grep -q 'SIGTERM: no new connections' "$GW_LOG" || fail "first SIGTERM: no drain line"
grep -q 'SIGTERM: stopping now' "$GW_LOG" || fail "second SIGTERM: no 'stopping now' line: $(tail -3 "$GW_LOG")"
pass "SIGTERM drains; a second SIGTERM stops at once (exit 0 after $EL ms)"

# --- drain timeout --------------------------------------------------------------------------------
gw_write_config "$GW_CONF" timeouts="{ drain: 1s }"
gw_start_gateway "$GW_CONF" gw-drain
in_flight drain
T0=$(now_ms)
kill -TERM "$(bg_pid gw-drain)"
stopped_within gw-drain 2500
[ "$EL" -ge 900 ] || fail "drain 1s: exited after only $EL ms with a request in flight"
wait "$INFLIGHT_PID" && fail "drain timeout: the 4 s request completed"
grep -q 'drain timeout over' "$GW_LOG" || fail "drain timeout: no 'drain timeout over' line: $(tail -3 "$GW_LOG")"
pass "SIGTERM with timeouts.drain: 1s: exit 0 after $EL ms, the 4 s request cut"

stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway signals"
