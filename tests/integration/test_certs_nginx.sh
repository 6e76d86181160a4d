#!/usr/bin/env bash
# A real nginx (Debian's /usr/sbin/nginx) takes certs-tool's files as they
# are: it presents servers/localhost.bundle.crt with servers/localhost.key,
# verifies clients against client-chain.crt (ssl_verify_client on), and
#  - curl trusting only root.crt, with --cert clients/attestor1.pem and
#    --key clients/attestor1.key, gets 200 (and nginx saw CN=attestor1);
#  - curl without a client certificate gets 400 ("No required SSL
#    certificate was sent");
#  - curl presenting a *server* certificate (with its intermediate) as a
#    client certificate gets 400: the chain reaches the root, but neither
#    the leaf nor the server intermediate allow clientAuth;
#  - a certificate from another certs-tool PKI gets 400;
#  - during a rotation (`certs-tool rollover client`, two trusted client
#    intermediates in client-chain.crt) with ssl_crl = client-ca.crl +
#    root.crl (nginx checks a CRL for every CA of the chain): attestor1
#    (generation 1) and attestor9 (generation 2) get 200, a revoked
#    certificate of either generation gets 400;
#  - after `retire --all-but-current --revoke`, an nginx still trusting the
#    old chain refuses attestor1 with the new root.crl (and admitted it with
#    the one from before).
source "$SRC_DIR/tests/lib/common.sh"

CT="$BIN_DIR/certs-tool"
NGINX=/usr/sbin/nginx
[ -x "$CT" ] || fail "$CT is not built"
[ -x "$NGINX" ] || skip "$NGINX is missing (apt-get install nginx-light)"
command -v curl >/dev/null || skip "curl is missing"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

"$CT" init --org "nginx test" >ct.log 2>&1 || fail "certs-tool init: $(cat ct.log)"
"$CT" issue --server localhost --san IP:127.0.0.1 >>ct.log 2>&1 || fail "issue --server: $(cat ct.log)"
"$CT" issue attestor1 >>ct.log 2>&1 || fail "issue attestor1: $(cat ct.log)"
"$CT" --dir other init >>ct.log 2>&1 && "$CT" --dir other issue attestor1 >>ct.log 2>&1 ||
    fail "second PKI: $(cat ct.log)"

port=$(free_ports 1 | tr -d ' ')
[ -n "$port" ] || fail "no free port"
mkdir -p nginx-tmp
cat >nginx.conf <<EOF
# Everything nginx writes stays in $TEST_TMPDIR. Run as root without a
# "user" directive, the workers run as nobody; they only answer from memory.
worker_processes 1;
pid $TEST_TMPDIR/nginx.pid;
error_log $TEST_TMPDIR/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log $TEST_TMPDIR/nginx-access.log;
    client_body_temp_path $TEST_TMPDIR/nginx-tmp/body;
    proxy_temp_path $TEST_TMPDIR/nginx-tmp/proxy;
    fastcgi_temp_path $TEST_TMPDIR/nginx-tmp/fastcgi;
    uwsgi_temp_path $TEST_TMPDIR/nginx-tmp/uwsgi;
    scgi_temp_path $TEST_TMPDIR/nginx-tmp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        server_name localhost;
        ssl_certificate $TEST_TMPDIR/pki/servers/localhost.bundle.crt;
        ssl_certificate_key $TEST_TMPDIR/pki/servers/localhost.key;
        ssl_client_certificate $TEST_TMPDIR/pki/client-chain.crt;
        ssl_verify_client on;
        ssl_verify_depth 2;
        location / {
            default_type text/plain;
            return 200 "verify=\$ssl_client_verify dn=\$ssl_client_s_dn\n";
        }
    }
}
EOF
"$NGINX" -t -p "$TEST_TMPDIR" -c "$TEST_TMPDIR/nginx.conf" >nginx-t.log 2>&1 ||
    fail "nginx -t rejects the configuration: $(cat nginx-t.log)"
start_bg nginx "$NGINX" -p "$TEST_TMPDIR" -c "$TEST_TMPDIR/nginx.conf" -g 'daemon off;'
wait_port "$port" 10 || fail "nginx did not listen on $port: $(cat nginx.log nginx-error.log 2>/dev/null | tail -20)"

# fetch NAME CURL-ARGS... : body to NAME.body, HTTP status on stdout
fetch() {
    local name=$1; shift
    curl -sS --max-time 10 -o "$name.body" -w '%{http_code}' --resolve "localhost:$port:127.0.0.1" \
        --cacert pki/root.crt "$@" "https://localhost:$port/" 2>"$name.err"
}

code=$(fetch ok --cert pki/clients/attestor1.pem --key pki/clients/attestor1.key) ||
    fail "curl with attestor1 failed: $(cat ok.err)"
expect_eq "$code" 200 "curl with clients/attestor1.pem"
expect_contains "$(cat ok.body)" "verify=SUCCESS" "nginx verified the client"
expect_contains "$(cat ok.body)" "CN=attestor1" "nginx saw the client's CN"
pass "nginx accepts curl --cert clients/attestor1.pem --key clients/attestor1.key (200)"

code=$(fetch nocert) || fail "curl without a certificate failed: $(cat nocert.err)"
expect_eq "$code" 400 "curl without a client certificate"
expect_contains "$(cat nocert.body)" "No required SSL certificate was sent" "nginx's reason"
pass "nginx answers 400 without a client certificate"

