#!/usr/bin/env bash
# mtlsgate's deadlines: a client trickling its header (or body) one byte a
# second gets 408 within the total header (body) deadline and is closed; a
# stalled handshake is closed after the handshake timeout; an idle keep-alive
# connection is closed after the keep-alive timeout; the upstream down gives
# 502 at once; an upstream slower than upstream_read gives 504.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF" \
    timeouts="{ handshake: 2s, header: 2s, body: 3s, keepalive: 2s, upstream_connect: 2s, upstream_read: 1s }"
gw_start

code=$(gw_curl attestor1 /sanity) || fail "sanity request: curl failed"
expect_eq "$code" 200 "sanity request"

# Writes to a fifo whose reader has gone must not kill this script.
trap '' PIPE

# trickle NAME PREFIX TEXT MAX_S: opens an mTLS connection (s_client), sends
# PREFIX at once, then TEXT one byte a second until the gateway closes the
# connection (or MAX_S seconds). Sets TRICKLE_MS (from the first trickled
# byte to the close, -1 if never closed) and TRICKLE_OUT (what came back).
trickle() {
    local name=$1 prefix=$2 text=$3 max=$4 fifo=$TEST_TMPDIR/trickle-$1.in
    local out=$TEST_TMPDIR/trickle-$1.out pid t0 i closed=0
    rm -f "$fifo"
    mkfifo "$fifo"
    openssl s_client -quiet -nocommands -connect "127.0.0.1:$GW_PORT" -servername localhost \
        -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
        <"$fifo" >"$out" 2>>"$TEST_TMPDIR/s_client.err" &
    pid=$!
    exec 7>"$fifo"
    printf '%b' "$prefix" >&7
    sleep 0.3 # the handshake
    t0=$(now_ms)
    for ((i = 0; i < max; i++)); do
        printf '%s' "${text:i%${#text}:1}" >&7 2>/dev/null
        sleep 1
        if ! kill -0 "$pid" 2>/dev/null; then
            closed=1
            break
        fi
    done
    if [ $closed = 1 ]; then TRICKLE_MS=$(($(now_ms) - t0)); else TRICKLE_MS=-1; fi
    exec 7>&-
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    TRICKLE_OUT=$(cat "$out")
}

# --- header trickled one byte a second: 408 within header: 2s --------------------
before=$(upstream_count)
trickle header 'GET /slow-header HTTP/1.1\r\nHost: localhost\r\nX-Slow: ' \
    'abcdefghijklmnopqrstuvwxyz' 15
[ "$TRICKLE_MS" -ge 0 ] || fail "header trickle: connection still open after 15 s (header: 2s must be a total deadline)"
[ "$TRICKLE_MS" -le 5000 ] || fail "header trickle: closed after ${TRICKLE_MS} ms, expected within ~2 s"
expect_contains "$(head -1 <<<"$TRICKLE_OUT")" "HTTP/1.1 408" "header trickle answer"
expect_eq "$(upstream_count)" "$before" "header trickle: requests upstream"
pass "header trickled 1 byte/s: 408 and closed after ${TRICKLE_MS} ms"

# --- body trickled one byte a second: 408 within body: 3s ------------------------
trickle body 'POST /slow-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n' \
    'abcdefghijklmnopqrstuvwxyz' 15
[ "$TRICKLE_MS" -ge 0 ] || fail "body trickle: connection still open after 15 s (body: 3s must be a total deadline)"
[ "$TRICKLE_MS" -le 6000 ] || fail "body trickle: closed after ${TRICKLE_MS} ms, expected within ~3 s"
expect_contains "$(head -1 <<<"$TRICKLE_OUT")" "HTTP/1.1 408" "body trickle answer"
sleep 0.2
expect_eq "$(upstream_count)" "$before" "body trickle: complete requests upstream"
pass "body trickled 1 byte/s: 408 and closed after ${TRICKLE_MS} ms"

# --- stalled handshake: TCP connect, send nothing --------------------------------
t0=$(now_ms)
timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; cat <&3 >/dev/null' _ "$GW_PORT"
rc=$?
el=$(($(now_ms) - t0))
[ "$rc" -ne 124 ] || fail "stalled handshake: connection still open after 10 s (handshake: 2s)"
[ "$el" -ge 1500 ] || fail "stalled handshake: closed after ${el} ms, before the 2 s handshake timeout"
[ "$el" -le 5000 ] || fail "stalled handshake: closed after ${el} ms, expected ~2 s"
pass "stalled handshake closed after ${el} ms"

# --- idle keep-alive connection: closed after keepalive: 2s ----------------------
fifo=$TEST_TMPDIR/ka.in
mkfifo "$fifo"
openssl s_client -quiet -nocommands -connect "127.0.0.1:$GW_PORT" -servername localhost \
    -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
    <"$fifo" >"$TEST_TMPDIR/ka.out" 2>>"$TEST_TMPDIR/s_client.err" &
kpid=$!
exec 7>"$fifo"
printf 'GET /keepalive HTTP/1.1\r\nHost: localhost\r\n\r\n' >&7
for i in $(seq 1 100); do
    grep -q '"path":"/keepalive"' "$TEST_TMPDIR/ka.out" 2>/dev/null && break
    sleep 0.05
done
grep -q '"path":"/keepalive"' "$TEST_TMPDIR/ka.out" || fail "keep-alive: no answer to the first request"
t0=$(now_ms)
for i in $(seq 1 100); do
    kill -0 "$kpid" 2>/dev/null || break
    sleep 0.1
done
el=$(($(now_ms) - t0))
exec 7>&-
if kill -0 "$kpid" 2>/dev/null; then
    kill "$kpid"
    wait "$kpid" 2>/dev/null
    fail "keep-alive: idle connection still open after 10 s (keepalive: 2s)"
fi
wait "$kpid" 2>/dev/null
[ "$el" -ge 1000 ] || fail "keep-alive: idle connection closed after ${el} ms, before the 2 s keep-alive timeout"
[ "$el" -le 5000 ] || fail "keep-alive: idle connection closed after ${el} ms, expected ~2 s"
pass "idle keep-alive connection closed after ${el} ms"

# --- upstream slower than upstream_read: 1s -> 504 ---------------------------------
stop_bg db || fail "db-service did not exit 0"
start_bg db-slow "$BIN_DIR/db-service" --listen "127.0.0.1:$DB_PORT" --log "$GW_UPSTREAM_LOG" --delay-ms 3000
wait_port "$DB_PORT" || fail "slow db-service did not start"
t0=$(now_ms)
code=$(gw_curl attestor1 /slow-upstream)
el=$(($(now_ms) - t0))
expect_eq "$code" 504 "upstream answering after 3 s with upstream_read: 1s"
[ "$el" -le 2500 ] || fail "504 came after ${el} ms, expected ~1 s"
pass "slow upstream: 504 after ${el} ms"

# --- upstream down -> 502 at once ----------------------------------------------------
stop_bg db-slow || fail "slow db-service did not exit 0"
t0=$(now_ms)
code=$(gw_curl attestor1 /upstream-down)
el=$(($(now_ms) - t0))
expect_eq "$code" 502 "upstream down"
[ "$el" -lt 1000 ] || fail "502 came after ${el} ms, expected at once (< 1 s)"
pass "upstream down: 502 after ${el} ms"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
check_sanitizers
pass "gateway timeouts"
