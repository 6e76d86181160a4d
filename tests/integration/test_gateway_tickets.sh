#!/usr/bin/env bash
# Shared session ticket keys (tls.ticket_key_file) and private key modes.
#  - two mtlsgate instances on different ports sharing one 80-byte key file:
#    a TLS 1.3 and a TLS 1.2 session from instance A resumes on instance B
#    (s_client -sess_out / -sess_in: "Reused") and is served; an instance
#    with another key file does not resume it ("New");
#  - rotation: a new key put first in the shared file and SIGHUP: sessions
#    under both keys resume; the old key removed and SIGHUP: its sessions
#    get a full handshake;
#  - the session cache (tls.session_cache, the default without a key file):
#    a TLS 1.3 ticket is only the 32-byte session id (a stateless one is
#    hundreds of bytes), TLS 1.3 and TLS 1.2 sessions resume, and still do
#    after a SIGHUP reload; session_cache: 0 gives stateless tickets again;
#    session_cache > 0 together with ticket_key_file is refused naming it;
#  - a ticket key file with mode 0644, or of the wrong length, is refused at
#    start with a line naming it (and by -t);
#  - tls.key with mode 0644 or 0640 (and upstream.tls.key 0644): mtlsgate
#    refuses to start with one line naming the file, -t reports it; with
#    tls.allow_insecure_key_permissions: true it starts and serves.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_pick_ports
read -r PORT_A PORT_B PORT_C PORT_D PORT_E <<<"$(free_ports 5)"
gw_start_db
K1=$TEST_TMPDIR/ticket1.key
K2=$TEST_TMPDIR/ticket2.key
head -c 80 /dev/urandom >"$K1"
head -c 80 /dev/urandom >"$K2"
chmod 600 "$K1" "$K2"

# inst NAME PORT KEYFILE: an instance with that ticket key file.
inst() {
    gw_write_config "$TEST_TMPDIR/$1.yml" port="$2" tls_extra="  ticket_key_file: $3"
    GW_PORT=$2 gw_start_gateway "$TEST_TMPDIR/$1.yml" "$1"
}
inst gwa "$PORT_A" "$K1"
inst gwb "$PORT_B" "$K1"
inst gwc "$PORT_C" "$K2"

REQ=$TEST_TMPDIR/req
printf 'GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >"$REQ"
# sc PORT VERSION [args]: attestor1 over s_client, sending REQ.
sc() {
    local port=$1 ver=$2
    shift 2
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$ver" \
        -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
        -cert_chain "$GW_PKI/attestor1.chain" -nocommands -ign_eof "$@" <"$REQ" 2>&1
}
session_line() { grep -Eo '(New|Reused), TLSv1\.[23]' <<<"$1" | head -1; }

for ver in -tls1_3 -tls1_2; do
    v=${ver#-tls}
    v=${v/_/.}
    sess=$TEST_TMPDIR/sess$v.pem
    out=$(sc "$PORT_A" "$ver" -sess_out "$sess")
    grep -q 'HTTP/1.1 200' <<<"$out" || fail "$ver on A: no 200: $(grep -E 'HTTP/|alert|error' <<<"$out" | head -3)"
    [ -s "$sess" ] || fail "$ver on A: no session saved"
    out=$(sc "$PORT_A" "$ver" -sess_in "$sess")
    case "$(session_line "$out")" in Reused*) ;; *) fail "$ver: the session does not even resume on A: $(session_line "$out")" ;; esac
    out=$(sc "$PORT_B" "$ver" -sess_in "$sess")
    case "$(session_line "$out")" in
    Reused*) ;;
    *) fail "$ver: a session from A did not resume on B (same ticket_key_file): $(session_line "$out")" ;;
    esac
    grep -q 'HTTP/1.1 200' <<<"$out" || fail "$ver: resumed on B but not served: $(grep -E 'HTTP/|alert' <<<"$out" | head -2)"
    grep -q '"x-client-identity":"svc-attestor-1"' <<<"$out" || fail "$ver: resumed on B: identity not forwarded"
    out=$(sc "$PORT_C" "$ver" -sess_in "$sess")
    case "$(session_line "$out")" in
    New*) ;;
    *) fail "$ver: a session from A resumed on C, which has another key file: $(session_line "$out")" ;;
    esac
    grep -q 'HTTP/1.1 200' <<<"$out" || fail "$ver: full handshake on C not served"
    pass "TLS $v: A's session resumes on B (shared key file) and is served; C (other keys) does a full handshake"
done

