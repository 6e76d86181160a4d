# gw_common.sh - helpers for the gateway's integration tests; source it after
# common.sh:
#     source "$SRC_DIR/tests/lib/common.sh"
#     source "$SRC_DIR/tests/lib/gw_common.sh"
#
# Layout in $TEST_TMPDIR: pki/ (make-test-certs.sh), gw.yml (the config),
# gw.log (mtlsgate's stderr: error and access log), db.log (db-service's
# stderr), upstream.txt (one line per request that reached db-service),
# body (the last gw_curl response body).
#
#   gw_make_pki [DIR]          test PKI (openssl CLI) into DIR (default
#                              $TEST_TMPDIR/pki); sets GW_PKI; also makes
#                              NAME.chain (the issuers of NAME.pem) for s_client
#   gw_pick_ports              sets GW_PORT, DB_PORT, ADMIN_PORT (if unset)
#   gw_write_config FILE [key=value]...
#                              a complete config with defaults; keys:
#       listen port certificate key client_ca crl (empty: none) upstream
#       unknown (reject|cn) map (YAML lines under identities.map, 4-space
#       indented) timeouts limits (flow mappings, e.g. "{ header: 2s }")
#       access (log.access) format level extra (raw YAML appended at the end)
#       workers (default 2) servers (raw YAML flow list for upstream.servers,
#       overrides upstream, e.g. '["127.0.0.1:1", "127.0.0.1:2"]')
#       tls_extra upstream_extra log_extra (raw YAML lines, 2-space
#       indented, added inside tls: / upstream: / log:)
#   gw_start_db [ARGS]...      db-service on DB_PORT logging to upstream.txt
#   gw_start_gateway [CONFIG] [NAME]  mtlsgate -c CONFIG (default gw.yml) as
#                              NAME (default "gw", log NAME.log; use a new NAME
#                              for a second run so that the first run's log,
#                              and any sanitizer report in it, is kept); sets
#                              GW_NAME and GW_LOG; fails with the log's tail
#                              if mtlsgate exits or does not listen
#   gw_start [CONFIG]          both
#   gw_wait_exit NAME SECS     waits for a started process to end by itself;
#                              sets GW_EXIT_STATUS to its exit status (or
#                              "timeout"); not in a $(...) subshell, which
#                              cannot wait for this shell's children
#   gw_curl NAME PATH [ARGS]...  curl to https://localhost:GW_PORT/PATH with
#                              NAME.pem/NAME.key (NAME "none": no certificate);
#                              prints the HTTP status (000 when no response),
#                              body in $GW_BODY, returns curl's exit status
#   gw_up JQ                   jq -r JQ over the last body (what db-service saw)
#   upstream_count             requests that reached db-service so far
#   gw_raw NAME FILE           sends FILE's bytes over one mTLS connection
#                              (openssl s_client), prints everything received
#   gw_s_client NAME [ARGS]... an s_client handshake (stdin empty, waits for
#                              the server to close); prints s_client's output
#   gw_log_mark / gw_log_since MARK   lines of gw.log written after a mark
#   gw_wait_log_since MARK RE [S]     waits for such a line matching RE (ERE, -i)
#   gw_wait_log_line_since MARK RE ALSO [S]  ... matching RE and, in the same
#                              line, ALSO (ERE, case-sensitive)
#   cert_sha256 CRT            sha256 of CRT's DER, lower-case hex
#   gw_make_second_gateway_cert DIR  a new gateway cert/key/bundle (same
#                              names) in DIR, signed by server-ca; prints serial
#   gw_make_leaf DIR NAME CN ISSUER EXT  a P-256 leaf NAME.crt/NAME.key (0600)
#                              in DIR with subject CN, signed by ISSUER (a
#                              name in GW_PKI, e.g. server-ca); EXT is the
#                              openssl x509 extension text
#   gw_start_db_named NAME PORT LOG [ARGS]...  another db-service as NAME on
#                              127.0.0.1:PORT logging requests to LOG
#   gw_revoke_attestor2 CRL    revokes attestor2 in the test PKI's client-ca
#                              database and writes a fresh CRL to CRL
#                              (atomically: a temporary file, then mv)
#   gw_start_raw_upstream NAME PORT MODE LOG [BYTES]  a scripted HTTP/1.1 upstream
#                              (python3) as NAME on 127.0.0.1:PORT; appends
#                              "conn=N req=M METHOD PATH" to LOG per request
#                              head read; MODE:
#       answer-first-close-second  answers a connection's first request (200,
#                              keep-alive), reads the second and closes
#                              without a byte of answer
#       no-read                accepts with a 4 KiB receive buffer and never
#                              reads (a stalled upstream)
#       big-response           answers every request with BYTES bytes of 'z' (N bytes for a
#                              path /size/N/...)
#                              (Content-Length, keep-alive)
#       early                  answers each connection's request as soon as
#                              its head is read, before its body: 413 with
#                              BYTES bytes of 'z' (Content-Length,
#                              Connection: close), then reads what comes
#                              until the gateway closes
#       partial                answers by path, keep-alive, Content-Length 10
#                              ("abcdefghij"): /trickle sends the head and
#                              4 bytes, then one byte every 0.5 s; /stall
#                              sends the head and 4 bytes, then nothing;
#                              /hold answers after 8 s; /big sends 16 MiB
#                              of 'z' (Content-Length 16777216); anything
#                              else at once. Appends "conn=N closed" to LOG when the
#                              gateway closes a connection.
#   gw_files_for_nobody        RUN=$TEST_TMPDIR/run with the gateway's
#                              certificate, client chain and CRL (0644) and its
#                              key (owned by nobody, 0600): what mtlsgate reads
#                              after dropping privileges to nobody
#   gw_tls_halfclose NAME FILE [SECS] [WAIT]  one mTLS connection (python3
#                              ssl) that sends FILE's bytes, waits WAIT
#                              seconds (default 0) without reading, sends a
#                              TCP FIN without close_notify (shutdown(SHUT_WR)),
#                              and prints everything received until the
#                              gateway closes (or no byte for SECS, default
#                              10; then "[timeout]")

