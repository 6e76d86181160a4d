#!/usr/bin/env bash
# demo.sh - the README's main job, end to end, on a fresh Debian 12 machine:
#   1. install the build dependencies, build into build/
#   2. make a demo PKI in demo-run/pki with certs-tool (root, client and
#      server intermediates, client attestor1, server certificate "gateway")
#   3. write demo-run/mtlsgate.yml (attestor1 -> svc-attestor-1)
#   4. start the demo db-service and mtlsgate on free loopback ports
#   5. send one real mTLS request with attestor1's certificate and print
#      what the db-service received (X-Client-Identity: svc-attestor-1)
#   6. stop both by PID
# Exit 0 when every step worked; otherwise one "demo: FAILED: ..." line and
# the logs in demo-run/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=demo-run
BIN=build/bin
DB_PID=""
GW_PID=""

step() { echo "== $*"; }
die() {
    echo "demo: FAILED: $*" >&2
    exit 1
}

stop_pid() { # stop_pid PID NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local pid=$1 name=$2 i rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo: $name did not stop in 10 s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}

cleanup() {
    stop_pid "$GW_PID" mtlsgate || true
    stop_pid "$DB_PID" db-service || true
}
trap cleanup EXIT

wait_port() { # wait_port PORT: up to 10 s for a listener on 127.0.0.1
    local i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

step "installing build dependencies (scripts/install-deps.sh build)"
bash scripts/install-deps.sh build || die "installing the build dependencies"

step "building into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || die "cmake configure"
cmake --build build -j"$(nproc)" --target mtlsgate certs-tool db-service free-port >/dev/null ||
    die "build (run: cmake --build build)"

step "making a demo PKI in $RUN/pki with certs-tool"
rm -rf "$RUN"
mkdir -p "$RUN"
"$BIN/certs-tool" --dir "$RUN/pki" init >"$RUN/certs-tool.log" 2>&1 ||
    die "certs-tool init (see $RUN/certs-tool.log)"
"$BIN/certs-tool" --dir "$RUN/pki" issue attestor1 >>"$RUN/certs-tool.log" 2>&1 ||
    die "certs-tool issue attestor1 (see $RUN/certs-tool.log)"
"$BIN/certs-tool" --dir "$RUN/pki" issue --server gateway --san DNS:localhost,IP:127.0.0.1 \
    >>"$RUN/certs-tool.log" 2>&1 || die "certs-tool issue --server gateway (see $RUN/certs-tool.log)"

ports=$("$BIN/free-port" 2) || die "finding free ports"
read -r GW_PORT DB_PORT <<<"$(echo $ports)"

step "writing $RUN/mtlsgate.yml (gateway on 127.0.0.1:$GW_PORT, db-service on 127.0.0.1:$DB_PORT)"
cat >"$RUN/mtlsgate.yml" <<YAML
# Demo configuration written by scripts/demo.sh; paths are relative to this file.
listen: ["127.0.0.1:$GW_PORT"]
workers: 1
pid_file: mtlsgate.pid
tls:
  certificate: pki/servers/gateway.bundle.crt
  key: pki/servers/gateway.key
  client_ca: pki/client-chain.crt
  crl: pki/client-ca.crl
upstream:
  servers: ["127.0.0.1:$DB_PORT"]
identities:
  unknown: reject
  map:
    attestor1: svc-attestor-1
log:
  access: stderr
  format: text
YAML
"$BIN/mtlsgate" -t -c "$RUN/mtlsgate.yml" || die "mtlsgate -t found problems in $RUN/mtlsgate.yml"

step "starting db-service and mtlsgate"
"$BIN/db-service" --listen "127.0.0.1:$DB_PORT" --log "$RUN/db-service.requests" \
    >"$RUN/db-service.log" 2>&1 &
DB_PID=$!
"$BIN/mtlsgate" -c "$RUN/mtlsgate.yml" >"$RUN/mtlsgate.log" 2>&1 &
GW_PID=$!
wait_port "$DB_PORT" || die "db-service did not listen on 127.0.0.1:$DB_PORT (see $RUN/db-service.log)"
wait_port "$GW_PORT" || die "mtlsgate did not listen on 127.0.0.1:$GW_PORT (see $RUN/mtlsgate.log)"

step "sending one mTLS request as attestor1:"
cmd=(curl --silent --show-error --fail --resolve "localhost:$GW_PORT:127.0.0.1"
     --cert "$RUN/pki/clients/attestor1.pem" --key "$RUN/pki/clients/attestor1.key"
     --cacert "$RUN/pki/root.crt"
     -H "X-Client-Identity: admin"
     "https://localhost:$GW_PORT/attestations?demo=1")
echo "   ${cmd[*]}"
body=$("${cmd[@]}") || die "the request through mtlsgate failed (see $RUN/mtlsgate.log)"

step "what the db-service received:"
if command -v python3 >/dev/null 2>&1; then
    printf '%s' "$body" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(json.dumps({k: d[k] for k in ("method", "path", "headers", "body_bytes")}, indent=2))' ||
        printf '%s\n' "$body"
else
    printf '%s\n' "$body"
fi
case "$body" in
*'"x-client-identity":"svc-attestor-1"'*) ;;
*) die "the db-service did not see X-Client-Identity: svc-attestor-1" ;;
esac
case "$body" in
*admin*) die "the client's own X-Client-Identity: admin reached the db-service" ;;
esac

step "stopping mtlsgate (pid $GW_PID) and db-service (pid $DB_PID)"
rc=0
stop_pid "$GW_PID" mtlsgate || rc=$?
GW_PID=""
[ "$rc" -eq 0 ] || die "mtlsgate exited with status $rc (see $RUN/mtlsgate.log)"
stop_pid "$DB_PID" db-service || true
DB_PID=""
echo "demo: OK - the db-service saw X-Client-Identity: svc-attestor-1 (the client's"
echo "      'X-Client-Identity: admin' was removed). Logs and the PKI are in $RUN/."
