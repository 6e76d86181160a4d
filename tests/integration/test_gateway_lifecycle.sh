#!/usr/bin/env bash
# mtlsgate in production (issue 4): a SIGHUP that swaps the server
# certificate and adds a second client intermediate fails zero requests of a
# continuous client loop, and a client of the new intermediate is admitted
# after it; a broken config on SIGHUP leaves the old one serving and is
# logged; after a revocation and a reload, attestor2 is refused on a new
# handshake and on a resumed one; SIGTERM during a slow 10 MB upload lets it
# complete, then mtlsgate exits 0; `mtlsgate -s reload -c FILE` reloads the
# instance named by the pid file; SIGTERM while a client is in its handshake
# still answers the request it sends with its Finished, and the first request
# of a client admitted just before it.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
# The gateway reads its certificate, key and CRL from live/, so that they can
# be replaced in place like an operator would.
LIVE=$TEST_TMPDIR/live
mkdir -p "$LIVE"
cp "$GW_PKI/gateway.bundle.crt" "$GW_PKI/gateway.key" "$GW_PKI/client-ca.crl" "$LIVE/"
chmod 600 "$LIVE/gateway.key"
old_serial=$(openssl x509 -in "$GW_PKI/gateway.crt" -noout -serial | cut -d= -f2)
new_serial=$(gw_make_second_gateway_cert "$TEST_TMPDIR/gw2")
[ "$old_serial" != "$new_serial" ] || fail "test setup: the two gateway certificates have the same serial"

PIDFILE=$TEST_TMPDIR/mtlsgate.pid
conf() { # conf CLIENT_CA [more gw_write_config overrides]
    local ca=$1
    shift
    gw_write_config "$GW_CONF" certificate="$LIVE/gateway.bundle.crt" key="$LIVE/gateway.key" \
        client_ca="$ca" crl="$LIVE/client-ca.crl" \
        timeouts="{ drain: 30s, keepalive: 15s }" extra="pid_file: $PIDFILE" "$@"
}
conf "$GW_PKI/client-chain.crt"
gw_start
hup() { kill -HUP "$(bg_pid gw)" || fail "mtlsgate is gone (SIGHUP failed)"; }

code=$(gw_curl attestor1 /before) || fail "attestor1 before the reload: curl failed"
expect_eq "$code" 200 "attestor1 before the reload"
expect_eq "$(gw_served_serial)" "$old_serial" "served certificate before the reload"
code=$(gw_curl attestor3 /before)
[ "$code" = 000 ] || fail "attestor3 (client-ca2) admitted before client-ca2 was trusted (HTTP $code)"
pass "before the reload: old certificate served, attestor3 refused"

# --- SIGHUP under a continuous client loop -----------------------------------------
LOOP=$TEST_TMPDIR/loop.txt
KALOOP=$TEST_TMPDIR/kaloop.txt
: >"$LOOP"
(
    for i in $(seq 1 200); do
        c=$(curl -sS --max-time 10 --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
            --key "$GW_PKI/attestor1.key" -o /dev/null -w '%{http_code}' \
            "https://localhost:$GW_PORT/loop/$i" 2>>"$TEST_TMPDIR/loop.err")
        echo "$i ${c:-000} $?" >>"$LOOP"
    done
) &
loop_pid=$!
# One keep-alive connection spanning the reload: 60 requests at 20 per second.
curl -sS --max-time 60 --rate 20/s --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
    --key "$GW_PKI/attestor1.key" -o /dev/null -w '%{http_code}\n' \
    "https://localhost:$GW_PORT/ka/[1-60]" >"$KALOOP" 2>>"$TEST_TMPDIR/loop.err" &
ka_pid=$!

for i in $(seq 1 300); do
    [ "$(wc -l <"$LOOP")" -ge 50 ] && break
    sleep 0.05
