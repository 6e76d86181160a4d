#!/usr/bin/env bash
# mtlsgate's HTTP/1.1 front: malformed requests, sent raw over an mTLS
# connection (openssl s_client), get their status and close the connection,
# and the upstream sees nothing of them; 100 requests on one keep-alive
# connection and pipelined requests in one write are answered in order.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF" limits="{ max_header_size: 4k, max_body_size: 1k }"
gw_start

GW_RAW_TIMEOUT=10
R=$TEST_TMPDIR/raw
mkdir -p "$R"

# Sanity: a well-formed raw request works, so the failures below are about
# the request, not the client.
printf 'GET /raw-ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >"$R/ok"
out=$(gw_raw attestor1 "$R/ok")
expect_contains "$(head -1 <<<"$out")" "HTTP/1.1 200" "well-formed raw request"
expect_contains "$out" '"path":"/raw-ok"' "well-formed raw request body"
expect_eq "$(upstream_count)" 1 "upstream after the well-formed request"

# malformed NAME STATUS: sends $R/NAME, expects "HTTP/1.1 STATUS" as the first
# line, the connection closed by the gateway, and nothing new upstream.
malformed() {
    local name=$1 status=$2 out rc first before
    before=$(upstream_count)
    out=$(gw_raw attestor1 "$R/$name")
    rc=$?
    first=$(head -1 <<<"$out" | tr -d '\r')
    [ "$rc" -ne 124 ] || fail "$name: the gateway kept the connection open after answering '$first'"
    case "$first" in
    "HTTP/1.1 $status "* | "HTTP/1.1 $status") ;;
    *) fail "$name: expected 'HTTP/1.1 $status', got '${first:-nothing (connection closed)}'" ;;
    esac
    sleep 0.2
    expect_eq "$(upstream_count)" "$before" "$name: requests seen by the upstream"
    pass "$name -> $status, nothing upstream"
}

