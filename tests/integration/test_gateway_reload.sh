#!/usr/bin/env bash
# What a reload (SIGHUP) applies, and what it does not:
#  - a HUP reopens the log files even when the new config is refused
#    (logrotate moves the file away, then sends HUP; the config may be broken
#    at that moment): new lines go to a new file, none to the moved-away one.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
hup() { kill -HUP "$(bg_pid gw)" || fail "mtlsgate is gone (SIGHUP failed)"; }

# --- logrotate's HUP with a broken config still reopens the logs -------------------------------
ACCESS=$TEST_TMPDIR/access.log
gw_write_config "$GW_CONF" workers=1 access="$ACCESS"
gw_start
code=$(gw_curl attestor1 /before-rotate) || fail "attestor1 before the rotation: curl failed"
expect_eq "$code" 200 "attestor1 before the rotation"
wait_log "$ACCESS" 'path=/before-rotate' 5 || fail "no access line for /before-rotate in $ACCESS"
mv "$ACCESS" "$ACCESS.1"
echo "workers: 1" >>"$GW_CONF" # a duplicate key: the config is now refused
mark=$(gw_log_mark)
hup
gw_wait_log_since "$mark" 'reload \(SIGHUP\) refused.*workers' 5 ||
    fail "the broken config was not refused on SIGHUP: $(gw_log_since "$mark" | head -3)"
code=$(gw_curl attestor1 /after-rotate) || fail "attestor1 after the rotation: curl failed"
expect_eq "$code" 200 "attestor1 after the refused reload"
wait_log "$ACCESS" 'path=/after-rotate' 5 ||
    fail "HUP with a refused config did not reopen the access log: $ACCESS $(ls "$ACCESS" 2>&1 | head -1)"
grep -q 'path=/after-rotate' "$ACCESS.1" && fail "the moved-away access log got a line after the HUP"
pass "HUP with a refused config still reopens the access log (logrotate)"
stop_bg gw || fail "mtlsgate did not exit 0"

stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway reload"
