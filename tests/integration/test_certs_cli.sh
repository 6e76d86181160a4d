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
#    and leaves every file of the PKI byte-identical;
#  - rotation: `rollover client|server` makes generation 2 current and keeps
#    generation 1 trusted (chain = both + root, one CRL per intermediate,
#    each signed by its own intermediate and listing what it issued, checked
#    with openssl verify -crl_check); `retire` drops it from the chain and
#    the CRL file (files kept), refuses the current one, and with --revoke
#    lists it in root.crl (openssl verify -crl_check_all); `list` shows the
#    generations; refusals leave the PKI byte-identical; init --force
#    removes earlier generations' files.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/certs_common.sh"

CT="$BIN_DIR/certs-tool"
[ -x "$CT" ] || fail "$CT is not built"
command -v openssl >/dev/null || skip "openssl CLI is missing"
cd "$TEST_TMPDIR" || fail "cannot cd to $TEST_TMPDIR"

# bad DESC EXPECTED CMD... : ct_bad over the PKI (tests/lib/certs_common.sh).
bad() { ct_bad pki "$@"; }

mode() { stat -c %a "$1"; }
strict_verify() { # PURPOSE INTERMEDIATE CERT
    openssl verify -x509_strict -purpose "$1" -CAfile pki/root.crt -untrusted "$2" "$3"
}

# ---- before any PKI ------------------------------------------------------------
ok "certs-tool --help" "$CT" --help
expect_contains "$OUT" "sign-csr" "top-level help lists the commands"
for c in init issue sign-csr revoke crl list verify rollover retire; do
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
         server-ca.crl root.crl index.tsv cas.tsv private/root.key private/client-ca.key private/server-ca.key; do
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
expect_eq "$(openssl crl -in pki/root.crl -noout -issuer)" "$(openssl x509 -in pki/root.crt -noout -subject | sed 's/^subject/issuer/')" "root.crl issuer"
openssl crl -in pki/root.crl -noout -CAfile pki/root.crt 2>&1 | grep -q "verify OK" || fail "root.crl is not signed by the root"
expect_eq "$(grep -c . pki/cas.tsv)" 3 "cas.tsv: header + generation 1 of each intermediate"
grep -Eq "^client	1	$(openssl x509 -in pki/client-ca.crt -noout -serial | cut -d= -f2)	[^	]+	current	-	-	-$" pki/cas.tsv ||
    fail "cas.tsv does not list client-ca.crt as generation 1, current: $(cat pki/cas.tsv)"

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
echo "$OUT" | grep -Eq "^attestor1 +client +1 +$serial +[0-9-]+ [0-9:]+ +36[45] +valid$" ||
    fail "list row for attestor1 is wrong: $(echo "$OUT" | grep attestor1)"
echo "$OUT" | grep -Eq "^localhost +server +1 .* valid$" || fail "list lacks the server"
echo "$OUT" | grep -Eq "^attestor2 +client +1 .* +(29|30) +valid$" || fail "list: attestor2 days left"
echo "$OUT" | grep -Eq "^client-ca +ca +1 +$(serial_of pki/client-ca.crt) .* current$" || fail "list: client-ca generation 1"
echo "$OUT" | grep -Eq "^root +ca +- +$(serial_of pki/root.crt) .* valid$" || fail "list: root"

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
bad "revoke an unknown name" "no client certificate named 'nobody'" "$CT" revoke nobody
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
bad "issue over a stray output file of the name" "clients/blocked.p12: already exists" "$CT" issue blocked
bad "issue --force with an output path taken by a directory" "blocked.p12: is a directory" "$CT" issue blocked --force
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
# Revoking again is idempotent: the CRL is written again (a new number), the index is untouched.
index_before=$(sha256sum pki/index.tsv)
ok "revoke it again" "$CT" revoke attestor2 --reason superseded
expect_contains "$OUT" "client certificate 'attestor2' (serial $serial2) was already revoked on" "revoke again output"
expect_contains "$OUT" "reason keyCompromise; CRL written again" "revoke again keeps the recorded reason"
expect_eq "$(sha256sum pki/index.tsv)" "$index_before" "revoke again leaves index.tsv as it was"
expect_eq "$(openssl crl -in pki/client-ca.crl -noout -crlnumber)" "crlNumber=0x03" "CRL number after revoking again"
expect_contains "$(openssl crl -in pki/client-ca.crl -noout -text)" "Serial Number: $serial2" "the CRL written again lists attestor2"
ok "list after revoke" "$CT" list
echo "$OUT" | grep -Eq "^attestor2 +client +1 +$serial2 .*revoked .*\(keyCompromise\)$" || fail "list: attestor2 not revoked"
grep -Eq "^$serial2	attestor2	client	[^	]+	revoked	[^	]+	keyCompromise	1$" pki/index.tsv || fail "index.tsv entry"

