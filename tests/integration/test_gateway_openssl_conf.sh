#!/usr/bin/env bash
# Client TLS and OpenSSL's configuration (tls/tls_libctx.h):
#  - with the system's configuration the gateway uses its own library
#    context: the start-up log does not mention the default one;
#  - with an OPENSSL_CONF that activates another provider ("base") beside
#    "default", the gateway follows it: the start-up log says client TLS
#    runs in the default library context and why, a client of the client
#    intermediate is served, and one of the server intermediate is still
#    refused as untrusted_issuer.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
gw_write_config "$GW_CONF" workers=1
FALLBACK_LINE="client TLS runs in OpenSSL's default library context"

gw_start
# the line would come before "started", which the logger writes in order
gw_wait_log_since 0 'mtlsgate .* started' || fail "plain configuration: no start-up line"
code=$(gw_curl attestor1 /plain) || fail "plain configuration: curl failed ($(tail -1 "$TEST_TMPDIR/curl.err"))"
expect_eq "$code" 200 "plain configuration: status"
grep -qF "$FALLBACK_LINE" "$GW_LOG" && fail "plain configuration: the log says the default context is used: $(grep -F "$FALLBACK_LINE" "$GW_LOG")"
stop_bg gw || fail "mtlsgate (plain configuration) did not exit 0"
pass "with the system's OpenSSL configuration the gateway uses its own library context"

CONF=$TEST_TMPDIR/openssl-base.cnf
cat >"$CONF" <<'EOF'
openssl_conf = init
[init]
providers = providers
[providers]
default = on
base = on
[on]
activate = 1
EOF
OPENSSL_CONF=$CONF gw_start_gateway "$GW_CONF" gwb
gw_wait_log_since 0 'mtlsgate .* started' || fail "base provider configured: no start-up line"
grep -F "$FALLBACK_LINE" "$GW_LOG" | grep -qF 'loads other providers than' ||
    fail "base provider configured: no start-up line about the default context: $(grep -i 'tls\|openssl' "$GW_LOG" | head -3)"
code=$(gw_curl attestor1 /base) || fail "base provider configured: curl failed ($(tail -1 "$TEST_TMPDIR/curl.err"))"
expect_eq "$code" 200 "base provider configured: status"
mark=$(gw_log_mark)
gw_curl server-issued /refused >/dev/null && fail "base provider configured: a client of the server intermediate was served"
gw_wait_log_since "$mark" 'untrusted_issuer' ||
    fail "base provider configured: no untrusted_issuer refusal logged: $(gw_log_since "$mark" | tail -2)"
stop_bg gwb || fail "mtlsgate (base provider configured) did not exit 0"
pass "with another provider configured, client TLS runs in the default context, says so, and still pins the issuer"
check_sanitizers
pass "gateway openssl conf"
