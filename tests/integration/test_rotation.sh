#!/usr/bin/env bash
# Rotating the whole chain without downtime, with certs-tool and a real
# mtlsgate (client_ca: pki/client-chain.crt, crl: pki/client-ca.crl,
# certificate: pki/servers/gateway.bundle.crt) in front of db-service,
# exactly as the README's procedure does it:
#  1. a client loop runs in the background (bounded, one new TLS connection
#     per request, each must answer 200) through every step below up to the
#     revocation: it starts with attestor1 (client intermediate generation 1)
#     and is moved to attestor9 (generation 2) before generation 1 is retired;
#  2. `certs-tool rollover client` + `mtlsgate -s reload -c gw.yml`: /metrics
#     exports the new intermediate's expiry beside the old one's; attestor9,
#     issued by generation 2, is admitted; attestor1 still is;
#  3. `certs-tool rollover server`, `certs-tool issue --server gateway --force`
#     + reload: new handshakes see the new server certificate (serial via
#     openssl s_client -showcerts) with the new server intermediate;
#  4. `certs-tool retire client --all-but-current` + reload: attestor1 is
#     refused in the handshake (untrusted_issuer), attestor9 admitted, and
#     /metrics no longer lists generation 1;
#  5. the loop had zero failures, and ran across every reload above;
#  6. `certs-tool revoke attestor9` + reload: attestor9 refused (revoked) in
#     new handshakes, and on its keep-alive connection opened before (and
#     served after an earlier reload): 403, the connection closed;
#  7. mtlsgate exits 0 on SIGTERM and no sanitizer report was written.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
gw_require_gateway
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

P=$TEST_TMPDIR/pki
ct() { "$CT" --dir "$P" "$@" >>"$TEST_TMPDIR/ct.log" 2>&1 || fail "certs-tool $*: $(tail -3 "$TEST_TMPDIR/ct.log")"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
enddate() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }

ct init --org "Rotation Test"
ct issue attestor1
ct issue --server gateway --san DNS:localhost,IP:127.0.0.1

gw_pick_ports
gw_write_config "$GW_CONF" certificate="$P/servers/gateway.bundle.crt" key="$P/servers/gateway.key" \
    client_ca="$P/client-chain.crt" crl="$P/client-ca.crl" \
    map="    attestor1: svc-attestor-1
    attestor9: svc-attestor-9" \
    extra="pid_file: $TEST_TMPDIR/gw.pid
admin:
  listen: \"127.0.0.1:$ADMIN_PORT\""
gw_start
for i in $(seq 1 50); do [ -s "$TEST_TMPDIR/gw.pid" ] && break; sleep 0.1; done
[ -s "$TEST_TMPDIR/gw.pid" ] || fail "mtlsgate wrote no pid file"

