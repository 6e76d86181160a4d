#!/usr/bin/env bash
# The admin listener of a real mtlsgate in front of db-service:
#  - /healthz answers 200 "ok"; /readyz 200 while db-service is up, and 503
#    naming the upstream within a few seconds after db-service stops (while
#    /healthz stays 200); unknown paths 404, other methods 405;
#  - /metrics is the Prometheus text format (Content-Type 0.0.4) and passes
#    `promtool check metrics`; after one admitted request (attestor1) and one
#    refused handshake (the expired certificate) it counts
#    handshakes{result="refused",reason="expired"} 1, every other refusal
#    (protocol too, after three bare TCP connects that send nothing)
#    reason 0; two PUTs of attestor2 over one connection (403) count as
#    requests_refused{reason="forbidden"} 2, not as refused handshakes;
#    requests{class="2xx",identity="svc-attestor-1"} 1; it
#    gives the expiry of the server certificate, of client-ca and of the root
#    (the values openssl reads from the files) and the CRL's nextUpdate;
#  - a SIGHUP reload is counted (reloads_total{result="ok"} 1, generation 2);
#  - a reload to another (reachable) upstream makes /readyz 200 within 1 s
#    (the upstreams are probed at the reload); until then /readyz says that
#    its result predates the reload;
#  - SIGTERM still ends mtlsgate with status 0.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

command -v promtool >/dev/null 2>&1 ||
    fail "promtool is required (Debian package prometheus; scripts/install-deps.sh test)"

gw_make_pki
gw_pick_ports
gw_write_config "$GW_CONF" extra="admin:
  listen: \"127.0.0.1:$ADMIN_PORT\""
gw_start

# proxy/main.c starts the listener before the workers: it must be up by now.
wait_port "$ADMIN_PORT" 5 ||
    fail "admin.listen 127.0.0.1:$ADMIN_PORT: nothing listens after mtlsgate started: $(tail -5 "$GW_LOG")"
wait_log "$GW_LOG" "admin listener on 127.0.0.1:$ADMIN_PORT" 5 ||
    fail "no 'admin listener on 127.0.0.1:$ADMIN_PORT' line in the log: $(tail -5 "$GW_LOG")"
ADMIN=http://127.0.0.1:$ADMIN_PORT

# admin_get PATH [CURL ARGS]... - prints the status; body in $TEST_TMPDIR/admin.body,
# headers in $TEST_TMPDIR/admin.headers.
admin_get() {
    local path=$1
    shift
    curl -sS --max-time 5 -o "$TEST_TMPDIR/admin.body" -D "$TEST_TMPDIR/admin.headers" \
        -w '%{http_code}' "$@" "$ADMIN$path" 2>>"$TEST_TMPDIR/curl.err"
}
admin_body() { cat "$TEST_TMPDIR/admin.body"; }

# wait_status PATH STATUS SECS - polls until PATH answers STATUS.
wait_status() {
    local path=$1 want=$2 secs=$3 i code=
    for i in $(seq 1 $((secs * 5))); do
        code=$(admin_get "$path")
        [ "$code" = "$want" ] && return 0
        sleep 0.2
    done
    echo "$code"
    return 1
}

# --- health, readiness, routing ---------------------------------------------
code=$(admin_get /healthz) || fail "/healthz: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "/healthz status"
expect_eq "$(admin_body)" ok "/healthz body"
got=$(wait_status /readyz 200 10) ||
    fail "/readyz did not become 200 with db-service up (last $got: $(admin_body))"
expect_contains "$(admin_body)" "1 of 1 upstream servers reachable" "/readyz body"
pass "/healthz 200 ok; /readyz 200 ($(admin_body))"

expect_eq "$(admin_get /nope)" 404 "GET /nope"
expect_eq "$(admin_get /metrics -X POST)" 405 "POST /metrics"
grep -qi '^Allow: GET, HEAD' "$TEST_TMPDIR/admin.headers" || fail "405 without Allow: $(cat "$TEST_TMPDIR/admin.headers")"
pass "unknown path 404, POST 405 with Allow"

# --- one admitted request, one refused handshake -----------------------------
code=$(gw_curl attestor1 /attestations) || fail "attestor1: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "attestor1 request through the gateway"
code=$(gw_curl expired /refused)
rc=$?
[ "$rc" -ne 0 ] || fail "the expired certificate was admitted (HTTP $code)"
expect_eq "$code" 000 "expired certificate: HTTP status"
# attestor2 may not PUT: two 403s over one keep-alive connection.
code=$(gw_curl attestor2 /admin -X PUT -o /dev/null "https://localhost:$GW_PORT/admin2")
expect_eq "$code" 403403 "attestor2 PUT twice on one connection"
expect_eq "$(upstream_count)" 1 "requests that reached db-service"
# A bare TCP connect that closes without a byte (a load balancer's TCP check)
# is not a refused handshake: reason "protocol" must stay 0 below.
for i in 1 2 3; do
    (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null || fail "TCP connect to the gateway"
done

# metric NAME{LABELS} - the value of that exact series in the last scrape.
metric() {
    awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print "absent" }' \
        "$TEST_TMPDIR/metrics.txt"
}
scrape() {
    local code
    code=$(admin_get /metrics) || fail "/metrics: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
    expect_eq "$code" 200 "/metrics status"
    cp "$TEST_TMPDIR/admin.body" "$TEST_TMPDIR/metrics.txt"
}

