#!/usr/bin/env bash
# A client that vanishes (TCP reset) while the gateway writes its answer:
# the failed write ends the connection. With allow_dirty_shutdown,
# libevent reports such a write failure as an end of file; taken for the
# client's half-close, it made the gateway write again, fail again, and
# spin a core for ever on the dead connection (found by the benchmark: an
# idle gateway at 100% CPU after the load generator stopped mid-answer),
# and a SIGTERM then waited for its drain timeout. Checked here:
#  - three clients send a GET for an 8 MB answer and reset the connection
#    at once (SO_LINGER 0): each is closed with "client gone (write failed)"
#    and access-logged;
#  - afterwards the idle gateway uses (almost) no CPU: under 0.2 s in 1 s;
#  - SIGTERM ends it gracefully at once (not after timeouts.drain).
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
gw_make_pki
gw_pick_ports
gw_write_config "$GW_CONF" workers=1 level=debug timeouts="{ drain: 20s }"
gw_start_raw_upstream big "$DB_PORT" big-response "$TEST_TMPDIR/big-upstream.txt" 8000000
gw_start_gateway
GW_PID=$(bg_pid "$GW_NAME")

# reset_after_request PATH: an mTLS GET, then a TCP reset with nothing read.
reset_after_request() {
    python3 - "$GW_PORT" "$GW_PKI" "$1" <<'PYEOF'
import socket, ssl, struct, sys, time

port, pki, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/root.crt")
ctx.load_cert_chain(pki + "/attestor1.pem", pki + "/attestor1.key")
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
s.recv(1)  # the answer has started: the gateway is writing it
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()  # no close_notify (python sends one only on unwrap): a RST
PYEOF
}

# cpu_ticks: utime + stime of the gateway so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$GW_PID/stat"; }

mark=$(gw_log_mark)
for i in 1 2 3; do
    reset_after_request "/gone-$i" || fail "client $i: the python3 mTLS client failed"
done
for i in 1 2 3; do
    gw_wait_log_since "$mark" "method=GET path=/gone-$i status=200 " ||
        fail "no access line for /gone-$i: $(gw_log_since "$mark" | tail -20)"
done
n=$(gw_log_since "$mark" | grep -c 'client gone (write failed)')
[ "$n" -ge 1 ] || fail "no 'client gone (write failed)' close: $(gw_log_since "$mark" | tail -20)"
pass "3 clients reset mid-answer: access-logged, closed as 'client gone' ($n logged at debug or above)"

sleep 0.5
t0=$(cpu_ticks)
sleep 1
t1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
[ $((t1 - t0)) -le $((hz / 5)) ] ||
    fail "the idle gateway used $((t1 - t0)) of $hz ticks in 1 s after the clients left (spinning)"
pass "idle gateway afterwards: $((t1 - t0)) of $hz CPU ticks in 1 s"

kill -TERM "$GW_PID"
gw_wait_exit "$GW_NAME" 5 || fail "SIGTERM: mtlsgate still running after 5 s (drain: 20s; a connection stuck)"
expect_eq "$GW_EXIT_STATUS" 0 "exit status after SIGTERM"
pass "SIGTERM: graceful exit at once"
check_sanitizers "$GW_LOG"
