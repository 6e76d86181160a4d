#!/usr/bin/env bash
# Requests that arrive as many TLS records at once. The gateway reads ahead
# (one read takes every record the socket holds), so records can wait
# inside OpenSSL with nothing left in the socket; each case below stalls
# (and fails on its 10 s timeout) if a path that lets reading go on does not
# pick them up:
#  - 40 keep-alive GETs, each in its own record, written back to back
#    before any answer is read: 40 answers in order, 40 requests upstream;
#  - a 6 MiB POST in 16 KiB records (more than the gateway buffers, so
#    reading pauses and resumes), then 2 GETs in the same burst: 3 answers,
#    the POST body intact upstream (length and SHA-256);
#  - in both, the first request is written right after the client's
#    Finished, so the read that ends the handshake usually takes it too
#    (the path that starts reading once the handshake is done).
source "$SRC_DIR/tests/lib/common.sh"
source "$SRC_DIR/tests/lib/gw_common.sh"

command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
gw_make_pki
gw_pick_ports
gw_start_db
gw_write_config "$TEST_TMPDIR/gw.yml"
gw_start_gateway "$TEST_TMPDIR/gw.yml" gw
cat "$GW_PKI/attestor1.crt" "$GW_PKI/attestor1.chain" >"$TEST_TMPDIR/client.pem"

# client.py MODE: talks to the gateway over one TLS connection; prints one
# line per answer: "STATUS BODY_BYTES_UPSTREAM SHA256_UPSTREAM PATH".
cat >"$TEST_TMPDIR/client.py" <<'EOF'
import hashlib, json, socket, ssl, sys

mode, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="localhost")

def get(path):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode()

expect = []
if mode == "gets":
    for i in range(40):
        s.sendall(get("/r%d" % i))      # one record each, no answer read yet
        expect.append("/r%d" % i)
elif mode == "post":
    size = 6 * 1024 * 1024
    body = bytes((i * 7) & 0xff for i in range(16384))
    s.sendall(("POST /big HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % size).encode())
    for off in range(0, size, len(body)):
        s.sendall(body)
    s.sendall(get("/after1"))
    s.sendall(get("/after2"))
    expect = ["/big", "/after1", "/after2"]
    h = hashlib.sha256()
    for off in range(0, size, len(body)):
        h.update(body)
    print("sent-sha256 %s" % h.hexdigest())
buf = b""
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise SystemExit("connection closed with %d answers missing" % (len(expect)))
        buf += d
for path in expect:
    while b"\r\n\r\n" not in buf:
        need(len(buf) + 1)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = lines[0].split()[1]
    length = 0
    for l in lines[1:]:
        k, v = l.split(":", 1)
        if k.strip().lower() == "content-length":
            length = int(v)
    need(length)
    body, buf = buf[:length], buf[length:]
    j = json.loads(body)
    print(status, j.get("body_bytes"), j.get("body_sha256"), j.get("path"))
    if j.get("path") != path:
        raise SystemExit("answer for %s came for %s" % (j.get("path"), path))
EOF

run() {
    timeout 30 python3 "$TEST_TMPDIR/client.py" "$1" "$GW_PORT" "$GW_PKI/root.crt" \
        "$TEST_TMPDIR/client.pem" "$GW_PKI/attestor1.key" >"$TEST_TMPDIR/$1.out" 2>&1
}

before=$(upstream_count)
run gets || fail "40 GETs in 40 records: $(tail -3 "$TEST_TMPDIR/gets.out")"
expect_eq "$(grep -c '^200 ' "$TEST_TMPDIR/gets.out")" 40 "answers to 40 GETs sent as 40 records at once"
expect_eq "$(($(upstream_count) - before))" 40 "requests upstream"
pass "40 keep-alive GETs, one record each, written before any answer was read: 40 answers in order"

run post || fail "6 MiB POST in 16 KiB records + 2 GETs: $(tail -3 "$TEST_TMPDIR/post.out")"
sent=$(awk '/^sent-sha256/ {print $2}' "$TEST_TMPDIR/post.out")
got=$(awk '$4 == "/big" {print $1, $2, $3}' "$TEST_TMPDIR/post.out")
expect_eq "$got" "200 6291456 $sent" "POST /big as the upstream saw it (status, bytes, sha256)"
expect_eq "$(grep -c '^200 .* /after[12]$' "$TEST_TMPDIR/post.out")" 2 "GETs behind the POST"
pass "a 6 MiB POST in 384 records, then 2 GETs in the same burst: all answered, the body intact"

stop_bg gw || fail "mtlsgate did not exit 0"
stop_bg db || fail "db-service did not exit 0"
check_sanitizers
pass "requests in many TLS records at once"
