#!/usr/bin/env bash
# `mtlsgate -t -c FILE` checks the config and every file it names: exit 0 on
# a good config; on a bad one, exit non-zero and print each problem as
# FILE:LINE:COLUMN: KEY: cause (YAML problems) or naming the file and the
# cause (certificates, keys, CRL). `mtlsgate -c BAD` refuses to start the
# same way, without listening.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"
gw_require_gateway

gw_make_pki
C=$TEST_TMPDIR/conf
mkdir -p "$C"
K=$GW_PKI

# check_t FILE WANT_RC(0|fail) [ERE]...: runs mtlsgate -t -c FILE; asserts the
# exit status and that the output (stdout+stderr) matches every ERE.
check_t() {
    local file=$1 want=$2 out rc re
    shift 2
    out=$(timeout 30 "$GW_BIN" -t -c "$file" 2>&1)
    rc=$?
    echo "$out" >"$file.out"
    [ "$rc" -ne 124 ] || fail "$(basename "$file"): mtlsgate -t did not finish within 30 s"
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' <<<"$out"; then
        fail "$(basename "$file"): sanitizer report from mtlsgate -t: $(head -20 <<<"$out")"
    fi
    if [ "$want" = 0 ]; then
        [ "$rc" -eq 0 ] || fail "$(basename "$file"): mtlsgate -t exited $rc on a good config: $out"
    else
        [ "$rc" -ne 0 ] || fail "$(basename "$file"): mtlsgate -t exited 0 on a bad config; output: $out"
    fi
    for re in "$@"; do
        grep -Eq -- "$re" <<<"$out" || fail "$(basename "$file"): output does not match /$re/: $out"
    done
    pass "$(basename "$file"): -t exit $rc${1:+, says /$*/}"
}

