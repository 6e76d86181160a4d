#!/usr/bin/env bash
# A pooled upstream connection that closes without a byte of answer: the
# gateway sends the request once more on a new connection only when its
# method is idempotent (RFC 9110 9.2.2). The upstream (a python3 script)
# answers the first request of each connection and closes on the second
# after reading it, i.e. after it may have acted on it:
#  - GET on the pooled connection: retried on a new one, 200 (the upstream
#    saw it twice, which an idempotent method allows);
#  - POST with Content-Length: 0 on the pooled connection: 502, and the
#    upstream saw it exactly once (it was sent twice before the fix);
#  - both requests are access-logged with their status.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_pick_ports
UP_LOG=$TEST_TMPDIR/raw-upstream.txt
# one worker: one upstream pool, so the second request takes the pooled connection
gw_write_config "$GW_CONF" workers=1 timeouts="{ upstream_read: 5s }"
gw_start_raw_upstream up "$DB_PORT" answer-first-close-second "$UP_LOG"
gw_start_gateway

seen() { grep -c -- " $1\$" "$UP_LOG"; }

# --- the first request of a connection is answered and the connection pooled ---
code=$(gw_curl attestor1 /first) || fail "first GET: curl failed"
expect_eq "$code" 200 "first GET"
expect_eq "$(cat "$GW_BODY")" first "first GET body"
pass "first GET answered; the upstream connection is pooled"

# --- GET on the pooled connection that closes: retried once, 200 ------------------
mark=$(gw_log_mark)
code=$(gw_curl attestor1 /get-again) || fail "GET on the closing pooled connection: curl failed"
expect_eq "$code" 200 "GET on a pooled connection the upstream closed (retried on a new one)"
expect_eq "$(seen 'GET /get-again')" 2 "times the upstream saw GET /get-again"
gw_wait_log_since "$mark" 'method=GET path=/get-again status=200 ' ||
    fail "no access line for GET /get-again with 200: $(gw_log_since "$mark")"
pass "idempotent GET retried on a new connection after the pooled one closed: 200"

# --- POST (Content-Length: 0) on the pooled connection that closes: 502, once ------
mark=$(gw_log_mark)
code=$(gw_curl attestor1 /attestations -X POST -H 'Content-Length: 0')
expect_eq "$code" 502 "POST on a pooled connection the upstream closed without answering"
sleep 0.3 # a second copy, if one were sent, would be logged by now
expect_eq "$(seen 'POST /attestations')" 1 "times the upstream saw POST /attestations (a POST must not be sent twice)"
gw_wait_log_since "$mark" '502 .*closed before a complete response head' ||
    fail "no 502 line for the POST: $(gw_log_since "$mark")"
gw_wait_log_since "$mark" 'method=POST path=/attestations status=502 ' ||
    fail "no access line for POST /attestations with 502: $(gw_log_since "$mark")"
pass "non-idempotent POST not retried: 502, delivered to the upstream once"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
check_sanitizers
pass "gateway upstream retry only for idempotent methods"
