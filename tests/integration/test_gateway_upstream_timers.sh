#!/usr/bin/env bash
# What bounds an upstream connection, and the client's unread input:
#  - an idle pooled upstream connection is closed after timeouts.keepalive
#    (2 s here), not before, and not never;
#  - upstream_read (1 s here) bounds each silence of an upstream in the
#    middle of a response, not the whole response: a body trickled one byte
#    every 0.5 s for 3 s arrives complete; a body that stops arriving is cut
#    after about 1 s (the client gets a short body; the log says "went
#    silent"); a client that does not read for 3 s (the gateway's reads of
#    the upstream paused meanwhile) still gets all of 16 MiB;
#  - a client that keeps sending while its request waits for the upstream
#    is read only up to a bound (GW_HIGH_MARK + max_header_bytes): pushing
#    64 MiB stalls once that and the kernel's buffers are full, and the
#    gateway's memory does not grow by what it sent;
#  - timeouts.body (1 s here) bounds how long an answer waits for a client
#    that takes none of it (the write timeout), not a slow steady reader.
# These run on the connection's own timers and an on-demand read watermark
# (no bufferevent timeouts or watermarks on the request path).
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
gw_make_pki
gw_pick_ports
UP_PORT=$(free_ports 1 | tr -d ' ')
UP_LOG=$TEST_TMPDIR/partial-upstream.txt
gw_start_raw_upstream partial "$UP_PORT" partial "$UP_LOG"
gw_write_config "$GW_CONF" workers=1 servers="[\"127.0.0.1:$UP_PORT\"]" \
    timeouts="{ keepalive: 2s, upstream_read: 1s }"
gw_start_gateway "$GW_CONF"

# --- an idle pooled connection closes after keepalive ----------------------------------
t0=$(now_ms)
code=$(gw_curl attestor1 /ok) || fail "GET /ok: curl failed"
expect_eq "$code" 200 "GET /ok"
expect_eq "$(cat "$GW_BODY")" abcdefghij "GET /ok: body"
# (other connections are the admin's reachability probes)
cn=$(sed -n 's/^conn=\([0-9]*\) req=1 GET \/ok$/\1/p' "$UP_LOG" | head -1)
[ -n "$cn" ] || fail "GET /ok did not reach the upstream: $(cat "$UP_LOG")"
closed=-1
for i in $(seq 1 100); do
    if grep -q "^conn=$cn closed" "$UP_LOG"; then closed=$(($(now_ms) - t0)); break; fi
    sleep 0.05
done
[ "$closed" -ge 0 ] || fail "the pooled upstream connection was not closed within 5 s (keepalive: 2s)"
[ "$closed" -ge 1800 ] || fail "the pooled upstream connection was closed after ${closed} ms, before keepalive (2 s)"
pass "idle pooled upstream connection closed after ${closed} ms (keepalive: 2s)"

# --- upstream_read bounds each silence, not the whole response ---------------------------
t0=$(now_ms)
code=$(gw_curl attestor1 /trickle) || fail "GET /trickle: curl failed (code $code)"
el=$(($(now_ms) - t0))
expect_eq "$code" 200 "GET /trickle"
expect_eq "$(cat "$GW_BODY")" abcdefghij "GET /trickle: body trickled over 3 s with upstream_read: 1s"
[ "$el" -ge 2500 ] || fail "GET /trickle took ${el} ms: the upstream trickles for 3 s"
pass "a body trickled for ${el} ms (a byte every 0.5 s) arrives whole under upstream_read: 1s"

mark=$(gw_log_mark)
t0=$(now_ms)
GW_CURL_MAXTIME=10 gw_curl attestor1 /stall >/dev/null
rc=$?
el=$(($(now_ms) - t0))
[ "$rc" -ne 0 ] || fail "GET /stall: curl succeeded; the body was never complete"
[ "$rc" -ne 28 ] || fail "GET /stall: no cut within curl's 10 s (upstream_read: 1s)"
expect_eq "$(cat "$GW_BODY")" abcd "GET /stall: what arrived before the silence"
[ "$el" -ge 900 ] && [ "$el" -le 4000 ] || fail "GET /stall: cut after ${el} ms, expected about 1 s"
gw_wait_log_since "$mark" "went silent in the middle of a response" 3 ||
    fail "GET /stall: no 'went silent' line in the log: $(gw_log_since "$mark" | tail -5)"
pass "an upstream silent mid-response is cut after ${el} ms (curl exit $rc), logged as gone silent"

# While the client does not read, the gateway stops reading the upstream
# (its output at the high-water mark): that wait is the client's, and
# upstream_read must not cut it. 16 MiB, more than the sockets hold; the
# client reads nothing for 3 s (upstream_read: 1s), then everything.
cat >"$TEST_TMPDIR/slowreader.py" <<'PYEOF'
import os, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import client_ctx, connect, fail, read_head

