#!/usr/bin/env bash
# The PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java) takes
# certs-tool's client files as they are, against a real PostgreSQL server
# set up as in test_certs_postgres.sh (ssl on, ssl_ca_file =
# client-chain.crt, "hostssl all all 127.0.0.1/32 cert"):
#  - tests/integration/java/JdbcCheck.java, compiled here with javac,
#    connects with sslmode=verify-full, sslrootcert=root.crt,
#    sslcert=clients/attestor1.crt and sslkey=clients/attestor1.pk8 (DER
#    PKCS#8, the driver's LazyKeyManager, no password) and prints
#    current_user = attestor1; also to host 127.0.0.1 (SAN IP);
#  - the same with sslkey=clients/attestor2.p12, made with --p12-pass-file
#    and --p12-alias user (the driver's PKCS12KeyManager looks up the alias
#    "user"), and its password;
#  - `keytool -list` (Java 17) opens the .p12 with the empty password, and
#    the other one with the password from the file (and not without it);
#  - a .pk8 for another CN cannot log in as attestor1.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/pg_common.sh"

CT="$BIN_DIR/certs-tool"
JAR=/usr/share/java/postgresql.jar
SRC_JAVA="$SRC_DIR/tests/integration/java/JdbcCheck.java"
[ -x "$CT" ] || fail "$CT is not built"
[ -f "$SRC_JAVA" ] || fail "$SRC_JAVA is missing"
pg_require
command -v javac >/dev/null && command -v java >/dev/null && command -v keytool >/dev/null ||
    skip "a JDK is missing (apt-get install default-jdk-headless)"
[ -f "$JAR" ] || skip "$JAR is missing (apt-get install libpostgresql-jdbc-java)"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

# ---- the Java side first: compile, and keytool on the .p12 ------------------------
mkdir -p java
javac -d java "$SRC_JAVA" >javac.log 2>&1 || fail "javac failed: $(cat javac.log)"

"$CT" init --org "jdbc test" >ct.log 2>&1 || fail "certs-tool init: $(cat ct.log)"
"$CT" issue --server localhost --san IP:127.0.0.1 >>ct.log 2>&1 || fail "issue --server: $(cat ct.log)"
"$CT" issue attestor1 >>ct.log 2>&1 || fail "issue attestor1: $(cat ct.log)"
printf 'correct horse\n' >p12pass
"$CT" issue attestor2 --p12-pass-file p12pass --p12-alias user >>ct.log 2>&1 || fail "issue attestor2: $(cat ct.log)"
"$CT" issue intruder >>ct.log 2>&1 || fail "issue intruder: $(cat ct.log)"

out=$(keytool -list -v -storetype PKCS12 -keystore pki/clients/attestor1.p12 -storepass '' 2>&1) ||
    fail "keytool -list with the empty password failed: $out"
expect_contains "$out" "Alias name: attestor1" "keytool sees the friendly name"
expect_contains "$out" "PrivateKeyEntry" "keytool sees the key"
expect_contains "$out" "Certificate chain length: 2" "keytool sees cert + intermediate"
expect_contains "$out" "CN=attestor1" "keytool sees the certificate"
pass "keytool -list opens clients/attestor1.p12 with the empty password"
out=$(keytool -list -storetype PKCS12 -keystore pki/clients/attestor2.p12 -storepass 'correct horse' 2>&1) ||
    fail "keytool -list with the --p12-pass-file password failed: $out"
expect_contains "$out" "PrivateKeyEntry" "keytool on attestor2.p12"
expect_contains "$out" "user, " "attestor2.p12 has the alias from --p12-alias"
if out=$(keytool -list -storetype PKCS12 -keystore pki/clients/attestor2.p12 -storepass '' 2>&1); then
    fail "keytool opened the password-protected .p12 with the empty password"
fi
pass "keytool -list opens clients/attestor2.p12 with the password from --p12-pass-file only"

# ---- a PostgreSQL server ----------------------------------------------------------
pg_start "attestor1 attestor2"

# jdbc HOST USER CERT KEY [PASSWORD]
jdbc() {
    java -cp "$TEST_TMPDIR/java:$JAR" JdbcCheck "$1" "$port" "$2" "$TEST_TMPDIR/pki/root.crt" \
        "$TEST_TMPDIR/$3" "$TEST_TMPDIR/$4" "${@:5}"
}

out=$(jdbc localhost attestor1 pki/clients/attestor1.crt pki/clients/attestor1.pk8 2>&1) ||
    fail "JDBC with clients/attestor1.pk8 failed: $out"
expect_eq "$out" attestor1 "JDBC current_user with the .pk8 key"
pass "the PostgreSQL JDBC driver connects with clients/attestor1.pk8 (verify-full, localhost)"

out=$(jdbc 127.0.0.1 attestor1 pki/clients/attestor1.crt pki/clients/attestor1.pk8 2>&1) ||
    fail "JDBC to 127.0.0.1 failed: $out"
expect_eq "$out" attestor1 "JDBC current_user to 127.0.0.1"

out=$(jdbc localhost attestor2 pki/clients/attestor2.crt pki/clients/attestor2.p12 "correct horse" 2>&1) ||
    fail "JDBC with clients/attestor2.p12 and its password failed: $out"
expect_eq "$out" attestor2 "JDBC current_user with the password-protected .p12"
pass "the JDBC driver connects with a .p12 (alias user, password from --p12-pass-file)"

if out=$(jdbc localhost attestor1 pki/clients/intruder.crt pki/clients/intruder.pk8 2>&1); then
    fail "JDBC logged in as attestor1 with intruder's certificate: $out"
fi
expect_contains "$out" 'certificate authentication failed for user "attestor1"' "JDBC with another CN"
pass "JDBC with a certificate for another CN is refused"

stop_bg postgres || true
check_sanitizers
pass "jdbc test done"
