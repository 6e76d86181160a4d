#!/usr/bin/env bash
# make-test-certs.sh OUTDIR - the test PKI of every gateway test, made with the
# openssl CLI only (never certs-tool), so that the gateway is proven against a
# chain it did not make. ECDSA P-256 everywhere, SHA-256 signatures.
#
# Idempotent: OUTDIR's previous contents are removed and rebuilt. Private keys
# are mode 0600. Prints nothing on success; on failure prints openssl's output
# and exits non-zero. Takes well under 5 s.
#
# Files in OUTDIR (every name is fixed):
#   root.crt root.key                 the root CA ("mtlsgate Test Root CA")
#   client-ca.crt client-ca.key       client intermediate under root (pathlen:0)
#   client-ca.crl                     CRL signed by client-ca, revokes "revoked",
#                                     nextUpdate in 30 days
#   client-ca2.crt client-ca2.key     second client intermediate under root
#                                     (rotation tests)
#   server-ca.crt server-ca.key       server intermediate under root
#   server-ca.crl                     an empty CRL signed by server-ca (a CRL
#                                     from a wrong signer, for load tests)
#   client-chain.crt                  client-ca + root        (gateway client_ca)
#   client-chain2.crt                 client-ca + client-ca2 + root
#   server-chain.crt                  server-ca + root
#   gateway.crt gateway.key           gateway server cert, CN=localhost,
#                                     SAN DNS:localhost IP:127.0.0.1, EKU serverAuth
#   gateway.bundle.crt                gateway + server-ca     (gateway certificate)
#   other-root-ca.crt .key            a second root with the SAME subject as root
#   other-client-ca.crt .key          a client intermediate under other-root-ca
#                                     with the SAME subject as client-ca
#   other-client-ca.crl               a CRL with client-ca's issuer name but
#                                     signed by other-client-ca (forged signer)
#   client leaves, each LEAF.crt (leaf only), LEAF.key, LEAF.pem (leaf + the
#   intermediate that issued it, what a client presents):
#     attestor1        CN=attestor1, issued by client-ca: the good one
#     attestor2        CN=attestor2, issued by client-ca
#     unknown-cn       CN=stranger, issued by client-ca
#     two-cn           subject CN=attestor1 + CN=attestor2 (two CN attributes)
#     no-clientauth    CN=attestor1, EKU serverAuth only
#     no-eku           CN=attestor1, no extendedKeyUsage extension at all
#     expired          CN=attestor1, valid 2020-01-01 .. 2021-01-01
#     not-yet-valid    CN=attestor1, valid from 2090-01-01
#     server-issued    CN=attestor1, issued by server-ca (pem: + server-ca)
#     other-root       CN=attestor1, issued by other-client-ca (pem: + other-client-ca)
#     self-signed      CN=attestor1, self-signed, EKU clientAuth (pem: the cert alone)
#     client-ca-as-client  client-ca's own cert and key (pem: client-ca + root)
#     revoked          CN=attestor-revoked, issued by client-ca, revoked in client-ca.crl
#     attestor3        CN=attestor3, issued by client-ca2 (pem: + client-ca2)
#   Every client leaf except the deliberately broken ones has
#   keyUsage=digitalSignature and EKU clientAuth.
#   ca/                               openssl ca databases and configs (internal)
#   .mtlsgate-test-pki                marker: OUTDIR may be wiped and rebuilt
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Rebuild from scratch, but only a directory that is empty or that this
# script made (marker file): a wrong argument must not wipe anything else.
if [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/.mtlsgate-test-pki" ]; then
    echo "make-test-certs: $OUT is not empty and was not made by this script" >&2
    exit 2
fi
find "$OUT" -mindepth 1 -delete
: >"$OUT/.mtlsgate-test-pki"
mkdir -p "$OUT/ca"
umask 077

LOG="$OUT/ca/openssl.log"
: >"$LOG"
trap 'rc=$?; if [ $rc -ne 0 ]; then cat "$LOG" >&2; echo "make-test-certs: failed (exit $rc)" >&2; fi' EXIT

ossl() { openssl "$@" >>"$LOG" 2>&1; }

ORG="/O=mtlsgate test"
ROOT_SUBJ="$ORG/CN=mtlsgate Test Root CA"
CLIENT_CA_SUBJ="$ORG/CN=mtlsgate Test Client CA"
CLIENT_CA2_SUBJ="$ORG/CN=mtlsgate Test Client CA 2"
SERVER_CA_SUBJ="$ORG/CN=mtlsgate Test Server CA"

EXT="$OUT/ca/ext.cnf"
cat >"$EXT" <<'EOF'
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client_ica ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server_ica ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client_serverauth ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client_noeku ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ client_selfsigned ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
EOF

# Serial numbers: random 64-bit, positive, from the shell's generator.
serial() { printf '0x%04x%04x%04x%04x' $((RANDOM & 0x7fff)) $RANDOM $RANDOM $RANDOM; }

# newkey NAME: OUT/NAME.key, a P-256 key.
newkey() {
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/$1.key"
}

# selfsign NAME SUBJ EXTSECTION: a self-signed certificate for NAME.key.
selfsign() {
    ossl req -new -x509 -key "$OUT/$1.key" -subj "$2" -days 3650 -sha256 \
        -set_serial "$(serial)" -config "$EXT" -extensions "$3" -out "$OUT/$1.crt"
}

# issue NAME SUBJ ISSUER EXTSECTION [DAYS]: NAME.crt for NAME.key, signed by ISSUER.
issue() {
    ossl req -new -key "$OUT/$1.key" -subj "$2" -config "$EXT" -out "$OUT/ca/$1.csr"
    ossl x509 -req -in "$OUT/ca/$1.csr" -CA "$OUT/$3.crt" -CAkey "$OUT/$3.key" \
        -set_serial "$(serial)" -days "${5:-825}" -sha256 \
        -extfile "$EXT" -extensions "$4" -out "$OUT/$1.crt"
}

# caconf NAME: an `openssl ca` config and database for CA NAME (for dated
# issuance, revocation and CRLs).
caconf() {
    local d="$OUT/ca/$1"
    mkdir -p "$d/new"
    : >"$d/index.txt"
    echo "unique_subject = no" >"$d/index.txt.attr"
    printf '%s\n' "$(serial | sed 's/^0x//')" >"$d/serial"
    echo 01 >"$d/crlnumber"
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca
[ this_ca ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $OUT/$1.crt
private_key = $OUT/$1.key
default_md = sha256
default_crl_days = 30
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
organizationName = optional
EOF
}

# caissue CA NAME SUBJ EXTSECTION START END: NAME.crt via `openssl ca` with
# explicit validity dates (YYYYMMDDHHMMSSZ).
caissue() {
    ossl req -new -key "$OUT/$2.key" -subj "$3" -config "$EXT" -out "$OUT/ca/$2.csr"
    ossl ca -batch -config "$OUT/ca/$1/ca.cnf" -in "$OUT/ca/$2.csr" -notext \
        -preserveDN -startdate "$5" -enddate "$6" \
        -extfile "$EXT" -extensions "$4" -out "$OUT/$2.crt"
}

# pem LEAF ISSUER...: LEAF.pem = LEAF.crt followed by the issuers' certs.
pem() {
    local leaf=$1
    shift
    cat "$OUT/$leaf.crt" "${@/#/$OUT/}" >"$OUT/$leaf.pem"
}

# --- the real hierarchy -------------------------------------------------
newkey root
selfsign root "$ROOT_SUBJ" root
newkey client-ca
issue client-ca "$CLIENT_CA_SUBJ" root client_ica 3650
newkey client-ca2
issue client-ca2 "$CLIENT_CA2_SUBJ" root client_ica 3650
newkey server-ca
issue server-ca "$SERVER_CA_SUBJ" root server_ica 3650

cat "$OUT/client-ca.crt" "$OUT/root.crt" >"$OUT/client-chain.crt"
cat "$OUT/client-ca.crt" "$OUT/client-ca2.crt" "$OUT/root.crt" >"$OUT/client-chain2.crt"
cat "$OUT/server-ca.crt" "$OUT/root.crt" >"$OUT/server-chain.crt"

newkey gateway
issue gateway "$ORG/CN=localhost" server-ca server
cat "$OUT/gateway.crt" "$OUT/server-ca.crt" >"$OUT/gateway.bundle.crt"

# --- client leaves under client-ca -------------------------------------
for spec in "attestor1:/CN=attestor1:client" \
            "attestor2:/CN=attestor2:client" \
            "unknown-cn:/CN=stranger:client" \
            "two-cn:/CN=attestor1/CN=attestor2:client" \
            "no-clientauth:/CN=attestor1:client_serverauth" \
            "no-eku:/CN=attestor1:client_noeku"; do
    IFS=: read -r name subj ext <<<"$spec"
    newkey "$name"
    issue "$name" "$ORG$subj" client-ca "$ext"
    pem "$name" client-ca.crt
done

caconf client-ca
newkey expired
caissue client-ca expired "$ORG/CN=attestor1" client 20200101000000Z 20210101000000Z
pem expired client-ca.crt
newkey not-yet-valid
caissue client-ca not-yet-valid "$ORG/CN=attestor1" client 20900101000000Z 20910101000000Z
pem not-yet-valid client-ca.crt
newkey revoked
caissue client-ca revoked "$ORG/CN=attestor-revoked" client 20240101000000Z 20990101000000Z
pem revoked client-ca.crt
ossl ca -batch -config "$OUT/ca/client-ca/ca.cnf" -revoke "$OUT/revoked.crt" -crl_reason keyCompromise
ossl ca -batch -config "$OUT/ca/client-ca/ca.cnf" -gencrl -crldays 30 -out "$OUT/client-ca.crl"

# --- under client-ca2 and server-ca --------------------------------------
newkey attestor3
issue attestor3 "$ORG/CN=attestor3" client-ca2 client
pem attestor3 client-ca2.crt

newkey server-issued
issue server-issued "$ORG/CN=attestor1" server-ca client
pem server-issued server-ca.crt
caconf server-ca
ossl ca -batch -config "$OUT/ca/server-ca/ca.cnf" -gencrl -crldays 30 -out "$OUT/server-ca.crl"

# --- look-alikes ----------------------------------------------------------
newkey other-root-ca
selfsign other-root-ca "$ROOT_SUBJ" root
newkey other-client-ca
issue other-client-ca "$CLIENT_CA_SUBJ" other-root-ca client_ica 3650
newkey other-root
issue other-root "$ORG/CN=attestor1" other-client-ca client
pem other-root other-client-ca.crt
caconf other-client-ca
ossl ca -batch -config "$OUT/ca/other-client-ca/ca.cnf" -gencrl -crldays 30 -out "$OUT/other-client-ca.crl"

newkey self-signed
selfsign self-signed "$ORG/CN=attestor1" client_selfsigned
pem self-signed

cp "$OUT/client-ca.crt" "$OUT/client-ca-as-client.crt"
cp "$OUT/client-ca.key" "$OUT/client-ca-as-client.key"
pem client-ca-as-client root.crt

# Certificates, chains and CRLs are public; keys stay 0600 (umask above).
chmod 0644 "$OUT"/*.crt "$OUT"/*.pem "$OUT"/*.crl
chmod 0600 "$OUT"/*.key
