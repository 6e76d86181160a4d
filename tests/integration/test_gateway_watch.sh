#!/usr/bin/env bash
# `watch: 1s`: the certificate, key, CA and CRL files are re-checked by
# content, and a change reloads them without a SIGHUP.
#  - unchanged files (and a touch that changes only the mtime) trigger no
#    reload over 3 s;
#  - a new CRL revoking attestor2 (openssl ca) is picked up within a few
#    seconds: the log says the reload came from a file change, attestor2 is
#    refused on a new handshake, attestor1 is still served;
#  - a broken CRL is refused once (not every second) and the previous set
#    keeps serving; fixing it reloads again;
#  - a replaced server certificate and key are served after the next check;
#  - a CRL replaced while a reload is reading the files (its upstream name
#    resolves slowly: an LD_PRELOAD shim) is reloaded at the next check.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
LIVE=$TEST_TMPDIR/live
mkdir -p "$LIVE"
cp "$GW_PKI/gateway.bundle.crt" "$GW_PKI/gateway.key" "$GW_PKI/client-ca.crl" "$LIVE/"
chmod 600 "$LIVE/gateway.key"
old_serial=$(openssl x509 -in "$GW_PKI/gateway.crt" -noout -serial | cut -d= -f2)
new_serial=$(gw_make_second_gateway_cert "$TEST_TMPDIR/gw2")
gw_write_config "$GW_CONF" certificate="$LIVE/gateway.bundle.crt" key="$LIVE/gateway.key" \
    crl="$LIVE/client-ca.crl" extra="watch: 1s"
gw_start

reloads_since() { gw_log_since "$1" | grep -c 'reload'; }

code=$(gw_curl attestor2 /before) || fail "attestor2 before the revocation: curl failed"
expect_eq "$code" 200 "attestor2 before the revocation"

# --- nothing changes: no reload -----------------------------------------------------------
mark=$(gw_log_mark)
sleep 3.2
expect_eq "$(reloads_since "$mark")" 0 "reload lines over 3 s with unchanged files"
touch "$LIVE/client-ca.crl" "$LIVE/gateway.bundle.crt"
sleep 2.2
expect_eq "$(reloads_since "$mark")" 0 "reload lines after a touch (same content)"
pass "unchanged files: no reload in 5 s (touch included)"

# --- a new CRL revoking attestor2 -------------------------------------------------------------
mark=$(gw_log_mark)
t0=$(now_ms)
gw_revoke_attestor2 "$LIVE/client-ca.crl"
gw_wait_log_since "$mark" 'reload \(watched file changed\).*in service' 6 ||
    fail "no reload from the file change within 6 s: $(gw_log_since "$mark" | head -5)"
refused=""
for i in $(seq 1 30); do
    code=$(GW_CURL_MAXTIME=5 gw_curl attestor2 /after)
    if [ "$code" = 000 ]; then refused=yes; break; fi
    sleep 0.2
done
el=$(($(now_ms) - t0))
[ -n "$refused" ] || fail "attestor2 still admitted $el ms after its revocation in the watched CRL (HTTP $code)"
gw_wait_log_since "$mark" 'refused .*revoked' 5 || fail "attestor2's refusal is not logged as revoked"
expect_eq "$(reloads_since "$mark")" 1 "reload lines for one CRL change"
code=$(gw_curl attestor1 /after) || fail "attestor1 after the CRL change: curl failed"
expect_eq "$code" 200 "attestor1 after the CRL change"
pass "CRL replaced, no SIGHUP: reloaded by the watcher, attestor2 refused $el ms later"

# --- a broken CRL: refused once, the previous set keeps serving ------------------------------------
cp "$LIVE/client-ca.crl" "$TEST_TMPDIR/good.crl"
mark=$(gw_log_mark)
printf -- '-----BEGIN X509 CRL-----\nnot base64 at all\n-----END X509 CRL-----\n' >"$LIVE/client-ca.crl.new"
mv "$LIVE/client-ca.crl.new" "$LIVE/client-ca.crl"
gw_wait_log_since "$mark" 'reload \(watched file changed\) refused.*client-ca\.crl' 6 ||
    fail "a broken CRL was not refused naming the file: $(gw_log_since "$mark" | head -5)"