port, pki = int(sys.argv[1]), sys.argv[2]
s = connect(client_ctx(pki), port, rcvbuf=4096, timeout=10)
s.sendall(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
time.sleep(3)
st, hdrs, body = read_head(s)
n, want = len(body), int(hdrs.get("content-length", "0"))
while n < want:
    d = s.recv(262144)
    if not d:
        break
    n += len(d)
if st != 200 or n != want or want != 16 << 20:
    fail("a client that reads after 3 s: status %d, %d of %d bytes" % (st, n, want))
print("all %d bytes after a 3 s pause" % n)
PYEOF
out=$(timeout 60 python3 "$TEST_TMPDIR/slowreader.py" "$GW_PORT" "$GW_PKI") || fail "$out"
pass "upstream_read does not count while the client is the one not reading: $out"
stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"

# --- timeouts.body bounds a client that takes no bytes of its answer ----------------------
# The write timeout: the answer waits for the client's socket for 1 s
# without a byte taken: the connection ends. Each byte taken starts it
# again: a client taking 128 KiB every 0.2 s (less than the gateway has
# queued for it, so the answer waits all the time) is served on for 3 s.
gw_write_config "$GW_CONF" workers=1 servers="[\"127.0.0.1:$UP_PORT\"]" \
    timeouts="{ keepalive: 20s, upstream_read: 10s, body: 1s }"
gw_start_gateway "$GW_CONF"
cat >"$TEST_TMPDIR/stopreader.py" <<'PYEOF'
import os, socket, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import client_ctx, connect, fail, read_head

port, pki, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = connect(client_ctx(pki), port, rcvbuf=4096, timeout=10)
s.sendall(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
st, hdrs, body = read_head(s)
n, want = len(body), int(hdrs.get("content-length", "0"))
if st != 200 or want != 16 << 20:
    fail("GET /big: status %d, content-length %d" % (st, want))
if mode == "stop":
    time.sleep(3)
t0, chunk, ended = time.monotonic(), 0, None
try:
    while n < want:
        if mode == "steady" and time.monotonic() - t0 > 3:
            break
        d = s.recv(131072 - chunk if mode == "steady" else 262144)
        if not d:
            ended = "EOF"
            break
        n += len(d)
        chunk += len(d)
        if mode == "steady" and chunk >= 131072:
            chunk = 0
            time.sleep(0.2)
except (ConnectionResetError, socket.timeout) as e:
    ended = repr(e)
print("%s: %d of %d bytes in %.1f s, end: %s" % (mode, n, want, time.monotonic() - t0, ended))
if mode == "steady" and (ended or n < 1 << 20):
    fail("a client taking 128 KiB every 0.2 s was cut after %d bytes: %s (body: 1s)" % (n, ended))
if mode == "stop" and n >= want:
    fail("a client that took nothing for 3 s got all %d bytes (body: 1s)" % n)
PYEOF
out=$(timeout 60 python3 "$TEST_TMPDIR/stopreader.py" "$GW_PORT" "$GW_PKI" steady) || fail "$out"
pass "the write timeout starts again with each byte taken: $out"
mark=$(gw_log_mark)
out=$(timeout 60 python3 "$TEST_TMPDIR/stopreader.py" "$GW_PORT" "$GW_PKI" stop) || fail "$out"
gw_wait_log_since "$mark" "path=/big status=200" 3 ||
    fail "no access log line for the cut GET /big: $(gw_log_since "$mark" | tail -5)"
line=$(gw_log_since "$mark" | grep "path=/big status=200" | tail -1)
sent=$(echo "$line" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
ms=$(echo "$line" | sed -n 's/.* total_ms=\([0-9]*\) .*/\1/p')
[ -n "$sent" ] && [ "$sent" -lt 16777216 ] || fail "the cut GET /big logged as whole: $line"
[ -n "$ms" ] && [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ] ||
    fail "the cut GET /big ended after ${ms} ms, expected about 1 s (body: 1s): $line"
pass "a client that takes nothing of its answer is cut after ${ms} ms: $(echo $out)"
stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"

# --- the client's unread input is bounded -----------------------------------------------
gw_write_config "$GW_CONF" workers=1 servers="[\"127.0.0.1:$UP_PORT\"]" \
    timeouts="{ keepalive: 20s, upstream_read: 10s, body: 20s }"
gw_start_gateway "$GW_CONF"
GW_PID=$(bg_pid gw)
cat >"$TEST_TMPDIR/flood.py" <<'PYEOF'
import os, socket, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
from gwclient import client_ctx, connect, fail

port, pki, gwpid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])


def rss_kib():
    with open("/proc/%d/status" % gwpid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


s = connect(client_ctx(pki), port, timeout=0.5)
# The upstream holds this request for 8 s; meanwhile the client pushes.
s.sendall(b"GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n")
before = rss_kib()
chunk = b"x" * 65536
# Push until 64 MiB went out or nothing more goes for 1 s (20 s at most):
# only a gateway that stops reading makes the sending stall.
sent, last, t0 = 0, time.monotonic(), time.monotonic()
while sent < 64 << 20 and time.monotonic() - last < 1.0 and time.monotonic() - t0 < 20:
    try:
        sent += s.send(chunk)
        last = time.monotonic()
    except socket.timeout:
        continue
    except OSError as e:
        fail("sending while the request waits: %r after %d bytes" % (e, sent))
grown = rss_kib() - before
print("sent=%d grown_kib=%d" % (sent, grown))
if sent >= 64 << 20 or time.monotonic() - last < 1.0:
    fail("the gateway read %d MiB while the request waited: no bound" % (sent >> 20))
if grown > 16 << 10:
    fail("the gateway grew by %d KiB while the client pushed %d bytes" % (grown, sent))
PYEOF
out=$(python3 "$TEST_TMPDIR/flood.py" "$GW_PORT" "$GW_PKI" "$GW_PID") || fail "${out}"
pass "a client pushing while its request waits: $out"
kill -0 "$GW_PID" 2>/dev/null || fail "the gateway died"
code=$(gw_curl attestor1 /ok) || fail "GET /ok after the flood: curl failed"
expect_eq "$code" 200 "GET /ok after the flood"
pass "the gateway serves after the flood"
stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
stop_bg partial || true
check_sanitizers
pass "gateway upstream timers and the client input bound"
