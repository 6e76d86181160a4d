#!/usr/bin/env bash
# mtlsgate admits attestor1 (openssl-CLI PKI) and forwards to db-service with
# the identity headers only the gateway sets; client-sent copies of those
# headers never reach the upstream; a 1 MB POST and a chunked POST arrive
# intact; TLS 1.2 and TLS 1.3 both work; hop-by-hop headers are dropped;
# "identities.unknown: cn" lets an unmapped CN through as itself; an answer the
# upstream sends chunked reaches the client intact; "http://host?q" reaches it
# as "/?q"; a certificate that expires
# while its keep-alive connection is open gets 403 on its next request there.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF"
gw_start

a1_sha=$(cert_sha256 "$GW_PKI/attestor1.crt")

# --- GET with the identity headers ------------------------------------------
code=$(gw_curl attestor1 "/records/42?x=1") || fail "GET: curl failed ($(tail -1 "$TEST_TMPDIR/curl.err"))"
expect_eq "$code" 200 "GET /records/42 as attestor1"
expect_eq "$(gw_up .method)" GET "upstream method"
expect_eq "$(gw_up .path)" "/records/42?x=1" "upstream request-target"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "X-Client-Identity"
expect_eq "$(gw_up '.headers["x-client-cn"]')" attestor1 "X-Client-CN"
expect_eq "$(gw_up '(.headers["x-client-cert-sha256"] // "") | ascii_downcase')" "$a1_sha" \
    "X-Client-Cert-Sha256 (sha256 of attestor1.crt DER)"
expect_eq "$(gw_up '.headers["x-forwarded-proto"]')" https "X-Forwarded-Proto"
expect_eq "$(gw_up '.headers["x-forwarded-for"]')" 127.0.0.1 "X-Forwarded-For"
rid=$(gw_up '.headers["x-request-id"] // ""')
[ -n "$rid" ] || fail "X-Request-Id missing upstream: $(cat "$GW_BODY")"
expect_eq "$(upstream_count)" 1 "requests seen by db-service"
expect_contains "$(cat "$GW_UPSTREAM_LOG")" "GET /records/42?x=1 identity=svc-attestor-1" "db-service log"
pass "GET forwarded with X-Client-Identity svc-attestor-1, CN, cert sha256, XFF, XFP, request id $rid"

# A second request gets a different request id.
code=$(gw_curl attestor1 /again) || fail "second GET: curl failed"
expect_eq "$code" 200 "second GET"
rid2=$(gw_up '.headers["x-request-id"] // ""')
[ -n "$rid2" ] && [ "$rid2" != "$rid" ] || fail "X-Request-Id not unique: '$rid' then '$rid2'"
pass "X-Request-Id differs per request"