sleep 2.5
expect_eq "$(gw_log_since "$mark" | grep -c 'refused, still serving')" 1 "refusal lines for one broken CRL over 2.5 s"
code=$(gw_curl attestor1 /broken-crl) || fail "attestor1 with a broken CRL on disk: curl failed"
expect_eq "$code" 200 "attestor1 while the broken CRL is on disk"
code=$(GW_CURL_MAXTIME=5 gw_curl attestor2 /broken-crl)
expect_eq "$code" 000 "attestor2 while the broken CRL is on disk (the previous CRL revokes it)"
mark=$(gw_log_mark)
cp "$TEST_TMPDIR/good.crl" "$LIVE/client-ca.crl.new"
mv "$LIVE/client-ca.crl.new" "$LIVE/client-ca.crl"
gw_wait_log_since "$mark" 'reload \(watched file changed\).*in service' 6 ||
    fail "fixing the CRL did not reload: $(gw_log_since "$mark" | head -5)"
pass "a broken CRL is refused once and logged; the previous set keeps serving; the fix reloads"

# --- server certificate and key replaced ------------------------------------------------------------
expect_eq "$(gw_served_serial)" "$old_serial" "served certificate before the replacement"
mark=$(gw_log_mark)
cp "$TEST_TMPDIR/gw2/gateway.key" "$LIVE/gateway.key.new"
cp "$TEST_TMPDIR/gw2/gateway.bundle.crt" "$LIVE/gateway.bundle.crt.new"
mv "$LIVE/gateway.key.new" "$LIVE/gateway.key"
mv "$LIVE/gateway.bundle.crt.new" "$LIVE/gateway.bundle.crt"
served=""
for i in $(seq 1 60); do
    served=$(gw_served_serial)
    [ "$served" = "$new_serial" ] && break
    sleep 0.1
done
expect_eq "$served" "$new_serial" "served certificate within 6 s of replacing it"
gw_wait_log_since "$mark" 'reload \(watched file changed\).*in service' 2 || fail "no reload line for the certificate change"
code=$(gw_curl attestor1 /new-cert) || fail "attestor1 after the certificate change: curl failed"
expect_eq "$code" 200 "attestor1 after the certificate change"
pass "server certificate and key replaced on disk: served after the next check"

# --- a CRL written while a reload is reading the files -----------------------------------------
# A second gateway whose upstream name, slow.test, resolves in 3 s
# (tests/preload/slow_getaddrinfo.c): a config edit starts a reload that reads
# the CRL and then waits in getaddrinfo; a new CRL (revoking attestor2) lands
# meanwhile. That reload serves the old CRL; the next check must see the new
# one and reload again, not take it for already loaded.
SHIM=$BIN_DIR/slow_getaddrinfo.so
[ -f "$SHIM" ] || fail "$SHIM is not built"
SLOW=$TEST_TMPDIR/slow
mkdir -p "$SLOW"
cp "$GW_PKI/client-ca.crl" "$SLOW/client-ca.crl"
SLOW_PORT=$(free_ports 1 | tr -d ' ')
gw_write_config "$SLOW/gw.yml" port="$SLOW_PORT" crl="$SLOW/client-ca.crl" \
    upstream="slow.test:$DB_PORT" extra="watch: 1s"
# ASan's runtime must come first among the preloaded libraries.
preload=$(ldd "$GW_BIN" | awk '/libasan/ {print $3}')
start_bg gw-slow env LD_PRELOAD="${preload:+$preload }$SHIM" SLOW_GAI_MS=3000 "$GW_BIN" -c "$SLOW/gw.yml"
wait_log "$TEST_TMPDIR/gw-slow.log" 'started' 20 ||
    fail "the slow-DNS gateway did not start: $(tail -3 "$TEST_TMPDIR/gw-slow.log")"
code=$(GW_PORT=$SLOW_PORT gw_curl attestor2 /slow-before) || fail "attestor2 before: curl failed"
expect_eq "$code" 200 "attestor2 on the slow-DNS gateway before the new CRL"
echo "# edited" >>"$SLOW/gw.yml"
sleep 2 # the watch (1 s) has started the reload, which now waits 3 s in getaddrinfo
cp "$TEST_TMPDIR/good.crl" "$SLOW/client-ca.crl.new"
mv "$SLOW/client-ca.crl.new" "$SLOW/client-ca.crl"
code=200
for i in $(seq 1 40); do
    [ "$(grep -c 'reload (watched file changed).*in service' "$TEST_TMPDIR/gw-slow.log")" -ge 2 ] &&
        { code=$(GW_PORT=$SLOW_PORT gw_curl attestor2 /slow-after); [ "$code" = 000 ] && break; }
    sleep 0.5
done
expect_eq "$code" 000 "attestor2 on the slow-DNS gateway 20 s after the new CRL (refused)"
pass "a CRL replaced while a reload reads the files is reloaded at the next check (two reloads)"
stop_bg gw-slow || fail "the slow-DNS mtlsgate did not exit 0"

stop_bg gw || fail "mtlsgate did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway watch"
