#!/usr/bin/env bash
# A client that half-closes TCP after its request (a FIN without TLS
# close_notify, as shutdown(SHUT_WR) under the TLS layer makes it) still gets
# its answer, then the gateway closes; sent by a python3 ssl client:
#  - a GET, a POST with a 5-byte body and a POST with a 1 MiB body, each
#    followed by the FIN: answered 200, then closed, the upstream saw the
#    whole body, and an access line is written (on a loaded machine the FIN
#    may be read after the answer was made: that answer is lost if the
#    gateway closes before it is written, as it did until 2026-11-22);
#  - two pipelined GETs, then the FIN: both answered, in order, the first
#    one without Connection: close;
#  - a body cut short by the FIN (Content-Length 100, 5 bytes sent): no
#    answer, the connection closed, and the request access-logged (499);
#  - a head cut short by the FIN: closed, nothing upstream;
#  - a FIN that arrives while an 8 MB answer is queued (the client has not
#    read yet): the whole answer is still delivered.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF"
gw_start
R=$TEST_TMPDIR/req
mkdir -p "$R"
H='Host: localhost\r\n'

# --- a GET, then the FIN ---------------------------------------------------------------
printf "GET /half-get HTTP/1.1\r\n${H}\r\n" >"$R/get"
mark=$(gw_log_mark)
out=$(gw_tls_halfclose attestor1 "$R/get")
expect_contains "$(head -1 <<<"$out")" "HTTP/1.1 200" "GET then FIN: answer (got: ${out:0:300})"
expect_contains "$out" '"path":"/half-get"' "GET then FIN: body"
# "Connection: close" only when the FIN arrived before the answer was made:
# the client's shutdown() is a second write that the gateway may read after
# answering (a loaded machine), and then the answer says keep-alive. Either
# way the gateway closes once the answer is out (no [timeout] below).
expect_not_contains "$out" "[timeout]" "GET then FIN: the gateway closes after answering"
gw_wait_log_since "$mark" 'method=GET path=/half-get status=200 ' ||
    fail "GET then FIN: no access line: $(gw_log_since "$mark")"
if gw_log_since "$mark" | grep -q 'client connection error'; then
    fail "GET then FIN: logged as a connection error: $(gw_log_since "$mark")"
fi
pass "GET then a FIN without close_notify: 200, access-logged, closed"

# --- POSTs with a body, then the FIN ---------------------------------------------------
printf "POST /attestations HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello" >"$R/post"
out=$(gw_tls_halfclose attestor1 "$R/post")
expect_contains "$(head -1 <<<"$out")" "HTTP/1.1 200" "POST then FIN: answer (got: ${out:0:300})"
expect_contains "$out" '"body_bytes":5,' "POST then FIN: the upstream got the body"
head -c 1048576 /dev/urandom >"$TEST_TMPDIR/1m.bin"
want=$(sha256sum <"$TEST_TMPDIR/1m.bin" | cut -d' ' -f1)
{ printf "POST /attestations/big HTTP/1.1\r\n${H}Content-Length: 1048576\r\n\r\n"; cat "$TEST_TMPDIR/1m.bin"; } >"$R/post-big"
out=$(gw_tls_halfclose attestor1 "$R/post-big")
expect_contains "$(head -1 <<<"$out")" "HTTP/1.1 200" "1 MiB POST then FIN: answer (got: ${out:0:300})"
expect_contains "$out" "\"body_sha256\":\"$want\"" "1 MiB POST then FIN: the upstream got the whole body"
pass "POSTs (5 B, 1 MiB) then a FIN: 200, the upstream got the whole body"