code=$(fetch server-as-client --cert pki/servers/localhost.bundle.crt --key pki/servers/localhost.key)
expect_eq "$code" 400 "curl with a server certificate as client certificate"
expect_contains "$(cat server-as-client.body)" "The SSL certificate error" "nginx's reason"
pass "nginx refuses a server certificate used as a client certificate (400)"

code=$(fetch foreign --cert other/clients/attestor1.pem --key other/clients/attestor1.key)
expect_eq "$code" 400 "curl with a certificate of another PKI"
pass "nginx refuses a client certificate of another PKI (400)"

# And the server side: curl checked nginx's certificate against root.crt
# and the name localhost (no -k anywhere above); a wrong name must fail.
if curl -sS --max-time 10 -o /dev/null --resolve "wrong.test:$port:127.0.0.1" --cacert pki/root.crt \
        --cert pki/clients/attestor1.pem --key pki/clients/attestor1.key "https://wrong.test:$port/" 2>/dev/null; then
    fail "curl accepted the server certificate for a name it does not carry"
fi

stop_bg nginx || true

# ---- rotation with CRLs: ssl_crl needs a CRL for every CA of the chain -------------------------
# nginx_run NAME CA-FILE CRL-FILE: (re)starts nginx with these files as it would be configured.
nginx_run() {
    sed -i -e "s|ssl_client_certificate .*;|ssl_client_certificate $2;|" \
        -e "/ssl_crl /d" -e "s|ssl_verify_depth 2;|ssl_verify_depth 2;\n        ssl_crl $3;|" nginx.conf
    "$NGINX" -t -p "$TEST_TMPDIR" -c "$TEST_TMPDIR/nginx.conf" >nginx-t.log 2>&1 ||
        fail "nginx -t rejects the configuration ($1): $(cat nginx-t.log)"
    start_bg "$1" "$NGINX" -p "$TEST_TMPDIR" -c "$TEST_TMPDIR/nginx.conf" -g 'daemon off;'
    wait_port "$port" 10 || fail "nginx ($1) did not listen on $port: $(tail -20 nginx-error.log)"
}
expect_code() { # NAME WANT DESC
    local code
    code=$(fetch "$1" --cert "pki/clients/$1.pem" --key "pki/clients/$1.key")
    expect_eq "$code" "$2" "$3"
}
"$CT" issue old2 >>ct.log 2>&1 || fail "issue old2: $(tail -3 ct.log)"
"$CT" rollover client >>ct.log 2>&1 || fail "rollover client: $(tail -3 ct.log)"
for n in attestor9 new9; do
    "$CT" issue "$n" >>ct.log 2>&1 || fail "issue $n: $(tail -3 ct.log)"
done
"$CT" revoke old2 >>ct.log 2>&1 && "$CT" revoke new9 >>ct.log 2>&1 || fail "revoke: $(tail -3 ct.log)"
cat pki/client-ca.crl pki/root.crl >nginx-crl.pem
nginx_run nginx-rot "$TEST_TMPDIR/pki/client-chain.crt" "$TEST_TMPDIR/nginx-crl.pem"
expect_code attestor1 200 "nginx + ssl_crl during the rotation: attestor1 (generation 1)"
expect_code attestor9 200 "nginx + ssl_crl during the rotation: attestor9 (generation 2)"
expect_code old2 400 "nginx + ssl_crl: revoked old2 (generation 1)"
expect_code new9 400 "nginx + ssl_crl: revoked new9 (generation 2)"
stop_bg nginx-rot || true
[ "$(grep -c 'client SSL certificate verify error: (23:certificate revoked)' nginx-error.log)" -ge 2 ] ||
    fail "nginx did not refuse the revoked certificates as revoked: $(grep 'verify error' nginx-error.log | tail -3)"
pass "nginx ssl_crl = client-ca.crl + root.crl: both generations admitted, the revoked one of each refused"

# A server never updated (still trusting both intermediates) but fed the fresh root.crl:
# once generation 1 is retired and revoked, root.crl alone refuses attestor1.
cp pki/client-chain.crt old-chain.crt
cp pki/client-ca.crl crl-both-generations.pem
cp pki/root.crl root-before.crl
"$CT" retire client --all-but-current --revoke --reason caCompromise >>ct.log 2>&1 ||
    fail "retire --revoke: $(tail -3 ct.log)"
cat crl-both-generations.pem root-before.crl >nginx-crl.pem
nginx_run nginx-before "$TEST_TMPDIR/old-chain.crt" "$TEST_TMPDIR/nginx-crl.pem"
expect_code attestor1 200 "old chain + the root.crl from before the revocation: attestor1"
stop_bg nginx-before || true
cat crl-both-generations.pem pki/root.crl >nginx-crl.pem
nginx_run nginx-after "$TEST_TMPDIR/old-chain.crt" "$TEST_TMPDIR/nginx-crl.pem"
expect_code attestor1 400 "old chain + the new root.crl: attestor1 (its intermediate revoked)"
expect_code attestor9 200 "old chain + the new root.crl: attestor9"
stop_bg nginx-after || true
pass "root.crl revokes the retired intermediate for nginx's CRL_CHECK_ALL"

# The refusals were for the expected reasons, in nginx's own words.
grep -q "client SSL certificate verify error: (26:unsuitable certificate purpose)" nginx-error.log ||
    fail "nginx did not refuse the server certificate for its purpose: $(grep 'verify error' nginx-error.log)"
grep -q "client SSL certificate verify error: (20:unable to get local issuer certificate)" nginx-error.log ||
    fail "nginx did not refuse the foreign certificate for its issuer: $(grep 'verify error' nginx-error.log)"
check_sanitizers
pass "nginx test done"