# req NAME PATH: one request with NAME's certificate on a new connection;
# prints the HTTP status (000 when refused), body in body.NAME.
req() {
    curl -sS --max-time 10 --cacert "$P/root.crt" --cert "$P/clients/$1.pem" --key "$P/clients/$1.key" \
        -o "$TEST_TMPDIR/body.$1" -w '%{http_code}' "https://localhost:$GW_PORT$2" 2>>"$TEST_TMPDIR/curl.err"
}
identity() { jq -r '.headers["x-client-identity"]' <"$TEST_TMPDIR/body.$1" 2>/dev/null; }
metrics() { curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>>"$TEST_TMPDIR/curl.err"; }
metric() { metrics | awk -v n="$1" '$1 == n {print $2}'; }
ca_serials() { # the intermediates /metrics reports, sorted
    metrics | grep -E '^mtlsgate_ca_certificate_expiry_timestamp_seconds\{kind="intermediate"' |
        sed -E 's/.*serial="([0-9A-F]+)".*/\1/' | sort | tr '\n' ' '
}
served() { # NAME: serial of the server certificate and of the intermediate sent after it
    timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost -CAfile "$P/root.crt" \
        -cert "$P/clients/$1.crt" -key "$P/clients/$1.key" -cert_chain "$P/client-ca.crt" -showcerts \
        </dev/null 2>/dev/null >"$TEST_TMPDIR/showcerts.txt"
    awk -v d="$TEST_TMPDIR" '/-----BEGIN CERTIFICATE-----/{n++} n && n <= 2 {print > (d "/served." n ".pem")}
        /-----END CERTIFICATE-----/ && n >= 2 {exit}' "$TEST_TMPDIR/showcerts.txt"
    echo "$(serial_of "$TEST_TMPDIR/served.1.pem" 2>/dev/null) $(serial_of "$TEST_TMPDIR/served.2.pem" 2>/dev/null)"
}
# reload: mtlsgate -s reload -c gw.yml, then wait until /metrics counts one more successful reload.
reload() {
    local before after i
    before=$(metric 'mtlsgate_reloads_total{result="ok"}')
    "$GW_BIN" -s reload -c "$GW_CONF" >"$TEST_TMPDIR/s-reload.out" 2>&1 ||
        fail "mtlsgate -s reload failed: $(cat "$TEST_TMPDIR/s-reload.out")"
    for i in $(seq 1 100); do
        after=$(metric 'mtlsgate_reloads_total{result="ok"}')
        [ "${after:-0}" -gt "${before:-0}" ] && break
        sleep 0.1
    done
    [ "${after:-0}" -gt "${before:-0}" ] || fail "reload not in service after 10 s: $(tail -5 "$GW_LOG")"
    expect_eq "$(metric 'mtlsgate_reloads_total{result="failed"}')" 0 "failed reloads"
}

gen1=$(serial_of "$P/client-ca.crt")
sgen1=$(serial_of "$P/server-ca.crt")
gw1=$(serial_of "$P/servers/gateway.crt")
expect_eq "$(req attestor1 /before)" 200 "attestor1 before the rotation"
expect_eq "$(identity attestor1)" svc-attestor-1 "attestor1's identity"
expect_eq "$(served attestor1)" "$gw1 $sgen1" "server certificate and intermediate before the rotation"
expect_eq "$(ca_serials)" "$gen1 " "intermediates in /metrics before the rotation"

# --- the client loop: a new connection per request, the certificate named in loop.who ------
LOOP=$TEST_TMPDIR/loop.txt
: >"$LOOP"
echo attestor1 >"$TEST_TMPDIR/loop.who"
(
    for i in $(seq 1 3000); do
        [ -e "$TEST_TMPDIR/loop.stop" ] && break
        who=$(cat "$TEST_TMPDIR/loop.who")
        c=$(curl -sS --max-time 10 --cacert "$P/root.crt" --cert "$P/clients/$who.pem" \
            --key "$P/clients/$who.key" -o /dev/null -w '%{http_code}' \
            "https://localhost:$GW_PORT/loop/$i" 2>>"$TEST_TMPDIR/loop.err")
        echo "$i $who ${c:-000} $?" >>"$LOOP"
    done
) &
loop_pid=$!
loop_n() { wc -l <"$LOOP" | tr -d ' '; }
# loop_advance N: wait until the loop made N more requests than now (it is alive and passing).
loop_advance() {
    local want=$(($(loop_n) + $1)) i
    for i in $(seq 1 300); do
        [ "$(loop_n)" -ge "$want" ] && return 0
        kill -0 "$loop_pid" 2>/dev/null || break
        sleep 0.05
    done
    fail "client loop stalled at $(loop_n) requests (wanted $want): $(tail -3 "$TEST_TMPDIR/loop.err")"
}
loop_advance 20
mark_start=$(loop_n)

# --- 1. a new client intermediate beside the old one ------------------------------------------
ct rollover client
gen2=$(serial_of "$P/client-ca.crt")
[ "$gen2" != "$gen1" ] || fail "rollover kept the client intermediate"
reload
expect_eq "$(ca_serials)" "$(printf '%s\n%s\n' "$gen1" "$gen2" | sort | tr '\n' ' ')" \
    "/metrics lists both client intermediates after the rollover"