# --- two pipelined GETs, then the FIN --------------------------------------------------
printf "GET /pipe-1 HTTP/1.1\r\n${H}\r\nGET /pipe-2 HTTP/1.1\r\n${H}\r\n" >"$R/pipelined"
before=$(upstream_count)
out=$(gw_tls_halfclose attestor1 "$R/pipelined")
n=$(grep -c '^HTTP/1.1 200' <<<"$out")
expect_eq "$n" 2 "pipelined GETs then FIN: answers (got: ${out:0:600})"
p1=$(grep -bo '"path":"/pipe-1"' <<<"$out" | cut -d: -f1)
p2=$(grep -bo '"path":"/pipe-2"' <<<"$out" | cut -d: -f1)
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" -lt "$p2" ] || fail "pipelined GETs then FIN: not answered in order: $out"
# As above, "Connection: close" depends on when the FIN is read; never on
# the first answer, since the second request follows it.
ncl=$(grep -c '^Connection: close' <<<"$(tr -d '\r' <<<"$out")")
[ "$ncl" -le 1 ] || fail "pipelined GETs then FIN: $ncl answers with Connection: close"
s2=$(grep -bo '^HTTP/1.1 200' <<<"$out" | sed -n 2p | cut -d: -f1)
expect_not_contains "$(tr -d '\r' <<<"${out:0:${s2:-0}}")" "Connection: close" \
    "pipelined GETs then FIN: the first answer does not close"
expect_not_contains "$out" "[timeout]" "pipelined GETs then FIN: the gateway closes after answering"
expect_eq "$(upstream_count)" $((before + 2)) "pipelined GETs then FIN: requests upstream"
pass "two pipelined GETs then a FIN: both answered in order, then the close"

# --- a body cut short by the FIN ---------------------------------------------------------
printf "POST /attestations/cut HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\nhello" >"$R/cut-body"
mark=$(gw_log_mark)
out=$(gw_tls_halfclose attestor1 "$R/cut-body")
expect_not_contains "$out" "HTTP/1.1" "body cut by the FIN: no answer"
expect_not_contains "$out" "[timeout]" "body cut by the FIN: the gateway closes at once"
gw_wait_log_since "$mark" 'method=POST path=/attestations/cut status=499 ' ||
    fail "body cut by the FIN: no access line with 499: $(gw_log_since "$mark")"
pass "body cut short by a FIN: closed without an answer, access-logged as 499"

# --- a head cut short by the FIN -----------------------------------------------------------
printf "GET /cut-head HTTP/1.1\r\n${H}X-Partial: ab" >"$R/cut-head"
before=$(upstream_count)
out=$(gw_tls_halfclose attestor1 "$R/cut-head")
expect_not_contains "$out" "HTTP/1.1" "head cut by the FIN: no answer"
expect_not_contains "$out" "[timeout]" "head cut by the FIN: the gateway closes at once"
sleep 0.2
expect_eq "$(upstream_count)" "$before" "head cut by the FIN: requests upstream"
pass "head cut short by a FIN: closed, nothing upstream"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"

# --- the FIN arrives while a large answer is queued ----------------------------------------
# 8 MB from the upstream, the client reads nothing for 1 s (the gateway's output
# fills and the upstream is paused), then sends the FIN and reads everything.
BIG_PORT=$(free_ports 1 | tr -d ' ')
gw_start_raw_upstream big "$BIG_PORT" big-response "$TEST_TMPDIR/big-upstream.txt" 8000000
gw_write_config "$GW_CONF" servers="[\"127.0.0.1:$BIG_PORT\"]"
gw_start_gateway "$GW_CONF" gw2
printf "GET /big HTTP/1.1\r\n${H}\r\n" >"$R/big"
mark=$(gw_log_mark)
gw_tls_halfclose attestor1 "$R/big" 5 1 >"$TEST_TMPDIR/big.out"
head -1 "$TEST_TMPDIR/big.out" | grep -q '^HTTP/1.1 200' || fail "large answer, FIN while queued: no 200: $(head -c 300 "$TEST_TMPDIR/big.out")"
tail -c 20 "$TEST_TMPDIR/big.out" | grep -q 'timeout\|error' &&
    fail "large answer, FIN while queued: stalled or cut: $(tail -c 100 "$TEST_TMPDIR/big.out")"
body=$(($(wc -c <"$TEST_TMPDIR/big.out") - $(grep -b -m1 -a $'^\r$' "$TEST_TMPDIR/big.out" | cut -d: -f1) - 2))
expect_eq "$body" 8000000 "large answer, FIN while queued: body bytes received"
gw_wait_log_since "$mark" 'method=GET path=/big status=200 bytes=80000' ||
    fail "large answer, FIN while queued: no access line: $(gw_log_since "$mark")"
pass "FIN while an 8 MB answer is queued: the whole answer is delivered, then the close"

stop_bg gw2 || fail "mtlsgate did not exit 0 on SIGTERM"
check_sanitizers
pass "gateway client half-close"