ok "revoke a server certificate" "$CT" revoke --server web.test
expect_contains "$(openssl crl -in pki/server-ca.crl -noout -text)" "$(serial_of pki/servers/web.test.crt)" "server CRL"

ok "crl --days 7" "$CT" crl --days 7
expect_eq "$(openssl crl -in pki/client-ca.crl -noout -crlnumber)" "crlNumber=0x04" "CRL number increases"
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

# ---- rotation: rollover, two trusted generations, retire ------------------------------------
# pem_parts FILE: splits a PEM file into $TEST_TMPDIR/parts/1.pem, 2.pem, ... (in order); prints the count.
pem_parts() {
    rm -rf "$TEST_TMPDIR/parts" && mkdir "$TEST_TMPDIR/parts"
    awk -v d="$TEST_TMPDIR/parts" '/-----BEGIN /{n++} n{print > (d "/" n ".pem")} END{print n+0}' "$1"
}
# pem_serials FILE: the serial of each certificate in FILE, in order, space separated.
pem_serials() {
    local n i out=""
    n=$(pem_parts "$1")
    for i in $(seq 1 "$n"); do out="$out$(serial_of "$TEST_TMPDIR/parts/$i.pem") "; done
    echo "${out% }"
}
root_serial=$(serial_of pki/root.crt)
gen1=$(serial_of pki/client-ca.crt)
cp pki/client-ca.crt gen1.crt
bad "rollover of an unknown intermediate" "unknown intermediate 'root' (client or server)" "$CT" rollover root
bad "rollover without an argument" "missing argument (usage: certs-tool rollover" "$CT" rollover
bad "rollover with an unknown key type" "unknown key type 'dsa'" "$CT" rollover client --key-type dsa
bad "retire the current generation" \
    "generation 1 is the current client intermediate; roll over first (certs-tool rollover client)" \
    "$CT" retire client --generation 1
bad "retire with nothing to retire" "no client intermediate to retire (only the current generation 1" \
    "$CT" retire client --all-but-current
bad "retire with both selectors" "give exactly one of --generation N and --all-but-current" \
    "$CT" retire client --generation 1 --all-but-current
bad "retire without a selector" "give exactly one of" "$CT" retire client
bad "retire --reason without --revoke" "--reason applies with --revoke" "$CT" retire client --all-but-current --reason superseded
bad "retire an unknown generation" "there is no client intermediate generation 7 (see certs-tool list)" \
    "$CT" retire client --generation 7
mv pki/private/root.key root.key.away
bad "rollover without the root key" "pki/private/root.key: cannot read" "$CT" rollover client
mv root.key.away pki/private/root.key

ok "rollover client" "$CT" rollover client
expect_contains "$OUT" "rolled the client intermediate over: generation 2 is current" "rollover output"
expect_contains "$OUT" "generation 1 (serial $gen1" "rollover output names the kept generation"
gen2=$(serial_of pki/client-ca.crt)
[ "$gen1" != "$gen2" ] || fail "rollover kept the client intermediate"
cmp -s gen1.crt pki/cas/client-ca.1.crt || fail "generation 1 was not kept as cas/client-ca.1.crt"
expect_eq "$(mode pki/private/client-ca.1.key)" 600 "kept generation 1 key mode"
expect_eq "$(mode pki/private)" 700 "private/ mode after rollover"
expect_eq "$(openssl pkey -in pki/private/client-ca.1.key -pubout)" "$(openssl x509 -in gen1.crt -noout -pubkey)" \
          "the kept generation 1 key matches its certificate"