GW_PKI=${GW_PKI:-$TEST_TMPDIR/pki}
GW_CONF=$TEST_TMPDIR/gw.yml
GW_NAME=gw
GW_LOG=$TEST_TMPDIR/gw.log
GW_UPSTREAM_LOG=$TEST_TMPDIR/upstream.txt
GW_BODY=$TEST_TMPDIR/body
GW_BIN=$BIN_DIR/mtlsgate

gw_require_tools() {
    local t
    for t in openssl curl jq sha256sum timeout; do
        command -v "$t" >/dev/null 2>&1 || fail "$t is required (scripts/install-deps.sh test)"
    done
    [ -x "$BIN_DIR/db-service" ] || fail "$BIN_DIR/db-service is not built"
}

# Fails while the gateway binary is not built: a gateway test that cannot
# run the gateway has not passed.
gw_require_gateway() {
    [ -x "$GW_BIN" ] || fail "$GW_BIN is not built"
}

gw_make_pki() {
    local dir=${1:-$TEST_TMPDIR/pki} f
    bash "$SRC_DIR/tests/lib/make-test-certs.sh" "$dir" || fail "make-test-certs.sh $dir failed"
    GW_PKI=$dir
    # NAME.chain: the certificates of NAME.pem after the leaf (what -cert_chain
    # wants); absent when NAME.pem is the leaf alone.
    for f in "$dir"/*.pem; do
        awk 'BEGIN{n=0} /-----BEGIN CERTIFICATE-----/{n++} n>1{print}' "$f" >"${f%.pem}.chain"
        [ -s "${f%.pem}.chain" ] || rm -f "${f%.pem}.chain"
    done
}

gw_pick_ports() {
    local p
    if [ -z "${GW_PORT:-}" ] || [ -z "${DB_PORT:-}" ] || [ -z "${ADMIN_PORT:-}" ]; then
        read -r -a p <<<"$(free_ports 3)"
        GW_PORT=${GW_PORT:-${p[0]}}
        DB_PORT=${DB_PORT:-${p[1]}}
        ADMIN_PORT=${ADMIN_PORT:-${p[2]}}
    fi
}

gw_write_config() {
    local file=$1 kv k v
    shift
    gw_pick_ports
    local port=$GW_PORT listen="" certificate=$GW_PKI/gateway.bundle.crt key=$GW_PKI/gateway.key
    local client_ca=$GW_PKI/client-chain.crt crl=$GW_PKI/client-ca.crl
    local upstream="127.0.0.1:$DB_PORT" unknown=reject access=stderr format=text level=info
    local timeouts="" limits="" extra="" workers=2 servers="" tls_extra="" upstream_extra=""
    local log_extra=""
    local map='    attestor1: svc-attestor-1
    attestor2: { identity: svc-attestor-2, allow: ["GET /", "POST /attestations"] }
    attestor3: svc-attestor-3'
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        case "$k" in
        port) port=$v ;;
        listen) listen=$v ;;
        certificate) certificate=$v ;;
        key) key=$v ;;
        client_ca) client_ca=$v ;;
        crl) crl=$v ;;
        upstream) upstream=$v ;;
        unknown) unknown=$v ;;
        map) map=$v ;;
        timeouts) timeouts=$v ;;
        limits) limits=$v ;;
        access) access=$v ;;
        format) format=$v ;;
        level) level=$v ;;
        extra) extra=$v ;;
        workers) workers=$v ;;
        servers) servers=$v ;;
        tls_extra) tls_extra=$v ;;
        upstream_extra) upstream_extra=$v ;;
        log_extra) log_extra=$v ;;
        *) fail "gw_write_config: unknown key '$k'" ;;
        esac
    done
    [ -n "$listen" ] || listen="127.0.0.1:$port"
    {
        echo "# written by tests/lib/gw_common.sh gw_write_config"
        echo "listen: [\"$listen\"]"
        echo "workers: $workers"
        echo "tls:"
        echo "  certificate: $certificate"
        echo "  key: $key"
        echo "  client_ca: $client_ca"
        [ -z "$crl" ] || echo "  crl: $crl"
        [ -z "$tls_extra" ] || echo "$tls_extra"
        echo "upstream:"
        if [ -n "$servers" ]; then
            echo "  servers: $servers"
        else
            echo "  servers: [\"$upstream\"]"
        fi
        [ -z "$upstream_extra" ] || echo "$upstream_extra"
        echo "identities:"
        echo "  unknown: $unknown"
        echo "  map:"
        echo "$map"
        [ -z "$timeouts" ] || echo "timeouts: $timeouts"
        [ -z "$limits" ] || echo "limits: $limits"
        echo "log:"
        echo "  access: $access"
        echo "  format: $format"
        echo "  level: $level"
        [ -z "$log_extra" ] || echo "$log_extra"
        [ -z "$extra" ] || echo "$extra"
    } >"$file"
}

gw_start_db() {
    gw_pick_ports
    : >>"$GW_UPSTREAM_LOG"
    start_bg db "$BIN_DIR/db-service" --listen "127.0.0.1:$DB_PORT" --log "$GW_UPSTREAM_LOG" "$@"
    wait_port "$DB_PORT" 10 || { tail -20 "$TEST_TMPDIR/db.log" >&2; fail "db-service did not listen on $DB_PORT"; }
}

gw_start_gateway() {
    local conf=${1:-$GW_CONF} i
    GW_NAME=${2:-gw}
    GW_LOG=$TEST_TMPDIR/$GW_NAME.log
    gw_require_gateway
    start_bg "$GW_NAME" "$GW_BIN" -c "$conf"
    for i in $(seq 1 200); do
        if ! kill -0 "$(bg_pid "$GW_NAME")" 2>/dev/null; then
            tail -30 "$GW_LOG" >&2
            fail "mtlsgate -c $conf exited at start"
        fi
        (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    tail -30 "$GW_LOG" >&2
    fail "mtlsgate -c $conf did not listen on $GW_PORT within 10 s"
}

gw_start() {
    gw_start_db
    gw_start_gateway "${1:-$GW_CONF}"
}

gw_wait_exit() {
    local name=$1 secs=$2 pid i
    GW_EXIT_STATUS=none
    pid=$(bg_pid "$name")
    [ -n "$pid" ] || return 1
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        GW_EXIT_STATUS=timeout
        return 1
    fi
    wait "$pid" 2>/dev/null
    GW_EXIT_STATUS=$?
    unset "_BG_PIDS[$name]"
    return 0
}

# Client certificate arguments for NAME (none: no certificate).
_gw_cert_args() {
    if [ "$1" != none ]; then
        printf '%s\n' --cert "$GW_PKI/$1.pem" --key "$GW_PKI/$1.key"
    fi
}

gw_curl() {
    local name=$1 path=$2 rc
    shift 2
    local -a cert
    mapfile -t cert < <(_gw_cert_args "$name")
    rm -f "$GW_BODY"
    curl -sS --max-time "${GW_CURL_MAXTIME:-20}" --cacert "$GW_PKI/root.crt" "${cert[@]}" \
        -o "$GW_BODY" -w '%{http_code}' "$@" "https://localhost:$GW_PORT$path" \
        2>>"$TEST_TMPDIR/curl.err"
    rc=$?
    return $rc
}

gw_up() {
    [ -s "$GW_BODY" ] || { echo "(no body)"; return 1; }
    jq -e . <"$GW_BODY" >/dev/null 2>&1 || { echo "(body is not JSON: $(head -c 300 "$GW_BODY"))"; return 1; }
    jq -r "$1" <"$GW_BODY" 2>&1 || { echo "(jq '$1' failed on: $(head -c 300 "$GW_BODY"))"; return 1; }
}

upstream_count() {
    if [ -f "$GW_UPSTREAM_LOG" ]; then
        wc -l <"$GW_UPSTREAM_LOG" | tr -d ' '
    else
        echo 0
    fi
}

# s_client arguments presenting NAME's certificate and chain.
_gw_sclient_cert_args() {
    local name=$1
    [ "$name" != none ] || return 0
    printf '%s\n' -cert "$GW_PKI/$name.crt" -key "$GW_PKI/$name.key"
    if [ -f "$GW_PKI/$name.chain" ]; then
        printf '%s\n' -cert_chain "$GW_PKI/$name.chain"
    fi
}

gw_raw() {
    local name=$1 file=$2
    local -a cert
    mapfile -t cert < <(_gw_sclient_cert_args "$name")
    timeout "${GW_RAW_TIMEOUT:-15}" openssl s_client -quiet -nocommands \
        -connect "127.0.0.1:$GW_PORT" -servername localhost -CAfile "$GW_PKI/root.crt" \
        "${cert[@]}" <"$file" 2>>"$TEST_TMPDIR/s_client.err"
}

gw_s_client() {
    local name=$1
    shift
    local -a cert
    mapfile -t cert < <(_gw_sclient_cert_args "$name")
    timeout "${GW_SCLIENT_TIMEOUT:-10}" openssl s_client -connect "127.0.0.1:$GW_PORT" \
        -servername localhost -CAfile "$GW_PKI/root.crt" -nocommands -ign_eof \
        "${cert[@]}" "$@" </dev/null 2>&1
}

gw_log_mark() {
    if [ -f "$GW_LOG" ]; then wc -l <"$GW_LOG" | tr -d ' '; else echo 0; fi
}

gw_log_since() {
    tail -n +"$(($1 + 1))" "$GW_LOG" 2>/dev/null
}

gw_wait_log_since() {
    gw_wait_log_line_since "$1" "$2" '' "${3:-5}"
}

gw_wait_log_line_since() {
    local mark=$1 re=$2 also=$3 secs=${4:-5} i
    for i in $(seq 1 $((secs * 20))); do
        gw_log_since "$mark" | grep -Ei -- "$re" | grep -E -- "$also" >/dev/null && return 0
        sleep 0.05
    done
    return 1
}

cert_sha256() {
    openssl x509 -in "$1" -outform der | sha256sum | cut -d' ' -f1
}

gw_make_second_gateway_cert() {
    local dir=$1 ext
    mkdir -p "$dir"
    ext=$dir/gateway2.ext
    cat >"$ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    (
        umask 077
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/gateway.key" &&
            openssl req -new -key "$dir/gateway.key" -subj "/O=mtlsgate test/CN=localhost" \
                -out "$dir/gateway.csr" &&
            openssl x509 -req -in "$dir/gateway.csr" -CA "$GW_PKI/server-ca.crt" \
                -CAkey "$GW_PKI/server-ca.key" -set_serial 0x5ec0d6a7e -days 30 -sha256 \
                -extfile "$ext" -out "$dir/gateway.crt"
    ) >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "could not make a second gateway certificate"
    cat "$dir/gateway.crt" "$GW_PKI/server-ca.crt" >"$dir/gateway.bundle.crt"
    openssl x509 -in "$dir/gateway.crt" -noout -serial | cut -d= -f2
}

gw_make_leaf() {
    local dir=$1 name=$2 cn=$3 issuer=$4 ext=$5
    mkdir -p "$dir"
    printf '%s\n' "$ext" >"$dir/$name.ext"
    (
        umask 077
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" &&
            openssl req -new -key "$dir/$name.key" -subj "/O=mtlsgate test/CN=$cn" \
                -out "$dir/$name.csr" &&
            openssl x509 -req -in "$dir/$name.csr" -CA "$GW_PKI/$issuer.crt" \
                -CAkey "$GW_PKI/$issuer.key" -CAcreateserial -CAserial "$dir/$name.srl" \
                -days 30 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt"
    ) >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "could not make the certificate $dir/$name.crt"
}

gw_start_db_named() {
    local name=$1 port=$2 log=$3
    shift 3
    : >>"$log"
    start_bg "$name" "$BIN_DIR/db-service" --listen "127.0.0.1:$port" --log "$log" "$@"
    wait_port "$port" 10 || { tail -20 "$TEST_TMPDIR/$name.log" >&2; fail "db-service $name did not listen on $port"; }
}

gw_revoke_attestor2() {
    local crl=$1 serial
    openssl ca -batch -config "$GW_PKI/ca/client-ca/ca.cnf" -revoke "$GW_PKI/attestor2.crt" \
        -crl_reason keyCompromise >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "openssl ca -revoke attestor2 failed"
    openssl ca -batch -config "$GW_PKI/ca/client-ca/ca.cnf" -gencrl -crldays 30 \
        -out "$crl.new" >>"$TEST_TMPDIR/openssl.err" 2>&1 || fail "openssl ca -gencrl failed"
    mv "$crl.new" "$crl"
    serial=$(openssl x509 -in "$GW_PKI/attestor2.crt" -noout -serial | cut -d= -f2)
    openssl crl -in "$crl" -noout -text | grep -qi "$serial" ||
        fail "test setup: attestor2's serial $serial is not in the new CRL $crl"
}

_gw_write_raw_upstream_py() {
    cat >"$TEST_TMPDIR/raw_upstream.py" <<'PYEOF'
import socket, sys, threading, time

port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
nbytes = int(sys.argv[4]) if len(sys.argv) > 4 else 0
lock = threading.Lock()
nconn = [0]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if mode == "no-read":
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
srv.bind(("127.0.0.1", port))
srv.listen(64)


def note(conn_no, req_no, head):
    line = head.split(b"\r\n", 1)[0].decode("latin-1").rsplit(" ", 1)[0]
    with lock, open(log, "a") as f:
        f.write("conn=%d req=%d %s\n" % (conn_no, req_no, line))


def read_request(c, buf):
    """One request (head and Content-Length body) from c: (head, rest)."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    head, buf = buf[:i], buf[i:]
    cl = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            cl = int(line.split(b":", 1)[1])
    while len(buf) < cl:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    return head, buf[cl:]


def serve(c, conn_no):
    buf, req_no = b"", 0
    try:
        if mode == "early":
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            note(conn_no, 1, buf[:buf.index(b"\r\n\r\n") + 4])
            c.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % nbytes)
            c.sendall(b"z" * nbytes)
            while c.recv(65536):
                pass
            return
        while True:
            head, buf = read_request(c, buf)
            if head is None:
                break
            req_no += 1
            note(conn_no, req_no, head)
            if mode == "partial":
                path = head.split(b" ", 2)[1]
                if path == b"/big":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (16 << 20))
                    c.sendall(b"z" * (16 << 20))
                    continue
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                if path in (b"/trickle", b"/stall"):
                    c.sendall(b"abcd")
                    if path == b"/stall":
                        while c.recv(65536):
                            pass
                        break
                    for ch in b"efghij":
                        time.sleep(0.5)
                        c.sendall(bytes([ch]))
                    continue
                if path == b"/hold":
                    time.sleep(8)
                c.sendall(b"abcdefghij")
                continue
            if mode == "big-response":
                # nbytes, or N for a path /size/N/...
                n, parts = nbytes, head.split(b" ", 2)[1].split(b"/")
                if len(parts) > 2 and parts[1] == b"size":
                    n = int(parts[2])
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                c.sendall(b"z" * n)
                continue
            if req_no >= 2:
                break  # read, never answered
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfirst\n")
    finally:
        if mode == "partial":
            with lock, open(log, "a") as f:
                f.write("conn=%d closed\n" % conn_no)
        c.close()


while True:
    c, _ = srv.accept()
    nconn[0] += 1
    if mode == "no-read":
        threading.Thread(target=lambda c=c: threading.Event().wait(), daemon=True).start()
    else:
        threading.Thread(target=serve, args=(c, nconn[0]), daemon=True).start()
PYEOF
}

gw_start_raw_upstream() {
    local name=$1 port=$2 mode=$3 log=$4 bytes=${5:-0}
    command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
    _gw_write_raw_upstream_py
    : >>"$log"
    start_bg "$name" python3 "$TEST_TMPDIR/raw_upstream.py" "$port" "$mode" "$log" "$bytes"
    wait_port "$port" 10 || { tail -20 "$TEST_TMPDIR/$name.log" >&2; fail "raw upstream $name did not listen on $port"; }
}

gw_files_for_nobody() {
    chmod 711 "$TEST_TMPDIR"
    RUN=$TEST_TMPDIR/run
    mkdir -m 755 "$RUN"
    cp "$GW_PKI/gateway.bundle.crt" "$GW_PKI/client-chain.crt" "$GW_PKI/client-ca.crl" "$RUN/"
    cp "$GW_PKI/gateway.key" "$RUN/gateway.key"
    chmod 644 "$RUN/gateway.bundle.crt" "$RUN/client-chain.crt" "$RUN/client-ca.crl"
    chown nobody "$RUN/gateway.key"
    chmod 600 "$RUN/gateway.key"
}

gw_tls_halfclose() {
    local name=$1 file=$2 secs=${3:-10} wait=${4:-0}
    command -v python3 >/dev/null 2>&1 || fail "python3 is required (scripts/install-deps.sh test)"
    python3 - "$GW_PORT" "$GW_PKI" "$name" "$file" "$secs" "$wait" <<'PYEOF'
import os, socket, ssl, sys, time

port, pki, name, path, secs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
wait = float(sys.argv[6])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/root.crt")
ctx.load_cert_chain(pki + "/%s.pem" % name, pki + "/%s.key" % name)
raw = socket.create_connection(("127.0.0.1", port), timeout=secs)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(open(path, "rb").read())
time.sleep(wait)
# A FIN without close_notify: shut the TCP socket's write side under the TLS layer.
socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    out += b"\n[timeout]"
except (ssl.SSLError, OSError) as e:
    out += ("\n[error: %s]" % e).encode()
sys.stdout.buffer.write(out)
PYEOF
}

# The serial of the certificate the gateway presents right now.
gw_served_serial() {
    timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost \
        -CAfile "$GW_PKI/root.crt" -cert "$GW_PKI/attestor1.crt" -key "$GW_PKI/attestor1.key" \
        </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}

# Time in milliseconds since the epoch.
now_ms() { date +%s%3N; }

gw_require_tools
