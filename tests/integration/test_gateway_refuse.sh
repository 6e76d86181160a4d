#!/usr/bin/env bash
# mtlsgate refuses every bad client certificate in the TLS handshake, with
# the matching alert, a log line naming the reason and the subject, and
# nothing reaching the upstream; TLS 1.1 and TLS 1.2 renegotiation are
# refused; an unknown CN gets 403;
# an identity's allow list gives 403 outside it and 200 inside it; path
# tricks never get around the allow list.
#
# Certificates come from tests/lib/make-test-certs.sh (openssl CLI). Most bad
# leaves carry CN=attestor1, which is mapped: admitting one by mistake would
# forward it as svc-attestor-1, so the upstream log is the proof.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF"
gw_start

# Sanity: the good certificate works against this very instance, so each
# refusal below is about the certificate, not a broken setup.
code=$(gw_curl attestor1 /sanity) || fail "attestor1: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "attestor1 sanity request"
base=$(upstream_count)
expect_eq "$base" 1 "upstream requests after the sanity request"

# refuse NAME LOG_REASON_RE ALERT_RE SUBJECT_RE
#  - curl with NAME's certificate fails without any HTTP status;
#  - openssl s_client (TLS 1.3, then 1.2) gets an alert matching ALERT_RE;
#  - the upstream saw nothing;
#  - gw.log got a line matching LOG_REASON_RE and SUBJECT_RE.
declare -A ALERTS=()
refuse() {
    local name=$1 reason=$2 alert=$3 subject=$4 mark code rc out v
    mark=$(gw_log_mark)
    code=$(gw_curl "$name" /refused-"$name")
    rc=$?
    [ "$rc" -ne 0 ] || fail "$name: curl succeeded (HTTP $code); the certificate must be refused in the handshake"
    expect_eq "$code" 000 "$name: HTTP status of a refused handshake"
    for v in -tls1_3 -tls1_2; do
        out=$(gw_s_client "$name" "$v")
        got=$(grep -Eo 'alert [a-z ]+' <<<"$out" | head -1)
        ALERTS["$name $v"]=${got:-none}
        grep -Eq "alert ($alert)" <<<"$out" ||
            fail "$name ($v): expected TLS alert '$alert', s_client saw '${got:-no alert}': $(grep -E 'error|alert' <<<"$out" | head -3)"
    done
    expect_eq "$(upstream_count)" "$base" "$name: requests seen by the upstream"
    # Wait for this case's own line: the previous case's last refusals may
    # still be reaching the log after the mark, with the same reason.
    gw_wait_log_since "$mark" "$reason" 5 ||
        fail "$name: no log line with reason /$reason/ in gw.log; new lines: $(gw_log_since "$mark" | head -5)"
    if [ -n "$subject" ]; then
        gw_wait_log_line_since "$mark" "$reason" "$subject" 5 ||
            fail "$name: no refusal line with reason /$reason/ names the subject /$subject/: $(gw_log_since "$mark" | grep -Ei -- "$reason" | head -3)"
    fi
    pass "$name refused: alerts ${ALERTS["$name -tls1_3"]} (1.3) / ${ALERTS["$name -tls1_2"]} (1.2), logged as $reason"
}

# Alerts per tls/tls_trust.h: untrusted_issuer -> unknown_ca, expired ->
# certificate_expired, not_yet_valid -> bad_certificate, revoked ->
# certificate_revoked, bad_usage -> unsupported_certificate, bad_subject ->
# bad_certificate; no certificate -> certificate_required (1.3) /
# handshake_failure (1.2).
refuse server-issued       untrusted_issuer 'unknown ca'              'attestor1'
refuse other-root          untrusted_issuer 'unknown ca'              'attestor1'
refuse self-signed         untrusted_issuer 'unknown ca'              'attestor1'
refuse expired             'expired'        'certificate expired'     'attestor1'
refuse not-yet-valid       not_yet_valid    'bad certificate'         'attestor1'
refuse no-clientauth       bad_usage        'unsupported certificate' 'attestor1'
refuse no-eku              bad_usage        'unsupported certificate' 'attestor1'
refuse client-ca-as-client 'bad_usage|untrusted_issuer' 'unsupported certificate|unknown ca' 'Test Client CA'
refuse revoked             revoked          'certificate revoked'     'attestor-revoked'
refuse two-cn              bad_subject      'bad certificate'         'attestor'
refuse none                no_certificate   'certificate required|handshake failure' ''

