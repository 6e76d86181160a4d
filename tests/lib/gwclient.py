"""
gwclient.py - what the python3 TLS clients of the gateway's integration tests
share: a client context with a test PKI's certificate, connecting on loopback,
reading one HTTP/1.1 answer's head (or a whole GET's answer), and failing with
one line.

A test's script imports it with
    sys.path.insert(0, os.environ["SRC_DIR"] + "/tests/lib")
(run-integration.sh sets SRC_DIR).
"""
import socket
import ssl
import sys


def fail(msg):
    """One FAIL line on stdout, exit status 1."""
    print("FAIL: " + msg)
    sys.exit(1)


def client_ctx(pki, name="attestor1"):
    """A client context trusting PKI's root and presenting NAME's certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki + "/root.crt")
    ctx.load_cert_chain("%s/%s.pem" % (pki, name), "%s/%s.key" % (pki, name))
    return ctx


def connect(ctx, port, rcvbuf=0, timeout=10):
    """A TLS connection to 127.0.0.1:PORT (server name localhost), handshake done.
    rcvbuf: the socket's receive buffer, set before connecting (the window)."""
    raw = socket.socket()
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, server_hostname="localhost")


def read_head(s, buf=b""):
    """The next answer head from s (buf: bytes already read):
    (status, headers by lower-case name, bytes after the head).
    Status 0 when the connection closed before a whole head."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return 0, {}, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, rest


def get(s, path):
    """GET PATH on the keep-alive connection s (Host: localhost); reads the
    whole answer, Content-Length framed: (status, headers by lower-case name)."""
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    status, hdrs, body = read_head(s)
    while len(body) < int(hdrs.get("content-length", "0")):
        more = s.recv(65536)
        if not more:
            fail("%s: the connection closed inside the body" % path)
        body += more
    return status, hdrs


def expect_refused(s, path, when):
    """GET PATH on s must get 403 with Connection: close, and the gateway must
    then close the connection; WHEN names the moment in the failure line."""
    status, hdrs = get(s, path)
    if status != 403 or hdrs.get("connection", "").lower() != "close":
        fail("%s: HTTP %d, Connection: %s" % (when, status, hdrs.get("connection")))
    if s.recv(65536) != b"":
        fail("%s: the connection stayed open after the 403" % when)