H='Host: localhost\r\n'
printf "POST /cl-te HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" >"$R/cl-and-te"
printf "POST /te-cl HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" >"$R/te-and-cl"
printf "POST /dup-cl HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" >"$R/duplicate-cl"
printf "POST /dup-cl2 HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello" >"$R/cl-list"
printf "POST /chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" >"$R/bad-chunk-size"
printf "POST /chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n" >"$R/negative-chunk-size"
printf "POST /chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" >"$R/chunk-without-crlf"
printf "POST /chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n" >"$R/chunk-size-overflow"
printf "GET /fold HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n" >"$R/obs-fold"
printf "GET /nul HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n" >"$R/nul-in-header"
printf "GET /cr HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n" >"$R/bare-cr"
printf "GET /lf HTTP/1.1\n${H}\n" >"$R/bare-lf"
printf "GET /sp HTTP/1.1\r\n${H}X-A : b\r\n\r\n" >"$R/space-before-colon"
printf "GET /nohost HTTP/1.1\r\n\r\n" >"$R/no-host"
printf "GET /twohosts HTTP/1.1\r\n${H}${H}\r\n" >"$R/two-hosts"
printf "GET /v12 HTTP/1.2\r\n${H}\r\n" >"$R/http-1.2"
{ printf "GET /big HTTP/1.1\r\n${H}X-Big: "; head -c 6000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$R/header-too-large"
{ printf "GET /many HTTP/1.1\r\n${H}"; for i in $(seq 1 150); do printf 'X-H%d: v\r\n' "$i"; done; printf '\r\n'; } >"$R/too-many-headers"
printf "POST /attestations HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n" >"$R/body-over-limit"

malformed cl-and-te 400
malformed te-and-cl 400
malformed duplicate-cl 400
malformed cl-list 400
malformed bad-chunk-size 400
malformed negative-chunk-size 400
malformed chunk-without-crlf 400
malformed chunk-size-overflow 400
malformed obs-fold 400
malformed nul-in-header 400
malformed bare-cr 400
malformed bare-lf 400
malformed space-before-colon 400
malformed no-host 400
malformed two-hosts 400
malformed http-1.2 505
malformed header-too-large 431
malformed too-many-headers 431
malformed body-over-limit 413

# A chunked body that grows past max_body_size (1k): 413 too, and the
# upstream never gets a complete request.
head -c 8192 /dev/urandom >"$TEST_TMPDIR/8k.bin"
before=$(upstream_count)
code=$(gw_curl attestor1 /attestations -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMPDIR/8k.bin")
expect_eq "$code" 413 "chunked body over limits.max_body_size"
sleep 0.2
expect_eq "$(upstream_count)" "$before" "chunked body over the limit: complete requests upstream"
# and a body within the limit still passes
head -c 1000 /dev/urandom >"$TEST_TMPDIR/1000.bin"
code=$(gw_curl attestor1 /attestations --data-binary @"$TEST_TMPDIR/1000.bin") || fail "1000-byte POST: curl failed"
expect_eq "$code" 200 "POST of 1000 bytes with max_body_size 1k"
pass "chunked body over the limit -> 413; within the limit -> 200"

# --- 100 requests on one keep-alive connection ---------------------------------------
before=$(upstream_count)
mkdir -p "$TEST_TMPDIR/ka"
curl -sS --max-time 60 --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
    --key "$GW_PKI/attestor1.key" -w '%{http_code} %{num_connects}\n' \
    -o "$TEST_TMPDIR/ka/r#1" "https://localhost:$GW_PORT/seq/[1-100]" \
    >"$TEST_TMPDIR/ka.txt" 2>>"$TEST_TMPDIR/curl.err" || fail "keep-alive run: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$(wc -l <"$TEST_TMPDIR/ka.txt" | tr -d ' ')" 100 "keep-alive: transfers"
expect_eq "$(awk '$1 != 200' "$TEST_TMPDIR/ka.txt" | wc -l | tr -d ' ')" 0 "keep-alive: non-200 answers"
expect_eq "$(awk '{s += $2} END {print s}' "$TEST_TMPDIR/ka.txt")" 1 "keep-alive: TCP connections for 100 requests"
for i in $(seq 1 100); do
    p=$(jq -r .path <"$TEST_TMPDIR/ka/r$i" 2>/dev/null)
    [ "$p" = "/seq/$i" ] || fail "keep-alive: answer $i is for '$p', expected /seq/$i"
done
expect_eq "$(upstream_count)" $((before + 100)) "keep-alive: requests upstream"
pass "100 requests on one keep-alive connection, all 200, in order"

# --- pipelining: several requests in one write ---------------------------------------
before=$(upstream_count)
printf "GET /first HTTP/1.1\r\n${H}\r\nGET /second HTTP/1.1\r\n${H}Connection: close\r\n\r\n" >"$R/pipe2"
[ "$(wc -c <"$R/pipe2")" -lt 4096 ] || fail "pipelined requests must fit one s_client read"
out=$(gw_raw attestor1 "$R/pipe2")
expect_eq "$(grep -c '^HTTP/1.1 200' <<<"$out")" 2 "pipelined pair: 200 answers"
expect_eq "$(grep -o '"path":"[^"]*"' <<<"$out" | tr '\n' ' ')" '"path":"/first" "path":"/second" ' \
    "pipelined pair: answer order"
expect_eq "$(upstream_count)" $((before + 2)) "pipelined pair: requests upstream"
pass "two pipelined requests in one write answered in order"

before=$(upstream_count)
{
    for i in $(seq 1 19); do printf "GET /p/%d HTTP/1.1\r\n${H}\r\n" "$i"; done
    printf "POST /p/20 HTTP/1.1\r\n${H}Content-Length: 3\r\nConnection: close\r\n\r\nabc"
} >"$R/pipe20"
out=$(gw_raw attestor1 "$R/pipe20")
expect_eq "$(grep -c '^HTTP/1.1 200' <<<"$out")" 20 "20 pipelined: 200 answers"
want=$(for i in $(seq 1 20); do printf '"path":"/p/%d" ' "$i"; done)
expect_eq "$(grep -o '"path":"[^"]*"' <<<"$out" | tr '\n' ' ')" "$want" "20 pipelined: answer order"
expect_eq "$(upstream_count)" $((before + 20)) "20 pipelined: requests upstream"
pass "20 pipelined requests in one write answered in order"

# A malformed request after a good one on the same connection: the good one is
# answered, then the 400, and the bad one never reaches the upstream.
before=$(upstream_count)
printf "GET /good HTTP/1.1\r\n${H}\r\nGET /bad HTTP/1.1\r\n${H}X-A: a\r\n folded\r\n\r\n" >"$R/good-then-bad"
out=$(gw_raw attestor1 "$R/good-then-bad")
expect_eq "$(grep -Eo '^HTTP/1.1 [0-9]+' <<<"$out" | tr '\n' ' ')" "HTTP/1.1 200 HTTP/1.1 400 " \
    "good then malformed on one connection"
sleep 0.2
expect_eq "$(upstream_count)" $((before + 1)) "good then malformed: requests upstream"
pass "a malformed request after a good one: 200 then 400, only the good one upstream"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway http"
