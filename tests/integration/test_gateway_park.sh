#!/usr/bin/env bash
# Parked connections (proxy/conn.c, park()): a connection that waits 200 ms
# for a request with nothing buffered gives back its bufferevent, evbuffers
# and upstream timer and keeps only its TLS state; the next bytes wake it.
# Driven by a python3 ssl client, with mtlsgate_connections_parked read from
# /metrics (timeouts.keepalive 6 s, .header 3 s):
#  - 10 connections, one GET each, then idle: all 10 parked; a GET on each
#    wakes it and is answered (the right path); idle again, parked again;
#  - a request head sent in two records 150 ms apart wakes a parked
#    connection and is answered; two pipelined GETs in one write too, in order;
#  - a FIN (no close_notify) and a close_notify on parked connections: both
#    closed by the gateway at once (under 1 s), no answer, counted out;
#  - SIGHUP (reload) while connections are parked: they wake and are served;
#  - the idle timeout still ends a parked connection (keepalive after a
#    request, header before the first one) at its time, not earlier;
#  - SIGTERM with connections parked: they are closed at once (under 1 s)
#    and mtlsgate exits 0; no connection is left counted open or parked;
#  - no sanitizer report (the ASan build runs this too).
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
gw_make_pki
gw_pick_ports
gw_write_config "$GW_CONF" timeouts="{ keepalive: 6s, header: 3s }" extra="admin:
  listen: \"127.0.0.1:$ADMIN_PORT\""
gw_start
wait_port "$ADMIN_PORT" 10 || fail "admin listener not up on $ADMIN_PORT"

cat >"$TEST_TMPDIR/park.py" <<'PYEOF'
import json, os, signal, socket, ssl, sys, time, urllib.request

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import client_ctx, connect as gw_connect, fail, read_head

port, admin, pki, gwpid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
step = sys.argv[5]
ctx = client_ctx(pki)


def ok(msg):
    print("ok: " + msg)


