#!/usr/bin/env bash
# certs-tool under faults found in review, as a black box:
#  - an expired intermediate (re-signed by the openssl CLI with dates in the
#    past, same key and serial) issues nothing: issue, issue --server and
#    sign-csr exit 1 with one line naming it, its expiry date and
#    `certs-tool rollover KIND`, and the PKI stays byte-identical; after
#    `rollover client` issuing works again; an expired root makes no new
#    intermediate (rollover refused, naming the root);
#  - `issue --server db` never overwrites the files of server `db.bundle`
#    (servers/db.bundle.crt is both), in either order, --force or not; a
#    stray file of a name's (NAME.p12) refuses `issue NAME` without --force;
#  - revocation is all or nothing and can be retried: `revoke` over an index
#    that already says revoked (what a commit cut short used to leave)
#    writes the CRL listing it; with chattr +i (when the file system has it)
#    on the CRL or on index.tsv, revoke fails with one line, leaves every
#    file as it was (no hidden file either), and succeeds once it is lifted;
#  - `init --org` with invalid UTF-8 is refused with the bytes escaped.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/certs_common.sh"

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
command -v openssl >/dev/null || skip "openssl CLI is missing"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"


# expire_cert CRT KEY SIGNER_CRT|self SIGNER_KEY EXTENSIONS: CRT re-signed
# with the same subject, key and serial, valid 2020-01-01 to 2020-01-03,
# with EXTENSIONS (openssl config lines), by `openssl ca`.
expire_cert() {
    local crt=$1 key=$2 scrt=$3 skey=$4 ext=$5 w subj
    w=$(mktemp -d "$TEST_TMPDIR/expire.XXXXXX")
    : >"$w/index.txt"
    serial_of "$crt" >"$w/serial"
    printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s/index.txt\nserial=%s/serial\nnew_certs_dir=%s\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\nO=optional\nCN=supplied\n' \
        "$w" "$w" "$w" >"$w/ca.cnf"
    printf '[x]\n%s\n' "$ext" >"$w/ext.cnf"
    subj=$(openssl x509 -in "$crt" -noout -subject -nameopt compat | sed 's/^subject=//')
    openssl req -new -key "$key" -subj "$subj" -out "$w/req.csr" 2>"$w/log" ||
        fail "openssl req for $crt: $(cat "$w/log")"
    if [ "$scrt" = self ]; then
        set -- -selfsign -keyfile "$key"
    else
        set -- -cert "$scrt" -keyfile "$skey"
    fi
    openssl ca -batch -notext -config "$w/ca.cnf" -preserveDN -startdate 20200101000000Z \
        -enddate 20200103000000Z -extfile "$w/ext.cnf" -extensions x "$@" \
        -in "$w/req.csr" -out "$crt" >"$w/log" 2>&1 || fail "openssl ca for $crt: $(cat "$w/log")"
    rm -rf "$w"
    expect_eq "$(openssl x509 -in "$crt" -noout -enddate)" "notAfter=Jan  3 00:00:00 2020 GMT" "$crt re-signed expired"
}
CA_EXT=$'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always'
ROOT_EXT=$'basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always'

# ---- 1. an expired issuer issues nothing -------------------------------------------------
ok "init x1" "$CT" init --dir x1
expire_cert x1/client-ca.crt x1/private/client-ca.key x1/root.crt x1/private/root.key \
    "$CA_EXT"$'\nextendedKeyUsage=clientAuth'
expire_cert x1/server-ca.crt x1/private/server-ca.key x1/root.crt x1/private/root.key \
    "$CA_EXT"$'\nextendedKeyUsage=serverAuth'
ct_bad x1 "issue under an expired client intermediate" \
    "client intermediate CN=mtlsgate Client CA,O=mtlsgate expired on 2020-01-03 00:00:00 UTC: cannot issue 'late'; run certs-tool rollover client" \
    "$CT" issue --dir x1 late
ct_bad x1 "issue --server under an expired server intermediate" \
    "server intermediate CN=mtlsgate Server CA,O=mtlsgate expired on 2020-01-03 00:00:00 UTC: cannot issue 'late.test'; run certs-tool rollover server" \
    "$CT" issue --dir x1 --server late.test
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout csr.key -subj /CN=csrlate \
    -out late.csr 2>/dev/null || fail "openssl req for the CSR"
ct_bad x1 "sign-csr under an expired client intermediate" "expired on 2020-01-03" \
    "$CT" sign-csr --dir x1 late.csr
ok "rollover client replaces the expired intermediate" "$CT" rollover --dir x1 client
ok "issue after the rollover" "$CT" issue --dir x1 late
openssl verify -x509_strict -CAfile x1/root.crt -untrusted x1/client-ca.crt x1/clients/late.crt >/dev/null ||
    fail "the certificate issued after the rollover does not verify"
[ "$(date -d "$(openssl x509 -in x1/clients/late.crt -noout -enddate | cut -d= -f2)" +%s)" -gt "$(date +%s)" ] ||
    fail "the certificate issued after the rollover is already expired"
pass "after rollover client, issue works again"

ok "init x2" "$CT" init --dir x2
expire_cert x2/root.crt x2/private/root.key self "" "$ROOT_EXT"
ct_bad x2 "rollover under an expired root" \
    "root CA CN=mtlsgate Root CA,O=mtlsgate expired on 2020-01-03 00:00:00 UTC: cannot issue 'mtlsgate Client CA 2'" \
    "$CT" rollover --dir x2 client
expect_contains "$ERR" "certs-tool init" "the expired root message says what to do"

