#!/usr/bin/env bash
# certs-tool as a black box, checked with the openssl CLI:
#  - init / issue / issue --server / sign-csr / list / verify / revoke / crl work,
#    write the documented files with the documented modes (keys 0600,
#    private/ 0700), and every command has --help;
#  - `openssl verify -x509_strict` (root trusted, intermediate untrusted)
#    passes -purpose sslclient for a client certificate and sslserver for a
#    server certificate, and a client certificate fails -purpose sslserver;
#  - sign-csr of a CSR asking for CA:TRUE yields a leaf without CA:TRUE;
#  - after `revoke attestor2`, `openssl crl -text` lists its serial and
#    `openssl verify -crl_check` rejects it;
#  - `verify` explains failures in words (wrong intermediate, CA, EKU,
#    expired, not yet valid, revoked, another PKI);
#  - bad input (no PKI directory, corrupt PEM, names with '/', '..' or a
#    newline, an existing name, an unknown key type, a CSR whose signature
#    does not verify, ...) exits non-zero with exactly one line on stderr
#    and leaves every file of the PKI byte-identical.
source "$SRC_DIR/tests/lib/common.sh"

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
command -v openssl >/dev/null || skip "openssl CLI is missing"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

# Every file under pki/ with its hash, plus every directory and the modes:
# two snapshots are equal only if nothing was written, renamed, created or
# left behind (a temporary file would show up here too).
snapshot() {
    [ -d pki ] || { echo "no pki"; return; }
    find pki -type f -exec sha256sum {} + | sort
    find pki -printf '%M %p\n' | sort
}

# ok DESC CMD... : exit 0 and nothing on stderr (a sanitizer report would be there).
ok() {
    local desc=$1; shift
    "$@" >"$TEST_TMPDIR/ok.out" 2>"$TEST_TMPDIR/ok.err" ||
        fail "$desc: exit $? ($(head -c 600 "$TEST_TMPDIR/ok.err"))"
    [ ! -s "$TEST_TMPDIR/ok.err" ] || fail "$desc: wrote to stderr: $(head -c 600 "$TEST_TMPDIR/ok.err")"
    OUT=$(cat "$TEST_TMPDIR/ok.out")
}

# bad DESC EXPECTED CMD... : non-zero exit (not a crash), exactly one line on
# stderr starting "certs-tool: " and containing EXPECTED, and a PKI tree that
# is byte-identical before and after.
bad() {
    local desc=$1 want=$2 before after rc lines; shift 2
    before=$(snapshot)
    "$@" >"$TEST_TMPDIR/bad.out" 2>"$TEST_TMPDIR/bad.err"; rc=$?
    after=$(snapshot)
    ERR=$(cat "$TEST_TMPDIR/bad.err")
    [ $rc -ne 0 ] || fail "$desc: exit 0"
    [ $rc -eq 1 ] || fail "$desc: exit $rc (crash or sanitizer?): $ERR"
    lines=$(wc -l <"$TEST_TMPDIR/bad.err")
    [ "$lines" -eq 1 ] || fail "$desc: $lines lines on stderr: $ERR"
    case "$ERR" in "certs-tool: "*) ;; *) fail "$desc: stderr is not 'certs-tool: ...': $ERR" ;; esac
    expect_contains "$ERR" "$want" "$desc"
    [ "$before" = "$after" ] || fail "$desc: the PKI changed: $(diff <(echo "$before") <(echo "$after") | head -20)"
    pass "$desc -> $ERR"
}

