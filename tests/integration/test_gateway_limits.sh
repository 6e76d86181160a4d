#!/usr/bin/env bash
# limits.max_connections: 5 with one worker.
#  - 5 idle mTLS connections (openssl s_client held open) are accepted
#    (mtlsgate_connections_open 5 on /metrics);
#  - a 6th connection is not served while they are open: it waits in the
#    listen backlog (a curl with --max-time 2 times out without an answer);
#  - a 6th request started while the 5 are open is served as soon as one of
#    them closes, not before;
#  - the gateway does not crash, serves normally after the 5 close, and
#    exits 0.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_pick_ports
gw_write_config "$GW_CONF" workers=1 limits="{ max_connections: 5 }" \
    timeouts="{ keepalive: 40s, handshake: 40s }" extra="admin:
  listen: \"127.0.0.1:$ADMIN_PORT\""
gw_start
wait_port "$ADMIN_PORT" 10 || fail "admin listener not up on $ADMIN_PORT"
metric() { curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# Hold NAME: an idle mTLS connection (handshake done, no request), open until
# stopped: with -ign_eof, s_client keeps it after stdin's EOF.
hold() {
    start_bg "$1" openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost \
        -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
        -cert_chain "$GW_PKI/attestor1.chain" -nocommands -ign_eof </dev/null
    wait_log "$TEST_TMPDIR/$1.log" '(New|Reused), TLSv1\.[23]' 10 ||
        fail "idle connection $1: no handshake: $(tail -3 "$TEST_TMPDIR/$1.log")"
}
for i in 1 2 3 4 5; do hold "idle$i"; done
expect_eq "$(metric mtlsgate_connections_open)" 5 "mtlsgate_connections_open with 5 idle connections"
pass "5 idle mTLS connections accepted"

# --- a 6th connection waits in the backlog --------------------------------------------------
before=$(upstream_count)
t0=$(now_ms)
code=$(GW_CURL_MAXTIME=2 gw_curl attestor1 /sixth)
rc=$?
el=$(($(now_ms) - t0))
expect_eq "$rc" 28 "curl exit status for a 6th connection beyond max_connections (28 = timed out; answer HTTP $code)"
expect_eq "$code" 000 "a 6th connection beyond max_connections"
[ "$el" -ge 1900 ] || fail "the 6th connection ended after $el ms, before curl's timeout (refused, not waiting?)"
expect_eq "$(upstream_count)" "$before" "requests upstream from a 6th connection"
kill -0 "$(bg_pid gw)" 2>/dev/null || fail "mtlsgate died with a full connection table"
pass "a 6th connection is not served while 5 are open (curl timed out after $el ms, no answer)"

# --- it is served once one of the 5 closes ---------------------------------------------------------
curl -sS --max-time 20 --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
    --key "$GW_PKI/attestor1.key" -o "$TEST_TMPDIR/waiting.body" -w '%{http_code}' \
    "https://localhost:$GW_PORT/waiting" >"$TEST_TMPDIR/waiting.code" 2>>"$TEST_TMPDIR/curl.err" &
waiting=$!
sleep 1.5
kill -0 "$waiting" 2>/dev/null || fail "the waiting request finished while 5 connections were open: $(cat "$TEST_TMPDIR/waiting.code")"
expect_eq "$(upstream_count)" "$before" "requests upstream while 5 connections are open"
t0=$(now_ms)
stop_bg idle3
wait "$waiting" || fail "the waiting request failed after a slot was freed: $(tail -1 "$TEST_TMPDIR/curl.err")"
el=$(($(now_ms) - t0))
expect_eq "$(cat "$TEST_TMPDIR/waiting.code")" 200 "the waiting request once a connection closed"
expect_eq "$(jq -r '.path' <"$TEST_TMPDIR/waiting.body")" /waiting "path of the waiting request upstream"
[ "$el" -lt 5000 ] || fail "the waiting request took $el ms after a slot was freed"
pass "a request waiting in the backlog is served $el ms after one connection closes"

# --- all closed: normal service, no crash ----------------------------------------------------------
for i in 1 2 4 5; do stop_bg "idle$i"; done
ok=0
for i in $(seq 1 10); do
    code=$(gw_curl attestor1 "/after/$i") && [ "$code" = 200 ] && ok=$((ok + 1))
done
expect_eq "$ok" 10 "requests answered 200 after the idle connections closed"
open=""
for i in $(seq 1 20); do
    open=$(metric mtlsgate_connections_open)
    [ "$open" = 0 ] && break
    sleep 0.1
done
expect_eq "$open" 0 "mtlsgate_connections_open after everything closed"
pass "after the 5 close: 10 of 10 served, no connection left open"

stop_bg gw || fail "mtlsgate did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway limits (max_connections)"