expect_eq "$(openssl pkey -in pki/private/client-ca.key -pubout)" "$(openssl x509 -in pki/client-ca.crt -noout -pubkey)" \
          "the new private/client-ca.key matches client-ca.crt"
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -subject)" "CN = Example Org Client CA 2" "generation 2 subject"
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -text)" "CA:TRUE, pathlen:0" "generation 2 is an intermediate"
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -text)" "TLS Web Client Authentication" "generation 2 EKU"
openssl verify -x509_strict -CAfile pki/root.crt pki/client-ca.crt >/dev/null || fail "generation 2 does not verify against the root"
expect_eq "$(pem_serials pki/client-chain.crt)" "$gen2 $gen1 $root_serial" "client-chain.crt: generation 2, generation 1, root"
n=$(pem_parts pki/client-ca.crl)
expect_eq "$n" 2 "client-ca.crl: one CRL per trusted client intermediate"
issuers=""
for i in 1 2; do
    openssl crl -in "parts/$i.pem" -noout -CAfile pki/client-chain.crt 2>&1 | grep -q "verify OK" ||
        fail "CRL $i of client-ca.crl is not signed by its issuer"
    issuers="$issuers|$(openssl crl -in "parts/$i.pem" -noout -issuer)"
done
expect_eq "$issuers" "|issuer=O = Example Org, CN = Example Org Client CA 2|issuer=O = Example Org, CN = Example Org Client CA" \
          "client-ca.crl issuers (current first)"
grep -Eq "^client	1	$gen1	[^	]+	previous	-	-	-$" pki/cas.tsv || fail "cas.tsv: generation 1 not previous: $(cat pki/cas.tsv)"
grep -Eq "^client	2	$gen2	[^	]+	current	-	-	-$" pki/cas.tsv || fail "cas.tsv: generation 2 not current: $(cat pki/cas.tsv)"
pass "rollover client: generation 2 current, generation 1 kept and trusted (chain, one CRL each)"

ok "issue attestor9 from generation 2" "$CT" issue attestor9
expect_eq "$(openssl x509 -in pki/clients/attestor9.crt -noout -issuer)" "issuer=O = Example Org, CN = Example Org Client CA 2" \
          "attestor9's issuer"
expect_eq "$(pem_serials pki/clients/attestor9.pem)" "$(serial_of pki/clients/attestor9.crt) $gen2" "attestor9.pem: cert + generation 2"
serial9=$(serial_of pki/clients/attestor9.crt)
grep -Eq "^$serial9	attestor9	client	[^	]+	valid	-	-	2$" pki/index.tsv || fail "index.tsv: attestor9 not from generation 2"
strict_verify sslclient pki/client-chain.crt pki/clients/attestor9.crt >/dev/null || fail "attestor9 fails openssl verify"
strict_verify sslclient pki/client-chain.crt pki/clients/ed-client.crt >/dev/null || fail "ed-client (generation 1) fails openssl verify"
ok "verify attestor9" "$CT" verify pki/clients/attestor9.crt
expect_contains "$OUT" "issued by the client intermediate generation 2, current" "verify attestor9"
ok "verify a generation 1 certificate" "$CT" verify pki/clients/ed-client.crt
expect_contains "$OUT" "issued by the client intermediate generation 1, still trusted" "verify ed-client"

# Revocation under rotation: each CRL lists what its own intermediate issued.
ok "issue temp9 from generation 2" "$CT" issue temp9
serial_rsa=$(serial_of pki/clients/rsa-client.crt)
serial_t9=$(serial_of pki/clients/temp9.crt)
before_num=$(openssl crl -in pki/client-ca.crl -noout -crlnumber)
ok "revoke rsa-client (generation 1)" "$CT" revoke rsa-client
ok "revoke temp9 (generation 2)" "$CT" revoke temp9 --reason superseded
expect_contains "$OUT" "pki/client-ca.crl updated: 4 revoked certificates" "revoke counts the entries of both CRLs (attestor2, attestor1 superseded, rsa-client, temp9)"
pem_parts pki/client-ca.crl >/dev/null
t1=$(openssl crl -in parts/1.pem -noout -text)
t2=$(openssl crl -in parts/2.pem -noout -text)
expect_contains "$t1" "Serial Number: $serial_t9" "generation 2's CRL lists temp9"
expect_not_contains "$t1" "$serial_rsa" "generation 2's CRL"
expect_contains "$t2" "Serial Number: $serial_rsa" "generation 1's CRL lists rsa-client"
expect_not_contains "$t2" "$serial_t9" "generation 1's CRL"
expect_eq "$(openssl crl -in parts/1.pem -noout -crlnumber)" "$(openssl crl -in parts/2.pem -noout -crlnumber)" \
          "both CRLs carry the same number"
[ "$(openssl crl -in pki/client-ca.crl -noout -crlnumber)" != "$before_num" ] || fail "the CRL number did not move"
crl_verify() { openssl verify -crl_check -CAfile pki/root.crt -untrusted pki/client-chain.crt -CRLfile pki/client-ca.crl "$1" 2>&1; }
for c in rsa-client temp9; do
    if out=$(crl_verify "pki/clients/$c.crt"); then fail "openssl verify -crl_check accepted the revoked $c"; fi
    expect_contains "$out" "certificate revoked" "openssl verify -crl_check $c"