# base [OVERRIDES...]: a good config, one key per line at known lines:
#  1 listen  2 workers  3 tls:  4 certificate  5 key  6 client_ca  7 crl
#  8 upstream:  9 servers  10 identities:  11 unknown  12 map:  13 attestor1
#  14 timeouts:  15 header  16 log:  17 access
# Each override is LINE=TEXT and replaces that line.
base() {
    local -a l=(
        ""
        'listen: ["127.0.0.1:18443"]'
        'workers: 2'
        'tls:'
        "  certificate: $K/gateway.bundle.crt"
        "  key: $K/gateway.key"
        "  client_ca: $K/client-chain.crt"
        "  crl: $K/client-ca.crl"
        'upstream:'
        '  servers: ["127.0.0.1:18080"]'
        'identities:'
        '  unknown: reject'
        '  map:'
        '    attestor1: svc-attestor-1'
        'timeouts:'
        '  header: 10s'
        'log:'
        '  access: stderr'
    )
    local kv
    for kv in "$@"; do
        l[${kv%%=*}]=${kv#*=}
    done
    printf '%s\n' "${l[@]:1}"
}

base >"$C/good.yml"
check_t "$C/good.yml" 0

# The long forms are the same options: --test --config FILE checks the same
# file, --version and --help print and exit 0, a wrong option exits 2.
out=$(timeout 30 "$GW_BIN" --test --config "$C/good.yml" 2>&1) ||
    fail "mtlsgate --test --config good.yml failed: $out"
grep -q "configuration ok" <<<"$out" || fail "mtlsgate --test --config good.yml: no 'configuration ok': $out"
base "9=  servers: [\"127.0.0.1:0\"]" >"$C/long-bad.yml"
out=$(timeout 30 "$GW_BIN" --test --config="$C/long-bad.yml" 2>&1) &&
    fail "mtlsgate --test --config=long-bad.yml exited 0: $out"
grep -q "long-bad.yml:9:" <<<"$out" || fail "mtlsgate --test --config=long-bad.yml: problem not at line 9: $out"
expect_eq "$("$GW_BIN" --version)" "$("$GW_BIN" -V)" "mtlsgate --version"
"$GW_BIN" --help | grep -q -- "--config FILE" || fail "mtlsgate --help does not list --config"
"$GW_BIN" --no-such-option >/dev/null 2>&1
expect_eq "$?" 2 "exit status of mtlsgate --no-such-option"
pass "long options: --test --config, --config=FILE, --version, --help; unknown ones exit 2"

# --- YAML-level problems: FILE:LINE:COLUMN and the key -----------------------
base "4=  certficate: $K/gateway.bundle.crt" >"$C/unknown-key.yml"
check_t "$C/unknown-key.yml" fail 'unknown-key\.yml:4:[0-9]+:.*certficate'

base '2=workers: lots' >"$C/wrong-type.yml"
check_t "$C/wrong-type.yml" fail 'wrong-type\.yml:2:[0-9]+:.*workers'

base '15=  header: soon' >"$C/bad-duration.yml"
check_t "$C/bad-duration.yml" fail 'bad-duration\.yml:15:[0-9]+:.*header'

base '9=  servers: "127.0.0.1:notaport"' >"$C/bad-addr.yml"
check_t "$C/bad-addr.yml" fail 'bad-addr\.yml:9:[0-9]+:.*servers'

base '11=  unknown: maybe' >"$C/bad-enum.yml"
check_t "$C/bad-enum.yml" fail 'bad-enum\.yml:11:[0-9]+:.*unknown'

base '3=tls: [' >"$C/syntax.yml"
check_t "$C/syntax.yml" fail 'syntax\.yml:[0-9]+(:[0-9]+)?'

# two problems: both reported
base '2=workers: lots' '15=  header: soon' >"$C/two-problems.yml"
check_t "$C/two-problems.yml" fail 'two-problems\.yml:2:[0-9]+:.*workers' 'two-problems\.yml:15:[0-9]+:.*header'

# a required key missing: tls.key
base '5=  # no key' >"$C/required.yml"
check_t "$C/required.yml" fail 'required\.yml.*key'

# user: root drops nothing: refused by -t, at its line
base '18=user: root' >"$C/user-root.yml"
check_t "$C/user-root.yml" fail 'user-root\.yml:18:[0-9]+: user: .*root'

# an identity the proxy would cut (it keeps 127 bytes), a CN no certificate can have (> 64)
base "13=    attestor1: svc-$(printf '%0196d' 0)-admin" >"$C/long-identity.yml"
check_t "$C/long-identity.yml" fail 'long-identity\.yml:13:[0-9]+: identities\.map\.attestor1: .*is 206 characters: an identity has at most 127'
base "13=    $(printf 'c%.0s' $(seq 1 65)): svc-long-cn" >"$C/long-cn.yml"
check_t "$C/long-cn.yml" fail 'long-cn\.yml:13:5: identities\.map: .*is 65 bytes'

# --- files: named, with the cause ------------------------------------------------
base "5=  key: $K/does-not-exist.key" >"$C/missing-file.yml"
check_t "$C/missing-file.yml" fail 'does-not-exist\.key'

base "5=  key: $K/attestor1.key" >"$C/key-mismatch.yml"
check_t "$C/key-mismatch.yml" fail '(attestor1\.key|gateway\.bundle\.crt).*(match|mismatch)|(match|mismatch).*(attestor1\.key|gateway\.bundle\.crt)'

printf 'this is not a certificate\n' >"$C/garbage.crt"
base "4=  certificate: $C/garbage.crt" >"$C/garbage-cert.yml"
check_t "$C/garbage-cert.yml" fail 'garbage\.crt'

# a CRL signed by the server intermediate, not by a client intermediate
base "7=  crl: $K/server-ca.crl" >"$C/wrong-crl.yml"
check_t "$C/wrong-crl.yml" fail 'server-ca\.crl'

# client_ca with a root only: no client intermediate to pin
base "6=  client_ca: $K/root.crt" >"$C/root-only-ca.yml"
check_t "$C/root-only-ca.yml" fail 'root\.crt'

# client_ca that is a leaf, not a CA at all
base "6=  client_ca: $K/attestor1.crt" >"$C/leaf-as-ca.yml"
check_t "$C/leaf-as-ca.yml" fail 'attestor1\.crt'

# a ticket key file of 79 bytes (keys are 80): found by -t, not only at start
head -c 79 /dev/urandom >"$C/tk79.key"
chmod 600 "$C/tk79.key"
base "7=  ticket_key_file: $C/tk79.key" >"$C/ticket79.yml"
check_t "$C/ticket79.yml" fail 'ticket79\.yml:7:[0-9]+: tls\.ticket_key_file: .*tk79\.key.*79 bytes'

# several problems found by building the parts: each at its key's position, all in one run
printf 'not pem\n' >"$C/garbage.pem"
base "6=  client_ca: $C/garbage.pem" "7=  crl: $C/garbage.pem
  ciphers: NOPE-NOTHING" '9=  servers: ["no-such-host.invalid:80"]' >"$C/parts.yml"
check_t "$C/parts.yml" fail 'parts\.yml:6:[0-9]+: tls\.client_ca: .*garbage\.pem' \
    'parts\.yml:7:[0-9]+: tls\.crl: .*garbage\.pem' 'parts\.yml:8:[0-9]+: tls\.ciphers: .*NOPE-NOTHING' \
    'parts\.yml:10:[0-9]+: upstream\.servers: .*no-such-host\.invalid'

# --- mtlsgate -c on a bad config: refuses to start, names the problem -------------
read -r port <<<"$(free_ports 1)"
base "1=listen: [\"127.0.0.1:$port\"]" "5=  key: $K/attestor1.key" >"$C/run-bad.yml"
out=$(timeout 20 "$GW_BIN" -c "$C/run-bad.yml" 2>&1)
rc=$?
[ "$rc" -ne 124 ] || fail "mtlsgate -c with a mismatched key kept running"
[ "$rc" -ne 0 ] || fail "mtlsgate -c with a mismatched key exited 0"
grep -Eq 'run-bad\.yml:5:[0-9]+: tls\.key: .*attestor1\.key' <<<"$out" ||
    fail "mtlsgate -c run-bad.yml: problem not named at tls.key's position: $out"
if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' <<<"$out"; then
    fail "sanitizer report from mtlsgate -c run-bad.yml: $(head -20 <<<"$out")"
fi
pass "mtlsgate -c with a bad key refuses to start (exit $rc) and names the file"

check_sanitizers
pass "gateway config"