# --- spoofed identity headers are removed, whatever their case --------------
code=$(gw_curl attestor1 /spoof \
    -H 'X-Client-Identity: admin' -H 'x-client-identity: admin2' \
    -H 'X-CLIENT-CN: root' -H 'X-Client-Cert-Sha256: 00ff' \
    -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: http' \
    -H 'X-Request-Id: forged-id') || fail "spoof: curl failed"
expect_eq "$code" 200 "GET with spoofed headers"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "X-Client-Identity after spoof"
expect_eq "$(gw_up '.headers["x-client-cn"]')" attestor1 "X-Client-CN after spoof"
expect_eq "$(gw_up '(.headers["x-client-cert-sha256"] // "") | ascii_downcase')" "$a1_sha" "cert sha256 after spoof"
expect_eq "$(gw_up '.headers["x-forwarded-for"]')" 127.0.0.1 "X-Forwarded-For after spoof"
expect_eq "$(gw_up '.headers["x-forwarded-proto"]')" https "X-Forwarded-Proto after spoof"
expect_not_contains "$(gw_up '.headers["x-request-id"]')" forged-id "X-Request-Id after spoof"
all=$(gw_up '.header_list | map(.[1]) | join("\n")')
for bad in admin admin2 root 00ff 6.6.6.6 forged-id; do
    if grep -qx -- "$bad" <<<"$all"; then
        fail "client-sent header value '$bad' reached the upstream: $(cat "$GW_BODY")"
    fi
done
expect_not_contains "$(cat "$GW_UPSTREAM_LOG")" "identity=admin" "db-service log after spoof"
pass "client-sent X-Client-*/X-Forwarded-*/X-Request-Id never reach the upstream"

# --- underscore look-alikes of the gateway's names are removed too ----------
# CGI/WSGI/PHP backends read X_Client_Identity and X-Client-Identity as the
# same HTTP_X_CLIENT_IDENTITY; other names with '_' are forwarded.
code=$(gw_curl attestor1 /spoof-underscore     -H 'X_Client_Identity: admin' -H 'x_client-cn: root' -H 'X_Client_Cert_Sha256: 00ff'     -H 'X_Forwarded_For: 6.6.6.6' -H 'X_Forwarded_Proto: http' -H 'X_Request_Id: forged-id'     -H 'X_Custom: kept') || fail "underscore spoof: curl failed"
expect_eq "$code" 200 "GET with underscore look-alike headers"
all=$(gw_up '.header_list | map(.[1]) | join("\n")')
for bad in admin root 00ff 6.6.6.6 http forged-id; do
    if grep -qx -- "$bad" <<<"$all"; then
        fail "client-sent underscore header value '$bad' reached the upstream: $(cat "$GW_BODY")"
    fi
done
expect_eq "$(gw_up '[.header_list[] | select(.[0] | test("_"))] | map(.[0]) | join(",")')" X_Custom \
    "header names with '_' that reached the upstream"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "X-Client-Identity after underscore spoof"
pass "X_Client_Identity and other underscore look-alikes never reach the upstream; X_Custom does"

# --- hop-by-hop headers (RFC 9110 7.6.1) --------------------------------------
code=$(gw_curl attestor1 /hop -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: secret' \
    -H 'Keep-Alive: timeout=5' -H 'Proxy-Connection: keep-alive' -H 'X-End-To-End: kept') \
    || fail "hop: curl failed"
expect_eq "$code" 200 "GET with hop-by-hop headers"
expect_eq "$(gw_up '.headers["x-hop"] // "absent"')" absent "X-Hop (named in Connection)"
expect_eq "$(gw_up '.headers["keep-alive"] // "absent"')" absent "Keep-Alive"
expect_eq "$(gw_up '.headers["proxy-connection"] // "absent"')" absent "Proxy-Connection"
expect_eq "$(gw_up '.headers["x-end-to-end"]')" kept "an end-to-end header"
pass "hop-by-hop headers dropped, end-to-end kept"

# --- 1 MB POST -----------------------------------------------------------------
head -c 1048576 /dev/urandom >"$TEST_TMPDIR/1m.bin"
want=$(sha256sum <"$TEST_TMPDIR/1m.bin" | cut -d' ' -f1)
code=$(gw_curl attestor1 /attestations --data-binary @"$TEST_TMPDIR/1m.bin" \
    -H 'Content-Type: application/octet-stream') || fail "1 MB POST: curl failed"
expect_eq "$code" 200 "1 MB POST"
expect_eq "$(gw_up .method)" POST "1 MB POST method"
expect_eq "$(gw_up .body_bytes)" 1048576 "1 MB POST body size upstream"
expect_eq "$(gw_up .body_sha256)" "$want" "1 MB POST body sha256 upstream"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "identity on the 1 MB POST"
pass "1 MB POST arrived intact"

# --- chunked POST ----------------------------------------------------------------
head -c 300000 /dev/urandom >"$TEST_TMPDIR/chunked.bin"
want=$(sha256sum <"$TEST_TMPDIR/chunked.bin" | cut -d' ' -f1)
code=$(gw_curl attestor1 /attestations -H 'Transfer-Encoding: chunked' \
    --data-binary @"$TEST_TMPDIR/chunked.bin") || fail "chunked POST: curl failed"
expect_eq "$code" 200 "chunked POST"
expect_eq "$(gw_up .body_bytes)" 300000 "chunked POST body size upstream"
expect_eq "$(gw_up .body_sha256)" "$want" "chunked POST body sha256 upstream"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "identity on the chunked POST"
pass "chunked POST arrived intact"

# --- TLS 1.2 and TLS 1.3 ----------------------------------------------------------
code=$(gw_curl attestor1 /tls12 --tlsv1.2 --tls-max 1.2 -v --stderr "$TEST_TMPDIR/tls12.err") \
    || fail "TLS 1.2: curl failed: $(grep -i 'curl:\|error' "$TEST_TMPDIR/tls12.err" | tail -2)"
expect_eq "$code" 200 "GET over TLS 1.2"
grep -q 'SSL connection using TLSv1.2' "$TEST_TMPDIR/tls12.err" || fail "curl did not negotiate TLS 1.2"
code=$(gw_curl attestor1 /tls13 --tlsv1.3 -v --stderr "$TEST_TMPDIR/tls13.err") || fail "TLS 1.3: curl failed"
expect_eq "$code" 200 "GET over TLS 1.3"
grep -q 'SSL connection using TLSv1.3' "$TEST_TMPDIR/tls13.err" || fail "curl did not negotiate TLS 1.3"
pass "TLS 1.2 and TLS 1.3 both admitted"

# --- access log ---------------------------------------------------------------------
wait_log "$GW_LOG" 'attestor1.*svc-attestor-1.*/tls13|/tls13.*svc-attestor-1' 5 ||
    fail "no access log line for /tls13 naming attestor1 and svc-attestor-1 in gw.log"
pass "access log names the CN and the identity"

# --- absolute-form targets: "http://host?q" means "/?q" -------------------------------
code=$(gw_curl attestor1 / --request-target "http://localhost:$GW_PORT?q=1") ||
    fail "absolute-form GET: curl failed ($(tail -1 "$TEST_TMPDIR/curl.err"))"
expect_eq "$code" 200 "GET http://localhost:PORT?q=1 (absolute-form, no path)"
expect_eq "$(gw_up .path)" "/?q=1" "upstream request-target of http://localhost:PORT?q=1"
pass "absolute-form target without a path but with a query: forwarded as /?q=1"

n=$(upstream_count)
expect_eq "$n" 10 "requests seen by db-service in total"

# --- a certificate that expires while its keep-alive connection is open ------------------
# attestor1 again, issued with `openssl ca` by the client intermediate, valid
# until 5 s from now: the request before its notAfter is served, the one after
# it on the same connection gets 403 (expired) and the connection closes.
command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
short=$TEST_TMPDIR/short
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$short.key" \
    -subj "/O=mtlsgate test/CN=attestor1" -out "$short.csr" 2>"$short.err" ||
    fail "openssl req: $(cat "$short.err")"
until_s=$(($(date +%s) + 5))
openssl ca -batch -config "$GW_PKI/ca/client-ca/ca.cnf" -in "$short.csr" -notext -preserveDN \
    -startdate "$(date -u -d @$((until_s - 3600)) +%Y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d @"$until_s" +%Y%m%d%H%M%SZ)" \
    -extfile "$GW_PKI/ca/ext.cnf" -extensions client -out "$short.crt" 2>"$short.err" ||
    fail "openssl ca (5 s certificate): $(cat "$short.err")"
cat "$short.crt" "$GW_PKI/client-ca.crt" >"$short.pem"
out=$(timeout 30 python3 - "$GW_PORT" "$short.pem" "$short.key" "$GW_PKI/root.crt" "$until_s" <<'PYEOF' 2>&1
import os, socket, ssl, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import expect_refused, fail, get

port, pem, key, root, until = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(root)
ctx.load_cert_chain(pem, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost")


status, _ = get(s, "/before-expiry")
if status != 200 or time.time() >= until:
    fail("before the certificate's notAfter: HTTP %d (%.1f s left)" % (status, until - time.time()))
time.sleep(max(0.0, until - time.time()) + 1.5)
expect_refused(s, "/after-expiry", "after the certificate's notAfter")
print("ok")
PYEOF
) || fail "expiring certificate on an open connection: $out"
wait_log "$GW_LOG" '403 .*client certificate no longer admitted: expired' 5 ||
    fail "no '403 ... no longer admitted: expired' line: $(grep -- after-expiry "$GW_LOG")"
pass "a certificate expiring on an open keep-alive connection: served before, 403 and closed after"

# --- identities.unknown: cn, and an upstream that answers chunked -------------------
stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM (status $?)"
DB2_PORT=$(free_ports 1 | tr -d ' ')
start_bg db2 "$BIN_DIR/db-service" --listen "127.0.0.1:$DB2_PORT" --chunked
wait_port "$DB2_PORT" || fail "db-service --chunked did not start"
GW_CONF_CN=$TEST_TMPDIR/gw-cn.yml
gw_write_config "$GW_CONF_CN" unknown=cn upstream="127.0.0.1:$DB2_PORT"
gw_start_gateway "$GW_CONF_CN" gw-cn
code=$(gw_curl unknown-cn /who) || fail "unknown CN with unknown: cn: curl failed"
expect_eq "$code" 200 "unknown CN with identities.unknown: cn"
expect_eq "$(gw_up '.headers["x-client-identity"]')" stranger "identity of an unmapped CN under unknown: cn"
expect_eq "$(gw_up '.headers["x-client-cn"]')" stranger "X-Client-CN of an unmapped CN"
code=$(gw_curl attestor1 /who) || fail "attestor1 with unknown: cn: curl failed"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "mapped CN still mapped under unknown: cn"
pass "identities.unknown: cn passes an unmapped CN as its own identity"
head -c 200000 /dev/urandom >"$TEST_TMPDIR/post2.bin"
want=$(sha256sum <"$TEST_TMPDIR/post2.bin" | cut -d' ' -f1)
code=$(gw_curl attestor1 /attestations --data-binary @"$TEST_TMPDIR/post2.bin") || fail "POST via chunked upstream: curl failed"
expect_eq "$code" 200 "POST answered chunked by the upstream"
expect_eq "$(gw_up .body_sha256)" "$want" "body sha256 relayed through a chunked answer"
pass "a chunked upstream answer is relayed intact"

stop_bg gw-cn || fail "mtlsgate (unknown: cn) did not exit 0 on SIGTERM"

# --- a client over IPv6 loopback: its address in X-Forwarded-For and the log -----------------
command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    P6=$(free_ports 1 | tr -d ' ')
    gw_write_config "$TEST_TMPDIR/gw6.yml" port="$P6"
    sed -i "s|^listen: .*|listen: [\"127.0.0.1:$P6\", \"[::1]:$P6\"]|" "$TEST_TMPDIR/gw6.yml"
    GW_PORT=$P6 gw_start_gateway "$TEST_TMPDIR/gw6.yml" gw6
    code=$(GW_PORT=$P6 gw_curl attestor1 /over-v6 --connect-to "localhost:$P6:[::1]:$P6") ||
        fail "request over ::1: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
    expect_eq "$code" 200 "request over ::1"
    expect_eq "$(gw_up '.headers["x-forwarded-for"]')" "::1" "X-Forwarded-For of a client on ::1"
    wait_log "$GW_LOG" 'client=\[::1\]:[0-9]+ .*path=/over-v6 status=200' 5 ||
        fail "access line of the ::1 client: $(grep over-v6 "$GW_LOG")"
    stop_bg gw6 || fail "mtlsgate on ::1 did not exit 0 on SIGTERM"
    pass "a client on ::1: X-Forwarded-For ::1, logged as [::1]:port"
else
    echo "skip: no IPv6 loopback here"
fi
stop_bg db2 || fail "db-service --chunked did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway admit"