done
for c in attestor9 ed-client; do
    crl_verify "pki/clients/$c.crt" >/dev/null || fail "openssl verify -crl_check rejects $c: $(crl_verify "pki/clients/$c.crt")"
done
bad "verify a revoked generation 1 certificate" "rsa-client.crt: revoked on" "$CT" verify pki/clients/rsa-client.crt
pass "revocation under rotation: each intermediate's CRL lists its own certificates (openssl verify -crl_check)"

ok "list with two generations" "$CT" list
echo "$OUT" | grep -Eq "^client-ca +ca +1 +$gen1 .* previous$" || fail "list: generation 1: $OUT"
echo "$OUT" | grep -Eq "^client-ca +ca +2 +$gen2 .* current$" || fail "list: generation 2: $OUT"
echo "$OUT" | grep -Eq "^attestor9 +client +2 +$serial9 .* valid$" || fail "list: attestor9: $OUT"

# Server side: rollover, re-issue, the bundle carries the new intermediate.
sgen1=$(serial_of pki/server-ca.crt)
ok "rollover server" "$CT" rollover server --days 400
sgen2=$(serial_of pki/server-ca.crt)
expect_contains "$(openssl x509 -in pki/server-ca.crt -noout -subject)" "CN = Example Org Server CA 2" "server generation 2"
expect_eq "$(pem_serials pki/server-chain.crt)" "$sgen2 $sgen1 $root_serial" "server-chain.crt after rollover"
expect_eq "$(grep -c 'BEGIN X509 CRL' pki/server-ca.crl)" 2 "server-ca.crl after rollover"
ok "verify --server a generation 1 server certificate" "$CT" verify --server pki/servers/localhost.crt
ok "re-issue the server certificate" "$CT" issue --server localhost --san IP:127.0.0.1 --force
expect_eq "$(pem_serials pki/servers/localhost.bundle.crt)" "$(serial_of pki/servers/localhost.crt) $sgen2" \
          "the new bundle: certificate + server generation 2"
strict_verify sslserver pki/server-chain.crt pki/servers/localhost.crt >/dev/null || fail "re-issued server certificate fails openssl verify"
ok "retire server --all-but-current" "$CT" retire server --all-but-current
expect_eq "$(pem_serials pki/server-chain.crt)" "$sgen2 $root_serial" "server-chain.crt after retire"
expect_not_contains "$OUT" "will be refused" "retire server (no server certificate left on generation 1)"

# Retire client generation 1: out of the chain and the CRL file, files kept.
cp pki/client-ca.crl crl-with-gen1.crl
ok "retire client --all-but-current" "$CT" retire client --all-but-current
expect_contains "$OUT" "retired client intermediate generation 1: no longer in pki/client-chain.crt or pki/client-ca.crl" "retire output"
expect_contains "$OUT" "note: 4 valid client certificates issued by it will be refused once servers reload: ed-client, withpass, device7, attestor1" "retire names the certificates it orphans"
expect_eq "$(pem_serials pki/client-chain.crt)" "$gen2 $root_serial" "client-chain.crt after retire"
expect_eq "$(pem_parts pki/client-ca.crl)" 1 "client-ca.crl after retire"
expect_eq "$(openssl crl -in pki/client-ca.crl -noout -issuer)" "issuer=O = Example Org, CN = Example Org Client CA 2" "remaining CRL"
cmp -s gen1.crt pki/cas/client-ca.1.crt && [ -s pki/private/client-ca.1.key ] || fail "retire removed generation 1's files"
grep -Eq "^client	1	$gen1	[^	]+	retired	[0-9TZ:-]+	-	-$" pki/cas.tsv || fail "cas.tsv: generation 1 not retired: $(cat pki/cas.tsv)"
bad "verify a certificate of the retired generation" \
    "ed-client.crt: issued by the client intermediate generation 1, which was retired on" "$CT" verify pki/clients/ed-client.crt
