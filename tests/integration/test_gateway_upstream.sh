#!/usr/bin/env bash
# Several upstream servers (upstream.servers): round robin and failover.
#  - two db-services, upstream.keepalive: 0 (every request opens a new
#    upstream connection, so every request is a round-robin pick), one
#    worker: sequential requests alternate A B A B (each --log counted);
#  - with the default keep-alive pool, sequential requests still share the
#    servers (the server is picked first, then an idle connection to it is
#    taken from the pool): 20 requests, 10+-2 each, over one pooled upstream
#    connection per server;
#  - with the default keep-alive pool, concurrent requests reach both;
#  - B stopped: requests keep succeeding (at most one 502), B is tried once
#    and then skipped for upstream.fail_timeout (one "marked failed" line);
#  - B restarted: no traffic while it is still marked failed, traffic again
#    once fail_timeout is over;
#  - both stopped: 502 at once, not after the upstream connect timeout; a
#    second request tries both again and logs "failed again", not new marks.
# Timing: fail_timeout is sized from the measured speed of requests on this
# machine (ASan, a loaded host), and the waits around it are bounds derived
# from when the failure was observed, not fixed sleeps.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
read -r GW_PORT DB_PORT ADMIN_PORT DB2_PORT <<<"$(free_ports 4)"
LOG_A=$TEST_TMPDIR/upstream-a.txt
LOG_B=$TEST_TMPDIR/upstream-b.txt
A=127.0.0.1:$DB_PORT
B=127.0.0.1:$DB2_PORT
gw_start_db_named dba "$DB_PORT" "$LOG_A"
gw_start_db_named dbb "$DB2_PORT" "$LOG_B"
count() { wc -l <"$1" | tr -d ' '; }
gw_write_config "$GW_CONF" workers=1 servers="[\"$A\", \"$B\"]" \
    upstream_extra="  keepalive: 0"
gw_start_gateway

# req N PREFIX: N sequential requests; prints their statuses on one line.
req() {
    local n=$1 prefix=$2 i code out=""
    for i in $(seq 1 "$n"); do
        code=$(gw_curl attestor1 "/$prefix/$i")
        out="$out $code"
    done
    echo "$out"
}

# --- alternation ------------------------------------------------------------------------
t_rr=$(now_ms)
codes=$(req 10 rr)
[ -z "$(tr ' ' '\n' <<<"$codes" | grep -v '^$' | grep -v '^200$')" ] || fail "round robin: non-200 answers:$codes"
expect_eq "$(count "$LOG_A")" 5 "round robin: requests reaching A of 10"
expect_eq "$(count "$LOG_B")" 5 "round robin: requests reaching B of 10"
# Strict alternation: the servers seen by consecutive requests differ.
seen=""
for i in $(seq 1 6); do
    gw_curl attestor1 "/alt/$i" >/dev/null || fail "alternation: request $i failed"
    if grep -q "^GET /alt/$i " "$LOG_A"; then seen="${seen}A"; elif grep -q "^GET /alt/$i " "$LOG_B"; then seen="${seen}B"; else seen="${seen}?"; fi
done
case "$seen" in ABABAB | BABABA) ;; *) fail "round robin: servers per request were $seen, expected alternation" ;; esac
# 16 requests took rr_ms: the failover part below needs about 16 requests
# within fail_timeout; give it 3 times that, at least 5 s (at most 60 s).
rr_ms=$(($(now_ms) - t_rr))
FAIL_S=$(((rr_ms * 3 + 999) / 1000))
[ "$FAIL_S" -ge 5 ] || FAIL_S=5
[ "$FAIL_S" -le 60 ] || FAIL_S=60
pass "round robin over two servers: 5/5 of 10, consecutive requests alternate ($seen; 16 requests in $rr_ms ms, fail_timeout ${FAIL_S}s)"
stop_bg gw || fail "mtlsgate (gw) did not exit 0"

# --- default keep-alive pool: sequential requests still share the servers ----------------------
# Established gateway->PORT connections (the gateway's side: destination PORT).
est() { ss -Htn state established "( dport = :$1 )" | wc -l | tr -d ' '; }
gw_write_config "$GW_CONF" workers=1 servers="[\"$A\", \"$B\"]"
gw_start_gateway "$GW_CONF" gw-seq
a0=$(count "$LOG_A")
b0=$(count "$LOG_B")
codes=$(req 20 seq)
[ -z "$(tr ' ' '\n' <<<"$codes" | grep -v '^$' | grep -v '^200$')" ] || fail "keep-alive, sequential: non-200 answers:$codes"
da=$(($(count "$LOG_A") - a0))
db=$(($(count "$LOG_B") - b0))
expect_eq "$((da + db))" 20 "keep-alive, sequential: requests reaching the upstreams"
[ "$da" -ge 8 ] && [ "$da" -le 12 ] && [ "$db" -ge 8 ] && [ "$db" -le 12 ] ||
    fail "keep-alive, sequential: 20 requests were not shared fairly (A=$da B=$db, want 10+-2 each)"
