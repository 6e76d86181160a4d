#!/usr/bin/env bash
# Privilege drop (`user`): started as root, mtlsgate binds its listeners
# (one of them on a privileged port), then runs as the configured user.
#  - with `user: nobody`, every thread of the process has nobody's uid and
#    gid (/proc/PID/task/*/status), and it serves on both ports;
#  - a SIGHUP reload reads the files as nobody: it works when they are
#    readable by nobody, and a key nobody cannot read is refused with one
#    line while the previous set keeps serving; with `watch`, unchanged
#    files (a key only root can read among them) cause no reload;
#  - `user: root` and an unknown user are refused at start.
# Skipped (77) when not run as root.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

[ "$(id -u)" = 0 ] || skip "not root: the privilege drop needs a start as root"
getent passwd nobody >/dev/null || skip "no user 'nobody' on this system"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)

gw_make_pki
gw_pick_ports
# The files mtlsgate reads after the drop, readable by nobody; the key owned
# by nobody with mode 0600. Every directory on the way must be searchable.
gw_files_for_nobody
d=$TEST_TMPDIR
while [ "$d" != / ]; do
    d=$(dirname "$d")
    [ "$(($(stat -c '%a' "$d" | sed 's/^/0/') & 1))" = 1 ] || skip "$d is not searchable by others"
done

# A privileged port that nothing listens on (loopback only).
PRIV_PORT=""
for p in $(shuf -i 600-999 -n 40); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    PRIV_PORT=$p
    break
done
[ -n "$PRIV_PORT" ] || fail "no free privileged port found in 40 tries"

CONF=$RUN/gw.yml
conf() { # conf [key file]
    gw_write_config "$CONF" listen="127.0.0.1:$GW_PORT\", \"127.0.0.1:$PRIV_PORT" \
        certificate="$RUN/gateway.bundle.crt" key="${1:-$RUN/gateway.key}" \
        client_ca="$RUN/client-chain.crt" crl="$RUN/client-ca.crl" extra="user: nobody"
    chmod 644 "$CONF"
}
conf
gw_start_db
gw_start_gateway "$CONF"
pid=$(bg_pid gw)

# --- who it runs as ----------------------------------------------------------------------------
ids() { awk -v k="$2:" '$1 == k { print $2, $3, $4, $5 }' "$1"; }
n=0
for st in /proc/"$pid"/task/*/status; do
    expect_eq "$(ids "$st" Uid)" "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" "Uid (real effective saved fs) of $st"
    expect_eq "$(ids "$st" Gid)" "$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID" "Gid of $st"
    groups=$(awk '$1 == "Groups:" { $1 = ""; print }' "$st" | tr -s ' ' | sed 's/^ //; s/ $//')
    case " $groups " in *" 0 "*) fail "$st: still in group 0 ($groups)" ;; esac
    n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected the main thread and 2 workers, found $n threads"
pass "all $n threads run as nobody ($NOBODY_UID:$NOBODY_GID), no root group"

code=$(gw_curl attestor1 /as-nobody) || fail "request to the unprivileged process: curl failed: $(tail -1 "$TEST_TMPDIR/curl.err")"
expect_eq "$code" 200 "request served after the privilege drop"
expect_eq "$(gw_up '.headers["x-client-identity"]')" svc-attestor-1 "identity after the privilege drop"
code=$(GW_PORT=$PRIV_PORT gw_curl attestor1 /privileged-port) || fail "request on port $PRIV_PORT: curl failed"
expect_eq "$code" 200 "request on the privileged port $PRIV_PORT bound before the drop"
pass "serves on port $GW_PORT and on privileged port $PRIV_PORT as nobody"

# --- reloads read the files as nobody ------------------------------------------------------------
mark=$(gw_log_mark)
kill -HUP "$pid"
gw_wait_log_since "$mark" 'reload \(SIGHUP\).*in service' 5 ||
    fail "SIGHUP with files readable by nobody: no successful reload: $(gw_log_since "$mark" | head -3)"
cp "$GW_PKI/gateway.key" "$RUN/root-only.key"
chmod 600 "$RUN/root-only.key"
conf "$RUN/root-only.key"
mark=$(gw_log_mark)
kill -HUP "$pid"
gw_wait_log_since "$mark" 'reload \(SIGHUP\) refused.*root-only\.key' 5 ||
    fail "a key only root can read: the reload as nobody was not refused naming it: $(gw_log_since "$mark" | head -3)"
expect_eq "$(gw_log_since "$mark" | grep -c 'refused')" 1 "refusal lines for the unreadable key"
code=$(gw_curl attestor1 /after-refused) || fail "after the refused reload: curl failed"
expect_eq "$code" 200 "served after the refused reload"
pass "reloads run as nobody: readable files reload, a root-only key is refused with one line"
stop_bg gw || fail "mtlsgate (nobody) did not exit 0"

# --- watch: the first digest is taken as nobody ----------------------------------------------------
# Started as root with a root-only key and `watch: 1s`: the files must hash as
# nobody (who reads them at every check) from the start, or the first check
# takes the unreadable key for a change and logs a refused reload.
conf "$RUN/root-only.key"
echo "watch: 1s" >>"$CONF"
gw_start_gateway "$CONF" gw-watch
wait_log "$TEST_TMPDIR/gw-watch.log" 'started' 10 || fail "gw-watch did not start"
sleep 2.5
grep -q 'reload (watched file changed)' "$TEST_TMPDIR/gw-watch.log" &&
    fail "unchanged files reloaded after a start as root: $(grep 'reload' "$TEST_TMPDIR/gw-watch.log" | head -2)"
pass "watch after a start as root: no reload of unchanged files (the key only root can read)"
stop_bg gw-watch || fail "mtlsgate (gw-watch) did not exit 0"

# --- refused users ---------------------------------------------------------------------------------
for u in root no-such-user-mtlsgate; do
    conf
    sed -i "s/^user: nobody$/user: $u/" "$CONF"
    start_bg "user-$u" "$GW_BIN" -c "$CONF"
    gw_wait_exit "user-$u" 10 || fail "user: $u: mtlsgate did not exit"
    [ "$GW_EXIT_STATUS" != 0 ] || fail "user: $u: mtlsgate exited 0"
    grep -q "user.*$u" "$TEST_TMPDIR/user-$u.log" || fail "user: $u: no line naming it: $(head -3 "$TEST_TMPDIR/user-$u.log")"
done
pass "user: root and an unknown user are refused at start"

stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "gateway privilege drop"