# --- rotation: a new key in front, SIGHUP to both --------------------------------------------
# hup_both: SIGHUP to A and B, waits for each one's reload line.
hup_both() {
    local g n
    for g in gwa gwb; do
        n=$(grep -c 'reload (SIGHUP).*in service' "$TEST_TMPDIR/$g.log")
        kill -HUP "$(bg_pid "$g")"
        for i in $(seq 1 100); do
            [ "$(grep -c 'reload (SIGHUP).*in service' "$TEST_TMPDIR/$g.log")" -gt "$n" ] && break
            sleep 0.05
        done
        [ "$(grep -c 'reload (SIGHUP).*in service' "$TEST_TMPDIR/$g.log")" -gt "$n" ] ||
            fail "$g: no reload after SIGHUP: $(tail -2 "$TEST_TMPDIR/$g.log")"
    done
}
old_sess=$TEST_TMPDIR/sess1.3.pem
head -c 80 /dev/urandom >"$TEST_TMPDIR/newkey"
cat "$TEST_TMPDIR/newkey" "$K1" >"$K1.new"
chmod 600 "$K1.new"
mv "$K1.new" "$K1"
hup_both
out=$(sc "$PORT_B" -tls1_3 -sess_in "$old_sess")
case "$(session_line "$out")" in Reused*) ;; *) fail "rotation: a session under the old key (now second) did not resume on B: $(session_line "$out")" ;; esac
out=$(sc "$PORT_A" -tls1_3 -sess_out "$TEST_TMPDIR/sess-new.pem")
[ -s "$TEST_TMPDIR/sess-new.pem" ] || fail "rotation: no session from A under the new key"
out=$(sc "$PORT_B" -tls1_3 -sess_in "$TEST_TMPDIR/sess-new.pem")
case "$(session_line "$out")" in Reused*) ;; *) fail "rotation: a session under the new key did not resume on B: $(session_line "$out")" ;; esac
cp "$TEST_TMPDIR/newkey" "$K1.new"
chmod 600 "$K1.new"
mv "$K1.new" "$K1"
hup_both
out=$(sc "$PORT_B" -tls1_3 -sess_in "$old_sess")
case "$(session_line "$out")" in New*) ;; *) fail "rotation: a session under the retired key still resumes on B: $(session_line "$out")" ;; esac
grep -q 'HTTP/1.1 200' <<<"$out" || fail "rotation: full handshake after the old key was retired not served"
out=$(sc "$PORT_B" -tls1_3 -sess_in "$TEST_TMPDIR/sess-new.pem")
case "$(session_line "$out")" in Reused*) ;; *) fail "rotation: a session under the current key stopped resuming: $(session_line "$out")" ;; esac
pass "ticket key rotation (new key first, SIGHUP; then old key removed, SIGHUP): old sessions resume until the old key is gone"
stop_bg gwb || fail "mtlsgate B did not exit 0"
stop_bg gwc || fail "mtlsgate C did not exit 0"