# The pool was used: one idle upstream connection per server, not one per
# request (the pool holds up to 32; idle ones stay established for
# timeouts.keepalive, 15 s; without reuse they would be closed or pile up).
if command -v ss >/dev/null; then
    ea=$(est "$DB_PORT")
    eb=$(est "$DB2_PORT")
    [ "$ea" -eq 1 ] && [ "$eb" -eq 1 ] ||
        fail "keep-alive, sequential: pooled upstream connections A=$ea B=$eb, want 1 each (reuse)"
    pool="one pooled connection per server"
else
    pool="pool reuse not checked: no ss"
fi
pass "default keep-alive pool, 20 sequential requests: A=$da B=$db ($pool)"
stop_bg gw-seq || fail "mtlsgate (gw-seq) did not exit 0"

# --- default keep-alive pool: concurrent requests reach both servers -------------------------
# Two more db-services that hold each request 300 ms, so that 4 concurrent
# clients need 4 upstream connections at once (new connections are the
# round-robin picks).
read -r KA1_PORT KA2_PORT <<<"$(free_ports 2)"
gw_start_db_named dbka1 "$KA1_PORT" "$TEST_TMPDIR/ka1.txt" --delay-ms 300
gw_start_db_named dbka2 "$KA2_PORT" "$TEST_TMPDIR/ka2.txt" --delay-ms 300
gw_write_config "$GW_CONF" workers=1 servers="[\"127.0.0.1:$KA1_PORT\", \"127.0.0.1:$KA2_PORT\"]"
gw_start_gateway "$GW_CONF" gw-ka
pids=()
for c in 1 2 3 4; do
    curl -sS --max-time 20 --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
        --key "$GW_PKI/attestor1.key" -o /dev/null -w '%{http_code}\n' \
        "https://localhost:$GW_PORT/ka$c/[1-3]" >"$TEST_TMPDIR/ka$c.codes" 2>>"$TEST_TMPDIR/curl.err" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "keep-alive clients: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"; done
expect_eq "$(cat "$TEST_TMPDIR"/ka?.codes | grep -c '^200$')" 12 "keep-alive clients: 200 answers of 12"
da=$(count "$TEST_TMPDIR/ka1.txt")
db=$(count "$TEST_TMPDIR/ka2.txt")
expect_eq "$((da + db))" 12 "keep-alive clients: requests reaching the upstreams"
[ "$da" -gt 0 ] && [ "$db" -gt 0 ] || fail "keep-alive pool: 4 concurrent clients reached only one server (A=$da B=$db)"
pass "default keep-alive pool, 4 concurrent clients: A=$da B=$db"
stop_bg gw-ka || fail "mtlsgate (gw-ka) did not exit 0"
stop_bg dbka1 || fail "db-service ka1 did not exit 0"
stop_bg dbka2 || fail "db-service ka2 did not exit 0"
# upstream_connect far above what "at once" is measured against below.
gw_write_config "$GW_CONF" workers=1 servers="[\"$A\", \"$B\"]" \
    timeouts="{ upstream_connect: 30s }" upstream_extra="  keepalive: 0
  fail_timeout: ${FAIL_S}s"
gw_start_gateway "$GW_CONF" gw-fo

# --- B stopped: failover ----------------------------------------------------------------------
stop_bg dbb || fail "db-service B did not exit 0"
mark=$(gw_log_mark)
t_fail=$(now_ms)
a0=$(count "$LOG_A")
codes=$(req 10 down)
n502=$(tr ' ' '\n' <<<"$codes" | grep -c '^502$')
n200=$(tr ' ' '\n' <<<"$codes" | grep -c '^200$')
[ "$n502" -le 1 ] || fail "B down: more than one 502:$codes"
expect_eq "$((n200 + n502))" 10 "B down: answers that are 200 or 502 ($codes)"
expect_eq "$(($(count "$LOG_A") - a0))" "$n200" "B down: requests served by A"
el=$(($(now_ms) - t_fail))
[ "$el" -lt $((FAIL_S * 1000)) ] || fail "test too slow: 10 requests took $el ms, more than fail_timeout"
# B was marked failed during the requests: between t_fail and t_down.
t_down=$(now_ms)
# The log thread writes lines out every 50 ms: wait for B's before counting.
gw_wait_log_since "$mark" "upstream $B: .*marked failed" 5 ||
    fail "B down: no 'upstream $B: ... marked failed' line: $(gw_log_since "$mark" | tail -3)"