done
[ "$(wc -l <"$LOOP")" -ge 50 ] || fail "client loop too slow: $(wc -l <"$LOOP") requests in 15 s"
mark=$(gw_log_mark)
cp "$TEST_TMPDIR/gw2/gateway.bundle.crt" "$LIVE/gateway.bundle.crt.new"
cp "$TEST_TMPDIR/gw2/gateway.key" "$LIVE/gateway.key.new"
mv "$LIVE/gateway.bundle.crt.new" "$LIVE/gateway.bundle.crt"
mv "$LIVE/gateway.key.new" "$LIVE/gateway.key"
conf "$GW_PKI/client-chain2.crt"
hup
at_reload=$(wc -l <"$LOOP")
served=""
for i in $(seq 1 50); do
    served=$(gw_served_serial)
    [ "$served" = "$new_serial" ] && break
    sleep 0.1
done
expect_eq "$served" "$new_serial" "served certificate after SIGHUP"
wait "$loop_pid"
wait "$ka_pid" || fail "keep-alive loop: curl failed: $(tail -2 "$TEST_TMPDIR/loop.err")"
expect_eq "$(wc -l <"$LOOP" | tr -d ' ')" 200 "client loop: requests made"
bad=$(awk '$2 != 200 || $3 != 0' "$LOOP")
[ -z "$bad" ] || fail "client loop: requests failed across the reload (n code curl_rc): $(head -5 <<<"$bad"); $(tail -3 "$TEST_TMPDIR/loop.err")"
expect_eq "$(wc -l <"$KALOOP" | tr -d ' ')" 60 "keep-alive loop: requests made"
expect_eq "$(grep -cv '^200$' "$KALOOP")" 0 "keep-alive loop: non-200 answers"
[ "$at_reload" -lt 200 ] || fail "the reload happened after the loop ended; the test proved nothing"
gw_wait_log_since "$mark" 'reload' 5 || fail "no log line about the reload"
pass "SIGHUP at request $at_reload of 200: zero failures (200 new connections + 60 on one keep-alive connection)"

code=$(gw_curl attestor3 /after) || fail "attestor3 after the reload: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "attestor3 (second client intermediate) after the reload"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-3 "attestor3 identity"
code=$(gw_curl attestor1 /after) || fail "attestor1 after the reload: curl failed"
expect_eq "$code" 200 "attestor1 (first client intermediate) after the reload"
pass "after the reload: new certificate served, attestor3 and attestor1 admitted"

# --- a broken config on SIGHUP: refused, logged, old one keeps serving ---------------
cp "$GW_CONF" "$TEST_TMPDIR/good.yml"
broken_reload() { # broken_reload WHAT ERE-naming-the-problem
    local what=$1 re=$2 mark code
    mark=$(gw_log_mark)
    hup
    gw_wait_log_since "$mark" "$re" 5 ||
        fail "broken config ($what) on SIGHUP: no log line naming /$re/; new lines: $(gw_log_since "$mark" | head -5)"
    sleep 0.3
    kill -0 "$(bg_pid gw)" 2>/dev/null || fail "mtlsgate exited on a broken config ($what): $(tail -5 "$GW_LOG")"
    code=$(gw_curl attestor3 /still) || fail "after a broken reload ($what): attestor3 refused"
    expect_eq "$code" 200 "attestor3 after a broken reload ($what)"
    expect_eq "$(gw_served_serial)" "$new_serial" "served certificate after a broken reload ($what)"
    pass "broken config ($what) on SIGHUP refused and logged; the previous one keeps serving"
}
sed 's/^workers: .*/workers: lots/' "$TEST_TMPDIR/good.yml" >"$GW_CONF"
broken_reload "wrong type" 'workers'
conf "$GW_PKI/client-chain2.crt" key="$GW_PKI/attestor1.key"
broken_reload "key does not match the certificate" 'attestor1\.key|match'
conf "$GW_PKI/client-chain2.crt" crl="$GW_PKI/does-not-exist.crl"
broken_reload "missing CRL file" 'does-not-exist\.crl'
cp "$TEST_TMPDIR/good.yml" "$GW_CONF"

