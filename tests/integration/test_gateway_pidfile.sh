#!/usr/bin/env bash
# pid_file: held locked by the running instance for its whole life.
#  - a second instance with the same config (same port: SO_REUSEPORT would let
#    both listen) refuses to start with one line naming the pid file and the
#    running pid; the first keeps serving and its pid stays in the file;
#  - `-s reload` / `-s stop` reach the running instance, also when its config
#    was since edited badly (only pid_file is read); after the stop the pid
#    file is gone;
#  - a second instance on the same port without a pid_file refuses too,
#    naming the address (someone listens there already);
#  - a stale pid file (nobody holds its lock) makes `-s reload|stop` refuse
#    with a clear message, and the pid in it is not signalled;
#  - a start that fails after the pid file was locked (the port is taken)
#    leaves no pid file;
#  - as root with `user: nobody` in a directory nobody cannot write: after
#    the stop the file cannot be removed, but it is emptied and unlocked, so
#    `-s` says it is stale and a new instance starts.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_make_pki
PIDFILE=$TEST_TMPDIR/gw.pid
gw_write_config "$GW_CONF" workers=1 extra="pid_file: $PIDFILE"
gw_start
P1=$(bg_pid gw)
for i in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
expect_eq "$(cat "$PIDFILE" 2>/dev/null)" "$P1" "pid file of the first instance"

# refused_start NAME CONF WHAT TEXT: an instance started as NAME with CONF
# exits non-zero, before listening, with TEXT in its log (WHAT says which).
refused_start() {
    local name=$1 conf=$2 what=$3 text=$4
    start_bg "$name" "$GW_BIN" -c "$conf"
    gw_wait_exit "$name" 10 || fail "$what kept running"
    [ "$GW_EXIT_STATUS" != 0 ] || fail "$what exited 0"
    grep -qF -- "$text" "$TEST_TMPDIR/$name.log" ||
        fail "$what: the refusal does not say '$text': $(cat "$TEST_TMPDIR/$name.log")"
    grep -q 'listening on' "$TEST_TMPDIR/$name.log" && fail "$what listened before refusing"
    return 0
}

# --- a second instance with the same pid file --------------------------------------------------
refused_start gw2 "$GW_CONF" "a second instance with the same pid_file" \
    "pid_file: $PIDFILE is locked by a running mtlsgate (pid $P1)"
kill -0 "$P1" 2>/dev/null || fail "the first instance died"
expect_eq "$(cat "$PIDFILE" 2>/dev/null)" "$P1" "pid file after the second instance was refused"
code=$(gw_curl attestor1 /first) || fail "attestor1 after the second start: curl failed"
expect_eq "$code" 200 "attestor1 after the second start"
wait_log "$GW_LOG" 'path=/first' 5 || fail "the request was not served by the first instance"
pass "a second instance with the same pid_file refuses to start, naming the file and pid $P1"

# --- a second instance on the same port, without a pid file ------------------------------------
# SO_REUSEPORT would let it listen beside the first and take half of the
# connections; it refuses because someone listens there already.
gw_write_config "$TEST_TMPDIR/nopid.yml" workers=1
refused_start gw3 "$TEST_TMPDIR/nopid.yml" "a second instance on the same port (no pid_file)" \
    "listen 127.0.0.1:$GW_PORT: the address is in use"
ok=0
for i in 1 2 3 4 5 6; do
    code=$(gw_curl attestor1 "/still-first/$i") && [ "$code" = 200 ] && ok=$((ok + 1))
done
expect_eq "$ok" 6 "requests to the first instance after the second was refused"
pass "a second instance on the same port without a pid_file refuses to start, naming the address"

# --- -s reload / -s stop -------------------------------------------------------------------------
mark=$(gw_log_mark)
"$GW_BIN" -s reload -c "$GW_CONF" >"$TEST_TMPDIR/s.out" 2>&1 || fail "-s reload failed: $(cat "$TEST_TMPDIR/s.out")"
gw_wait_log_since "$mark" 'reload \(SIGHUP\).*in service' 5 || fail "-s reload: no reload line"
# A config edited badly (a wrong value, a file that is not there) must not
# keep the operator from reloading or stopping the running instance.
cp "$GW_CONF" "$TEST_TMPDIR/good.yml"
sed -i 's/^workers: 1/workers: one/' "$GW_CONF"
sed -i "s|^  crl: .*|  crl: $TEST_TMPDIR/no-such.crl|" "$GW_CONF"
mark=$(gw_log_mark)
"$GW_BIN" -s reload -c "$GW_CONF" >"$TEST_TMPDIR/s.out" 2>&1 ||
    fail "-s reload with a broken config did not reach the instance: $(cat "$TEST_TMPDIR/s.out")"