nmark=$(gw_log_since "$mark" | grep -c "upstream $B: .*marked failed")
expect_eq "$nmark" 1 "B down: times B was tried within fail_timeout ('marked failed' lines)"
pass "B down: $n200 of 10 answered 200 by A ($n502 x 502), B tried once then skipped"

# --- B back: skipped until fail_timeout is over, then served again -------------------------------
gw_start_db_named dbb2 "$DB2_PORT" "$LOG_B"
b0=$(count "$LOG_B")
codes=$(req 4 early)
el=$(($(now_ms) - t_fail))
[ "$el" -lt $((FAIL_S * 1000 - 300)) ] || fail "test too slow: B restarted $el ms after its failure"
expect_eq "$(count "$LOG_B")" "$b0" "B restarted, still within fail_timeout: requests reaching B"
# The mark expires by t_down + fail_timeout at the latest (bounded wait).
while [ $(($(now_ms) - t_down)) -lt $((FAIL_S * 1000 + 300)) ]; do sleep 0.1; done
a0=$(count "$LOG_A")
codes=$(req 6 back)
[ -z "$(tr ' ' '\n' <<<"$codes" | grep -v '^$' | grep -v '^200$')" ] || fail "B back: non-200 answers:$codes"
db=$(($(count "$LOG_B") - b0))
da=$(($(count "$LOG_A") - a0))
[ "$db" -ge 2 ] || fail "B back after fail_timeout: it got $db of 6 requests (A got $da)"
pass "B restarted: no traffic within fail_timeout, $db of 6 requests after it"

# --- both down: 502 at once ---------------------------------------------------------------------
stop_bg dba || fail "db-service A did not exit 0"
stop_bg dbb2 || fail "db-service B did not exit 0"
mark=$(gw_log_mark)
t0=$(now_ms)
code=$(gw_curl attestor1 /all-down)
el=$(($(now_ms) - t0))
expect_eq "$code" 502 "both upstreams down"
# Refused connects fail at once; a gateway waiting for the connect timeout
# (30 s) would take far longer than this bound, which leaves room for a slow
# machine: 20 times the mean of the 16 timed requests, at least 3 s.
bound=$((rr_ms * 20 / 16))
[ "$bound" -ge 3000 ] || bound=3000
[ "$bound" -le 15000 ] || bound=15000
[ "$el" -lt "$bound" ] || fail "both upstreams down: the 502 took $el ms (bound $bound ms)"
pass "both upstreams down: 502 in $el ms"

# Both are marked failed now (their lines first: the log thread writes
# them up to 50 ms later); the next request still tries both (no healthy
# one is left) and the lines say so instead of claiming new marks.
for srv in "$A" "$B"; do
    gw_wait_log_line_since "$mark" "upstream $srv: .*marked failed" "" 5 ||
        fail "both down: no 'upstream $srv: ... marked failed' line: $(gw_log_since "$mark" | tail -3)"
done
mark=$(gw_log_mark)
code=$(gw_curl attestor1 /all-down-again)
expect_eq "$code" 502 "both upstreams down, second request"
[ "$(($(now_ms) - t0))" -lt $((FAIL_S * 1000)) ] ||
    fail "test too slow: the two all-down requests took more than fail_timeout"
for srv in "$A" "$B"; do
    gw_wait_log_line_since "$mark" "upstream $srv: .*failed again" "" 5 ||
        fail "both down again: no 'upstream $srv: ... failed again' line: $(gw_log_since "$mark" | tail -3)"
done
nmark=$(gw_log_since "$mark" | grep -c "marked failed")
[ "$nmark" = 0 ] ||
    fail "both down again: $nmark 'marked failed' lines for servers already marked: $(gw_log_since "$mark" | grep "marked failed")"
pass "both upstreams down again: tried anyway, logged as 'failed again'"

stop_bg gw-fo || fail "mtlsgate did not exit 0"
check_sanitizers
pass "gateway upstream round robin and failover"
