#!/usr/bin/env bash
# What a reload (SIGHUP) applies, and what it does not:
#  - a HUP reopens the log files even when the new config is refused
#    (logrotate moves the file away, then sends HUP; the config may be broken
#    at that moment): new lines go to a new file, none to the moved-away one;
#  - log.access, log.error and watch are applied by a reload: after it the
#    access lines go to the new access file (none to stderr), the error lines
#    to the new error file; watch turned on by a reload reloads on a CRL
#    change; turned off again, a change is not picked up; a log destination
#    that cannot be opened refuses the reload (the old ones keep working);
#  - a restart-only key (listen) is compared with the value the process
#    started with: every reload warns while it differs, none once restored,
#    and the process keeps listening where it started.
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

# --- log.access, log.error and watch change on reload -----------------------------------------------
ACCESS2=$TEST_TMPDIR/access2.log
ERROR2=$TEST_TMPDIR/error2.log
cp "$GW_PKI/client-ca.crl" "$TEST_TMPDIR/live.crl"
gw_write_config "$GW_CONF" workers=1 crl="$TEST_TMPDIR/live.crl"
gw_start_gateway "$GW_CONF" gw-dest
code=$(gw_curl attestor1 /to-stderr) || fail "attestor1 before the log change: curl failed"
wait_log "$GW_LOG" 'path=/to-stderr' 5 || fail "access line not on stderr before the change"
# a destination that cannot be opened (its directory exists): refused, nothing changes
gw_write_config "$GW_CONF" workers=1 crl="$TEST_TMPDIR/live.crl" access=/proc/mtlsgate-no-such-file
mark=$(gw_log_mark)
kill -HUP "$(bg_pid gw-dest)"
gw_wait_log_since "$mark" 'reload \(SIGHUP\) refused.*log\.access.*mtlsgate-no-such-file' 5 ||
    fail "an access log that cannot be opened did not refuse the reload: $(gw_log_since "$mark" | head -3)"
code=$(gw_curl attestor1 /still-stderr) || fail "attestor1 after the refused log change: curl failed"
wait_log "$GW_LOG" 'path=/still-stderr' 5 || fail "access line not on stderr after a refused log change"
pass "a log destination that cannot be opened refuses the reload; the old one keeps working"

gw_write_config "$GW_CONF" workers=1 crl="$TEST_TMPDIR/live.crl" access="$ACCESS2" \
    log_extra="  error: $ERROR2" extra="watch: 1s"
kill -HUP "$(bg_pid gw-dest)"
for i in $(seq 1 100); do
    grep -qh 'reload (SIGHUP): configuration generation 2 in service' "$GW_LOG" "$ERROR2" 2>/dev/null && break
    sleep 0.05
done
grep -qh 'reload (SIGHUP): configuration generation 2 in service' "$GW_LOG" "$ERROR2" 2>/dev/null ||
    fail "the reload to new log destinations was not in service: $(tail -3 "$GW_LOG")"
code=$(gw_curl attestor1 /to-file) || fail "attestor1 after the log change: curl failed"
expect_eq "$code" 200 "attestor1 after the log change"
wait_log "$ACCESS2" 'path=/to-file' 5 ||
    fail "log.access changed by a reload: no access line in $ACCESS2 ($(ls "$ACCESS2" 2>&1))"
sleep 0.2
grep -q 'path=/to-file' "$GW_LOG" && fail "log.access changed by a reload: the access line still went to stderr"
pass "log.access changed on reload: access lines go to the new file, not to stderr"

# watch armed by the reload: a CRL change reloads by itself, logged to the new error file
cat "$GW_PKI/client-ca.crl" "$GW_PKI/client-ca.crl" >"$TEST_TMPDIR/live.crl.new"
mv "$TEST_TMPDIR/live.crl.new" "$TEST_TMPDIR/live.crl"
wait_log "$ERROR2" 'reload \(watched file changed\).*in service' 6 ||
    fail "watch turned on by a reload: no reload from a CRL change within 6 s (error log: $(tail -3 "$ERROR2" 2>&1); stderr: $(tail -2 "$GW_LOG"))"
pass "log.error and watch changed on reload: the watcher reloads on a CRL change, logged in the new error file"

# watch turned off by a reload: a change is no longer picked up
gw_write_config "$GW_CONF" workers=1 crl="$TEST_TMPDIR/live.crl" access="$ACCESS2" \
    log_extra="  error: $ERROR2"
kill -HUP "$(bg_pid gw-dest)"
wait_log "$ERROR2" 'reload \(SIGHUP\): configuration generation 4 in service' 5 ||
    fail "the reload that turns watch off was not in service: $(tail -3 "$ERROR2")"
cp "$GW_PKI/client-ca.crl" "$TEST_TMPDIR/live.crl.new"
mv "$TEST_TMPDIR/live.crl.new" "$TEST_TMPDIR/live.crl"
sleep 2.5
expect_eq "$(grep -c 'watched file changed' "$ERROR2")" 1 "reloads by the watcher after watch was turned off"
pass "watch turned off by a reload: a CRL change is no longer picked up"
stop_bg gw-dest || fail "mtlsgate (gw-dest) did not exit 0"

# --- restart-only keys: compared with what is running -------------------------------------------------
gw_write_config "$GW_CONF" workers=1
gw_start_gateway "$GW_CONF" gw-restart
read -r P2 <<<"$(free_ports 1)"
warn_re='listen: changed; takes effect only after a restart'
gw_write_config "$GW_CONF" workers=1 listen="127.0.0.1:$P2"
for n in 1 2; do
    mark=$(gw_log_mark)
    kill -HUP "$(bg_pid gw-restart)"
    gw_wait_log_since "$mark" 'reload \(SIGHUP\): configuration generation .* in service' 5 ||
        fail "listen changed, reload $n: not in service: $(gw_log_since "$mark" | head -3)"
    gw_log_since "$mark" | grep -q "$warn_re" ||
        fail "listen changed, reload $n: no restart warning (the running listener is still $GW_PORT): $(gw_log_since "$mark" | head -3)"
done
gw_write_config "$GW_CONF" workers=1
mark=$(gw_log_mark)
kill -HUP "$(bg_pid gw-restart)"
gw_wait_log_since "$mark" 'reload \(SIGHUP\): configuration generation 4 in service' 5 ||
    fail "listen restored: reload not in service: $(gw_log_since "$mark" | head -3)"
gw_log_since "$mark" | grep -q "$warn_re" &&
    fail "listen restored to the running value: the reload still warns: $(gw_log_since "$mark" | grep "$warn_re")"
code=$(gw_curl attestor1 /still-here) || fail "attestor1 on the original port after the reloads: curl failed"
expect_eq "$code" 200 "attestor1 on the original port after the reloads"
pass "a changed listen warns at every reload while it differs from the running one, not once restored"
stop_bg gw-restart || fail "mtlsgate (gw-restart) did not exit 0"

stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway reload"
