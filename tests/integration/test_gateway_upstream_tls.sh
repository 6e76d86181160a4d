#!/usr/bin/env bash
# TLS to the upstream (upstream.tls): db-service serves HTTPS with a
# certificate for db.internal / 127.0.0.1 issued by server-ca.
#  - GET, a chunked POST and a Content-Length POST reach it intact over TLS
#    (db-service reports the TLS version it saw), identity headers included;
#  - upstream.tls.ca that does not verify it -> 502, one error-log line naming
#    the upstream (host:port), the failure and OpenSSL's verify result
#    ("certificate verify failed (unable to get local issuer certificate)"),
#    nothing reaches it;
#  - upstream.tls.server_name it does not match -> 502, logged with the verify
#    result "hostname mismatch"; one it matches -> 200 and that name is the
#    SNI the upstream saw;
#  - db-service requiring a client certificate: without upstream.tls
#    certificate/key -> 502; with them the upstream sees the gateway's CN.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
UP=$TEST_TMPDIR/up
gw_make_leaf "$UP" db-server db.internal server-ca "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:db.internal, IP:127.0.0.1"
cat "$UP/db-server.crt" "$GW_PKI/server-ca.crt" >"$UP/db-server.bundle.crt"
gw_make_leaf "$UP" gw-client mtlsgate-gateway client-ca "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth"
[ "$(stat -c %a "$UP/gw-client.key")" = 600 ] || fail "test setup: gw-client.key is not 0600"

DB_TLS=(--tls-cert "$UP/db-server.bundle.crt" --tls-key "$UP/db-server.key")
gw_start_db "${DB_TLS[@]}"

run=0
# start_with NAME UPSTREAM_TLS_LINES: (re)starts the gateway with these
# lines under upstream.tls.
start_with() {
    local name=$1 tls_lines=$2
    [ -z "${GW_RUNNING:-}" ] || stop_bg "$GW_RUNNING" || fail "mtlsgate ($GW_RUNNING) did not exit 0"
    gw_write_config "$GW_CONF" upstream_extra="  tls:
    enabled: true
$tls_lines"
    gw_start_gateway "$GW_CONF" "$name"
    GW_RUNNING=$name
}

# --- plain verification against root.crt, default server name (the IP) ---------------
start_with gw-ok "    ca: $GW_PKI/root.crt"
code=$(gw_curl attestor1 /hello?x=1) || fail "GET over a TLS upstream: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "GET over a TLS upstream"
expect_eq "$(gw_up .path)" "/hello?x=1" "path seen by the TLS upstream"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "identity seen by the TLS upstream"
case "$(gw_up .tls.version)" in
TLSv1.2 | TLSv1.3) ;;
*) fail "the upstream did not see a TLS connection: tls=$(gw_up .tls)" ;;
esac
expect_eq "$(gw_up .tls.client_cn)" null "client certificate at the upstream (none configured)"
pass "GET through a TLS upstream ($(gw_up .tls.version)), identity headers intact"