ok "verify attestor9 after the retire" "$CT" verify pki/clients/attestor9.crt
bad "retire it again" "client intermediate generation 1 is already retired" "$CT" retire client --generation 1
bad "retire the current generation 2" "generation 2 is the current client intermediate" "$CT" retire client --generation 2
ok "list after retire" "$CT" list
echo "$OUT" | grep -Eq "^client-ca +ca +1 +$gen1 .* retired [0-9-]+ [0-9:]+ UTC$" || fail "list: retired generation 1: $OUT"
echo "$OUT" | grep -Eq "^ed-client +client +1 .* valid \(issuer retired\)$" || fail "list: ed-client: $OUT"
ok "revoke a certificate of the retired generation" "$CT" revoke ed-client
expect_contains "$OUT" "generation 1, which is retired" "revoke notes the retired issuer"

# Revoke the retired intermediate: root.crl lists it (what nginx's ssl_crl checks with CRL_CHECK_ALL).
ok "retire --revoke generation 1" "$CT" retire client --generation 1 --revoke --reason caCompromise
expect_contains "$OUT" "revoked client intermediate generation 1 in pki/root.crl (reason caCompromise)" "retire --revoke output"
rtext=$(openssl crl -in pki/root.crl -noout -text)
expect_contains "$rtext" "Serial Number: $gen1" "root.crl lists generation 1"
expect_contains "$rtext" "CA Compromise" "root.crl reason"
openssl crl -in pki/root.crl -noout -CAfile pki/root.crt 2>&1 | grep -q "verify OK" || fail "root.crl is not signed by the root"
cat pki/client-ca.crl pki/root.crl >nginx.crl
openssl verify -crl_check_all -CAfile pki/root.crt -untrusted pki/client-ca.crt -CRLfile nginx.crl \
    pki/clients/attestor9.crt >/dev/null 2>&1 || fail "-crl_check_all with client-ca.crl + root.crl rejects attestor9"
if out=$(openssl verify -crl_check_all -CAfile pki/root.crt -untrusted pki/cas/client-ca.1.crt \
         -CRLfile crl-with-gen1.crl -CRLfile pki/root.crl pki/clients/attestor1.crt 2>&1); then
    fail "-crl_check_all accepted a certificate of the revoked intermediate"
fi
expect_contains "$out" "certificate revoked" "-crl_check_all on a certificate of the revoked intermediate"
bad "retire --revoke again" "client intermediate generation 1 is already retired and revoked" \
    "$CT" retire client --generation 1 --revoke
ok "crl after rotation" "$CT" crl
expect_contains "$OUT" "pki/root.crl (1 revoked intermediates)" "crl rewrites root.crl"
expect_contains "$(openssl crl -in pki/root.crl -noout -text)" "Serial Number: $gen1" "crl keeps the revoked intermediate"
pass "retire: generation 1 out of chain and CRL file, files kept, refused by verify; --revoke lists it in root.crl"

# init --force replaces the PKI.
oldroot=$(serial_of pki/root.crt)
ok "init --force" "$CT" init --force --key-type ec-p384
[ "$(serial_of pki/root.crt)" != "$oldroot" ] || fail "init --force kept the old root"
expect_contains "$(openssl x509 -in pki/root.crt -noout -text)" "P-384" "init --key-type ec-p384"
expect_eq "$(grep -vc '^#' pki/index.tsv)" 0 "init --force starts an empty index"
[ ! -e pki/cas/client-ca.1.crt ] && [ ! -e pki/private/client-ca.1.key ] && [ ! -e pki/private/server-ca.1.key ] ||
    fail "init --force left earlier generations' files: $(ls pki/cas pki/private)"
expect_eq "$(grep -c . pki/cas.tsv)" 3 "init --force: cas.tsv back to generation 1"
ok "rollover after init --force" "$CT" rollover client
expect_contains "$OUT" "ec-p384" "rollover keeps the current intermediate's key type"
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -text)" "P-384" "rollover key type"
ok "rollover --key-type ed25519" "$CT" rollover client --key-type ed25519 --days 30
expect_contains "$(openssl x509 -in pki/client-ca.crt -noout -text)" "ED25519" "rollover --key-type"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' pki/client-chain.crt)" 4 "three trusted client generations + root"
ok "retire --all-but-current of two" "$CT" retire client --all-but-current
expect_contains "$OUT" "retired client intermediate generations 1, 2" "retire two"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' pki/client-chain.crt)" 2 "one trusted client generation + root"

# No temporary file was ever left behind.
leftovers=$(find pki other -name '.*.tmp-*')
ls pki/cas/client-ca.1.crt pki/cas/client-ca.2.crt >/dev/null || fail "retired generations' certificates were not kept"
[ -z "$leftovers" ] || fail "temporary files left behind: $leftovers"
pass "all certs-tool CLI checks passed"
