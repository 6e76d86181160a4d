#!/usr/bin/env bash
# An upstream that answers before it has the whole request body (here 413
# with an 8 MiB body, as soon as it has read the head) ends the request: the
# gateway sends the rest of the body nowhere, and reads and drops what the
# client still sends, so that a client which writes its whole body before it
# reads anything (python's http.client, Java's fixed-length streaming) is not
# left blocked on its own write while the answer waits for it. The client
# (python3 ssl, a 64 KiB receive window, so the answer cannot sit in the
# socket buffers) sends a 64 MiB body, then reads: the whole 413 answer, then
# close_notify (python raises SSLEOFError on an end without it), in well
# under timeouts.body. The access log has the 413.
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

gw_require_tools
gw_require_gateway
gw_make_pki
gw_pick_ports
RAW_PORT=$(free_ports 1 | tr -d ' ')
ANSWER=$((8 * 1024 * 1024))
gw_write_config "$GW_CONF" timeouts="{ body: 20s }" servers="[\"127.0.0.1:$RAW_PORT\"]"
gw_start_raw_upstream early "$RAW_PORT" early "$TEST_TMPDIR/raw-upstream.txt" "$ANSWER"
gw_start_gateway "$GW_CONF" gw
mark=$(gw_log_mark)

out=$(timeout 60 python3 - "$GW_PORT" "$GW_PKI" "$ANSWER" <<'PYEOF'
import os, ssl, sys, time
sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
import gwclient

port, pki, answer = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = gwclient.connect(gwclient.client_ctx(pki), port, rcvbuf=65536, timeout=40)
body = 64 << 20
t0 = time.monotonic()
try:
    s.sendall(b"POST /attestations HTTP/1.1\r\nHost: gw\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % body)
    chunk = b"a" * (1 << 20)
    for _ in range(body // len(chunk)):
        s.sendall(chunk)
except OSError as e:
    gwclient.fail("sending the body: %s after %.1f s" % (e, time.monotonic() - t0))
got = b""
try:
    while True:
        d = s.recv(1 << 20)
        if not d:
            break  # close_notify
        got += d
except ssl.SSLEOFError:
    gwclient.fail("the answer ended without close_notify after %d bytes" % len(got))
except OSError as e:
    gwclient.fail("reading the answer: %s after %d bytes" % (e, len(got)))
if b"\r\n\r\n" not in got:
    gwclient.fail("no answer head: %r" % got[:200])
head, rest = got.split(b"\r\n\r\n", 1)
status = int(head.split(b" ", 2)[1])
print("status=%d body=%d secs=%.1f" % (status, len(rest), time.monotonic() - t0))
PYEOF
) || fail "client: $out"
echo "$out"
expect_eq "$(sed -n 's/^status=\([0-9]*\) .*/\1/p' <<<"$out")" 413 "status of the early answer"
expect_eq "$(sed -n 's/.* body=\([0-9]*\) .*/\1/p' <<<"$out")" "$ANSWER" "bytes of the early answer's body"
secs=$(sed -n 's/.* secs=\([0-9.]*\)$/\1/p' <<<"$out")
awk -v s="$secs" 'BEGIN { exit !(s < 15) }' || fail "the exchange took ${secs} s: it waited for a timeout"
gw_wait_log_since "$mark" 'method=POST path=/attestations status=413 ' ||
    fail "no access line with 413: $(gw_log_since "$mark")"
pass "a 64 MiB upload answered early with 8 MiB: the client wrote all, then read it all and close_notify, in ${secs} s"

stop_bg gw || fail "mtlsgate did not exit 0 on SIGTERM"
check_sanitizers
pass "gateway early answer"
