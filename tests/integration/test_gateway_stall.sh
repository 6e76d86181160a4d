#!/usr/bin/env bash
# An upstream that stops reading the request body is the upstream's fault:
# with timeouts body: 2s and upstream_read: 4s, a client uploading 32 MiB at
# full speed to an upstream that never reads (a python3 script with a 4 KiB
# receive buffer) gets 504 after ~4 s of stall, not 408 after the 2 s body
# deadline (the time the gateway waits for the upstream does not count
# against the client), and the error log names the upstream at warn level.
# A healthy upstream still takes an upload of several MiB.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_pick_ports
STALL_PORT=$(free_ports 1 | tr -d ' ')
UP_LOG=$TEST_TMPDIR/raw-upstream.txt
gw_write_config "$GW_CONF" timeouts="{ body: 2s, upstream_read: 4s }" \
    servers="[\"127.0.0.1:$DB_PORT\"]"
gw_start

head -c $((32 * 1024 * 1024)) /dev/zero >"$TEST_TMPDIR/32m.bin"
head -c $((4 * 1024 * 1024)) /dev/zero >"$TEST_TMPDIR/4m.bin"

# --- sanity: a healthy upstream takes an upload far above the buffers ---------------
code=$(gw_curl attestor1 /attestations --data-binary @"$TEST_TMPDIR/4m.bin") ||
    fail "4 MiB upload to a healthy upstream: curl failed"
expect_eq "$code" 200 "4 MiB upload to a healthy upstream"
expect_eq "$(gw_up .body_bytes)" $((4 * 1024 * 1024)) "bytes the healthy upstream received"
pass "4 MiB upload to a healthy upstream: 200"

# --- an upstream that never reads: 504 after upstream_read, not 408 -----------------
stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
gw_write_config "$GW_CONF" timeouts="{ body: 2s, upstream_read: 4s }" \
    servers="[\"127.0.0.1:$STALL_PORT\"]"
gw_start_raw_upstream stalled "$STALL_PORT" no-read "$UP_LOG"
gw_start_gateway "$GW_CONF" gw2
mark=$(gw_log_mark)
t0=$(now_ms)
code=$(GW_CURL_MAXTIME=20 gw_curl attestor1 /attestations --data-binary @"$TEST_TMPDIR/32m.bin")
el=$(($(now_ms) - t0))
expect_eq "$code" 504 "upload to an upstream that stopped reading (after ${el} ms)"
[ "$el" -ge 3500 ] || fail "504 after ${el} ms: before the 4 s upstream_read"
[ "$el" -le 9000 ] || fail "504 after ${el} ms, expected ~4 s"
gw_wait_log_since "$mark" 'warn.*504 .*upstream 127\.0\.0\.1:'"$STALL_PORT"' took no request body bytes within 4000 ms' ||
    fail "no warn line naming the stalled upstream: $(gw_log_since "$mark")"
gw_wait_log_since "$mark" 'method=POST path=/attestations status=504 ' ||
    fail "no access line with 504: $(gw_log_since "$mark")"
if gw_log_since "$mark" | grep -q ' 408 \|status=408'; then
    fail "the client was blamed with 408: $(gw_log_since "$mark")"
fi
pass "upstream stopped reading the body: 504 after ${el} ms (not 408), logged as the upstream's fault"

stop_bg gw2 || fail "mtlsgate did not exit 0 on SIGTERM"
check_sanitizers
pass "gateway stalled upstream during the request body"