def metric(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as r:
        for line in r.read().decode().splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == name:
                return int(float(f[1]))
    fail("no %s on /metrics" % name)


def wait_metric(name, want, secs=3.0):
    end = time.monotonic() + secs
    while True:
        v = metric(name)
        if v == want or time.monotonic() > end:
            return v
        time.sleep(0.05)


def connect():
    return gw_connect(ctx, port)


def read_answer(s, buf=b""):
    """One HTTP/1.1 answer (Content-Length framed): (status, headers, body, rest)."""
    st, hdrs, rest = read_head(s, buf)
    if st == 0:
        fail("connection closed before an answer head (got %r)" % rest[:200])
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            fail("connection closed in an answer body")
        rest += d
    return st, hdrs, rest[:n], rest[n:]


def get(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    st, h, body, rest = read_answer(s)
    if st != 200:
        fail("GET %s: status %d" % (path, st))
    got = json.loads(body)["path"]
    if got != path:
        fail("GET %s: the upstream saw %s" % (path, got))
    if rest:
        fail("GET %s: bytes after the answer" % path)


def eof_within(s, secs):
    """Seconds until the gateway closes s (no data expected), or fail."""
    t0 = time.monotonic()
    s.settimeout(secs)
    try:
        d = s.recv(1024)
    except socket.timeout:
        fail("not closed within %.1f s" % secs)
    except (ssl.SSLError, OSError):
        d = b""
    if d:
        fail("data instead of a close: %r" % d[:100])
    return time.monotonic() - t0


if step == "park":
    conns = [connect() for _ in range(10)]
    for i, s in enumerate(conns):
        get(s, "/first/%d" % i)
    v = wait_metric("mtlsgate_connections_parked", 10)
    if v != 10:
        fail("connections parked after 10 idle ones: %d, want 10" % v)
    if metric("mtlsgate_connections_open") != 10:
        fail("connections open: %d, want 10" % metric("mtlsgate_connections_open"))
    ok("10 idle connections parked (mtlsgate_connections_parked 10)")
    for i, s in enumerate(conns):
        get(s, "/wake/%d" % i)
    ok("a GET on each parked connection wakes it and is answered")
    v = wait_metric("mtlsgate_connections_parked", 10)
    if v != 10:
        fail("parked again after the second requests: %d, want 10" % v)
    ok("idle again: parked again")

    s = conns[0]
    s.sendall(b"GET /split HTTP/1.1\r\n")
    time.sleep(0.15)
    s.sendall(b"Host: localhost\r\n\r\n")
    st, h, body, rest = read_answer(s)
    if st != 200 or json.loads(body)["path"] != "/split":
        fail("head in two records on a parked connection: %d %r" % (st, body[:100]))
    ok("a head in two records 150 ms apart wakes a parked connection and is answered")

    if wait_metric("mtlsgate_connections_parked", 10) != 10:
        fail("connection 0 did not park again")
    s = conns[1]
    s.sendall(b"GET /pipe/1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"GET /pipe/2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st1, _, b1, rest = read_answer(s)
    st2, _, b2, rest = read_answer(s, rest)
    if (st1, st2) != (200, 200) or json.loads(b1)["path"] != "/pipe/1" or \
            json.loads(b2)["path"] != "/pipe/2":
        fail("pipelined GETs on a parked connection: %d %d %r %r" % (st1, st2, b1[:80], b2[:80]))
    ok("two pipelined GETs on a parked connection: both answered, in order")

    if wait_metric("mtlsgate_connections_parked", 10) != 10:
        fail("connection 1 did not park again")
    socket.socket(fileno=os.dup(conns[2].fileno())).shutdown(socket.SHUT_WR)
    el = eof_within(conns[2], 5)
    if el > 1.0:
        fail("a FIN on a parked connection: closed only after %.2f s" % el)
    t0 = time.monotonic()
    conns[3].unwrap()  # sends close_notify, waits for the gateway's
    el = time.monotonic() - t0
    if el > 1.0:
        fail("a close_notify on a parked connection: answered only after %.2f s" % el)
    conns[3].close()
    conns[2].close()
    if wait_metric("mtlsgate_connections_open", 8) != 8:
        fail("connections open after a FIN and a close_notify on parked ones: %d, want 8"
             % metric("mtlsgate_connections_open"))
    if wait_metric("mtlsgate_connections_parked", 8) != 8:
        fail("connections parked after two closed: %d, want 8"
             % metric("mtlsgate_connections_parked"))
    ok("a FIN and a close_notify on parked connections: closed at once, counted out")

    os.kill(gwpid, signal.SIGHUP)
    time.sleep(0.5)
    for i in (4, 5):
        get(conns[i], "/after-reload/%d" % i)
    ok("SIGHUP while connections are parked: they wake and are served")

    # keepalive (6 s) after conns[5]'s answer, although parked 200 ms in
    el = eof_within(conns[5], 12)
    if el < 5.7:
        fail("parked connection closed %.2f s after its answer, before keepalive (6 s)" % el)
    ok("a parked connection ends at timeouts.keepalive (%.2f s after its answer)" % el)
    t0 = time.monotonic()
    h = connect()
    eof_within(h, 10)
    el = time.monotonic() - t0
    if el < 2.7:
        fail("handshake-only connection closed after %.2f s, before timeouts.header (3 s)" % el)
    ok("a connection without a request, parked, ends at timeouts.header (%.2f s)" % el)
    for s in conns:
        s.close()

elif step == "term":
    conns = [connect() for _ in range(3)]
    for i, s in enumerate(conns):
        get(s, "/before-term/%d" % i)
    if wait_metric("mtlsgate_connections_parked", 3) != 3:
        fail("3 idle connections not parked: %d" % metric("mtlsgate_connections_parked"))
    t0 = time.monotonic()
    os.kill(gwpid, signal.SIGTERM)
    for s in conns:
        eof_within(s, 5)
    el = time.monotonic() - t0
    if el > 1.0:
        fail("SIGTERM: parked connections closed only after %.2f s" % el)
    ok("SIGTERM: 3 parked connections closed in %.2f s" % el)
PYEOF

py() {
    local out rc
    out=$(timeout 60 python3 "$TEST_TMPDIR/park.py" "$GW_PORT" "$ADMIN_PORT" "$GW_PKI" "$(bg_pid gw)" "$1" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    [ $rc -eq 0 ] || fail "step $1 (exit $rc); gateway log: $(tail -5 "$GW_LOG")"
}
py park
pass "parked connections wake, close and time out as unparked ones do"
# The python client closed all its connections: none is left counted.
m=""
for i in $(seq 1 30); do
    m=$(curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk '$1 == "mtlsgate_connections_open" || $1 == "mtlsgate_connections_parked" { printf "%s ", $2 }')
    [ "$m" = "0 0 " ] && break
    sleep 0.1
done
expect_eq "$m" "0 0 " "mtlsgate_connections_open and _parked after the park steps"

py term
gw_wait_exit gw 10 || fail "mtlsgate did not exit after SIGTERM with parked connections"
expect_eq "$GW_EXIT_STATUS" 0 "mtlsgate's exit status after SIGTERM with parked connections"
check_sanitizers
pass "gateway parked connections"
