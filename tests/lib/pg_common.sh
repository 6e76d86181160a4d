# pg_common.sh - a throwaway PostgreSQL server for the integration tests that
# check certs-tool's files against a real one (test_certs_postgres.sh,
# test_certs_jdbc.sh). Source it after common.sh.
#
#   pg_require          - skip (77) unless the Debian PostgreSQL server
#                         binaries and psql are installed; sets PGBIN (the
#                         newest /usr/lib/postgresql/*/bin) and as_pg: empty,
#                         or, when running as root, the setpriv prefix that
#                         runs the server as the postgres system user (then
#                         skips when there is none, and opens TEST_TMPDIR to
#                         it with mode 711)
#   pg_start "ROLE..." [POSTGRES_ARG...]
#                       - a new cluster in $TEST_TMPDIR/pg (sets pg) with
#                         ssl=on, the server certificate
#                         pki/servers/localhost.bundle.crt and its key,
#                         ssl_ca_file = pki/client-chain.crt (paths relative
#                         to TEST_TMPDIR), pg_hba "hostssl all all
#                         127.0.0.1/32 cert" (plus trust on the unix socket
#                         for the setup), listening on a free loopback port
#                         (sets port); extra POSTGRES_ARGs (e.g. -c
#                         log_connections=on) are passed to postgres. Waits
#                         until it answers, then creates each ROLE as a login
#                         role. Runs as start_bg "postgres": stop it with
#                         stop_bg postgres. Fails the test on any error.

pg_require() {
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] ||
        skip "PostgreSQL server binaries are missing (apt-get install postgresql)"
    command -v psql >/dev/null || skip "psql is missing (apt-get install postgresql-client)"
    as_pg=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || skip "running as root and there is no postgres user to run the server as"
        command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
        as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
        chmod 711 "$TEST_TMPDIR" # let the postgres user reach its directory below
    fi
}

pg_start() {
    local roles=$1 role i
    local -a create=()
    shift
    # The server's copies of its files: PostgreSQL wants its key 0600 and
    # owned by the user it runs as.
    pg=$TEST_TMPDIR/pg
    mkdir -p "$pg/ssl" "$pg/sock"
    cp "$TEST_TMPDIR/pki/servers/localhost.bundle.crt" "$TEST_TMPDIR/pki/servers/localhost.key" \
        "$TEST_TMPDIR/pki/client-chain.crt" "$pg/ssl/" || fail "cannot copy the server's files to $pg/ssl"
    chmod 600 "$pg/ssl/localhost.key"
    [ ${#as_pg[@]} -eq 0 ] || chown -R postgres:postgres "$pg"
    chmod 700 "$pg"

    "${as_pg[@]}" "$PGBIN/initdb" -D "$pg/data" -U postgres --auth-local=trust --auth-host=reject \
        --no-instructions >"$TEST_TMPDIR/initdb.log" 2>&1 ||
        fail "initdb failed: $(tail -20 "$TEST_TMPDIR/initdb.log")"
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
        -c ssl_ca_file="$pg/ssl/client-chain.crt" -c logging_collector=off "$@"
    wait_port "$port" 30 || fail "postgres did not listen on $port: $(tail -20 "$TEST_TMPDIR/postgres.log")"
    for i in $(seq 1 50); do
        psql -h "$pg/sock" -p "$port" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    for role in $roles; do
        create+=(-c "create role $role login")
    done
    psql -h "$pg/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q "${create[@]}" \
        >"$TEST_TMPDIR/psql-setup.log" 2>&1 ||
        fail "creating roles failed: $(cat "$TEST_TMPDIR/psql-setup.log")"
}
