#!/usr/bin/env bash
# bench.sh - mtlsgate against nginx at the same mTLS reverse-proxy job, side
# by side (issue 5). One command:
#
#     scripts/bench.sh [--rounds N] [--quick] [--unpinned] [--smoke]
#
# What it does, all on 127.0.0.1, in a fresh run directory:
#  - makes two PKIs with the openssl CLI, ECDSA P-256 and RSA-2048: root ->
#    client intermediate -> client leaf, root -> server intermediate ->
#    server certificate;
#  - starts one plain HTTP/1.1 upstream (bench-upstream) and, in turn, nginx
#    (Debian's /usr/sbin/nginx, 1 worker) and mtlsgate (workers: 1), both
#    configured for the same job: client certificate required and verified
#    against client intermediate + root, the issuer pinned to the client
#    intermediate, TLS 1.2/1.3, session tickets, keep-alive to the upstream,
#    the CN passed in X-Client-CN, no access log;
#  - drives each with mtls-loadgen (tests/bench/loadgen.c) through the
#    scenarios below, alternating the two front ends (and their order) round
#    by round, the server pinned to CPU 0 and loadgen + upstream to CPU 1
#    (--unpinned adds a pass without pinning);
#  - prints a markdown table per pass (median, min-max, mtlsgate/nginx and
#    whether issue 5's target is met) and writes it to bench-results.md in
#    the run directory.
#  In the handshake scenarios the load generator does not verify the
#  server's chain (that would only cost load-core CPU); the smoke, keep-alive
#  and POST runs do verify it.
#
# Scenarios: (1) full handshake + 1 GET per connection, ECDSA and RSA;
# (2) resumed TLS 1.3 handshake + 1 GET; (3) keep-alive GETs over 50
# connections: rps, p50, p99; (4) 1 MiB POSTs over keep-alive: MB/s;
# (5) memory per idle mTLS connection, 10,000 held: (RSS with them - RSS
# before) / connections, VmRSS summed over all server processes; (6) server
# CPU (utime+stime of all server processes) per request in (3), with its
# kernel part (stime), and per connection in (1) and (2). For (3) the table
# also shows the load side's CPU per request (mtls-loadgen + bench-upstream),
# and a second table the ceiling the load core sets on (1)-(3): one core
# spending L us per request or connection cannot drive any front end faster
# than 1e6/L of them per second. Unpinned, where server and load side share
# the cores, that table is the bound the cores set: with S + L us of CPU per
# request (server + load side), N cores allow at most N * 1e6 / (S + L).
#
# Options:
#   --rounds N      rounds per pass (default 5; at least 5 for a report)
#   --duration S    seconds per scenario per front end (default 8)
#   --quick         1 round, 2 s per scenario
#   --smoke         a few seconds: each front end answers one short
#                   keep-alive run (used by tests/integration/test_bench_smoke.sh)
#   --unpinned      also run a pass without CPU pinning
#   --only FE       nginx or mtlsgate alone (developing the harness)
#   --idle-conns N  connections held in scenario 5 (default 10000)
#   --scenarios L   comma list among hs-ec,hs-rsa,resume,keepalive,post,idle
#   --profile       after the measured passes, one more (unmeasured) pinned
#                   mtlsgate run of each scenario but idle under
#                   `perf record --call-graph dwarf`: perf-SCEN-flat.txt (self
#                   time) and perf-SCEN-children.txt (time with callees)
#   --out DIR       run directory (default: a new one under ${TMPDIR:-/tmp})
#   --host-netns    run in the host's network namespace. By default (as root,
#                   with iproute2) the run has a network namespace of its own,
#                   with only its loopback: the host's firewall rules (here,
#                   podman's NAT rules, which send every loopback packet
#                   through conntrack) then cost neither front end anything,
#                   as in a container. Without root or `ip netns`, the run
#                   says so and uses the host's.
# Environment: BIN_DIR (where mtls-loadgen, bench-upstream and mtlsgate are;
# default: build them in build-bench/), NGINX (default /usr/sbin/nginx).
set -u
set -o pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5
DURATION=8
QUICK=0
SMOKE=0
UNPINNED=0
ONLY=""
IDLE_CONNS=10000
SCENARIOS="hs-ec,hs-rsa,resume,keepalive,post,idle"
PROFILE=0
RUN_DIR=""
NGINX=${NGINX:-/usr/sbin/nginx}
ROUNDS_SET=0
DURATION_SET=0
HOST_NETNS=0
ORIG_ARGV=("$@")

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=${2:?}; ROUNDS_SET=1; shift ;;
    --duration) DURATION=${2:?}; DURATION_SET=1; shift ;;
    --quick) QUICK=1 ;;
    --smoke) SMOKE=1 ;;
    --unpinned) UNPINNED=1 ;;
    --only) ONLY=${2:?}; shift ;;
    --idle-conns) IDLE_CONNS=${2:?}; shift ;;
    --scenarios) SCENARIOS=${2:?}; shift ;;
    --profile) PROFILE=1 ;;
    --out) RUN_DIR=${2:?}; shift ;;
    --host-netns) HOST_NETNS=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