metrics | grep -E "^mtlsgate_ca_certificate_expiry_timestamp_seconds\{kind=\"intermediate\",.*serial=\"$gen2\"\} " |
    grep -q " $(enddate "$P/client-ca.crt")\$" || fail "generation 2's expiry is not exported"
loop_advance 10
mark_rollover=$(loop_n)
ct issue attestor9
expect_eq "$(openssl x509 -in "$P/clients/attestor9.crt" -noout -issuer)" \
    "issuer=O = Rotation Test, CN = Rotation Test Client CA 2" "attestor9's issuer"
expect_eq "$(req attestor9 /new-intermediate)" 200 "attestor9 (generation 2) after the rollover"
expect_eq "$(identity attestor9)" svc-attestor-9 "attestor9's identity"
expect_eq "$(req attestor1 /old-intermediate)" 200 "attestor1 (generation 1) after the rollover"
pass "rollover client + reload: attestor9 (new intermediate) and attestor1 (old one) both admitted"

# --- 2. the server certificate, from a new server intermediate, replaced live ------------------
ct rollover server
sgen2=$(serial_of "$P/server-ca.crt")
ct issue --server gateway --force --san DNS:localhost,IP:127.0.0.1
gw2=$(serial_of "$P/servers/gateway.crt")
[ "$gw2" != "$gw1" ] || fail "issue --force kept the gateway certificate"
expect_eq "$(served attestor1)" "$gw1 $sgen1" "served certificate before the reload (files changed, not yet reloaded)"
reload
expect_eq "$(served attestor1)" "$gw2 $sgen2" "served certificate and intermediate after the reload"
expect_eq "$(metric mtlsgate_server_certificate_expiry_timestamp_seconds)" "$(enddate "$P/servers/gateway.crt")" \
    "/metrics server certificate expiry after the replacement"
loop_advance 10
pass "server certificate replaced live: new handshakes see serial $gw2 under server intermediate $sgen2"

# --- 3. clients moved over, then the old client intermediate retired ------------------------------
echo attestor9 >"$TEST_TMPDIR/loop.who"
loop_advance 5
for i in $(seq 1 100); do grep -q ' attestor9 ' "$LOOP" && break; sleep 0.05; done
loop_advance 10
mark_moved=$(loop_n)
ct retire client --all-but-current
ct retire server --all-but-current
expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$P/client-chain.crt")" 2 "client-chain.crt after retire"
reload
expect_eq "$(ca_serials)" "$gen2 " "/metrics lists only generation 2 after the retire"
mark=$(gw_log_mark)
code=$(req attestor1 /retired); rc=$?
[ "$rc" -ne 0 ] && [ "$code" = 000 ] || fail "attestor1 after the retire: admitted (HTTP $code, curl $rc)"
gw_wait_log_since "$mark" 'refused .*untrusted_issuer' 5 ||
    fail "no 'refused ... untrusted_issuer' line for attestor1: $(gw_log_since "$mark" | tail -3)"
expect_eq "$(req attestor9 /after-retire)" 200 "attestor9 after the retire"
loop_advance 20
mark_retired=$(loop_n)
pass "retire client + reload: attestor1 refused in the handshake (untrusted_issuer), attestor9 admitted"

# --- the loop: zero failures from the start through the retire ------------------------------------
touch "$TEST_TMPDIR/loop.stop"
wait "$loop_pid"
total=$(loop_n)
bad=$(awk '$3 != 200 || $4 != 0' "$LOOP")
[ -z "$bad" ] || fail "client loop: failed requests (n who code curl_rc): $(head -5 <<<"$bad"); $(tail -3 "$TEST_TMPDIR/loop.err")"
[ "$total" -lt 3000 ] || fail "the loop ran out before the steps were done; it proved nothing"
n1=$(awk '$2 == "attestor1"' "$LOOP" | wc -l)
n9=$(awk '$2 == "attestor9"' "$LOOP" | wc -l)
[ "$n1" -ge 40 ] && [ "$n9" -ge 20 ] || fail "client loop: $n1 requests as attestor1, $n9 as attestor9"
awk -v a="$mark_moved" -v b="$mark_retired" '$1 > a && $1 <= b && $2 == "attestor9"' "$LOOP" | grep -q . ||
    fail "no attestor9 request in the loop across the retire"