# --- revocation after a reload: new and resumed handshakes refused ---------------------
REQ=$TEST_TMPDIR/resume.req
printf 'GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >"$REQ"
a2_client() { # a2_client [s_client args]: attestor2 over TLS 1.3 sending $REQ
    timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost -tls1_3 \
        -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor2.crt" -key "$GW_PKI/attestor2.key" \
        -cert_chain "$GW_PKI/attestor2.chain" -nocommands -ign_eof "$@" <"$REQ" 2>&1
}
out=$(a2_client -sess_out "$TEST_TMPDIR/sess1.pem")
grep -q 'New, TLSv1.3' <<<"$out" || fail "attestor2 first handshake not a new TLS 1.3 session: $(grep -E '(New|Reused), TLS|alert' <<<"$out")"
grep -q 'HTTP/1.1 200' <<<"$out" || fail "attestor2 before revocation: no 200: $(grep -E 'HTTP/|alert' <<<"$out")"
[ -s "$TEST_TMPDIR/sess1.pem" ] || fail "attestor2: no session ticket received (tls.session_tickets defaults to true)"
out=$(a2_client -sess_in "$TEST_TMPDIR/sess1.pem" -sess_out "$TEST_TMPDIR/sess2.pem")
grep -q 'Reused, TLSv1.3' <<<"$out" || fail "attestor2: the session was not resumed before the revocation (resumption must work): $(grep -E '(New|Reused), TLS|alert' <<<"$out")"
grep -q 'HTTP/1.1 200' <<<"$out" || fail "attestor2 resumed before revocation: no 200"
# The session to replay after the revocation: the newest ticket we hold. Show
# that it resumes right now, so that a refusal later is the re-check's doing.
SESS=$TEST_TMPDIR/sess2.pem
[ -s "$SESS" ] || SESS=$TEST_TMPDIR/sess1.pem
out=$(a2_client -sess_in "$SESS")
grep -q 'Reused, TLSv1.3' <<<"$out" || fail "attestor2: $(basename "$SESS") does not resume before the revocation: $(grep -E '(New|Reused), TLS|alert' <<<"$out")"
pass "attestor2 admitted and resumed before the revocation"

openssl ca -batch -config "$GW_PKI/ca/client-ca/ca.cnf" -revoke "$GW_PKI/attestor2.crt" \
    -crl_reason keyCompromise >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "openssl ca -revoke attestor2 failed"
openssl ca -batch -config "$GW_PKI/ca/client-ca/ca.cnf" -gencrl -crldays 30 \
    -out "$LIVE/client-ca.crl.new" >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "openssl ca -gencrl failed"
mv "$LIVE/client-ca.crl.new" "$LIVE/client-ca.crl"
openssl crl -in "$LIVE/client-ca.crl" -noout -text | grep -i >/dev/null "$(openssl x509 -in "$GW_PKI/attestor2.crt" -noout -serial | cut -d= -f2)" ||
    fail "test setup: attestor2's serial is not in the new CRL"
mark=$(gw_log_mark)
before=$(upstream_count)
hup
gw_wait_log_since "$mark" 'reload' 5 || fail "no log line about the reload after the revocation"
sleep 0.5
code=$(gw_curl attestor2 /after-revoke)
rc=$?
[ "$rc" -ne 0 ] && [ "$code" = 000 ] || fail "attestor2 after revocation + reload: new handshake admitted (HTTP $code)"
out=$(a2_client)
grep -q 'alert certificate revoked' <<<"$out" || fail "attestor2 new handshake after revocation: expected 'certificate revoked' alert: $(grep -E 'alert|error' <<<"$out" | head -2)"
out=$(a2_client -sess_in "$SESS")
if grep -q 'Reused, TLS' <<<"$out"; then
    fail "attestor2 resumed its pre-revocation session after the reload: $(grep -E '(New|Reused), TLS|HTTP/|alert' <<<"$out")"