# The worker counts the refusal right after the alert: allow it a moment.
for i in $(seq 1 25); do
    scrape
    [ "$(metric 'mtlsgate_handshakes_total{result="refused",reason="expired"}')" = 1 ] &&
        [ "$(metric 'mtlsgate_requests_refused_total{reason="forbidden"}')" = 2 ] &&
        [ "$(metric 'mtlsgate_requests_total{class="2xx",identity="svc-attestor-1"}')" = 1 ] && break
    sleep 0.2
done
grep -qi '^Content-Type: text/plain; version=0.0.4' "$TEST_TMPDIR/admin.headers" ||
    fail "/metrics Content-Type: $(grep -i '^content-type' "$TEST_TMPDIR/admin.headers")"
out=$(promtool check metrics <"$TEST_TMPDIR/metrics.txt" 2>&1) ||
    fail "promtool check metrics: $out"
pass "/metrics passes promtool check metrics"

expect_eq "$(metric 'mtlsgate_handshakes_total{result="refused",reason="expired"}')" 1 \
    "refused handshakes, reason expired"
for reason in no_certificate untrusted_issuer not_yet_valid revoked bad_usage bad_subject \
    protocol; do
    expect_eq "$(metric "mtlsgate_handshakes_total{result=\"refused\",reason=\"$reason\"}")" 0 \
        "refused handshakes, reason $reason"
done
# Two requests refused for what they asked, on one connection (one
# handshake): counted as requests, not as refused handshakes.
for reason in unknown_identity forbidden; do
    expect_eq "$(metric "mtlsgate_handshakes_total{result=\"refused\",reason=\"$reason\"}")" \
        absent "handshakes_total has no reason $reason"
done
expect_eq "$(metric 'mtlsgate_requests_refused_total{reason="forbidden"}')" 2 \
    "requests refused, reason forbidden"
expect_eq "$(metric 'mtlsgate_requests_refused_total{reason="unknown_identity"}')" 0 \
    "requests refused, reason unknown_identity"
ok=$(metric 'mtlsgate_handshakes_total{result="ok"}')
[ "$ok" != absent ] && [ "$ok" -ge 1 ] || fail "admitted handshakes: $ok"
expect_eq "$(metric 'mtlsgate_requests_total{class="2xx",identity="svc-attestor-1"}')" 1 \
    "2xx requests of svc-attestor-1"
expect_eq "$(metric 'mtlsgate_requests_total{class="4xx",identity="svc-attestor-2"}')" 2 \
    "4xx requests of svc-attestor-2"
expect_eq "$(grep -c '^mtlsgate_requests_total{' "$TEST_TMPDIR/metrics.txt")" 2 \
    "request series (only svc-attestor-1 2xx and svc-attestor-2 4xx happened)"
expect_eq "$(metric mtlsgate_up)" 1 "mtlsgate_up"
expect_eq "$(metric 'mtlsgate_reloads_total{result="ok"}')" 0 "reloads ok before any reload"
expect_eq "$(metric mtlsgate_config_generation)" 1 "config generation at start"
[ "$(metric mtlsgate_bytes_sent_total)" -gt 0 ] || fail "bytes sent: $(metric mtlsgate_bytes_sent_total)"
expect_eq "$(metric mtlsgate_upstream_latency_seconds_count)" 1 "upstream latency observations"
pass "handshakes refused/expired 1 (other reasons 0), requests 2xx/svc-attestor-1 1, latency count 1"

# Resumption: the session cache gauge and the resumed counter.
expect_eq "$(metric mtlsgate_handshakes_resumed_total)" 0 "resumed handshakes before any resumption"
n=$(metric mtlsgate_tls_session_cache_sessions)
[ "$n" != absent ] && [ "$n" -ge 1 ] || fail "session cache gauge after admitted TLS 1.3 handshakes: $n"
sc() {
    printf 'GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost -tls1_3 \
            -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
            -nocommands -ign_eof "$@" 2>&1
}
sc -sess_out "$TEST_TMPDIR/m.sess" >"$TEST_TMPDIR/sc1.out"
sc -sess_in "$TEST_TMPDIR/m.sess" >"$TEST_TMPDIR/sc2.out"
grep -q 'Reused, TLSv1.3' "$TEST_TMPDIR/sc2.out" || fail "resumption for the metrics: $(grep -E '(New|Reused),|alert' "$TEST_TMPDIR/sc2.out")"
scrape
expect_eq "$(metric mtlsgate_handshakes_resumed_total)" 1 "resumed handshakes after one resumption"
n2=$(metric mtlsgate_tls_session_cache_sessions)
[ "$n2" -gt "$n" ] || fail "session cache gauge did not grow with new sessions: $n -> $n2"
pass "mtlsgate_handshakes_resumed_total counts a resumption; mtlsgate_tls_session_cache_sessions grows ($n -> $n2)"

