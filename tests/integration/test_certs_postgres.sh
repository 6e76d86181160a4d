#!/usr/bin/env bash
# A real PostgreSQL server (Debian package) takes certs-tool's files as they
# are: its own data directory in $TEST_TMPDIR, ssl=on with
# servers/localhost.bundle.crt and servers/localhost.key, ssl_ca_file =
# client-chain.crt, and pg_hba "hostssl all all 127.0.0.1/32 cert". Then
#  - psql with sslmode=verify-full, sslrootcert=root.crt and attestor1's
#    certificate and key logs in as role attestor1 (cert CN = role), both to
#    host=127.0.0.1 (SAN IP) and host=localhost (SAN DNS);
#  - a valid certificate for another CN (intruder) cannot log in as attestor1;
#  - no client certificate, and a certificate of another PKI, are refused.
# As root, the server runs as the postgres system user (setpriv).
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/pg_common.sh"

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
pg_require
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

"$CT" init --org "pg test" >ct.log 2>&1 || fail "certs-tool init: $(cat ct.log)"
"$CT" issue --server localhost --san IP:127.0.0.1 >>ct.log 2>&1 || fail "issue --server: $(cat ct.log)"
"$CT" issue attestor1 >>ct.log 2>&1 || fail "issue attestor1: $(cat ct.log)"
"$CT" issue intruder >>ct.log 2>&1 || fail "issue intruder: $(cat ct.log)"
"$CT" --dir other init >>ct.log 2>&1 && "$CT" --dir other issue attestor1 >>ct.log 2>&1 ||
    fail "second PKI: $(cat ct.log)"

pg_start "attestor1 intruder" -c log_connections=on

# conninfo HOST CERT KEY [ROOT [USER]] : a verify-full connection string (default user attestor1)
conninfo() {
    echo "host=$1 port=$port user=${5:-attestor1} dbname=postgres sslmode=verify-full sslrootcert=${4:-pki/root.crt} sslcert=$2 sslkey=$3 connect_timeout=10"
}

out=$(psql "$(conninfo 127.0.0.1 pki/clients/attestor1.crt pki/clients/attestor1.key)" -Atc 'select current_user' 2>&1) ||
    fail "psql as attestor1 failed: $out"
expect_eq "$out" attestor1 "select current_user over mTLS (host=127.0.0.1)"
pass "psql logs in as attestor1 with clients/attestor1.crt and .key (verify-full, 127.0.0.1)"

out=$(psql "$(conninfo localhost pki/clients/attestor1.crt pki/clients/attestor1.key)" -Atc \
      "select current_user || ' ' || ssl::text || ' ' || coalesce(client_dn, '') from pg_stat_ssl where pid = pg_backend_pid()" 2>&1) ||
    fail "psql to host=localhost failed: $out"
expect_eq "$out" "attestor1 true /O=pg test/CN=attestor1" "session seen by the server (host=localhost)"
pass "the server saw an SSL session with client DN /O=pg test/CN=attestor1"

if out=$(psql "$(conninfo 127.0.0.1 pki/clients/intruder.crt pki/clients/intruder.key)" -Atc 'select current_user' 2>&1); then
    fail "a certificate for CN=intruder logged in as attestor1: $out"
fi
expect_contains "$out" 'certificate authentication failed for user "attestor1"' "intruder as attestor1"
pass "a certificate for another CN is refused: $out"

out=$(psql "$(conninfo 127.0.0.1 pki/clients/intruder.crt pki/clients/intruder.key pki/root.crt intruder)" \
      -Atc 'select current_user' 2>&1) || fail "intruder as itself failed: $out"
expect_eq "$out" intruder "the same certificate logs in as its own role"

if out=$(psql "host=127.0.0.1 port=$port user=attestor1 dbname=postgres sslmode=verify-full sslrootcert=pki/root.crt sslcert=/nonexistent sslkey=/nonexistent connect_timeout=10" \
         -Atc 'select 1' 2>&1); then
    fail "a connection without a client certificate got in: $out"
fi
expect_contains "$out" "connection requires a valid client certificate" "no client certificate"
pass "a connection without a client certificate is refused"

if out=$(psql "$(conninfo 127.0.0.1 other/clients/attestor1.crt other/clients/attestor1.key)" -Atc 'select 1' 2>&1); then
    fail "a certificate of another PKI got in: $out"
fi
expect_contains "$out" "alert unknown ca" "certificate of another PKI"
pass "a client certificate of another PKI is refused"

# And psql really checked the server: trusting the other PKI's root fails.
if out=$(psql "$(conninfo 127.0.0.1 pki/clients/attestor1.crt pki/clients/attestor1.key other/root.crt)" -Atc 'select 1' 2>&1); then
    fail "psql accepted the server with the wrong root: $out"
fi
expect_contains "$out" "certificate verify failed" "server checked against the wrong root"

stop_bg postgres || true
check_sanitizers
pass "postgres test done"
