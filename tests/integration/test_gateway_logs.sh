#!/usr/bin/env bash
# Logs (log.access, log.format, log.level, log.error) and their reopening.
#  - log.format: json, log.access: FILE: every access line is one JSON object
#    with exactly the documented keys and sane values (time ISO 8601 UTC,
#    client, cn, identity, method, path, status, bytes = what curl
#    received, upstream_ms, total_ms, tls, request_id = the X-Request-Id the
#    upstream saw); no access line on stderr; the error log is JSON too;
#    every line parses with Python's strict json module, upstream_ms is an
#    integer for a proxied request and null (not "-") for one that used no
#    upstream (a 403 by the allow rules, a 400), and a path with '"' and '\'
#    reads back exactly;
#  - SIGHUP reopens the access and error log files: moved away, new lines go
#    to new files, the old ones get nothing more;
#  - log.level: warn hides info lines and keeps warn lines; log.access: off
#    writes no access line.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
ACCESS=$TEST_TMPDIR/access.log
ERRLOG=$TEST_TMPDIR/error.log
gw_write_config "$GW_CONF" format=json access="$ACCESS" log_extra="  error: $ERRLOG"
gw_start

# wait_lines FILE N: waits (5 s) until FILE has at least N lines (the logger
# writes every 50 ms).
wait_lines() {
    local i
    for i in $(seq 1 100); do
        [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# --- JSON access lines --------------------------------------------------------------------------
declare -A want_status want_bytes want_rid
# one PATH EXPECTED_STATUS NAME [curl args]: one request, remembered by path
one() {
    local path=$1 st=$2 name=$3 out code size hsize
    shift 3
    out=$(gw_curl "$name" "$path" "$@" -w '%{http_code} %{size_download} %{size_header}')
    read -r code size hsize <<<"$out"
    expect_eq "$code" "$st" "status of $name $path"
    want_status[$path]=$st
    want_bytes[$path]=$((size + hsize))
    if [ "$st" = 200 ]; then want_rid[$path]=$(gw_up '.headers["x-request-id"]'); fi
}
one /get 200 attestor1
one /attestations 200 attestor1 -X POST --data-binary 'x=1'
one '/q?a=b%20c' 200 attestor1
one /admin 403 attestor2 -X POST --data-binary 'x'
one /stranger 403 unknown-cn
one '/q"uote' 200 attestor1
one '/back\slash' 400 attestor1
nlines=7
wait_lines "$ACCESS" $nlines || fail "access log $ACCESS: fewer than $nlines lines: $(cat "$ACCESS" 2>/dev/null)"
expect_eq "$(wc -l <"$ACCESS" | tr -d ' ')" $nlines "access lines for $nlines requests"
keys='["bytes","client","cn","identity","method","path","request_id","status","time","tls","total_ms","upstream_ms"]'
n=0
while IFS= read -r line; do
    n=$((n + 1))
    jq -e . >/dev/null 2>&1 <<<"$line" || fail "access line $n is not JSON: $line"
    expect_eq "$(jq -c 'keys' <<<"$line")" "$keys" "keys of access line $n"
    jq -e '(.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"))
        and (.client | test("^127\\.0\\.0\\.1:[0-9]+$"))
        and (.status | type == "number") and (.bytes | type == "number")
        and (.total_ms | type == "number") and (.total_ms >= 0)
        and ((.upstream_ms | type == "number") or .upstream_ms == null)
        and (.tls | test("^TLSv1\\.[23]$")) and (.request_id | test("^[0-9a-f]{32}$"))' \
        >/dev/null <<<"$line" || fail "access line $n: a field has the wrong form: $line"
    path=$(jq -r .path <<<"$line")
    [ -n "${want_status[$path]:-}" ] || fail "access line $n: unexpected path $path"
    expect_eq "$(jq -r .status <<<"$line")" "${want_status[$path]}" "status logged for $path"
    expect_eq "$(jq -r .bytes <<<"$line")" "${want_bytes[$path]}" "bytes logged for $path (curl: headers + body)"
    if [ "${want_status[$path]}" = 200 ]; then
        expect_eq "$(jq -r .request_id <<<"$line")" "${want_rid[$path]}" "request_id logged for $path vs X-Request-Id upstream"
        jq -e '.upstream_ms | type == "number"' >/dev/null <<<"$line" || fail "upstream_ms for $path is not a number: $line"
    else
        jq -e '.upstream_ms == null' >/dev/null <<<"$line" || fail "upstream_ms for $path (no upstream used) is not null: $line"
    fi
done <"$ACCESS"
# The same lines through Python's json module (strict: no NaN/Infinity, text
# must be valid UTF-8): numbers are integers, upstream_ms null exactly when
# no upstream was used (status != 200 here), strings are strings.
command -v python3 >/dev/null 2>&1 || fail "python3 is required"
pyout=$(python3 -c '
import json, sys
def bad_const(c):
    raise ValueError("non-standard JSON constant " + c)
with open(sys.argv[1], "rb") as f:
    raw = f.read()
for n, line in enumerate(raw.decode("utf-8", errors="strict").splitlines(), 1):
    o = json.loads(line, parse_constant=bad_const)
    for k in ("status", "bytes", "total_ms"):
        v = o[k]
        if type(v) is not int or v < 0:
            sys.exit("line %d: %s is not a non-negative integer: %r" % (n, k, v))
    up = o["upstream_ms"]
    if o["status"] == 200:
        if type(up) is not int or up < 0 or up > o["total_ms"]:
            sys.exit("line %d: upstream_ms of a proxied request is not an integer <= total_ms: %r" % (n, up))
    elif up is not None:
        sys.exit("line %d: upstream_ms of a request without upstream is not null: %r" % (n, up))
    for k in ("time", "client", "cn", "identity", "method", "path", "tls", "request_id"):
        if type(o[k]) is not str:
            sys.exit("line %d: %s is not a string: %r" % (n, k, o[k]))
    print("%s %s %s" % (o["status"], "null" if up is None else "int", json.dumps(o["path"])))
' "$ACCESS" 2>&1) || fail "access log, read by Python's json: $pyout"
grep -qxF '403 null "/admin"' <<<"$pyout" || fail "Python: the 403 by the allow rules: upstream_ms is not null: $pyout"
grep -qxF '400 null "/back\\slash"' <<<"$pyout" || fail "Python: the 400: upstream_ms not null or path not read back: $pyout"
grep -qxF '200 int "/q\"uote"' <<<"$pyout" || fail "Python: the proxied /q\"uote: upstream_ms not an integer or path not read back: $pyout"
expect_eq "$(grep -c ' int ' <<<"$pyout")" 4 "Python: proxied requests with an integer upstream_ms"
expect_eq "$(jq -r 'select(.path == "/attestations") | "\(.method) \(.cn) \(.identity)"' "$ACCESS")" \
    "POST attestor1 svc-attestor-1" "method, cn, identity of the POST"
expect_eq "$(jq -r 'select(.path == "/stranger") | "\(.cn) \(.identity)"' "$ACCESS")" "stranger -" "cn, identity of an unknown CN"
pass "JSON access log to a file: $nlines lines, exactly the documented keys, values match what was sent and seen upstream; upstream_ms null without an upstream"

[ -s "$ERRLOG" ] || fail "error log file $ERRLOG is empty"
bad=$(jq -c 'select((.time and .level and .msg) | not)' "$ERRLOG" 2>&1) || fail "error log is not JSON lines: $(head -3 "$ERRLOG")"
[ -z "$bad" ] || fail "error log lines without time/level/msg: $bad"
grep -q '403 .*forbidden' "$ERRLOG" || fail "error log has no line about the 403"
grep -q 'request_id' "$GW_LOG" && fail "an access line went to stderr: $(grep request_id "$GW_LOG" | head -1)"
grep -q 'request_id' "$ERRLOG" && fail "an access line went to the error log"
pass "JSON error log to its own file; no access line on stderr or in the error log"

# --- SIGHUP reopens the log files --------------------------------------------------------------
mv "$ACCESS" "$ACCESS.1"
mv "$ERRLOG" "$ERRLOG.1"
kill -HUP "$(bg_pid gw)"
wait_lines "$ERRLOG" 1 || fail "after SIGHUP: no new error log file"
wait_log "$ERRLOG" 'reload \(SIGHUP\)' 5 || fail "the new error log has no reload line: $(head -3 "$ERRLOG")"
one /after-hup 200 attestor1
wait_lines "$ACCESS" 1 || fail "after SIGHUP: no new access log file at $ACCESS"
expect_eq "$(jq -r .path "$ACCESS")" /after-hup "the new access log's only line"
sleep 0.2
expect_eq "$(wc -l <"$ACCESS.1" | tr -d ' ')" $nlines "lines in the moved-away access log"
grep -q after-hup "$ACCESS.1" && fail "the moved-away access log got a line after SIGHUP"
pass "SIGHUP reopens the access and error logs (moved away: new files get the new lines)"
stop_bg gw || fail "mtlsgate (json) did not exit 0"

# --- log.level: warn, log.access: off ------------------------------------------------------------
gw_write_config "$GW_CONF" level=warn access=off
gw_start_gateway "$GW_CONF" gw-warn
gw_curl attestor1 /warn-ok >/dev/null || fail "level warn: request failed"
code=$(gw_curl attestor2 /admin -X POST --data-binary x)
expect_eq "$code" 403 "level warn: forbidden request"
gw_curl revoked /revoked >/dev/null && fail "level warn: revoked certificate admitted"
wait_log "$GW_LOG" 'level=warn .*refused .*revoked' 5 || fail "level warn: no warn line for the revoked certificate"
sleep 0.2
info=$(grep -c 'level=info' "$GW_LOG")
expect_eq "$info" 0 "level=info lines with log.level: warn ($(grep -m1 'level=info' "$GW_LOG"))"
grep -q 'forbidden' "$GW_LOG" && fail "log.level: warn: the 403 (an info line) was logged"
grep -q 'request_id=' "$GW_LOG" && fail "log.access: off: an access line was written"
pass "log.level: warn hides info lines (start, 403) and keeps warn lines; log.access: off writes none"

stop_bg gw-warn || fail "mtlsgate (warn) did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway logs"