# --- the session cache (default) -----------------------------------------------------------
# ticket_bytes OUTPUT: bytes of the (last) ticket s_client printed.
ticket_bytes() {
    awk '/TLS session ticket:/ {n = 0; on = 1; next}
         on && /^ *[0-9a-f][0-9a-f][0-9a-f][0-9a-f] - / {
             sub(/^ *[0-9a-f][0-9a-f][0-9a-f][0-9a-f] - /, ""); sub(/   .*$/, ""); gsub(/-/, " ");
             n += split($0, b, " "); next }
         on {on = 0} END {print n + 0}' <<<"$1"
}
gw_write_config "$TEST_TMPDIR/gwd.yml" port="$PORT_D"
GW_PORT=$PORT_D gw_start_gateway "$TEST_TMPDIR/gwd.yml" gwd
gw_write_config "$TEST_TMPDIR/gwe.yml" port="$PORT_E" tls_extra="  session_cache: 0"
GW_PORT=$PORT_E gw_start_gateway "$TEST_TMPDIR/gwe.yml" gwe
out=$(sc "$PORT_D" -tls1_3 -sess_out "$TEST_TMPDIR/d13.pem")
grep -q 'HTTP/1.1 200' <<<"$out" || fail "session cache: first TLS 1.3 request not served"
expect_eq "$(ticket_bytes "$out")" 32 "session cache: bytes in the TLS 1.3 ticket (the session id)"
out_a=$(sc "$PORT_A" -tls1_3)
n=$(ticket_bytes "$out_a")
[ "$n" -gt 200 ] || fail "stateless ticket (key file) only $n bytes: the parser of s_client's dump is wrong"
out_e=$(sc "$PORT_E" -tls1_3 -sess_out "$TEST_TMPDIR/e13.pem")
n=$(ticket_bytes "$out_e")
[ "$n" -gt 200 ] || fail "session_cache: 0: a $n-byte ticket; expected a stateless one"
out=$(sc "$PORT_E" -tls1_3 -sess_in "$TEST_TMPDIR/e13.pem")
case "$(session_line "$out")" in Reused*) ;; *) fail "session_cache: 0: the stateless ticket did not resume: $(session_line "$out")" ;; esac
pass "session cache: a TLS 1.3 ticket is the 32-byte session id; session_cache: 0 and ticket_key_file give stateless tickets ($n bytes) that resume"
out=$(sc "$PORT_D" -tls1_2 -sess_out "$TEST_TMPDIR/d12.pem")
grep -q 'HTTP/1.1 200' <<<"$out" || fail "session cache: first TLS 1.2 request not served"
# d_resumes WHEN: D's saved TLS 1.3 and TLS 1.2 sessions resume on D, are
# served, and the identity is forwarded.
d_resumes() {
    local ver v
    for ver in -tls1_3 -tls1_2; do
        v=${ver#-tls}
        v=${v/_/}
        out=$(sc "$PORT_D" "$ver" -sess_in "$TEST_TMPDIR/d$v.pem")
        case "$(session_line "$out")" in Reused*) ;; *) fail "session cache: $ver session did not resume $1: $(session_line "$out")" ;; esac
        grep -q 'HTTP/1.1 200' <<<"$out" || fail "session cache: $ver resumed $1, not served"
        grep -q '"x-client-identity":"svc-attestor-1"' <<<"$out" || fail "session cache: $ver resumed $1, identity not forwarded"
    done
}
d_resumes "before a reload"
kill -HUP "$(bg_pid gwd)"
wait_log "$TEST_TMPDIR/gwd.log" 'reload \(SIGHUP\).*in service' 10 || fail "gwd: no reload after SIGHUP"
d_resumes "after a reload"
out=$(sc "$PORT_A" -tls1_3 -sess_in "$TEST_TMPDIR/d13.pem")
case "$(session_line "$out")" in New*) ;; *) fail "a cached session of D resumed on A (another process): $(session_line "$out") $(grep -E "alert|error|HTTP" <<<"$out" | head -3)" ;; esac
pass "session cache: TLS 1.3 and TLS 1.2 sessions resume, also after a SIGHUP reload; not on another process"
stop_bg gwd || fail "mtlsgate D did not exit 0"
stop_bg gwe || fail "mtlsgate E did not exit 0"

# expect_refused NAME CONFIG ERE: mtlsgate -c CONFIG exits non-zero at start
# with exactly one line matching ERE; mtlsgate -t -c CONFIG exits non-zero
# and also matches ERE.
expect_refused() {
    local name=$1 conf=$2 re=$3 n
    start_bg "$name" "$GW_BIN" -c "$conf"
    gw_wait_exit "$name" 10 || fail "$name: mtlsgate did not exit at start ($GW_EXIT_STATUS)"
    [ "$GW_EXIT_STATUS" != 0 ] || fail "$name: mtlsgate exited 0 at start"
    n=$(grep -Ec -- "$re" "$TEST_TMPDIR/$name.log")
    expect_eq "$n" 1 "$name: lines matching /$re/ in: $(head -5 "$TEST_TMPDIR/$name.log")"
    "$GW_BIN" -t -c "$conf" >"$TEST_TMPDIR/$name.t.out" 2>&1 && fail "$name: mtlsgate -t accepted it"
    grep -Eq -- "$re" "$TEST_TMPDIR/$name.t.out" || fail "$name: mtlsgate -t does not say /$re/: $(head -5 "$TEST_TMPDIR/$name.t.out")"
}

# --- ticket key file: mode and length ------------------------------------------------------
GW_PORT=$PORT_B
cp "$K1" "$TEST_TMPDIR/open.key"
chmod 644 "$TEST_TMPDIR/open.key"
gw_write_config "$TEST_TMPDIR/open-ticket.yml" tls_extra="  ticket_key_file: $TEST_TMPDIR/open.key"
expect_refused open-ticket "$TEST_TMPDIR/open-ticket.yml" 'open\.key.*(group or others|chmod 600)'
head -c 50 /dev/urandom >"$TEST_TMPDIR/short.key"
chmod 600 "$TEST_TMPDIR/short.key"
gw_write_config "$TEST_TMPDIR/short-ticket.yml" tls_extra="  ticket_key_file: $TEST_TMPDIR/short.key"
start_bg short-ticket "$GW_BIN" -c "$TEST_TMPDIR/short-ticket.yml"
gw_wait_exit short-ticket 10 || fail "a 50-byte ticket key file: mtlsgate did not exit"
[ "$GW_EXIT_STATUS" != 0 ] || fail "a 50-byte ticket key file: mtlsgate exited 0"
grep -q 'short\.key.*80 bytes' "$TEST_TMPDIR/short-ticket.log" || fail "a 50-byte ticket key file: no line naming it: $(head -3 "$TEST_TMPDIR/short-ticket.log")"
pass "ticket key file with mode 0644 or 50 bytes: refused at start, naming the file"
gw_write_config "$TEST_TMPDIR/both.yml" tls_extra="  ticket_key_file: $K2
  session_cache: 5"