# --- TLS 1.1 -----------------------------------------------------------------------
# The local OpenSSL default (SECLEVEL 2, MinProtocol TLSv1.2 on Debian) would
# stop the client itself; lower it so that the refusal is the gateway's.
mark=$(gw_log_mark)
out=$(gw_s_client attestor1 -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')
if grep -Eq 'Protocol *: TLSv1\.1' <<<"$out" && ! grep -q 'alert' <<<"$out"; then
    fail "TLS 1.1 handshake succeeded"
fi
grep -q 'alert protocol version' <<<"$out" ||
    fail "TLS 1.1: expected the gateway's 'protocol version' alert, s_client said: $(grep -E 'error|alert' <<<"$out" | head -3)"
code=$(gw_curl attestor1 /tls11 --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT@SECLEVEL=0')
rc=$?
[ "$rc" -ne 0 ] || fail "TLS 1.1 with curl succeeded (HTTP $code)"
expect_eq "$code" 000 "TLS 1.1 with curl"
grep -q 'alert protocol version' "$TEST_TMPDIR/curl.err" ||
    fail "curl TLS 1.1: expected a 'protocol version' alert from the gateway: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$(upstream_count)" "$base" "TLS 1.1: requests seen by the upstream"
gw_wait_log_since "$mark" 'protocol' 5 || fail "TLS 1.1 refusal not logged with reason 'protocol': $(gw_log_since "$mark" | head -3)"
pass "TLS 1.1 refused (s_client and curl)"

# --- TLS 1.2 client-initiated renegotiation: refused ----------------------------------
# s_client's "R" command renegotiates; then a request on the same connection
# must not be served.
out=$({
    sleep 1
    printf 'R\n'
    sleep 1
    printf 'GET /after-renegotiation HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    sleep 1
} | timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost -tls1_2 \
    -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" 2>&1)
grep -q RENEGOTIATING <<<"$out" || fail "renegotiation: s_client did not try (test setup): $(tail -3 <<<"$out")"
grep -Eq 'no renegotiation|alert' <<<"$out" || fail "renegotiation: no refusal seen by the client: $(grep -E 'error|alert|HTTP/' <<<"$out" | head -3)"
expect_not_contains "$out" "HTTP/1.1 200" "request after a renegotiation attempt"
expect_eq "$(upstream_count)" "$base" "renegotiation: requests seen by the upstream"
pass "TLS 1.2 renegotiation refused ($(grep -Eo 'no renegotiation|alert [a-z ]+' <<<"$out" | head -1))"

# --- unknown CN: 403 after the handshake -------------------------------------------
mark=$(gw_log_mark)
code=$(gw_curl unknown-cn /anything) || fail "unknown CN: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 403 "unknown CN (CN=stranger)"
expect_eq "$(upstream_count)" "$base" "unknown CN: requests seen by the upstream"
gw_wait_log_since "$mark" 'stranger' 5 || fail "unknown CN: no log line naming CN stranger"
pass "unknown CN gets 403 and never reaches the upstream"

# --- allow list: attestor2 may "GET /" (any GET) and "POST /attestations" ----------
# allowed: each must reach the upstream as svc-attestor-2
for req in "GET /" "GET /records/7" "POST /attestations" "POST /attestations/42"; do
    m=${req%% *}
    p=${req#* }
    if [ "$m" = GET ]; then data=(); else data=(--data-binary x -H 'Content-Type: text/plain'); fi
    code=$(gw_curl attestor2 "$p" -X "$m" "${data[@]}") || fail "attestor2 $req: curl failed"
    expect_eq "$code" 200 "attestor2 $req (allowed)"
    expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-2 "attestor2 $req identity"
    expect_eq "$(gw_up .method) $(gw_up .path)" "$m $p" "attestor2 $req as seen upstream"
    base=$((base + 1))
done
expect_eq "$(upstream_count)" "$base" "allowed attestor2 requests upstream"
pass "attestor2 allowed requests reach the upstream"

# forbidden: 403, and nothing reaches the upstream
for req in "POST /admin" "POST /" "PUT /attestations" "DELETE /attestations" "PATCH /records/7"; do
    m=${req%% *}
    p=${req#* }
    mark=$(gw_log_mark)
    code=$(gw_curl attestor2 "$p" -X "$m" --data-binary 'x') || fail "attestor2 $req: curl failed"
    expect_eq "$code" 403 "attestor2 $req (outside the allow list)"
    expect_eq "$(upstream_count)" "$base" "attestor2 $req: requests seen by the upstream"
done
gw_wait_log_since "$mark" 'attestor2|svc-attestor-2' 5 || fail "forbidden request not logged with the CN or identity"
pass "attestor2 requests outside its allow list get 403"

# path tricks: a prefix check on the raw target must not be fooled
for p in "/attestations/../admin" "/attestations/%2e%2e/admin" "/attestations/%2E%2E/admin" \
    "/attestations/./../admin" "/attestations/.%2e/admin" "/attestations/..%2fadmin" \
    "/attestations/%2e%2e%2fadmin"; do
    code=$(gw_curl attestor2 "$p" --path-as-is -X POST --data-binary 'x') || fail "attestor2 POST $p: curl failed"
    case "$code" in
    400 | 403) ;;
    *) fail "attestor2 POST $p: expected 400 or 403, got $code (upstream saw: $(gw_up .path 2>/dev/null))" ;;
    esac
    expect_eq "$(upstream_count)" "$base" "attestor2 POST $p: requests seen by the upstream"
done
pass "path tricks (.., %2e%2e, .%2e, ..%2f) are refused and never reach the upstream"

# dot-segments with path parameters: Tomcat, Jetty and Spring strip ";..." from
# a segment before resolving it, so /attestations/..;/admin is /admin there
for p in "/attestations/..;/admin" "/attestations/..;x=1/admin" "/attestations/.;/../admin" \
    "/attestations/..%3b/admin" "/attestations/..%3B/admin" "/attestations/..;"; do
    code=$(gw_curl attestor2 "$p" --path-as-is -X POST --data-binary 'x') || fail "attestor2 POST $p: curl failed"
    expect_eq "$code" 400 "attestor2 POST $p (a dot-segment with path parameters)"
    expect_eq "$(upstream_count)" "$base" "attestor2 POST $p: requests seen by the upstream"
done
pass "dot-segments with path parameters (..;, ..;x=1, .;, ..%3b) get 400 and never reach the upstream"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers

echo "alerts seen (TLS 1.3 / 1.2):"
for k in "${!ALERTS[@]}"; do echo "  $k: ${ALERTS[$k]}"; done | sort
pass "gateway refuse"