gw_wait_log_since "$mark" 'reload \(SIGHUP\) refused.*workers' 5 ||
    fail "-s reload with a broken config: no refused reload: $(gw_log_since "$mark" | head -3)"
"$GW_BIN" -s stop -c "$GW_CONF" >"$TEST_TMPDIR/s.out" 2>&1 ||
    fail "-s stop with a broken config failed: $(cat "$TEST_TMPDIR/s.out")"
gw_wait_exit gw 15 || fail "-s stop: mtlsgate did not exit"
expect_eq "$GW_EXIT_STATUS" 0 "exit status after -s stop"
[ -e "$PIDFILE" ] && fail "the pid file is left behind after a graceful stop: $(cat "$PIDFILE")"
cp "$TEST_TMPDIR/good.yml" "$GW_CONF"
pass "-s reload and -s stop reach the instance, also with a broken config; the pid file is removed at exit"

# --- a stale pid file ---------------------------------------------------------------------------
sleep 300 &
victim=$!
echo "$victim" >"$PIDFILE"
for what in reload stop; do
    out=$("$GW_BIN" -s "$what" -c "$GW_CONF" 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] || fail "-s $what with a stale pid file exited 0: $out"
    expect_contains "$out" "$PIDFILE: stale pid file" "-s $what with a stale pid file"
    expect_eq "$(wc -l <<<"$out" | tr -d ' ')" 1 "-s $what with a stale pid file: lines of output"
done
sleep 0.2
kill -0 "$victim" 2>/dev/null || fail "the pid in a stale pid file was signalled"
kill "$victim"
wait "$victim" 2>/dev/null
rm -f "$PIDFILE"
out=$("$GW_BIN" -s reload -c "$GW_CONF" 2>&1) && fail "-s reload without a pid file exited 0: $out"
expect_contains "$out" "is mtlsgate running?" "-s reload without a pid file"
pass "a stale (unlocked) pid file: -s refuses in one line and signals nobody"

# --- a start that fails after the lock leaves no pid file ----------------------------------------
gw_write_config "$TEST_TMPDIR/taken.yml" workers=1 port="$DB_PORT" extra="pid_file: $PIDFILE"
start_bg gw-taken "$GW_BIN" -c "$TEST_TMPDIR/taken.yml"
gw_wait_exit gw-taken 10 || fail "mtlsgate on a taken port kept running"
[ "$GW_EXIT_STATUS" != 0 ] || fail "mtlsgate on a taken port exited 0"
[ -e "$PIDFILE" ] && fail "a failed start left the pid file behind"
pass "a start that fails (port taken) leaves no pid file"

# --- after a privilege drop ------------------------------------------------------------------------
if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null; then
    gw_files_for_nobody
    PF=$RUN/gw.pid
    gw_write_config "$RUN/gw.yml" workers=1 certificate="$RUN/gateway.bundle.crt" \
        key="$RUN/gateway.key" client_ca="$RUN/client-chain.crt" crl="$RUN/client-ca.crl" \
        extra="user: nobody
pid_file: $PF"
    chmod 644 "$RUN/gw.yml"
    gw_start_gateway "$RUN/gw.yml" gw-nobody
    for i in $(seq 1 50); do [ -s "$PF" ] && break; sleep 0.1; done
    expect_eq "$(cat "$PF" 2>/dev/null)" "$(bg_pid gw-nobody)" "pid file with user: nobody"
    "$GW_BIN" -s stop -c "$RUN/gw.yml" >"$TEST_TMPDIR/s.out" 2>&1 || fail "-s stop (nobody) failed: $(cat "$TEST_TMPDIR/s.out")"
    gw_wait_exit gw-nobody 15 || fail "-s stop: mtlsgate (nobody) did not exit"
    expect_eq "$GW_EXIT_STATUS" 0 "exit status after -s stop (nobody)"
    if [ -e "$PF" ]; then
        [ -s "$PF" ] && fail "after a privilege drop the pid file was left with a pid in it: $(cat "$PF")"
    fi
    out=$("$GW_BIN" -s reload -c "$RUN/gw.yml" 2>&1) && fail "-s reload after the stop exited 0: $out"
    expect_contains "$out" "is mtlsgate running?" "-s reload after the stop (nobody)"
    gw_start_gateway "$RUN/gw.yml" gw-nobody2
    for i in $(seq 1 50); do [ -s "$PF" ] && break; sleep 0.1; done
    expect_eq "$(cat "$PF" 2>/dev/null)" "$(bg_pid gw-nobody2)" "pid file of the next instance"
    stop_bg gw-nobody2 || fail "mtlsgate (gw-nobody2) did not exit 0"
    pass "after a privilege drop: the pid file is emptied and unlocked at exit; -s refuses; a new instance starts"
fi

stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway pid file"