# ---- 2. output files of one name never overwrite another's -----------------------------------
ok "init c1" "$CT" init --dir c1
ok "issue --server db.bundle" "$CT" issue --dir c1 --server db.bundle
ct_bad c1 "issue --server db next to db.bundle" \
    "server name 'db' clashes with server 'db.bundle': c1/servers/db.bundle.crt would be both" \
    "$CT" issue --dir c1 --server db
ct_bad c1 "issue --server db --force next to db.bundle" "clashes with server 'db.bundle'" \
    "$CT" issue --dir c1 --server db --force
ok "issue --server db2" "$CT" issue --dir c1 --server db2
ct_bad c1 "issue --server db2.bundle next to db2" \
    "server name 'db2.bundle' clashes with server 'db2': c1/servers/db2.bundle.crt would be both" \
    "$CT" issue --dir c1 --server db2.bundle --force
expect_eq "$(openssl x509 -in c1/servers/db.bundle.crt -noout -subject)" "subject=O = mtlsgate, CN = db.bundle" \
    "db.bundle.crt still holds db.bundle"
openssl x509 -in c1/servers/db.bundle.crt -noout -pubkey >pub.crt
openssl pkey -in c1/servers/db.bundle.key -pubout >pub.key
cmp -s pub.crt pub.key || fail "servers/db.bundle.crt no longer matches servers/db.bundle.key"
ok "issue stray" "$CT" issue --dir c1 stray
rm c1/clients/stray.crt c1/clients/stray.pem c1/clients/stray.key c1/clients/stray.pk8
ok "revoke stray" "$CT" revoke --dir c1 stray
ct_bad c1 "issue over a leftover NAME.p12" "c1/clients/stray.p12: already exists" "$CT" issue --dir c1 stray

# ---- 3. revocation: all or nothing, and a retry completes it ---------------------------------
ok "init r1" "$CT" init --dir r1
ok "issue a2" "$CT" issue --dir r1 a2
serial=$(serial_of r1/clients/a2.crt)
# What a commit cut short between index.tsv and the CRL used to leave: the
# index says revoked, the CRL lists nothing. revoke again completes it.
sed -i -E "s/^($serial	a2	client	[^	]+	)valid	-	-/\1revoked	2026-01-01T00:00:00Z	keyCompromise/" r1/index.tsv
grep -q "revoked	2026-01-01T00:00:00Z	keyCompromise" r1/index.tsv || fail "could not edit r1/index.tsv"
if openssl crl -in r1/client-ca.crl -noout -text | grep -q "$serial"; then fail "the CRL already lists a2"; fi
ok "revoke a2 over an index that says revoked" "$CT" revoke --dir r1 a2
expect_contains "$OUT" "was already revoked on 2026-01-01 00:00:00 UTC, reason keyCompromise; CRL written again" "revoke again output"
expect_contains "$(openssl crl -in r1/client-ca.crl -noout -text)" "Serial Number: $serial" "the CRL now lists a2"
out=$(openssl verify -crl_check -CAfile r1/root.crt -untrusted r1/client-ca.crt -CRLfile r1/client-ca.crl \
      r1/clients/a2.crt 2>&1) && fail "openssl verify -crl_check accepted a2"
expect_contains "$out" "certificate revoked" "openssl verify -crl_check on a2"
pass "revoke over a half-done revocation completes it"
ct_bad r1 "revoke an unknown name" "no client certificate named 'nobody'" "$CT" revoke --dir r1 nobody

ok "init r2" "$CT" init --dir r2
ok "issue b2" "$CT" issue --dir r2 b2
serial=$(serial_of r2/clients/b2.crt)
# An immutable file would outlive the test directory: lifted on any exit.
trap 'chattr -i "$TEST_TMPDIR/r2/client-ca.crl" "$TEST_TMPDIR/r2/index.tsv" 2>/dev/null; _cleanup_bg' EXIT
if chattr +i r2/client-ca.crl 2>/dev/null; then
    ct_bad r2 "revoke with client-ca.crl immutable" "client-ca.crl: cannot rename into place" "$CT" revoke --dir r2 b2
    expect_contains "$ERR" "nothing was changed" "the failed revoke says nothing changed"
    chattr -i r2/client-ca.crl
    # index.tsv goes last: the CRL is renamed into place, then index.tsv
    # fails, and the CRL must be put back.
    chattr +i r2/index.tsv
    ct_bad r2 "revoke with index.tsv immutable" "index.tsv: cannot rename into place" "$CT" revoke --dir r2 b2
    expect_contains "$ERR" "nothing was changed" "the failed revoke says nothing changed"
    chattr -i r2/index.tsv
    ok "revoke b2 once the files can be replaced" "$CT" revoke --dir r2 b2
    expect_contains "$(openssl crl -in r2/client-ca.crl -noout -text)" "Serial Number: $serial" "the CRL lists b2"
    grep -q "^$serial	b2	client	[^	]*	revoked	" r2/index.tsv || fail "index.tsv does not say b2 is revoked"
    pass "a revoke refused halfway changes nothing, and the retry completes it"
else
    echo "note: chattr +i is not supported here; the refused-rename part is covered by unit/certs_store"
fi

# ---- 4. subject fields: valid UTF-8 only ------------------------------------------------------
ct_bad o1 "init --org with invalid UTF-8" "organisation name 'bad\\xff\\xfe' is not valid UTF-8" \
    "$CT" init --dir o1 --org $'bad\xff\xfe'
[ ! -e o1 ] || fail "the refused init left o1 behind"
ok "init --org with UTF-8" "$CT" init --dir o2 --org "Société Générale"
expect_contains "$(openssl x509 -in o2/root.crt -noout -subject -nameopt utf8)" "O=Société Générale" "UTF-8 org in the root"
pass "certs-tool faults"