case "$ONLY" in ""|nginx|mtlsgate) ;; *) die "--only nginx|mtlsgate" ;; esac
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds: a positive integer"
[[ "$DURATION" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration: seconds"
[[ "$IDLE_CONNS" =~ ^[1-9][0-9]*$ ]] || die "--idle-conns: a positive integer"
if [ "$QUICK" = 1 ]; then
    [ "$ROUNDS_SET" = 1 ] || ROUNDS=1
    [ "$DURATION_SET" = 1 ] || DURATION=2
fi
if [ "$SMOKE" = 1 ]; then
    ROUNDS=1
    [ "$DURATION_SET" = 1 ] || DURATION=1
    SCENARIOS=keepalive
    UNPINNED=0
    PROFILE=0
fi
FRONTS=(nginx mtlsgate)
[ -n "$ONLY" ] && FRONTS=("$ONLY")

# ---------------------------------------------------------------- programs
if [ -z "${BIN_DIR:-}" ]; then
    BIN_DIR=$SRC/build-bench/bin
    echo "bench: building into $SRC/build-bench" >&2
    cmake -S "$SRC" -B "$SRC/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
        die "cmake configure failed"
    targets=(mtls-loadgen bench-upstream)
    [ "$ONLY" = nginx ] || targets+=(mtlsgate)
    cmake --build "$SRC/build-bench" -j"$(nproc)" --target "${targets[@]}" >/dev/null ||
        die "build failed: cmake --build $SRC/build-bench --target ${targets[*]}"
fi
LOADGEN=$BIN_DIR/mtls-loadgen
UPSTREAM=$BIN_DIR/bench-upstream
MTLSGATE=$BIN_DIR/mtlsgate
[ -x "$LOADGEN" ] || die "$LOADGEN is not built"
[ -x "$UPSTREAM" ] || die "$UPSTREAM is not built"
if [ "$ONLY" != nginx ]; then
    [ -x "$MTLSGATE" ] || die "$MTLSGATE is not built"
fi
if [ "$ONLY" != mtlsgate ]; then
    [ -x "$NGINX" ] || die "$NGINX not found (apt-get install nginx-light)"
fi
for t in openssl taskset awk; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
done
if [ "$SMOKE" = 0 ]; then
    for b in "$LOADGEN" "$MTLSGATE"; do
        [ -x "$b" ] || continue
        if ldd "$b" 2>/dev/null | grep -q 'libasan\|libubsan'; then
            echo "bench: WARNING: $b is a sanitizer build; numbers will be meaningless" >&2
        fi
    done
fi

# ---------------------------------------------------------------- network
# The run moves into a network namespace of its own (see --host-netns): this
# script runs again inside it, with the programs built above, and the
# namespace is deleted when that run ends. BENCH_NETNS names it inside.
if [ "$HOST_NETNS" = 0 ] && [ -z "${BENCH_NETNS:-}" ]; then
    why=""
    if [ "$(id -u)" != 0 ]; then
        why="not root"
    elif ! command -v ip >/dev/null 2>&1; then
        why="no ip command (apt-get install iproute2)"
    else
        ns=mtlsgate-bench-$$
        if ! err=$(ip netns add "$ns" 2>&1); then
            why="ip netns add failed${err:+: ${err%%$'\n'*}}"
        elif ! err=$(ip netns exec "$ns" ip link set lo up 2>&1); then
            why="ip netns exec failed${err:+: ${err%%$'\n'*}}"
            ip netns del "$ns" 2>/dev/null
        else
            trap 'ip netns del "$ns" 2>/dev/null' EXIT
            trap 'exit 130' INT TERM
            echo "bench: running in network namespace $ns" >&2
            BENCH_NETNS=$ns BIN_DIR=$BIN_DIR NGINX=$NGINX \
                ip netns exec "$ns" bash "$SRC/scripts/bench.sh" "${ORIG_ARGV[@]}"
            exit $?
        fi
    fi
    echo "bench: in the host's network namespace ($why)" >&2
    NETNS_DESC="the host's (a namespace of its own was not possible: $why)"
elif [ -n "${BENCH_NETNS:-}" ]; then
    NETNS_DESC="a namespace of its own ($BENCH_NETNS: loopback only, no firewall rules)"
else
    NETNS_DESC="the host's (--host-netns)"
fi

if [ -z "$RUN_DIR" ]; then
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mtlsgate-bench.XXXXXX") || die "mktemp failed"
else
    mkdir -p "$RUN_DIR" || die "cannot create $RUN_DIR"
fi
RUN_DIR=$(cd "$RUN_DIR" && pwd)
RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"
echo "bench: run directory $RUN_DIR" >&2

# Enough descriptors for the idle scenario (loadgen, and children of this
# shell: nginx and mtlsgate).
want_nofile=$((IDLE_CONNS * 2 + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_nofile" ]; then
    ulimit -n "$want_nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 1024)) ]; then
    echo "bench: WARNING: ulimit -n is $(ulimit -n); the idle scenario needs more than $IDLE_CONNS" >&2
fi

# ---------------------------------------------------------------- processes
declare -A PIDS=()

# start NAME CPU CMD... : runs CMD in the background (pinned to CPU unless
# CPU is "-"), output to RUN_DIR/NAME.log; remembers its PID.
start() {
    local name=$1 cpu=$2
    shift 2
    if [ "$cpu" = - ]; then
        "$@" >"$RUN_DIR/$name.log" 2>&1 &
    else
        taskset -c "$cpu" "$@" >"$RUN_DIR/$name.log" 2>&1 &
    fi
    PIDS[$name]=$!
}

# stop NAME: SIGTERM, up to 10 s, then SIGKILL; only the PID we started.
stop() {
    local name=$1 pid=${PIDS[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PIDS[$name]"
}

cleanup() {
    local n
    for n in "${!PIDS[@]}"; do stop "$n"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
    local port=$1 secs=${2:-10} i
    for i in $(seq 1 $((secs * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# free_ports N: N distinct loopback ports with no listener, taken below the
# kernel's ephemeral range: the load generator opens tens of thousands of
# connections, and a port picked inside that range (as free-port does) can
# become one of their source ports before the server binds it.
EPH_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_ports() {
    local got=() p lo=10000 span
    span=$((EPH_LOW - lo))
    [ "$span" -gt 1000 ] || { lo=1025; span=$((EPH_LOW - lo)); }
    while [ ${#got[@]} -lt "$1" ]; do
        p=$((lo + (RANDOM * 32768 + RANDOM) % span))
        case " ${got[*]} " in *" $p "*) continue ;; esac
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        got+=("$p")
    done
    echo "${got[*]}"
}

# server_pids PID: PID and its children (nginx master + workers).
server_pids() {
    local pid=$1
    echo "$pid"
    pgrep -P "$pid" 2>/dev/null || true
}

# rss_kb PID: VmRSS summed over PID and its children, in KiB.
rss_kb() {
    local p sum=0 v
    for p in $(server_pids "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# cpu_ticks PID: "TOTAL KERNEL": utime+stime and stime of PID and its
# children (clock ticks).
cpu_ticks() {
    local p sum=0 sys=0 u s
    for p in $(server_pids "$1"); do
        read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}')
        sum=$((sum + ${u:-0} + ${s:-0}))
        sys=$((sys + ${s:-0}))
    done
    echo "$sum $sys"
}
CLK_TCK=$(getconf CLK_TCK)

# busy_ticks: ticks all cores spent busy so far (/proc/stat, not idle/iowait).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# field LINE KEY: the value of KEY=... in a loadgen result line.
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# ---------------------------------------------------------------- PKI
# make_pki DIR ec|rsa: root, client and server intermediates, client leaf
# (client.pem = leaf + client intermediate), server.bundle.crt (server +
# server intermediate), client-chain.crt (client intermediate + root).
make_pki() {
    local d=$1 kt=$2 n
    mkdir -p "$d"
    (
        set -e
        cd "$d"
        umask 077
        newkey() {
            if [ "$kt" = ec ]; then
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
            else
                openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"
            fi
        }
        cat >ext.cnf <<'EOF'
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
        serial() { echo "0x$(openssl rand -hex 8)"; }
        newkey root
        openssl req -new -x509 -key root.key -subj "/O=mtlsgate bench/CN=Bench Root CA" \
            -days 30 -extfile ext.cnf -extensions root -out root.crt -sha256 \
            -set_serial "$(serial)" 2>/dev/null ||
            openssl req -new -x509 -key root.key -subj "/O=mtlsgate bench/CN=Bench Root CA" \
                -days 30 -config ext.cnf -extensions root -out root.crt -sha256
        sign() { # NAME SUBJECT ISSUER EXT
            newkey "$1"
            openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
            openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$(serial)" \
                -days 30 -sha256 -extfile ext.cnf -extensions "$4" -out "$1.crt" 2>/dev/null
        }
        sign client-ca "/O=mtlsgate bench/CN=Bench Client CA" root inter
        sign server-ca "/O=mtlsgate bench/CN=Bench Server CA" root inter
        sign server "/O=mtlsgate bench/CN=localhost" server-ca server
        sign client "/O=mtlsgate bench/CN=bench-client" client-ca client
        cat client.crt client-ca.crt >client.pem
        cat server.crt server-ca.crt >server.bundle.crt
        cat client-ca.crt root.crt >client-chain.crt
        cat server-ca.crt root.crt >server-chain.crt
        openssl verify -CAfile root.crt -untrusted client-ca.crt -purpose sslclient client.crt >/dev/null
        openssl verify -CAfile root.crt -untrusted server-ca.crt -purpose sslserver server.crt >/dev/null
        rm -f ./*.csr
    ) >"$RUN_DIR/pki-$kt.log" 2>&1 || { cat "$RUN_DIR/pki-$kt.log" >&2; die "making the $kt PKI failed"; }
    n=$(openssl x509 -in "$d/client.crt" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
    echo "$n" >"$d/client-issuer.txt"
}

# ---------------------------------------------------------------- configs
# nginx_conf DIR PKI PORT UPPORT: nginx's config for the same job.
nginx_conf() {
    local d=$1 pki=$2 port=$3 up=$4 issuer
    issuer=$(cat "$pki/client-issuer.txt")
    mkdir -p "$d/tmp" "$d/logs"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $((IDLE_CONNS * 2 + 4096));
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events {
    worker_connections $((IDLE_CONNS + 4096));
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_timeout 600s;
    keepalive_requests 100000000;
    client_header_timeout 600s;
    client_max_body_size 0;

    # Debian's nginx 1.22 has no \$ssl_client_s_dn_cn: take the CN out of
    # the RFC 2253 subject.
    map \$ssl_client_s_dn \$bench_client_cn {
        default "";
        "~(^|,)CN=(?<cn>[^,]+)" \$cn;
    }

    upstream backend {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }

    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        ssl_certificate $pki/server.bundle.crt;
        ssl_certificate_key $pki/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_verify_client on;
        ssl_client_certificate $pki/client-chain.crt;
        ssl_verify_depth 2;
        ssl_session_tickets on;

        location / {
            # the issuer pinned to the client intermediate
            if (\$ssl_client_i_dn != "$issuer") {
                return 403;
            }
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Client-CN \$bench_client_cn;
            proxy_request_buffering off;
        }
    }
}
EOF
}

# mtlsgate_conf DIR PKI PORT UPPORT: mtlsgate's config for the same job.
mtlsgate_conf() {
    local d=$1 pki=$2 port=$3 up=$4
    mkdir -p "$d"
    cat >"$d/mtlsgate.yml" <<EOF
listen: ["127.0.0.1:$port"]
workers: 1
tls:
  certificate: $pki/server.bundle.crt
  key: $pki/server.key
  client_ca: $pki/client-chain.crt
  session_tickets: true
upstream:
  servers: ["127.0.0.1:$up"]
  keepalive: 64
identities:
  unknown: cn
timeouts:
  header: 600s
  keepalive: 600s
limits:
  max_connections: $((IDLE_CONNS + 4096))
log:
  access: off
EOF
}

declare -A FPID=() FPORT=()

# start_front FE KT CPU: starts FE (nginx|mtlsgate) with the KT PKI on a
# free port (FPID[FE], FPORT[FE]; log front-FE.log). A port taken meanwhile
# by something else gets another try; fails loudly if FE does not listen.
start_front() {
    local fe=$1 kt=$2 cpu=$3 d=$RUN_DIR/$1-$2 try port
    for try in 1 2 3; do
        port=$(free_ports 1 | tr -d ' ')
        rm -rf "$d"
        if [ "$fe" = nginx ]; then
            nginx_conf "$d" "$RUN_DIR/pki-$kt" "$port" "$UP_PORT"
            start "front-$fe" "$cpu" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
        else
            mtlsgate_conf "$d" "$RUN_DIR/pki-$kt" "$port" "$UP_PORT"
            start "front-$fe" "$cpu" "$MTLSGATE" -c "$d/mtlsgate.yml"
        fi
        FPID[$fe]=${PIDS[front-$fe]}
        FPORT[$fe]=$port
        # listening, and it is ours (not someone else's listener on the port)
        wait_port "$port" 15 && kill -0 "${FPID[$fe]}" 2>/dev/null && return 0
        if grep -q 'in use' "$RUN_DIR/front-$fe.log" "$d/logs/error.log" 2>/dev/null; then
            stop "front-$fe"
            continue
        fi
        break
    done
    tail -n 20 "$RUN_DIR/front-$fe.log" >&2
    [ "$fe" = nginx ] && tail -n 20 "$d/logs/error.log" >&2
    die "$fe did not listen on 127.0.0.1:$port"
}

stop_front() {
    stop "front-$1"
    cat "$RUN_DIR/front-$1.log" >>"$RUN_DIR/front-all.log" 2>/dev/null
}

# use_front FE KT: the next runs go to FE (FRONT_PID, FRONT_PORT, CUR_*).
use_front() {
    CUR_FE=$1 CUR_KT=$2 PKI=$RUN_DIR/pki-$2
    FRONT_PID=${FPID[$1]} FRONT_PORT=${FPORT[$1]}
    CUR_TAG="$CUR_PASS r$CUR_ROUND $CUR_FE $CUR_KT"
}

# ---------------------------------------------------------------- scenarios
HS_CONNS=${HS_CONNS:-8}          # connections in flight for the handshake scenarios
KA_CONNS=50
[ "$SMOKE" = 1 ] && KA_CONNS=4
POST_CONNS=4
LG_TIMEOUT=$(awk -v d="$DURATION" 'BEGIN { printf "%d", d * 3 + 60 }')

# rec PASS ROUND FE SCENARIO METRIC VALUE (to PENDING while a pair runs)
PENDING=""
rec() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"${PENDING:-$RESULTS}"; }

# lg CPU ARGS...: one loadgen run against FRONT_PORT with the current PKI;
# prints its result line (also logged in loadgen.log); returns its status.
lg() {
    local cpu=$1 out rc
    shift
    local args=(--host 127.0.0.1 --port "$FRONT_PORT" --cert "$PKI/client.pem"
                --key "$PKI/client.key")
    [ "$LG_VERIFY" = 1 ] && args+=(--ca "$PKI/server-chain.crt")
    args+=("$@")
    echo "# ${CUR_TAG}: mtls-loadgen ${args[*]}" >>"$RUN_DIR/loadgen.log"
    if [ "$cpu" = - ]; then
        out=$(timeout "$LG_TIMEOUT" "$LOADGEN" "${args[@]}" 2>>"$RUN_DIR/loadgen.log")
    else
        out=$(timeout "$LG_TIMEOUT" taskset -c "$cpu" "$LOADGEN" "${args[@]}" 2>>"$RUN_DIR/loadgen.log")
    fi
    rc=$?
    echo "$out" >>"$RUN_DIR/loadgen.log"
    [ $rc -eq 0 ] || echo "# exit status $rc" >>"$RUN_DIR/loadgen.log"
    echo "$out"
    return $rc
}

# perf_start NAME: in the profile pass (--profile, after the measured
# passes, so that perf's own cost never lands in the numbers), records
# mtlsgate during the run of NAME; sets PERF_PID.
PERF_PID=""
perf_start() {
    PERF_PID=""
    [ "$CUR_PASS" = profile ] || return 0
    command -v perf >/dev/null 2>&1 || { echo "bench: perf not installed" >&2; return 0; }
    perf record --call-graph dwarf,16384 -F 999 -p "$FRONT_PID" -o "$RUN_DIR/perf-$1.data" \
        >"$RUN_DIR/perf-$1.log" 2>&1 &
    PERF_PID=$!
    sleep 0.2
}
perf_stop() {
    local name=$1
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
    PERF_PID=""
    # self time per function, and time including callees (where it goes)
    perf report --stdio --no-children --sort dso,symbol -g none --percent-limit 0.3 \
        -i "$RUN_DIR/perf-$name.data" >"$RUN_DIR/perf-$name-flat.txt" 2>/dev/null
    perf report --stdio --children --sort symbol -g none --percent-limit 1 \
        -i "$RUN_DIR/perf-$name.data" >"$RUN_DIR/perf-$name-children.txt" 2>/dev/null
    echo "bench: profile of mtlsgate ($name): $RUN_DIR/perf-$name-{flat,children}.txt" >&2
}

# The load generator checks the server's chain (--ca) in the smoke, keep-alive
# and POST runs; in the handshake scenarios it does not, as that would only
# spend load-core CPU (about 0.2 ms per ECDSA handshake) on the client side.
LG_VERIFY=1

# Syscalls made by the server, counted with perf stat on the
# raw_syscalls:sys_enter tracepoint (root); unlike throughput, this count
# does not move when other work shares the machine. The tracepoint costs the
# traced process about 0.2 us per syscall (nginx makes more of them), so it
# is never on during a measured run: the count comes from a short run of its
# own after the measured one, in round 1 of each pass (count_syscalls).
# SYSCOUNT=0 when perf cannot count them here.
SYSCOUNT=0
if command -v perf >/dev/null 2>&1 &&
    perf stat -e raw_syscalls:sys_enter -x, -o /dev/null -- true >/dev/null 2>&1; then
    SYSCOUNT=1
fi
SC_PID=""
# sc_start / sc_stop N: count the server's syscalls around one run; sc_stop
# sets SC_RESULT to the count per request (N requests), or "".
sc_start() {
    SC_PID=""
    [ "$SYSCOUNT" = 1 ] || return 0
    perf stat -e raw_syscalls:sys_enter -x, -o "$RUN_DIR/syscalls.txt" \
        -p "$(server_pids "$FRONT_PID" | paste -sd, -)" >/dev/null 2>&1 &
    SC_PID=$!
    sleep 0.3
}
sc_stop() {
    SC_RESULT=""
    [ -n "$SC_PID" ] || return 0
    kill -INT "$SC_PID" 2>/dev/null
    wait "$SC_PID" 2>/dev/null
    SC_PID=""
    [ "${1:-0}" -gt 0 ] || return 0
    SC_RESULT=$(awk -F, -v n="$1" '/raw_syscalls/ && $1 ~ /^[0-9]+$/ { printf "%.2f", $1 / n }' \
        "$RUN_DIR/syscalls.txt")
}

# count_syscalls MODE-ARGS...: a 2-second loadgen run, not measured
# otherwise, with the server's syscalls counted; prints them per request.
count_syscalls() {
    local line n
    [ "$SYSCOUNT" = 1 ] || return 0
    sc_start
    line=$(lg "$LG_CPU" "$@" --duration 2)
    n=$(field "$line" total_requests)
    sc_stop "${n:-0}"
    echo "$SC_RESULT"
}

# one_load SCEN METRICS MODE-ARGS...: a timed loadgen run with the server's
# CPU measured; records rps p50 p99 errors (and the listed extra metrics).
one_load() {
    local scen=$1 extra=$2 line c0 c1 n rc m v
    shift 2
    local u0 u1 w0 w1 b0 b1 k0 k1 sc
    # One window [w0, w1] for every CPU reading, so that the shares add up.
    perf_start "$scen"
    w0=$(date +%s.%N)
    b0=$(busy_ticks)
    read -r c0 k0 < <(cpu_ticks "$FRONT_PID")
    read -r u0 _ < <(cpu_ticks "${PIDS[upstream]}")
    line=$(lg "$LG_CPU" "$@")
    rc=$?
    read -r c1 k1 < <(cpu_ticks "$FRONT_PID")
    read -r u1 _ < <(cpu_ticks "${PIDS[upstream]}")
    b1=$(busy_ticks)
    w1=$(date +%s.%N)
    n=$(field "$line" total_requests)
    perf_stop "$scen"
    if [ -z "$line" ] || [ -z "$n" ]; then
        echo "bench: $CUR_TAG $scen: no result (loadgen exit $rc)" >&2
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" errors 1
        return 1
    fi
    printf '  %-9s %-8s %-10s %s\n' "$CUR_FE" "$CUR_KT" "$scen" "$line" >&2
    for m in rps p50_us p99_us errors $extra; do
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" "$m" "$(field "$line" "$m")"
    done
    if [ "$n" -gt 0 ]; then
        v=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$n" \
            'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" cpu_us "$v"
        # The kernel's part of it, and what the load side (mtls-loadgen +
        # bench-upstream, user + kernel) spent per request meanwhile: a
        # front end cannot be measured faster than the load core allows.
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" cpu_sys_us \
            "$(awk -v a="$k0" -v b="$k1" -v t="$CLK_TCK" -v n="$n" \
                'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')"
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" load_cpu_us \
            "$(awk -v a="$u0" -v b="$u1" -v t="$CLK_TCK" -v c="$(field "$line" cpu_s)" -v n="$n" \
                'BEGIN { printf "%.1f", ((b - a) / t + c) * 1e6 / n }')"
    fi
    if [ "$CUR_ROUND" = 1 ] && [ "$SMOKE" = 0 ] && [ "$CUR_PASS" != profile ]; then
        case $scen in
        keepalive | post | hs-ec) # the scenarios whose count the tables show
            sc=$(count_syscalls "$@")
            [ -n "$sc" ] && rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" syscalls "$sc" ;;
        esac
    fi
    # How busy the server's core and the load core were (1.00 = one core):
    # a throughput ratio means something only while the server is the
    # saturated side.
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" srv_busy \
        "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
            'BEGIN { printf "%.2f", (b - a) / t / (w1 - w0) }')"
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" load_busy \
        "$(awk -v a="$u0" -v b="$u1" -v t="$CLK_TCK" -v c="$(field "$line" cpu_s)" -v w0="$w0" -v w1="$w1" \
            'BEGIN { printf "%.2f", ((b - a) / t + c) / (w1 - w0) }')"
    # Everything else the machine did meanwhile (other processes, kernel
    # threads): should stay near 0 for numbers worth keeping.
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" "$scen" other_busy \
        "$(awk -v b0="$b0" -v b1="$b1" -v s0="$c0" -v s1="$c1" -v u0="$u0" -v u1="$u1" \
               -v c="$(field "$line" cpu_s)" -v t="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
            'BEGIN { v = ((b1 - b0) - (s1 - s0) - (u1 - u0)) / t - c; if (v < 0) v = 0;
                     printf "%.2f", v / (w1 - w0) }')"
    [ $rc -eq 0 ] || echo "bench: $CUR_TAG $scen: loadgen exit $rc (errors above 1%?)" >&2
    return $rc
}

# idle_mem: scenario 5 on a freshly started server (warmed with a few
# requests): RSS with IDLE_CONNS held minus RSS before, per connection.
idle_mem() {
    local r0 r1 i up lgpid line v out err
    lg "$LG_CPU" --mode keepalive --conns 2 --requests 200 --duration 10 >/dev/null ||
        echo "bench: $CUR_TAG idle warm-up failed" >&2
    sleep 0.5
    r0=$(rss_kb "$FRONT_PID")
    echo "# ${CUR_TAG}: idle $IDLE_CONNS" >>"$RUN_DIR/loadgen.log"
    local args=(--host 127.0.0.1 --port "$FRONT_PORT" --cert "$PKI/client.pem"
                --key "$PKI/client.key" --mode idle
                --conns "$IDLE_CONNS" --concurrency 64 --duration 600 --hold 900)
    # Fresh files made before the start: the wait below must never see an
    # earlier run's "all N connections up".
    out=$RUN_DIR/idle-$CUR_PASS-$CUR_ROUND-$CUR_FE.out
    err=$RUN_DIR/idle-$CUR_PASS-$CUR_ROUND-$CUR_FE.err
    : >"$out"
    : >"$err"
    if [ "$LG_CPU" = - ]; then
        "$LOADGEN" "${args[@]}" >>"$out" 2>>"$err" &
    else
        taskset -c "$LG_CPU" "$LOADGEN" "${args[@]}" >>"$out" 2>>"$err" &
    fi
    lgpid=$!
    up=0
    for i in $(seq 1 6000); do
        if grep -q "all $IDLE_CONNS connections up" "$err"; then up=1; break; fi
        kill -0 "$lgpid" 2>/dev/null || break
        sleep 0.1
    done
    if [ $up = 1 ]; then
        sleep 1
        r1=$(rss_kb "$FRONT_PID")
    fi
    kill -USR1 "$lgpid" 2>/dev/null
    wait "$lgpid" 2>/dev/null
    cat "$err" "$out" >>"$RUN_DIR/loadgen.log"
    line=$(cat "$out")
    rm -f "$err" "$out"
    if [ $up = 1 ] && [ "$(field "$line" up)" != "$IDLE_CONNS" ]; then
        up=0                                # some were dropped while held
    fi
    if [ $up != 1 ]; then
        echo "bench: $CUR_TAG idle: the connections did not all come up: $line" >&2
        rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" idle errors 1
        return 1
    fi
    v=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f", (b - a) / n }')
    printf '  %-9s %-8s %-10s rss_before=%sKiB rss_held=%sKiB per_conn=%sKiB %s\n' \
        "$CUR_FE" "$CUR_KT" idle "$r0" "$r1" "$v" "$line" >&2
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" idle mem_kib "$v"
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" idle errors "$(field "$line" errors)"
    rec "$CUR_PASS" "$CUR_ROUND" "$CUR_FE" idle rps "$(field "$line" rps)"
}

has_scen() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# scen_load SCEN: one run of SCEN against the current front end.
scen_load() {
    case "$1" in
    hs-ec|hs-rsa)
        LG_VERIFY=0
        one_load "$1" "" --mode handshake --conns "$HS_CONNS" --duration "$DURATION"
        LG_VERIFY=1 ;;
    resume)
        LG_VERIFY=0
        one_load resume "resumed" --mode resume --tls13 --conns "$HS_CONNS" --duration "$DURATION"
        LG_VERIFY=1 ;;
    keepalive)
        one_load keepalive "" --mode keepalive --conns "$KA_CONNS" --duration "$DURATION" ;;
    post)
        one_load post "mbps" --mode post --size 1m --conns "$POST_CONNS" --duration "$DURATION" ;;
    esac
}

# pair_load SCEN KT FE...: SCEN against each FE back to back (both are up),
# so that the two numbers of a round see the same machine. When other
# processes used more than NOISE_MAX of a core during either run, the pair
# is measured again (at most NOISE_RETRIES times; then kept, and the
# utilisation table shows it).
NOISE_MAX=0.25
NOISE_RETRIES=1
pair_load() {
    local scen=$1 kt=$2 try worst fe
    shift 2
    for try in $(seq 0 "$NOISE_RETRIES"); do
        PENDING=$RUN_DIR/pending.tsv
        : >"$PENDING"
        for fe in "$@"; do
            use_front "$fe" "$kt"
            scen_load "$scen"
        done
        PENDING=""
        worst=$(awk -F'\t' '$5 == "other_busy" && $6 > m { m = $6 } END { print m + 0 }' \
            "$RUN_DIR/pending.tsv")
        if awk -v w="$worst" -v m="$NOISE_MAX" 'BEGIN { exit !(w <= m) }' ||
            [ "$try" -ge "$NOISE_RETRIES" ]; then
            cat "$RUN_DIR/pending.tsv" >>"$RESULTS"
            return 0
        fi
        echo "bench: $CUR_PASS r$CUR_ROUND $scen: other processes used $worst of a core; measuring the pair again" >&2
    done
}

# run_round PASS ROUND FE...: every selected scenario against the front
# ends, in the order given.
run_round() {
    CUR_PASS=$1 CUR_ROUND=$2
    shift 2
    local fe scen
    if [ "$SMOKE" = 1 ]; then
        for fe in "$@"; do
            start_front "$fe" ec "$SRV_CPU"
            use_front "$fe" ec
            one_load keepalive "total_requests" --mode keepalive --conns "$KA_CONNS" --duration "$DURATION"
            SMOKE_UP=$(upstream_stats)
            printf 'smoke %s %s %s\n' "$fe" \
                "$(grep "^$CUR_PASS	$CUR_ROUND	$fe	keepalive	" "$RESULTS" |
                   awk -F'\t' '{printf "%s=%s ", $5, $6}')" "$SMOKE_UP"
            stop_front "$fe"
        done
        return 0
    fi
    if has_scen hs-ec || has_scen resume || has_scen keepalive || has_scen post; then
        for fe in "$@"; do start_front "$fe" ec "$SRV_CPU"; done
        for scen in hs-ec resume keepalive post; do
            has_scen "$scen" && pair_load "$scen" ec "$@"
        done
        for fe in "$@"; do stop_front "$fe"; done
    fi
    if has_scen idle; then
        # memory: one server at a time, each freshly started
        for fe in "$@"; do
            start_front "$fe" ec "$SRV_CPU"
            use_front "$fe" ec
            idle_mem
            stop_front "$fe"
        done
    fi
    if has_scen hs-rsa; then
        for fe in "$@"; do start_front "$fe" rsa "$SRV_CPU"; done
        pair_load hs-rsa rsa "$@"
        for fe in "$@"; do stop_front "$fe"; done
    fi
}

# upstream_stats: the upstream's counts since the last call.
upstream_stats() {
    local before
    before=$(grep -c '^upstream:' "$RUN_DIR/upstream.log")
    kill -USR1 "${PIDS[upstream]}"
    for _ in $(seq 1 50); do
        [ "$(grep -c '^upstream:' "$RUN_DIR/upstream.log")" -gt "$before" ] && break
        sleep 0.05
    done
    grep '^upstream:' "$RUN_DIR/upstream.log" | tail -n 1 | sed 's/^upstream: /upstream_/; s/ / upstream_/g'
}

# ---------------------------------------------------------------- report
# report PASS: the markdown table of one pass, from results.tsv.
report() {
    awk -F'\t' -v pass="$1" -v fronts="${FRONTS[*]}" -v ka="$KA_CONNS" -v pc="$POST_CONNS" \
        -v noise="$NOISE_MAX" -v ncpu="$(nproc)" '
    function median(arr, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
        return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }
    function fmt(v, dec) { return dec == 0 ? sprintf("%.0f", v) : sprintf("%." dec "f", v) }
    function cell(s, m, fe, dec,   k, n, i, a, lo, hi) {
        k = s SUBSEP m SUBSEP fe
        n = cnt[k]
        if (n == 0) return "-"
        for (i = 1; i <= n; i++) a[i] = val[k, i]
        med[k] = median(a, n)
        lo = a[1]; hi = a[n]
        return fmt(med[k], dec) " (" fmt(lo, dec) "-" fmt(hi, dec) ")"
    }
    # a[1..n] = mtlsgate/nginx of each round that measured both; returns n
    function round_ratios(s, m, a,   r, n) {
        n = 0
        for (r = 1; r <= maxround; r++)
            if ((s, m, "nginx", r) in byround && (s, m, "mtlsgate", r) in byround &&
                byround[s, m, "nginx", r] > 0)
                a[++n] = byround[s, m, "mtlsgate", r] / byround[s, m, "nginx", r]
        return n
    }
    # median over the rounds of mtlsgate/nginx measured in the same round
    function paired(s, m,   n, a) {
        n = round_ratios(s, m, a)
        return n ? sprintf("%.2fx", median(a, n)) : "-"
    }
    # "k/n": of the n rounds with both front ends, those whose own ratio
    # meets the target; a verdict that some rounds contradict says so.
    function rounds_met(s, m, op, tgt,   i, n, k, a) {
        n = round_ratios(s, m, a); k = 0
        for (i = 1; i <= n; i++)
            if ((op == ">=" && a[i] >= tgt) || (op == "<=" && a[i] <= tgt)) k++
        return k "/" n
    }
    $1 == pass {
        k = $4 SUBSEP $5 SUBSEP $3
        if ($6 == "") next
        byround[$4, $5, $3, $2] = $6 + 0
        if ($2 + 0 > maxround) maxround = $2 + 0
        cnt[k]++; val[k, cnt[k]] = $6 + 0
        if ($5 == "errors") errs[$4 SUBSEP $3] += $6
    }
    END {
        nrow = split("hs-ec:rps:0:>=:1.15:(1) full handshake + 1 GET, ECDSA P-256 (conn/s)|" \
                     "hs-rsa:rps:0:>=:1.15:(1) full handshake + 1 GET, RSA-2048 (conn/s)|" \
                     "resume:rps:0:>=:1.3:(2) resumed TLS 1.3 handshake + 1 GET (conn/s)|" \
                     "resume:resumed:2:::(2) fraction of handshakes resumed|" \
                     "keepalive:rps:0:>=:1.5:(3) keep-alive GETs, " ka " conns (req/s)|" \
                     "keepalive:p50_us:0:::(3) keep-alive latency p50 (us)|" \
                     "keepalive:p99_us:0:<=:1.0:(3) keep-alive latency p99 (us)|" \
                     "post:mbps:1:>=:1.0:(4) 1 MiB POSTs, " pc " conns (MB/s)|" \
                     "idle:mem_kib:1:<=:0.6:(5) memory per idle mTLS conn (KiB)|" \
                     "keepalive:cpu_us:1:::(6) server CPU per keep-alive request (us)|" \
                     "keepalive:cpu_sys_us:1:::(6) of which in the kernel (us)|" \
                     "keepalive:load_cpu_us:1:::load side CPU per keep-alive request (us)|" \
                     "hs-ec:cpu_us:0:::(6) server CPU per ECDSA handshake (us)|" \
                     "hs-rsa:cpu_us:0:::(6) server CPU per RSA handshake (us)|" \
                     "resume:cpu_us:0:::(6) server CPU per resumed handshake (us)|" \
                     "keepalive:syscalls:1:::(6) server syscalls per keep-alive request|" \
                     "post:syscalls:1:::(6) server syscalls per 1 MiB POST|" \
                     "hs-ec:syscalls:1:::(6) server syscalls per ECDSA handshake", rows, "|")
        nf = split(fronts, fe, " ")
        printf "| scenario | nginx median (min-max) | mtlsgate median (min-max) | mtlsgate/nginx | paired | target | met | notes |\n"
        printf "|---|---|---|---|---|---|---|---|\n"
        for (r = 1; r <= nrow; r++) {
            split(rows[r], f, ":")
            s = f[1]; m = f[2]; dec = f[3]; op = f[4]; tgt = f[5]; label = f[6]
            cn = cell(s, m, "nginx", dec); cm = cell(s, m, "mtlsgate", dec)
            if (cn == "-" && cm == "-") continue
            kn = s SUBSEP m SUBSEP "nginx"; km = s SUBSEP m SUBSEP "mtlsgate"
            ratio = "-"; met = "-"
            if (cn != "-" && cm != "-" && med[kn] > 0) {
                rv = med[km] / med[kn]; ratio = sprintf("%.2fx", rv)
                if (op == ">=") met = (rv >= tgt) ? "yes" : "**no**"
                else if (op == "<=") met = (rv <= tgt) ? "yes" : "**no**"
                if (op != "") {
                    split(rounds_met(s, m, op, tgt), rm, "/")
                    if (rm[1] > 0 && rm[1] < rm[2])
                        met = met " (" rm[1] " of " rm[2] " rounds)"
                }
            }
            target = op == "" ? "-" : (op == ">=" ? ">= " : "<= ") tgt "x"
            # A throughput compares the servers only while the server core
            # is the busy side and nothing else ran.
            note = ""
            if (m == "rps" || m == "mbps" || m == "p50_us" || m == "p99_us") {
                for (i = 1; i <= nf; i++) {
                    if (cell(s, "load_busy", fe[i], 2) != "-" && med[s SUBSEP "load_busy" SUBSEP fe[i]] >= 0.9)
                        note = note (note ? "; " : "") "load core saturated with " fe[i]
                    if (cell(s, "other_busy", fe[i], 2) != "-" && med[s SUBSEP "other_busy" SUBSEP fe[i]] > noise)
                        note = note (note ? "; " : "") "other load during " fe[i] " runs"
                }
            }
            printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, cn, cm, ratio, paired(s, m), target, met, note == "" ? "" : note
        }
        note = ""
        for (k in errs) if (errs[k] > 0) { split(k, p, SUBSEP); note = note sprintf(" %s/%s: %d;", p[1], p[2], errs[k]) }
        if (note != "") printf "\nErrors reported by the load generator:%s\n", note
        # A throughput measures the server only while the load core has
        # room: one core spending L us per request (or connection) allows
        # at most 1e6/L of them per second, whatever the front end. Pinned
        # passes only: unpinned, the load side has no core of its own.
        hdr = 0
        nc = pass != "pinned" ? 0 : split("hs-ec:(1) ECDSA:1.15|hs-rsa:(1) RSA:1.15|resume:(2) resumed:1.3|keepalive:(3) keep-alive:1.5", crows, "|")
        for (r = 1; r <= nc; r++) {
            split(crows[r], f, ":")
            if (cell(f[1], "rps", "nginx", 0) == "-" || cell(f[1], "load_cpu_us", "mtlsgate", 1) == "-")
                continue
            l = med[f[1] SUBSEP "load_cpu_us" SUBSEP "mtlsgate"]
            nr = med[f[1] SUBSEP "rps" SUBSEP "nginx"]
            if (l <= 0 || nr <= 0) continue
            if (!hdr) {
                printf "\nCeiling the load core sets: mtls-loadgen + bench-upstream on their one core, CPU (user + kernel) per request or connection while driving mtlsgate (median); "
                printf "no front end can be measured faster than 1e6 / that. When the ceiling is below the target, the target cannot be shown on this machine:\n\n"
                printf "| scenario | load CPU with mtlsgate (us) | ceiling (/s) | ceiling / nginx | target | load CPU the target needs (us) |\n|---|---|---|---|---|---|\n"
                hdr = 1
            }
            printf "| %s | %.1f | %.0f | %.2fx | >= %sx | <= %.1f |\n", f[2], l, 1e6 / l, 1e6 / l / nr, f[3], 1e6 / (f[3] * nr)
        }
        # Unpinned, the server and the load side share all the cores: a
        # front end costing S (server) + L (load side) us of CPU per request
        # cannot go faster than ncpu * 1e6 / (S + L), and with both front
        # ends at that bound their ratio is the inverse ratio of the sums.
        hdr = 0
        nc = pass == "pinned" ? 0 : split("hs-ec:(1) ECDSA:1.15|hs-rsa:(1) RSA:1.15|resume:(2) resumed:1.3|keepalive:(3) keep-alive:1.5", crows, "|")
        for (r = 1; r <= nc; r++) {
            split(crows[r], f, ":")
            if (cell(f[1], "cpu_us", "nginx", 1) == "-" || cell(f[1], "load_cpu_us", "nginx", 1) == "-" ||
                cell(f[1], "cpu_us", "mtlsgate", 1) == "-" || cell(f[1], "load_cpu_us", "mtlsgate", 1) == "-")
                continue
            tn = med[f[1] SUBSEP "cpu_us" SUBSEP "nginx"] + med[f[1] SUBSEP "load_cpu_us" SUBSEP "nginx"]
            tm = med[f[1] SUBSEP "cpu_us" SUBSEP "mtlsgate"] + med[f[1] SUBSEP "load_cpu_us" SUBSEP "mtlsgate"]
            if (tn <= 0 || tm <= 0) continue
            if (!hdr) {
                printf "\nBound the %d cores set, unpinned: server + load side CPU per request or connection (medians); a front end cannot go faster than %d * 1e6 / that, ", ncpu, ncpu
                printf "and with both at their bound mtlsgate/nginx is nginx'"'"'s sum over mtlsgate'"'"'s. When that is below the target, the target cannot be shown unpinned on this machine:\n\n"
                printf "| scenario | nginx: server + load (us) | mtlsgate: server + load (us) | bound (/s) nginx | mtlsgate | mtlsgate/nginx at the bounds | target |\n|---|---|---|---|---|---|---|\n"
                hdr = 1
            }
            printf "| %s | %.1f | %.1f | %.0f | %.0f | %.2fx | >= %sx |\n", f[2], tn, tm, ncpu * 1e6 / tn, ncpu * 1e6 / tm, tn / tm, f[3]
        }
        # Utilisation: 1.00 = one core busy. A throughput ratio compares
        # the servers only while the server core is the saturated one.
        hdr = 0
        nu = split("hs-ec:(1) ECDSA|hs-rsa:(1) RSA|resume:(2) resumed|keepalive:(3) keep-alive|post:(4) POST", urows, "|")
        for (r = 1; r <= nu; r++) {
            split(urows[r], f, ":")
            a = cell(f[1], "srv_busy", "nginx", 2); b = cell(f[1], "load_busy", "nginx", 2)
            c = cell(f[1], "srv_busy", "mtlsgate", 2); d = cell(f[1], "load_busy", "mtlsgate", 2)
            e = cell(f[1], "other_busy", "nginx", 2); g = cell(f[1], "other_busy", "mtlsgate", 2)
            if (a == "-" && c == "-") continue
            if (!hdr) {
                printf "\nCore utilisation, median (min-max); 1.00 = one core busy. server = the front end'"'"'s processes, "
                printf "load = mtls-loadgen + bench-upstream, other = everything else on the machine meanwhile:\n\n"
                printf "| scenario | nginx: server | load | other | mtlsgate: server | load | other |\n|---|---|---|---|---|---|---|\n"
                hdr = 1
            }
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", f[2], a, b, e, c, d, g
        }
    }' "$RESULTS"
}

# ---------------------------------------------------------------- main
echo "bench: making the PKIs (openssl CLI)" >&2
make_pki "$RUN_DIR/pki-ec" ec
if has_scen hs-rsa; then make_pki "$RUN_DIR/pki-rsa" rsa; fi

PASSES=(pinned)
[ "$UNPINNED" = 1 ] && PASSES+=(unpinned)
{
    echo "# mtlsgate vs nginx, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
    echo "- $(openssl version), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), mtlsgate $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "- $ROUNDS round(s) per pass, front ends alternated (order swapped each round), ${DURATION} s per scenario; idle: $IDLE_CONNS connections"
    echo "- pinned: server on CPU 0, mtls-loadgen (1 thread) + bench-upstream on CPU 1; command: scripts/bench.sh ${ORIG_ARGV[*]}"
    echo "- network namespace: $NETNS_DESC"
    echo "- handshake scenarios: $HS_CONNS connections in flight, the load generator does not verify the server chain; keep-alive: $KA_CONNS connections; POST: $POST_CONNS connections"
} >"$RUN_DIR/bench-results.md"
overall=0
for pass in "${PASSES[@]}"; do
    if [ "$pass" = pinned ]; then SRV_CPU=0 LG_CPU=1; else SRV_CPU=- LG_CPU=-; fi
    UP_PORT=$(free_ports 1 | tr -d ' ')
    start upstream "$LG_CPU" "$UPSTREAM" --listen "127.0.0.1:$UP_PORT"
    wait_port "$UP_PORT" 10 || die "bench-upstream did not listen on $UP_PORT"
    for round in $(seq 1 "$ROUNDS"); do
        echo "bench: $pass round $round/$ROUNDS" >&2
        order=("${FRONTS[@]}")
        if [ ${#FRONTS[@]} -eq 2 ] && [ $((round % 2)) -eq 0 ]; then
            order=("${FRONTS[1]}" "${FRONTS[0]}")
        fi
        run_round "$pass" "$round" "${order[@]}" || overall=1
    done
    stop upstream
    {
        echo
        echo "## $pass"
        echo
        report "$pass"
    } | tee -a "$RUN_DIR/bench-results.md"
done
if [ "$PROFILE" = 1 ] && [ "$ONLY" != nginx ]; then
    # Not measured: one pinned mtlsgate run of each scenario under perf.
    echo "bench: profile pass (perf record on mtlsgate, not in the tables)" >&2
    SRV_CPU=0 LG_CPU=1
    UP_PORT=$(free_ports 1 | tr -d ' ')
    start upstream "$LG_CPU" "$UPSTREAM" --listen "127.0.0.1:$UP_PORT"
    wait_port "$UP_PORT" 10 || die "bench-upstream did not listen on $UP_PORT"
    SCENARIOS_SAVED=$SCENARIOS
    SCENARIOS=$(tr ',' '\n' <<<"$SCENARIOS" | grep -v '^idle$' | paste -sd, -)
    NOISE_RETRIES=0
    run_round profile 1 mtlsgate || true
    SCENARIOS=$SCENARIOS_SAVED
    stop upstream
    {
        echo
        echo "Profiles of mtlsgate (perf record --call-graph dwarf, pinned, one run per scenario):"
        for f in "$RUN_DIR"/perf-*-children.txt; do
            [ -e "$f" ] && echo "- $f (and ${f%-children.txt}-flat.txt)"
        done
    } | tee -a "$RUN_DIR/bench-results.md"
fi
echo >&2
echo "bench: results in $RUN_DIR/bench-results.md (raw: results.tsv, logs: *.log)" >&2

if [ "$SMOKE" = 1 ]; then
    # Each front end must have answered: requests done, no error.
    for fe in "${FRONTS[@]}"; do
        rps=$(awk -F'\t' -v fe="$fe" '$3 == fe && $4 == "keepalive" && $5 == "rps" {print $6}' "$RESULTS")
        errs=$(awk -F'\t' -v fe="$fe" '$3 == fe && $5 == "errors" {s += $6} END {print s + 0}' "$RESULTS")
        if [ -z "$rps" ] || ! awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || [ "$errs" != 0 ]; then
            echo "bench: smoke: $fe did not answer cleanly (rps=${rps:-none} errors=$errs)" >&2
            overall=1
        fi
    done
fi
exit $overall
