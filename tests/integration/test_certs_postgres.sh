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

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] ||
    skip "PostgreSQL server binaries are missing (apt-get install postgresql)"
command -v psql >/dev/null || skip "psql is missing (apt-get install postgresql-client)"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || skip "running as root and there is no postgres user to run the server as"
    command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
    chmod 711 "$TEST_TMPDIR" # let the postgres user reach its directory below
fi

"$CT" init --org "pg test" >ct.log 2>&1 || fail "certs-tool init: $(cat ct.log)"
"$CT" issue --server localhost --san IP:127.0.0.1 >>ct.log 2>&1 || fail "issue --server: $(cat ct.log)"
"$CT" issue attestor1 >>ct.log 2>&1 || fail "issue attestor1: $(cat ct.log)"
"$CT" issue intruder >>ct.log 2>&1 || fail "issue intruder: $(cat ct.log)"
"$CT" --dir other init >>ct.log 2>&1 && "$CT" --dir other issue attestor1 >>ct.log 2>&1 ||
    fail "second PKI: $(cat ct.log)"

# The server's copies of its files: PostgreSQL wants its key 0600 and owned
# by the user it runs as.
pg=$TEST_TMPDIR/pg
mkdir -p "$pg/ssl" "$pg/sock"
cp pki/servers/localhost.bundle.crt pki/servers/localhost.key pki/client-chain.crt "$pg/ssl/"
chmod 600 "$pg/ssl/localhost.key"
[ ${#as_pg[@]} -eq 0 ] || chown -R postgres:postgres "$pg"
chmod 700 "$pg"

"${as_pg[@]}" "$PGBIN/initdb" -D "$pg/data" -U postgres --auth-local=trust --auth-host=reject \
    --no-instructions >initdb.log 2>&1 || fail "initdb failed: $(tail -20 initdb.log)"
cat >"$pg/data/pg_hba.conf" <<'EOF'
# setup over the unix socket; every TCP client needs a certificate whose CN is its role
local   all all                 trust
hostssl all all 127.0.0.1/32    cert
EOF
[ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$pg/data/pg_hba.conf"

port=$(free_ports 1 | tr -d ' ')
[ -n "$port" ] || fail "no free port"
start_bg postgres "${as_pg[@]}" "$PGBIN/postgres" -D "$pg/data" \
    -c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories="$pg/sock" \
    -c ssl=on -c ssl_cert_file="$pg/ssl/localhost.bundle.crt" -c ssl_key_file="$pg/ssl/localhost.key" \
    -c ssl_ca_file="$pg/ssl/client-chain.crt" -c logging_collector=off -c log_connections=on
wait_port "$port" 30 || fail "postgres did not listen on $port: $(tail -20 postgres.log)"
for i in $(seq 1 50); do
    psql -h "$pg/sock" -p "$port" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break
    sleep 0.2
done
psql -h "$pg/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c 'create role attestor1 login' -c 'create role intruder login' >psql-setup.log 2>&1 ||
    fail "creating roles failed: $(cat psql-setup.log)"

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