fi
if grep -q 'HTTP/1.1 200' <<<"$out"; then
    fail "attestor2 got a 200 on a resumption attempt after the revocation"
fi
grep -q 'alert' <<<"$out" || fail "attestor2 resumption attempt after revocation: no refusal alert: $(grep -E '(New|Reused), TLS|HTTP/' <<<"$out")"
expect_eq "$(upstream_count)" "$before" "attestor2 after revocation: requests upstream"
gw_wait_log_since "$mark" 'revoked' 5 || fail "attestor2 refusal after revocation not logged as revoked"
code=$(gw_curl attestor1 /after-revoke) || fail "attestor1 after the revocation reload: curl failed"
expect_eq "$code" 200 "attestor1 after the revocation reload"
pass "after revocation + reload: attestor2 refused on a new handshake and on a resumption attempt"

# --- SIGTERM during a slow 10 MB upload -------------------------------------------------
head -c $((10 * 1024 * 1024)) /dev/urandom >"$TEST_TMPDIR/10m.bin"
want=$(sha256sum <"$TEST_TMPDIR/10m.bin" | cut -d' ' -f1)
curl -sS --max-time 60 --limit-rate 2M --cacert "$GW_PKI/root.crt" --cert "$GW_PKI/attestor1.pem" \
    --key "$GW_PKI/attestor1.key" --data-binary @"$TEST_TMPDIR/10m.bin" \
    -H 'Content-Type: application/octet-stream' -o "$TEST_TMPDIR/upload.body" -w '%{http_code}' \
    "https://localhost:$GW_PORT/attestations/upload" >"$TEST_TMPDIR/upload.code" 2>>"$TEST_TMPDIR/curl.err" &
up_pid=$!
sleep 1.5
kill -0 "$up_pid" 2>/dev/null || fail "the 10 MB upload ended before SIGTERM: $(cat "$TEST_TMPDIR/upload.code")"
t_term=$(now_ms)
kill -TERM "$(bg_pid gw)"
sleep 0.5
# stop accepting at once: a new connection does not get served
code=$(GW_CURL_MAXTIME=3 gw_curl attestor1 /after-sigterm)
rc=$?
[ "$rc" -ne 0 ] || fail "a new request after SIGTERM was served (HTTP $code); SIGTERM must stop accepting at once"
wait "$up_pid" || fail "the upload in flight at SIGTERM failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$(cat "$TEST_TMPDIR/upload.code")" 200 "upload in flight at SIGTERM"
expect_eq "$(jq -r .body_sha256 <"$TEST_TMPDIR/upload.body")" "$want" "sha256 of the 10 MB upload as received upstream"
gw_wait_exit gw 30
expect_eq "$GW_EXIT_STATUS" 0 "mtlsgate exit status after draining"
el=$(($(now_ms) - t_term))
pass "SIGTERM during a 10 MB upload: it completed (sha256 ok), then mtlsgate exited 0 (${el} ms after SIGTERM)"

# --- mtlsgate -s reload -c FILE -------------------------------------------------------------
conf "$GW_PKI/client-chain2.crt"
gw_start_gateway "$GW_CONF" gw-s
for i in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
expect_eq "$(cat "$PIDFILE" 2>/dev/null)" "$(bg_pid gw-s)" "pid file contents"
code=$(gw_curl attestor1 /s-reload) || fail "attestor1 before -s reload: curl failed"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "identity before -s reload"
conf "$GW_PKI/client-chain2.crt" map='    attestor1: svc-attestor-1-renamed'
"$GW_BIN" -s reload -c "$GW_CONF" >"$TEST_TMPDIR/s-reload.out" 2>&1 || fail "mtlsgate -s reload failed: $(cat "$TEST_TMPDIR/s-reload.out")"
ident=""
for i in $(seq 1 50); do
    gw_curl attestor1 /s-reload >/dev/null && ident=$(gw_up '.headers["x-client-identity"]')
    [ "$ident" = svc-attestor-1-renamed ] && break
    sleep 0.1