expect_refused both "$TEST_TMPDIR/both.yml" 'both\.yml:[0-9]+:[0-9]+: tls\.session_cache: must be 0 with tls\.ticket_key_file'
pass "tls.session_cache > 0 with tls.ticket_key_file: refused, naming the key and its place"

# --- private key modes ---------------------------------------------------------------------
for mode in 644 640; do
    cp "$GW_PKI/gateway.key" "$TEST_TMPDIR/gw$mode.key"
    chmod "$mode" "$TEST_TMPDIR/gw$mode.key"
    gw_write_config "$TEST_TMPDIR/key$mode.yml" key="$TEST_TMPDIR/gw$mode.key"
    expect_refused "key$mode" "$TEST_TMPDIR/key$mode.yml" "gw$mode\\.key.*(group or others).*chmod 600"
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT_B") 2>/dev/null && fail "key $mode: something listens on the gateway port"
done
cp "$GW_PKI/attestor1.key" "$TEST_TMPDIR/up644.key"
chmod 644 "$TEST_TMPDIR/up644.key"
gw_write_config "$TEST_TMPDIR/upkey.yml" upstream_extra="  tls:
    enabled: true
    ca: $GW_PKI/root.crt
    certificate: $GW_PKI/attestor1.crt
    key: $TEST_TMPDIR/up644.key"
expect_refused upkey "$TEST_TMPDIR/upkey.yml" 'up644\.key.*(group or others)'
pass "tls.key 0644/0640 and upstream.tls.key 0644: refused at start and by -t, one line naming the file"

gw_write_config "$TEST_TMPDIR/insecure.yml" key="$TEST_TMPDIR/gw644.key" \
    tls_extra="  allow_insecure_key_permissions: true"
"$GW_BIN" -t -c "$TEST_TMPDIR/insecure.yml" >"$TEST_TMPDIR/insecure.t.out" 2>&1 ||
    fail "mtlsgate -t with allow_insecure_key_permissions: $(head -3 "$TEST_TMPDIR/insecure.t.out")"
gw_start_gateway "$TEST_TMPDIR/insecure.yml" gw-insecure
code=$(gw_curl attestor1 /insecure) || fail "with allow_insecure_key_permissions: curl failed"
expect_eq "$code" 200 "served with a 0644 key and allow_insecure_key_permissions: true"
stop_bg gw-insecure || fail "mtlsgate (insecure) did not exit 0"
pass "tls.allow_insecure_key_permissions: true: a 0644 key is accepted and served"

# The same flag covers the ticket key file (config/mtlsgate.example.yml:
# "Accept private key files (tls.key, upstream.tls.key, ticket_key_file)"):
# -t says the config is fine, so the gateway must start with it too.
gw_write_config "$TEST_TMPDIR/insecure-ticket.yml" \
    tls_extra="  allow_insecure_key_permissions: true
  ticket_key_file: $TEST_TMPDIR/open.key"
"$GW_BIN" -t -c "$TEST_TMPDIR/insecure-ticket.yml" >"$TEST_TMPDIR/insecure-ticket.t.out" 2>&1 ||
    fail "mtlsgate -t, 0644 ticket key + allow_insecure_key_permissions: $(head -3 "$TEST_TMPDIR/insecure-ticket.t.out")"
gw_start_gateway "$TEST_TMPDIR/insecure-ticket.yml" gw-insecure-ticket
code=$(gw_curl attestor1 /insecure-ticket) || fail "0644 ticket key + allow_insecure_key_permissions: curl failed"
expect_eq "$code" 200 "served with a 0644 ticket key file and allow_insecure_key_permissions: true"
stop_bg gw-insecure-ticket || fail "mtlsgate (insecure ticket) did not exit 0"
pass "tls.allow_insecure_key_permissions: true also accepts a 0644 ticket key file (-t and start agree)"

stop_bg gwa || fail "mtlsgate A did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway ticket keys and key permissions"