pass "client loop: $total requests ($n1 attestor1, $n9 attestor9), zero failures, across 3 reloads (rollover at $mark_start..$mark_rollover, retire at $mark_moved..$mark_retired)"

# --- 4. revocation under rotation ---------------------------------------------------------------
# A keep-alive connection of attestor9's stays open across two reloads: after
# the first (nothing changed) its next request is served; after the revocation
# its next request gets 403 and the connection closes.
cat >"$TEST_TMPDIR/ka.py" <<'PYEOF'
import os, socket, ssl, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import expect_refused, fail, get

port, pki, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/root.crt")
ctx.load_cert_chain(pki + "/clients/attestor9.pem", pki + "/clients/attestor9.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost")


def handover(name):
    """Tells the test script NAME is done; waits (up to 30 s) for its go."""
    open(os.path.join(d, "ka." + name), "w").close()
    for _ in range(600):
        if os.path.exists(os.path.join(d, "ka.go-" + name)):
            return
        time.sleep(0.05)
    fail("no go for step " + name)


status, _ = get(s, "/ka-1")
if status != 200:
    fail("first request: HTTP %d" % status)
handover("1")
status, _ = get(s, "/ka-2")
if status != 200:
    fail("after a reload that changed nothing: HTTP %d on the same connection" % status)
print("ok: same connection after a reload: 200")
handover("2")
expect_refused(s, "/ka-3", "after the revocation")
print("ok: same connection after the revocation: 403, closed")
PYEOF
wait_ka() { # NAME: wait (10 s) until ka.py has done step NAME
    local i
    for i in $(seq 1 200); do [ -e "$TEST_TMPDIR/ka.$1" ] && return 0; sleep 0.05; done
    fail "ka.py did not reach step $1: $(cat "$TEST_TMPDIR/ka.out")"
}
timeout 60 python3 "$TEST_TMPDIR/ka.py" "$GW_PORT" "$P" "$TEST_TMPDIR" >"$TEST_TMPDIR/ka.out" 2>&1 &
ka_pid=$!
wait_ka 1
reload
touch "$TEST_TMPDIR/ka.go-1"
wait_ka 2
ct revoke attestor9 --reason keyCompromise
mark=$(gw_log_mark)
reload
touch "$TEST_TMPDIR/ka.go-2"
wait "$ka_pid" || fail "keep-alive connection across the reloads: $(cat "$TEST_TMPDIR/ka.out")"
gw_wait_log_since "$mark" '403 .*client certificate no longer admitted: revoked' 5 ||
    fail "no '403 ... no longer admitted: revoked' line: $(gw_log_since "$mark" | tail -3)"
expect_eq "$(metric 'mtlsgate_requests_refused_total{reason="revoked"}')" 1 \
    "requests refused as revoked"
pass "attestor9's open keep-alive connection: served after a reload, 403 and closed after its revocation"
mark=$(gw_log_mark)
code=$(req attestor9 /revoked); rc=$?
[ "$rc" -ne 0 ] && [ "$code" = 000 ] || fail "attestor9 after revoke + reload: admitted (HTTP $code, curl $rc)"
gw_wait_log_since "$mark" 'refused .*revoked' 5 ||
    fail "no 'refused ... revoked' line for attestor9: $(gw_log_since "$mark" | tail -3)"
ct issue attestor9 --force
expect_eq "$(req attestor9 /reissued)" 200 "attestor9 re-issued (generation 2) before any reload"
pass "revoke attestor9 + reload: refused (revoked); its re-issued certificate is admitted"

stop_bg "$GW_NAME" || fail "mtlsgate did not exit 0 on SIGTERM"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "rotation without downtime"