done
expect_eq "$ident" svc-attestor-1-renamed "identity after mtlsgate -s reload"
pass "mtlsgate -s reload -c FILE reloaded the running instance (identity map changed)"

# --- SIGTERM while a client is in its handshake -----------------------------------------------
# A TLS 1.3 client (python, memory BIOs) has the server's Finished and holds
# its own: for it the connection is established. A TLS 1.2 client has
# finished its handshake and not sent a request yet. SIGTERM, then the first
# sends its Finished and a GET in one flight, the second a GET: both are
# answered (200, Connection: close) and mtlsgate exits 0 by itself.
cat >"$TEST_TMPDIR/drainhs.py" <<'PYEOF'
import os, socket, ssl, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import client_ctx, connect, fail, get

port, pki, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx12 = client_ctx(pki)
ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
s12 = connect(ctx12, port)  # handshake done, no request yet
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_verify_locations(pki + "/root.crt")
ctx.load_cert_chain(pki + "/attestor1.pem", pki + "/attestor1.key")
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
sock = socket.create_connection(("127.0.0.1", port), timeout=10)


def pull():
    """Reads the socket into the TLS object; False at EOF."""
    chunk = sock.recv(65536)
    inc.write(chunk)
    return bool(chunk)


while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        sock.sendall(out.read())
        if not pull():
            fail("the gateway closed during the handshake")
held = out.read()  # Certificate, CertificateVerify, Finished
if not held:
    fail("no client flight to hold")
open(os.path.join(d, "drainhs.held"), "w").close()
for _ in range(200):
    if os.path.exists(os.path.join(d, "drainhs.go")):
        break
    time.sleep(0.05)
else:
    fail("no go")
tls.write(b"GET /during-drain HTTP/1.1\r\nHost: localhost\r\n\r\n")
sock.sendall(held + out.read())
got = b""
while True:
    try:
        piece = tls.read(65536)
    except ssl.SSLWantReadError:
        if not pull():
            break
        continue
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
    if not piece:
        break
    got += piece
head = got.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
if not head.startswith("http/1.1 200") or "connection: close" not in head:
    fail("the request sent with the held Finished: %r" % got[:200])
status, hdrs = get(s12, "/during-drain-tls12")
if status != 200 or hdrs.get("connection", "").lower() != "close":
    fail("the TLS 1.2 client's first request after SIGTERM: HTTP %d, Connection: %s"
         % (status, hdrs.get("connection")))
print("ok")
PYEOF
timeout 30 python3 "$TEST_TMPDIR/drainhs.py" "$GW_PORT" "$GW_PKI" "$TEST_TMPDIR" >"$TEST_TMPDIR/drainhs.out" 2>&1 &
hs_pid=$!
for i in $(seq 1 100); do [ -e "$TEST_TMPDIR/drainhs.held" ] && break; sleep 0.05; done
[ -e "$TEST_TMPDIR/drainhs.held" ] || fail "drainhs.py: no held handshake: $(cat "$TEST_TMPDIR/drainhs.out")"
mark=$(gw_log_mark)
kill -TERM "$(bg_pid gw-s)"
gw_wait_log_since "$mark" 'SIGTERM: no new connections' 5 || fail "no drain line after SIGTERM"
sleep 0.3
touch "$TEST_TMPDIR/drainhs.go"
wait "$hs_pid" || fail "a client in its handshake at SIGTERM: $(cat "$TEST_TMPDIR/drainhs.out"); $(gw_log_since "$mark" | tail -3)"
for i in $(seq 1 100); do kill -0 "$(bg_pid gw-s)" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(bg_pid gw-s)" 2>/dev/null && fail "mtlsgate still draining 10 s after its last request"
pass "SIGTERM while a client holds its Finished and another has sent no request yet: both answered (200, Connection: close), then exit"
stop_bg gw-s || fail "mtlsgate (gw-s) did not exit 0 on SIGTERM"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway lifecycle"