# Expiry gauges against what openssl reads from the same files.
enddate() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
expect_eq "$(metric mtlsgate_server_certificate_expiry_timestamp_seconds)" \
    "$(enddate "$GW_PKI/gateway.crt")" "server certificate expiry"
grep -E '^mtlsgate_ca_certificate_expiry_timestamp_seconds\{kind="intermediate",' \
    "$TEST_TMPDIR/metrics.txt" | grep -q " $(enddate "$GW_PKI/client-ca.crt")\$" ||
    fail "no intermediate expiry for client-ca: $(grep '^mtlsgate_ca_cert' "$TEST_TMPDIR/metrics.txt")"
grep -E '^mtlsgate_ca_certificate_expiry_timestamp_seconds\{kind="root",' \
    "$TEST_TMPDIR/metrics.txt" | grep -q " $(enddate "$GW_PKI/root.crt")\$" ||
    fail "no root expiry: $(grep '^mtlsgate_ca_cert' "$TEST_TMPDIR/metrics.txt")"
next=$(date -u -d "$(openssl crl -in "$GW_PKI/client-ca.crl" -noout -nextupdate | cut -d= -f2)" +%s)
grep -E '^mtlsgate_crl_next_update_timestamp_seconds\{issuer=".*"\} ' "$TEST_TMPDIR/metrics.txt" |
    grep -q " $next\$" ||
    fail "CRL nextUpdate $next not exported: $(grep '^mtlsgate_crl' "$TEST_TMPDIR/metrics.txt")"
expect_eq "$(metric mtlsgate_crls_past_next_update)" 0 "stale CRLs"
pass "expiry of the server certificate, client-ca, root and the CRL's nextUpdate exported"

# --- a reload is counted -----------------------------------------------------
mark=$(gw_log_mark)
kill -HUP "$(bg_pid "$GW_NAME")"
gw_wait_log_since "$mark" "generation 2" 10 || fail "no reload logged: $(gw_log_since "$mark" | head -5)"
scrape
expect_eq "$(metric 'mtlsgate_reloads_total{result="ok"}')" 1 "reloads ok after SIGHUP"
expect_eq "$(metric 'mtlsgate_reloads_total{result="failed"}')" 0 "reloads failed after SIGHUP"
expect_eq "$(metric mtlsgate_config_generation)" 2 "config generation after SIGHUP"
expect_eq "$(metric 'mtlsgate_handshakes_total{result="refused",reason="expired"}')" 1 \
    "refusals survive a reload"
pass "SIGHUP counted: reloads ok 1, generation 2"

# --- db-service goes away: not ready, still alive ----------------------------
stop_bg db || true
start=$(now_ms)
got=$(wait_status /readyz 503 8) ||
    fail "/readyz still $got 8 s after db-service stopped: $(admin_body)"
took=$(($(now_ms) - start))
why=$(admin_body)
expect_contains "$why" "127.0.0.1:$DB_PORT" "/readyz 503 body names the upstream"
expect_eq "$(admin_get /healthz)" 200 "/healthz with the upstream down"
pass "/readyz 503 after ${took} ms without db-service (${why:0:160}); /healthz 200"

# --- a reload to another upstream: probed at once, never shown as current before ----
DB2_PORT=$(free_ports 1 | tr -d ' ')
start_bg db2 "$BIN_DIR/db-service" --listen "127.0.0.1:$DB2_PORT"
wait_port "$DB2_PORT" 10 || fail "second db-service did not listen on $DB2_PORT"
gw_write_config "$GW_CONF" upstream="127.0.0.1:$DB2_PORT" extra="admin:
  listen: \"127.0.0.1:$ADMIN_PORT\""
mark=$(gw_log_mark)
kill -HUP "$(bg_pid "$GW_NAME")"
gw_wait_log_since "$mark" "generation 3" 10 || fail "no reload to generation 3: $(gw_log_since "$mark" | head -3)"
code=$(admin_get /readyz)
why=$(admin_body)
# Either the new round is over (200, the new upstream reachable), or the
# answer says its result predates the reload: never the old upstream's
# result as if it were the new configuration's.
if [ "$code" != 200 ]; then
    expect_contains "$why" "probed before the reload" "/readyz right after the reload ($code)"
fi
start=$(now_ms)
for i in $(seq 1 20); do
    code=$(admin_get /readyz)
    [ "$code" = 200 ] && break
    sleep 0.05
done
took=$(($(now_ms) - start))
expect_eq "$code" 200 "/readyz within 1 s of a reload to a reachable upstream (body: $(admin_body))"
expect_not_contains "$(admin_body)" "before the reload" "/readyz once the new round is over"
pass "reload to another upstream: /readyz 200 after ${took} ms (probed at the reload, not at the next tick)"
stop_bg db2 || true

# --- graceful stop ------------------------------------------------------------
kill -TERM "$(bg_pid "$GW_NAME")"
gw_wait_exit "$GW_NAME" 20 || fail "mtlsgate did not exit after SIGTERM"
expect_eq "$GW_EXIT_STATUS" 0 "mtlsgate exit status after SIGTERM"
check_sanitizers
pass "SIGTERM: exit 0"
