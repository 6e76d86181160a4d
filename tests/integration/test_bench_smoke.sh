#!/usr/bin/env bash
# bench_smoke: a few seconds of the benchmark harness (scripts/bench.sh
# --smoke): the same upstream behind nginx and behind mtlsgate, each driven
# by mtls-loadgen with a client certificate for about a second. Asserts only
# that both front ends answered: requests done, no error, and the upstream
# saw every proxied request with the X-Client-CN header. The numbers mean
# nothing here (the full benchmark needs a quiet machine: scripts/bench.sh).
source "$SRC_DIR/tests/lib/common.sh"

[ -x "$BIN_DIR/mtlsgate" ] || skip "mtlsgate is not built yet"
[ -x "$BIN_DIR/mtls-loadgen" ] || fail "$BIN_DIR/mtls-loadgen is not built"
[ -x "$BIN_DIR/bench-upstream" ] || fail "$BIN_DIR/bench-upstream is not built"
[ -x /usr/sbin/nginx ] || fail "/usr/sbin/nginx is missing (scripts/install-deps.sh)"

out=$(bash "$SRC_DIR/scripts/bench.sh" --smoke --out "$TEST_TMPDIR/bench" \
      2>"$TEST_TMPDIR/bench-stderr.log")
rc=$?
echo "$out"
# The harness's own logs, where check_sanitizers looks for reports.
for f in "$TEST_TMPDIR"/bench/*.log; do
    [ -e "$f" ] && cp "$f" "$TEST_TMPDIR/bench-$(basename "$f")"
done
if [ $rc -ne 0 ]; then
    tail -n 30 "$TEST_TMPDIR/bench-stderr.log" >&2
    fail "scripts/bench.sh --smoke exited $rc"
fi

for fe in nginx mtlsgate; do
    line=$(grep "^smoke $fe " <<<"$out")
    [ -n "$line" ] || fail "no smoke result for $fe"
    val() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$line"; }
    rps=$(val rps) errors=$(val errors) reqs=$(val total_requests)
    up=$(val upstream_requests) cn=$(val upstream_with_cn)
    awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || fail "$fe: rps is '$rps'"
    expect_eq "$errors" 0 "$fe: load generator errors"
    [ "${up:-0}" -ge "${reqs:-1}" ] || fail "$fe: upstream saw ${up:-0} requests, loadgen completed $reqs"
    expect_eq "$cn" "$up" "$fe: requests with X-Client-CN at the upstream"
    pass "$fe answered: rps=$rps, $reqs requests, all with X-Client-CN at the upstream"
done
check_sanitizers