mode() { stat -c %a "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
strict_verify() { # PURPOSE INTERMEDIATE CERT
    openssl verify -x509_strict -purpose "$1" -CAfile pki/root.crt -untrusted "$2" "$3"
}

# ---- before any PKI ------------------------------------------------------------
ok "certs-tool --help" "$CT" --help
expect_contains "$OUT" "sign-csr" "top-level help lists the commands"
for c in init issue sign-csr revoke crl list verify; do
    ok "$c --help" "$CT" "$c" --help
    expect_contains "$OUT" "usage: certs-tool $c" "$c --help"
    expect_contains "$OUT" "--dir DIR" "$c --help lists --dir"
done

bad "issue without a PKI directory" "pki: no PKI directory" "$CT" issue attestor1
[ ! -e pki ] || fail "issue without a PKI created pki/"
bad "list without a PKI directory" "no PKI directory" "$CT" list
bad "verify a file without a certificate" "/etc/hostname: no certificate found" "$CT" verify /etc/hostname
bad "init with an unknown key type" "unknown key type 'dsa-1024'" "$CT" init --key-type dsa-1024
[ ! -e pki ] || fail "failed init left pki/ behind"
bad "init with a bad org" "control character" "$CT" init --org $'a\nb'
bad "init with --days 0" "--days: 0 is not in 1..36500" "$CT" init --days 0
bad "unknown command" "unknown command 'frobnicate'" "$CT" frobnicate
bad "no command" "missing command" "$CT"

# ---- init ------------------------------------------------------------------------------
ok "init" "$CT" init --org "Example Org"
for f in root.crt client-ca.crt server-ca.crt client-chain.crt server-chain.crt client-ca.crl \
         server-ca.crl index.tsv private/root.key private/client-ca.key private/server-ca.key; do
    [ -s "pki/$f" ] || fail "init did not write pki/$f"
done
expect_eq "$(mode pki/private)" 700 "private/ mode"
for k in pki/private/*.key; do expect_eq "$(mode "$k")" 600 "$k mode"; done
expect_eq "$(grep -c 'BEGIN CERTIFICATE' pki/client-chain.crt)" 2 "client-chain.crt holds two certificates"
expect_eq "$(openssl x509 -in pki/client-chain.crt -noout -subject)" \
          "$(openssl x509 -in pki/client-ca.crt -noout -subject)" "client-chain.crt starts with the client intermediate"
expect_contains "$(openssl x509 -in pki/root.crt -noout -text)" "CA:TRUE, pathlen:1" "root pathlen"
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -text)" "CA:TRUE, pathlen:0" "intermediate pathlen"
expect_contains "$(openssl x509 -in pki/root.crt -noout -subject)" "O = Example Org" "root org"
openssl verify -x509_strict -CAfile pki/root.crt pki/client-ca.crt >/dev/null || fail "client-ca does not verify"
openssl verify -x509_strict -CAfile pki/root.crt pki/server-ca.crt >/dev/null || fail "server-ca does not verify"
bad "init over an existing PKI" "already holds a PKI" "$CT" init

# ---- issue ---------------------------------------------------------------------------------
ok "issue attestor1" "$CT" issue attestor1
ok "issue attestor2" "$CT" issue attestor2 --days 30
ok "issue --server localhost" "$CT" issue --server localhost --san IP:127.0.0.1,DNS:db.test
ok "issue rsa-2048 client" "$CT" issue rsa-client --key-type rsa-2048
ok "issue ed25519 client" "$CT" issue ed-client --key-type ed25519
printf 'pa55 word\n' >p12pass
ok "issue with --p12-pass-file" "$CT" issue withpass --p12-pass-file p12pass

for f in crt key pem pk8 p12; do [ -s "pki/clients/attestor1.$f" ] || fail "missing clients/attestor1.$f"; done
for f in crt key bundle.crt; do [ -s "pki/servers/localhost.$f" ] || fail "missing servers/localhost.$f"; done
for f in pki/clients/attestor1.key pki/clients/attestor1.pk8 pki/clients/attestor1.p12 pki/servers/localhost.key; do
    expect_eq "$(mode "$f")" 600 "$f mode"
done
expect_eq "$(mode pki/clients/attestor1.crt)" 644 "certificate mode"

# openssl verify -x509_strict: root trusted, intermediate untrusted
for c in attestor1 rsa-client ed-client; do
    strict_verify sslclient pki/client-ca.crt "pki/clients/$c.crt" >/dev/null ||
        fail "$c: openssl verify -x509_strict -purpose sslclient failed"
done
pass "client certificates pass -x509_strict -purpose sslclient"
strict_verify sslserver pki/server-ca.crt pki/servers/localhost.crt >/dev/null ||
    fail "server certificate fails -x509_strict -purpose sslserver"
pass "server certificate passes -x509_strict -purpose sslserver"
if out=$(strict_verify sslserver pki/client-ca.crt pki/clients/attestor1.crt 2>&1); then
    fail "a client certificate passed -purpose sslserver"
fi
expect_contains "$out" "unsuitable certificate purpose" "client cert under sslserver"
pass "client certificate fails -purpose sslserver"
# and a server certificate is not a client certificate either
if strict_verify sslclient pki/server-ca.crt pki/servers/localhost.crt >/dev/null 2>&1; then
    fail "a server certificate passed -purpose sslclient"
fi

# Contents: subject, EKU, key usage, SAN, serial size, the files' pairing.
text=$(openssl x509 -in pki/clients/attestor1.crt -noout -text)
expect_contains "$text" "Subject: O = Example Org, CN = attestor1" "client subject"
expect_contains "$text" "TLS Web Client Authentication" "client EKU"
expect_contains "$text" "Digital Signature, Key Encipherment, Data Encipherment" "client key usage"
expect_contains "$text" "CA:FALSE" "client basicConstraints"
expect_contains "$text" "X509v3 Authority Key Identifier" "AKI"
expect_contains "$text" "X509v3 Subject Key Identifier" "SKI"
serial=$(serial_of pki/clients/attestor1.crt)
[ ${#serial} -ge 16 ] || fail "serial $serial is shorter than 64 bits"
stext=$(openssl x509 -in pki/servers/localhost.crt -noout -text)
expect_contains "$stext" "DNS:localhost" "server SAN has its name"
expect_contains "$stext" "IP Address:127.0.0.1" "server SAN IP"
expect_contains "$stext" "DNS:db.test" "server SAN extra DNS"
expect_contains "$stext" "TLS Web Server Authentication" "server EKU"
expect_eq "$(openssl pkey -in pki/clients/attestor1.key -pubout)" \
          "$(openssl x509 -in pki/clients/attestor1.crt -noout -pubkey)" "key matches certificate"
expect_eq "$(openssl pkey -inform DER -in pki/clients/attestor1.pk8 -pubout)" \
          "$(openssl x509 -in pki/clients/attestor1.crt -noout -pubkey)" ".pk8 is the DER PKCS#8 of the key"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' pki/clients/attestor1.pem)" 2 ".pem is cert + intermediate"
expect_eq "$(openssl crl2pkcs7 -nocrl -certfile pki/clients/attestor1.pem | openssl pkcs7 -print_certs -noout | grep subject= | tail -1)" \
          "$(openssl x509 -in pki/client-ca.crt -noout -subject | sed 's/^subject=/subject=/')" ".pem ends with the client intermediate"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' pki/servers/localhost.bundle.crt)" 2 "bundle is cert + intermediate"
p12info=$(openssl pkcs12 -info -noout -in pki/clients/attestor1.p12 -passin pass: 2>&1) ||
    fail "attestor1.p12 does not open with the empty password: $p12info"
expect_contains "$p12info" "AES-256-CBC" "p12 encryption"
expect_contains "$p12info" "MAC: sha256" "p12 MAC"
openssl pkcs12 -info -noout -in pki/clients/withpass.p12 -passin "pass:pa55 word" >/dev/null 2>&1 ||
    fail "withpass.p12 does not open with the password from the file"
if openssl pkcs12 -info -noout -in pki/clients/withpass.p12 -passin pass: >/dev/null 2>&1; then
    fail "withpass.p12 opens with the empty password"
fi
pass "issued files are what they claim"

# ---- list and verify -------------------------------------------------------------------------
ok "list" "$CT" list
expect_contains "$OUT" "attestor1" "list shows attestor1"
echo "$OUT" | grep -Eq "^attestor1 +client +$serial +[0-9-]+ [0-9:]+ +36[45] +valid$" ||
    fail "list row for attestor1 is wrong: $(echo "$OUT" | grep attestor1)"
echo "$OUT" | grep -Eq "^localhost +server .* valid$" || fail "list lacks the server"
echo "$OUT" | grep -Eq "^attestor2 +client .* +(29|30) +valid$" || fail "list: attestor2 days left"

ok "verify a client certificate" "$CT" verify pki/clients/attestor1.crt
bad "verify --dir of a missing directory" "nowhere: no PKI directory" "$CT" verify --dir nowhere pki/clients/attestor1.crt
expect_contains "$OUT" "OK: CN=attestor1,O=Example Org is a valid client certificate" "verify OK line"
ok "verify --server" "$CT" verify --server pki/servers/localhost.crt
ok "verify the .pem (first certificate)" "$CT" verify pki/clients/attestor1.pem
bad "verify a server certificate as a client one" \
    "pki/servers/localhost.crt: issued by the server intermediate, not the client intermediate" \
    "$CT" verify pki/servers/localhost.crt
bad "verify --server a client certificate" \
    "issued by the client intermediate, not the server intermediate" "$CT" verify --server pki/clients/attestor1.crt
bad "verify a CA certificate" "is a CA certificate (the client intermediate)" "$CT" verify pki/client-ca.crt
bad "verify the root" "is a CA certificate (the root)" "$CT" verify pki/root.crt

# Certificates certs-tool would never make, made with `openssl ca` and the
# client intermediate's key: expired, not yet valid, without EKU, serverAuth only.
mkdir -p ca && : >ca/index.txt
cat >ca/ca.cnf <<'EOF'
[ca]
default_ca = c
[c]
database = ca/index.txt
new_certs_dir = ca
rand_serial = yes
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
commonName = supplied
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[noeku]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[serveronly]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl_ca() { # NAME EXT START END
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "ca/$1.key" \
        -subj "/CN=$1" -out "ca/$1.csr" 2>/dev/null || fail "openssl req $1"
    openssl ca -batch -config ca/ca.cnf -cert pki/client-ca.crt -keyfile pki/private/client-ca.key \
        -extensions "$2" -startdate "$3" -enddate "$4" -in "ca/$1.csr" -out "ca/$1.crt" \
        >"ca/$1.log" 2>&1 || { cat "ca/$1.log" >&2; fail "openssl ca $1"; }
}
openssl_ca expired client 20200101000000Z 20200201000000Z
openssl_ca future client 20990101000000Z 20990201000000Z
openssl_ca noeku noeku 20200101000000Z 20990201000000Z
openssl_ca serveronly serveronly 20200101000000Z 20990201000000Z
bad "verify an expired certificate" "ca/expired.crt: expired on 2020-02-01 00:00:00 UTC" "$CT" verify ca/expired.crt
bad "verify a not yet valid certificate" "not yet valid until 2099-01-01 00:00:00 UTC" "$CT" verify ca/future.crt
bad "verify a certificate without EKU" "has no extended key usage at all (clientAuth required)" "$CT" verify ca/noeku.crt
bad "verify a serverAuth-only certificate" "no clientAuth usage" "$CT" verify ca/serveronly.crt

# Another PKI with the same names: unknown issuer.
ok "init a second PKI" "$CT" --dir other init --org "Example Org"
ok "issue in the second PKI" "$CT" --dir other issue attestor1
bad "verify a certificate of another PKI" "unknown issuer" "$CT" verify other/clients/attestor1.crt

# ---- sign-csr --------------------------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device7.key \
    -subj "/O=Evil Corp/CN=device7" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectAltName=DNS:evil.example" \
    -out device7.csr 2>/dev/null || fail "openssl req device7"
openssl req -in device7.csr -noout -text | grep -q "CA:TRUE" || fail "the test CSR does not ask for CA:TRUE"
ok "sign-csr of a CSR asking for CA:TRUE" "$CT" sign-csr device7.csr
expect_contains "$OUT" "ignored: basicConstraints, keyUsage, subjectAltName" "sign-csr reports ignored extensions"
dtext=$(openssl x509 -in pki/clients/device7.crt -noout -text)
expect_not_contains "$dtext" "CA:TRUE" "sign-csr output"
expect_contains "$dtext" "CA:FALSE" "sign-csr output"
expect_not_contains "$dtext" "Certificate Sign" "sign-csr output key usage"
expect_not_contains "$dtext" "evil.example" "sign-csr output SAN"
expect_contains "$dtext" "Subject: O = Example Org, CN = device7" "sign-csr subject (the CSR's O is not copied)"
expect_contains "$dtext" "TLS Web Client Authentication" "sign-csr applies the client profile"
expect_eq "$(openssl pkey -in device7.key -pubout)" "$(openssl x509 -in pki/clients/device7.crt -noout -pubkey)" \
          "sign-csr certifies the CSR's key"
[ ! -e pki/clients/device7.key ] && [ ! -e pki/clients/device7.p12 ] || fail "sign-csr wrote key files"
[ -s pki/clients/device7.pem ] || fail "sign-csr did not write clients/device7.pem"
strict_verify sslclient pki/client-ca.crt pki/clients/device7.crt >/dev/null || fail "sign-csr output fails openssl verify"
ok "verify the sign-csr output" "$CT" verify pki/clients/device7.crt
pass "sign-csr yields a leaf without CA:TRUE"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout web.key -subj "/CN=ignored" \
    -out web.csr 2>/dev/null || fail "openssl req web"
ok "sign-csr --server --name --san" "$CT" sign-csr --server --name web.test --san IP:127.0.0.2 web.csr
expect_contains "$(openssl x509 -in pki/servers/web.test.crt -noout -text)" "DNS:web.test, IP Address:127.0.0.2" "sign-csr server SAN"
strict_verify sslserver pki/server-ca.crt pki/servers/web.test.crt >/dev/null || fail "sign-csr --server fails openssl verify"

# A CSR whose signature does not verify: flip the last byte (in the signature) of a DER CSR.
openssl req -in device7.csr -outform DER -out broken.der || fail "CSR to DER"
size=$(stat -c %s broken.der)
last=$(od -An -tu1 -j $((size - 1)) -N1 broken.der | tr -d ' ')
printf "$(printf '\\%03o' $(( last ^ 1 )))" | dd of=broken.der bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
bad "sign-csr of a CSR whose signature does not verify" "broken.der: the CSR's signature does not verify" \
    "$CT" sign-csr --name broken broken.der
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nnot*base64\n-----END CERTIFICATE REQUEST-----\n' >corrupt.csr
bad "sign-csr of a corrupt CSR" "corrupt.csr: not a certificate request" "$CT" sign-csr corrupt.csr
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout nocn.key -subj "/O=x" \
    -out nocn.csr 2>/dev/null || fail "openssl req nocn"
bad "sign-csr of a CSR without CN" "no single usable CN; pass --name" "$CT" sign-csr nocn.csr
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout slash.key -subj "/CN=a\/b" \
    -out slash.csr 2>/dev/null || fail "openssl req slash"
bad "sign-csr of a CSR whose CN has '/'" "slash.csr: CN: name 'a/b' contains '/'" "$CT" sign-csr slash.csr
openssl req -new -newkey rsa:1024 -nodes -keyout weak.key -subj "/CN=weak" -out weak.csr 2>/dev/null ||
    fail "openssl req weak"
bad "sign-csr of a weak RSA key" "RSA key of 1024 bits is too weak" "$CT" sign-csr weak.csr
bad "sign-csr over an existing name" "pki/clients/device7.crt: already exists" "$CT" sign-csr device7.csr

# ---- bad input leaves every file as it was --------------------------------------------------------
bad "name with '/'" "certs-tool: issue: name 'a/b' contains '/'" "$CT" issue a/b
bad "name '..'" "name '..' contains '..'" "$CT" issue ..
bad "name '../escape'" "contains '/'" "$CT" issue ../escape
bad "name with a newline" "name 'evil\\nname' contains a newline" "$CT" issue $'evil\nname'
bad "name with a control character" "contains a control character" "$CT" issue $'a\x01b'
bad "empty name" "name is empty" "$CT" issue ""
bad "name starting with '.'" "starts with '.'" "$CT" issue .hidden
bad "name with a space" "contains ' '" "$CT" issue "a b"
bad "name too long" "longer than 64 characters" "$CT" issue "$(printf 'x%.0s' $(seq 1 65))"
bad "name that already exists" "pki/clients/attestor1.crt: already exists" "$CT" issue attestor1
bad "server name that already exists" "pki/servers/localhost.crt: already exists" "$CT" issue --server localhost
bad "unknown key type" "unknown key type 'dsa'" "$CT" issue newname --key-type dsa
bad "--san without --server" "--san applies to server certificates" "$CT" issue newname --san DNS:x
bad "bad --san" "'bad host' is not a valid DNS name" "$CT" issue --server newname --san "DNS:bad host"
bad "server name that is not a host name" "is not a host name" "$CT" issue --server user@host
bad "--p12-alias on a server certificate" "apply to client certificates" "$CT" issue --server newname --p12-alias user
bad "missing --p12-pass-file" "nope.txt: cannot read" "$CT" issue newname --p12-pass-file nope.txt
bad "unknown option" "unknown option '--colour'" "$CT" issue newname --colour
bad "option given twice" "--days given twice" "$CT" issue newname --days 1 --days 2
bad "--days not a number" "--days: 'soon' is not a number" "$CT" issue newname --days soon
bad "missing NAME" "missing argument" "$CT" issue
bad "two NAMEs" "unexpected argument 'b'" "$CT" issue a b
bad "revoke an unknown name" "no valid client certificate named 'nobody'" "$CT" revoke nobody
bad "revoke with an unknown reason" "unknown reason 'boredom'" "$CT" revoke attestor2 --reason boredom
bad "revoke a bad name" "contains '/'" "$CT" revoke ../attestor2
bad "verify a missing file" "missing.crt: cannot read" "$CT" verify missing.crt
printf -- '-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n' >corrupt.pem
bad "verify a corrupt PEM" "corrupt.pem: corrupt PEM certificate" "$CT" verify corrupt.pem

# A corrupt PEM inside the PKI: every command that needs it says which file.
cp pki/client-ca.crt client-ca.crt.good
head -c 200 client-ca.crt.good >pki/client-ca.crt
printf '\n-----END CERTIFICATE-----\n' >>pki/client-ca.crt
bad "issue with a corrupt client-ca.crt" "pki/client-ca.crt: corrupt PEM certificate" "$CT" issue newname
bad "crl with a corrupt client-ca.crt" "pki/client-ca.crt" "$CT" crl
cp client-ca.crt.good pki/client-ca.crt
cp pki/private/client-ca.key key.good
echo garbage >pki/private/client-ca.key
bad "issue with a corrupt CA key" "pki/private/client-ca.key: no usable private key" "$CT" issue newname
cp key.good pki/private/client-ca.key
cp pki/index.tsv index.good
printf 'ZZ\tx\tclient\t2027-01-01T00:00:00Z\tvalid\t-\t-\n' >>pki/index.tsv
bad "issue with a corrupt index" "pki/index.tsv:" "$CT" issue newname
cp index.good pki/index.tsv
cp pki/client-ca.crl crl.good
echo "-----BEGIN X509 CRL-----" >pki/client-ca.crl
bad "revoke with a corrupt CRL" "pki/client-ca.crl" "$CT" revoke attestor2
cp crl.good pki/client-ca.crl
# A key the CA certificate does not match: the intermediate keys swapped.
cp pki/private/server-ca.key pki/private/client-ca.key
bad "issue with a CA key that does not match" "does not match the certificate" "$CT" issue newname
cp key.good pki/private/client-ca.key
# Refused write: a directory in the way of an output is found before anything is renamed.
mkdir pki/clients/blocked.p12
bad "issue with an output path taken by a directory" "blocked.p12: is a directory" "$CT" issue blocked
rmdir pki/clients/blocked.p12
ok "the PKI still works after all that" "$CT" verify pki/clients/attestor1.crt

# ---- revoke and crl ------------------------------------------------------------------------------
serial2=$(serial_of pki/clients/attestor2.crt)
strict_verify sslclient pki/client-ca.crt pki/clients/attestor2.crt >/dev/null || fail "attestor2 invalid before revoke"
ok "revoke attestor2" "$CT" revoke attestor2 --reason keyCompromise
expect_contains "$OUT" "revoked client certificate 'attestor2' (serial $serial2" "revoke output"
crltext=$(openssl crl -in pki/client-ca.crl -noout -text) || fail "openssl crl cannot read client-ca.crl"
expect_contains "$crltext" "Serial Number: $serial2" "openssl crl -text lists attestor2's serial"
expect_contains "$crltext" "Key Compromise" "CRL reason"
expect_contains "$crltext" "X509v3 CRL Number: " "CRL number"
expect_contains "$crltext" "X509v3 Authority Key Identifier" "CRL AKI"
expect_contains "$crltext" "Issuer: O = Example Org, CN = Example Org Client CA" "CRL issuer"
expect_eq "$(openssl crl -in pki/client-ca.crl -noout -crlnumber)" "crlNumber=0x02" "CRL number after one revoke"
openssl crl -in pki/client-ca.crl -noout -CAfile pki/client-chain.crt 2>&1 | grep -q "verify OK" ||
    fail "client-ca.crl signature does not verify against the client intermediate"
pass "openssl crl -text lists the revoked serial"
if out=$(openssl verify -crl_check -CAfile pki/root.crt -untrusted pki/client-ca.crt \
         -CRLfile pki/client-ca.crl pki/clients/attestor2.crt 2>&1); then
    fail "openssl verify -crl_check accepted the revoked attestor2"
fi
expect_contains "$out" "certificate revoked" "openssl verify -crl_check on attestor2"
openssl verify -crl_check -CAfile pki/root.crt -untrusted pki/client-ca.crt \
    -CRLfile pki/client-ca.crl pki/clients/attestor1.crt >/dev/null || fail "-crl_check rejects attestor1"
pass "openssl verify -crl_check rejects attestor2 and accepts attestor1"
bad "verify a revoked certificate" "attestor2.crt: revoked on " "$CT" verify pki/clients/attestor2.crt
expect_contains "$ERR" "(keyCompromise)" "verify gives the reason"
bad "revoke it again" "no valid client certificate named 'attestor2'" "$CT" revoke attestor2
ok "list after revoke" "$CT" list
echo "$OUT" | grep -Eq "^attestor2 +client +$serial2 .*revoked .*\(keyCompromise\)$" || fail "list: attestor2 not revoked"
grep -Eq "^$serial2	attestor2	client	[^	]+	revoked	[^	]+	keyCompromise$" pki/index.tsv || fail "index.tsv entry"

ok "revoke a server certificate" "$CT" revoke --server web.test
expect_contains "$(openssl crl -in pki/server-ca.crl -noout -text)" "$(serial_of pki/servers/web.test.crt)" "server CRL"

ok "crl --days 7" "$CT" crl --days 7
expect_eq "$(openssl crl -in pki/client-ca.crl -noout -crlnumber)" "crlNumber=0x03" "CRL number increases"
next=$(date -d "$(openssl crl -in pki/client-ca.crl -noout -nextupdate | cut -d= -f2)" +%s)
now=$(date +%s)
[ $((next - now)) -gt $((7 * 86400 - 120)) ] && [ $((next - now)) -le $((7 * 86400 + 5)) ] ||
    fail "crl --days 7: nextUpdate is $((next - now)) s away"
expect_contains "$(openssl crl -in pki/client-ca.crl -noout -text)" "$serial2" "crl keeps the revoked serial"

# --force re-issue: the old certificate is revoked as superseded.
old1=$(serial_of pki/clients/attestor1.crt)
ok "issue --force over an existing name" "$CT" issue attestor1 --force
new1=$(serial_of pki/clients/attestor1.crt)
[ "$old1" != "$new1" ] || fail "--force kept the old certificate"
crltext=$(openssl crl -in pki/client-ca.crl -noout -text)
expect_contains "$crltext" "Serial Number: $old1" "superseded serial in the CRL"
expect_contains "$crltext" "Superseded" "superseded reason"
ok "verify the re-issued certificate" "$CT" verify pki/clients/attestor1.crt

# init --force replaces the PKI.
oldroot=$(serial_of pki/root.crt)
ok "init --force" "$CT" init --force --key-type ec-p384
[ "$(serial_of pki/root.crt)" != "$oldroot" ] || fail "init --force kept the old root"
expect_contains "$(openssl x509 -in pki/root.crt -noout -text)" "P-384" "init --key-type ec-p384"
expect_eq "$(grep -vc '^#' pki/index.tsv)" 0 "init --force starts an empty index"

# No temporary file was ever left behind.
leftovers=$(find pki other -name '.*.tmp-*')
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"
pass "all certs-tool CLI checks passed"