head -c 300000 /dev/urandom >"$TEST_TMPDIR/body.bin"
want=$(sha256sum <"$TEST_TMPDIR/body.bin" | cut -d' ' -f1)
code=$(gw_curl attestor1 /attestations -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TEST_TMPDIR/body.bin") ||
    fail "chunked POST over a TLS upstream: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "chunked POST over a TLS upstream"
expect_eq "$(gw_up .method)" POST "method seen upstream"
expect_eq "$(gw_up .headers[\"transfer-encoding\"])" chunked "framing seen upstream"
expect_eq "$(gw_up .body_bytes)" 300000 "chunked body length seen upstream"
expect_eq "$(gw_up .body_sha256)" "$want" "chunked body sha256 seen upstream"
code=$(gw_curl attestor1 /attestations -H 'Content-Type: application/octet-stream' \
    --data-binary @"$TEST_TMPDIR/body.bin") || fail "POST over a TLS upstream: curl failed"
expect_eq "$code" 200 "Content-Length POST over a TLS upstream"
expect_eq "$(gw_up .body_sha256)" "$want" "Content-Length body sha256 seen upstream"
grep -q '^POST /attestations identity=svc-attestor-1 tls_cn=-$' "$GW_UPSTREAM_LOG" ||
    fail "db-service log has no TLS POST line: $(tail -3 "$GW_UPSTREAM_LOG")"
pass "chunked and Content-Length POSTs (300 kB) reach the TLS upstream intact"

# --- a CA that does not verify the upstream -> 502 ----------------------------------------
start_with gw-badca "    ca: $GW_PKI/other-root-ca.crt"
before=$(upstream_count)
mark=$(gw_log_mark)
code=$(gw_curl attestor1 /wrong-ca)
expect_eq "$code" 502 "upstream certificate from a CA not in upstream.tls.ca"
gw_wait_log_since "$mark" 'verify failed|certificate verify|unable to get (local )?issuer' 5 ||
    fail "no error-log line naming the upstream verification failure: $(gw_log_since "$mark" | head -5)"
# One line: the peer, the TLS failure, and X509_verify_cert_error_string of
# SSL_get_verify_result in parentheses.
want="upstream 127.0.0.1:$DB_PORT: TLS handshake failed: certificate verify failed (unable to get local issuer certificate)"
gw_log_since "$mark" | grep -qF "$want" ||
    fail "the error log does not say '$want': $(gw_log_since "$mark" | grep -i 'verify' | head -3)"
expect_eq "$(upstream_count)" "$before" "requests that reached the upstream through an unverified TLS connection"
wait_log "$TEST_TMPDIR/db.log" 'received fatal alert' 5 ||
    fail "db-service saw no alert from the gateway: $(tail -3 "$TEST_TMPDIR/db.log")"
pass "wrong upstream.tls.ca: 502, logged as $(gw_log_since "$mark" | grep -Eio 'certificate verify failed|unable to get[a-z ]*' | head -1)"

# --- server_name ------------------------------------------------------------------------------
start_with gw-badname "    ca: $GW_PKI/root.crt
    server_name: wrong.example"
before=$(upstream_count)
mark=$(gw_log_mark)
code=$(gw_curl attestor1 /wrong-name)
expect_eq "$code" 502 "upstream certificate not valid for upstream.tls.server_name"
gw_wait_log_since "$mark" 'verify failed|hostname mismatch' 5 ||
    fail "no error-log line about the name mismatch: $(gw_log_since "$mark" | head -5)"
want="upstream 127.0.0.1:$DB_PORT: TLS handshake failed: certificate verify failed (hostname mismatch)"
gw_log_since "$mark" | grep -qF "$want" ||
    fail "the error log does not say '$want': $(gw_log_since "$mark" | grep -i 'verify' | head -3)"
expect_eq "$(upstream_count)" "$before" "requests that reached an upstream with the wrong name"

start_with gw-goodname "    ca: $GW_PKI/root.crt
    server_name: db.internal"
code=$(gw_curl attestor1 /right-name) || fail "server_name db.internal: curl failed"
expect_eq "$code" 200 "upstream.tls.server_name matching the upstream certificate"
expect_eq "$(gw_up .tls.sni)" db.internal "SNI seen by the upstream"
pass "server_name: a mismatch is a 502; db.internal is sent as SNI and verified"

# --- the gateway's own client certificate -------------------------------------------------------
stop_bg db || fail "db-service did not exit 0"
mv "$TEST_TMPDIR/db.log" "$TEST_TMPDIR/db-plain.log"
gw_start_db "${DB_TLS[@]}" --tls-client-ca "$GW_PKI/client-chain.crt"
before=$(upstream_count)
code=$(gw_curl attestor1 /no-client-cert)
expect_eq "$code" 502 "upstream requiring a client certificate, none configured"
expect_eq "$(upstream_count)" "$before" "requests that reached an upstream requiring a client certificate"
wait_log "$TEST_TMPDIR/db.log" 'sent fatal alert' 5 ||
    fail "db-service did not refuse the certificate-less handshake: $(tail -3 "$TEST_TMPDIR/db.log")"

start_with gw-client "    ca: $GW_PKI/root.crt
    certificate: $UP/gw-client.crt
    key: $UP/gw-client.key"
code=$(gw_curl attestor1 /with-client-cert) || fail "with the gateway's client certificate: curl failed"
expect_eq "$code" 200 "upstream requiring a client certificate, gateway certificate configured"
expect_eq "$(gw_up .tls.client_cn)" mtlsgate-gateway "client certificate CN seen by the upstream"
expect_eq "$(gw_up '.headers["x-client-cn"]')" attestor1 "X-Client-CN (the attestor, not the gateway)"
grep -q '^GET /with-client-cert identity=svc-attestor-1 tls_cn=mtlsgate-gateway$' "$GW_UPSTREAM_LOG" ||
    fail "db-service log does not show the gateway's CN: $(tail -2 "$GW_UPSTREAM_LOG")"
pass "with upstream.tls.certificate/key the upstream sees CN=mtlsgate-gateway"

stop_bg "$GW_RUNNING" || fail "mtlsgate did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway upstream TLS"
