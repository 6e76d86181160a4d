#!/usr/bin/env bash
# The container image, built and run for real with podman (issue 4):
#  - docker/Dockerfile builds (podman build --format docker, so the
#    HEALTHCHECK is kept) on a base image made by scripts/container-setup.sh;
#  - started with no config and an empty PKI volume, the entrypoint makes a
#    demo PKI and config and starts the demo db-service beside mtlsgate;
#  - an mTLS request with attestor1's certificate, taken from the PKI volume,
#    goes through the container and reaches db-service with the identity
#    header; a request without a client certificate does not;
#  - `podman healthcheck run` passes (and the check fails against a port
#    where nothing listens, so it is not a constant);
#  - the gateway process runs as a non-root user, and is mtlsgate itself
#    (the entrypoint exec'd it), so `podman stop -t 10` (SIGTERM) ends it
#    with exit code 0 before the timeout, not by SIGKILL.
# Everything it makes (container, its anonymous volume, images) is removed.
# Slow: a cold build takes a few minutes.
# ctest-labels: slow
source "$SRC_DIR/tests/lib/common.sh"

t_start=$SECONDS
phase() { echo "-- $* (t=$((SECONDS - t_start)) s)"; }

for b in mtlsgate certs-tool db-service free-port; do
    [ -x "$BIN_DIR/$b" ] || skip "$BIN_DIR/$b is not built (the image builds the same sources)"
done
command -v curl >/dev/null || skip "curl is missing"
if ! command -v podman >/dev/null; then
    [ "$(id -u)" -eq 0 ] || skip "podman is missing and installing it needs root"
    bash "$SRC_DIR/scripts/install-deps.sh" container >"$TEST_TMPDIR/install.log" 2>&1 ||
        { tail -n 20 "$TEST_TMPDIR/install.log" >&2; fail "installing the container package set failed"; }
    command -v podman >/dev/null || skip "podman is still missing after install-deps.sh container"
fi
# Rootless podman needs subuid ranges and its own storage; this test (like
# CI) uses root's, which container-setup.sh prepares.
[ "$(id -u)" -eq 0 ] || skip "needs root for podman's root storage and /etc/containers"

phase "container-setup"
bash "$SRC_DIR/scripts/container-setup.sh" >"$TEST_TMPDIR/setup.log" 2>&1 ||
    { cat "$TEST_TMPDIR/setup.log" >&2; fail "scripts/container-setup.sh failed"; }

run_id="$$-$RANDOM"
IMAGE="localhost/mtlsgate-test:$run_id"
BUILD_IMAGE="localhost/mtlsgate-test:$run_id-build"
CNAME="mtlsgate-test-$run_id"
cid=""
cleanup() {
    if [ -n "$cid" ]; then
        podman logs "$cid" >"$TEST_TMPDIR/container.log" 2>&1 || true
        podman rm -f -v "$cid" >/dev/null 2>&1 || true
    fi
    podman rmi -f "$IMAGE" "$BUILD_IMAGE" >/dev/null 2>&1 || true
}
trap 'cleanup; _cleanup_bg' EXIT

# A build context with only what the Dockerfile copies: the tree may hold
# large build directories.
ctx="$TEST_TMPDIR/context"
mkdir -p "$ctx"
tar -C "$SRC_DIR" -cf - CMakeLists.txt tls config certs-tool proxy tests docker | tar -C "$ctx" -xf - ||
    fail "could not copy the sources into the build context $ctx"

# The build stage is tagged too, so that removing both tags removes every
# layer this test made (an untagged build stage would stay behind).
phase "podman build (build stage)"
timeout 600 podman build --format docker --network host --target build -t "$BUILD_IMAGE" \
    -f "$ctx/docker/Dockerfile" "$ctx" >"$TEST_TMPDIR/build.log" 2>&1 ||
    { tail -n 40 "$TEST_TMPDIR/build.log" >&2; fail "podman build of the build stage failed"; }
phase "podman build (runtime image)"
timeout 300 podman build --format docker --network host -t "$IMAGE" \
    -f "$ctx/docker/Dockerfile" "$ctx" >>"$TEST_TMPDIR/build.log" 2>&1 ||
    { tail -n 40 "$TEST_TMPDIR/build.log" >&2; fail "podman build of the image failed"; }
pass "image built: $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"

hc=$(podman image inspect -f '{{json .HealthCheck}}' "$IMAGE")
expect_contains "$hc" "mtlsgate-healthcheck" "image HEALTHCHECK"
expect_eq "$(podman image inspect -f '{{.Config.User}}' "$IMAGE")" "mtlsgate" "image USER"
expect_eq "$(podman image inspect -f '{{.Config.StopSignal}}' "$IMAGE")" "SIGTERM" "image STOPSIGNAL"
vols=$(podman image inspect -f '{{json .Config.Volumes}}' "$IMAGE")
expect_contains "$vols" '"/etc/mtlsgate"' "config volume"
expect_contains "$vols" '"/var/lib/mtlsgate/pki"' "PKI volume"
# The runtime stage holds no compiler and no -dev package.
devs=$(podman run --rm --no-healthcheck --network host --entrypoint /bin/sh "$IMAGE" -c \
    "dpkg-query -W -f '\${Package}\n' | grep -E -- '-dev\$|^gcc(-[0-9]+)?\$|^cpp|^cmake\$|^make\$|^binutils' || true")
expect_eq "$devs" "" "build tools in the runtime image"

read -r p_tls p_admin p_up <<<"$(free_ports 3)"
pki="$TEST_TMPDIR/pki"
mkdir -p "$pki"
chown 10001:10001 "$pki"
chmod 0700 "$pki"

phase "podman run"
cid=$(podman run -d --name "$CNAME" --network host \
        -e MTLSGATE_LISTEN="127.0.0.1:$p_tls" \
        -e MTLSGATE_ADMIN_LISTEN="127.0.0.1:$p_admin" \
        -e MTLSGATE_DEMO_UPSTREAM=1 \
        -e MTLSGATE_DEMO_UPSTREAM_LISTEN="127.0.0.1:$p_up" \
        -v "$pki:/var/lib/mtlsgate/pki" \
        "$IMAGE" 2>"$TEST_TMPDIR/run.err") ||
    { cat "$TEST_TMPDIR/run.err" >&2; fail "podman run failed"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() { [ "$(podman inspect -f '{{.State.Running}}' "$cid" 2>/dev/null)" = true ]; }
dump_logs() { podman logs "$cid" 2>&1 | tail -n 40 >&2; }

up=0
for _ in $(seq 1 600); do
    running || { dump_logs; fail "the container exited at start: $(podman inspect -f '{{.State.ExitCode}}' "$cid")"; }
    if port_open "$p_tls" && port_open "$p_admin"; then up=1; break; fi
    sleep 0.1
done
[ $up -eq 1 ] || { dump_logs; fail "mtlsgate in the container did not listen on $p_tls and $p_admin within 60 s"; }
pass "container up, listening on 127.0.0.1:$p_tls (admin $p_admin)"

# The demo PKI was made in the mounted volume, owned by the image's user.
for f in root.crt server-chain.crt client-chain.crt servers/gateway.bundle.crt clients/attestor1.pem clients/attestor1.key; do
    [ -s "$pki/$f" ] || fail "demo PKI: $f missing in the PKI volume"
done
expect_eq "$(stat -c %u "$pki/clients/attestor1.key")" 10001 "owner of the demo PKI files"
expect_eq "$(stat -c %a "$pki/servers/gateway.key")" 600 "mode of the server key"

phase "mTLS request"
body=$(curl -sS --max-time 15 --cacert "$pki/server-chain.crt" \
            --cert "$pki/clients/attestor1.pem" --key "$pki/clients/attestor1.key" \
            -w '\n%{http_code}' "https://localhost:$p_tls/container-test?via=podman" 2>"$TEST_TMPDIR/curl.err") ||
    { cat "$TEST_TMPDIR/curl.err" >&2; dump_logs; fail "mTLS request through the container failed"; }
status=${body##*$'\n'}
body=${body%$'\n'*}
expect_eq "$status" 200 "status of the mTLS request"
# db-service answers with what it received: path and identity headers.
expect_contains "$body" '"path":"/container-test?via=podman"' "request reached db-service"
echo "$body" | grep -Eq '"x-client-identity": ?"svc-attestor-1"' ||
    fail "db-service did not see X-Client-Identity: svc-attestor-1: $body"
echo "$body" | grep -Eq '"x-client-cn": ?"attestor1"' ||
    fail "db-service did not see X-Client-CN: attestor1: $body"
pass "attestor1 reached db-service through the container as svc-attestor-1"

if curl -sS --max-time 15 --cacert "$pki/server-chain.crt" -o "$TEST_TMPDIR/nocert.out" \
        -w '%{http_code}' "https://localhost:$p_tls/container-test" >"$TEST_TMPDIR/nocert.code" 2>/dev/null &&
   [ "$(cat "$TEST_TMPDIR/nocert.code")" = 200 ]; then
    fail "a request without a client certificate got 200 through the container"
fi
pass "a request without a client certificate is refused"

phase "health check"
podman healthcheck run "$cid" >"$TEST_TMPDIR/health.out" 2>&1 ||
    { cat "$TEST_TMPDIR/health.out" >&2; dump_logs; fail "podman healthcheck run failed"; }
expect_not_contains "$(cat "$TEST_TMPDIR/health.out")" "unhealthy" "podman healthcheck run output"
# The same check pointed at db-service (404 or other answer, not /healthz of
# mtlsgate) and at a port where nothing listens must fail.
p_none=$(free_ports 1)
for env in "MTLSGATE_ADMIN_LISTEN=127.0.0.1:${p_none// /}" "MTLSGATE_HEALTHCHECK_URL=http://127.0.0.1:$p_tls/healthz"; do
    if podman exec -e "$env" "$cid" /usr/local/bin/mtlsgate-healthcheck >/dev/null 2>&1; then
        fail "the health check passes with $env, which is not mtlsgate's admin listener"
    fi
done
pass "health check passes on /healthz, and fails elsewhere"

phase "user and PID 1"
pid=$(podman inspect -f '{{.State.Pid}}' "$cid")
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no host pid for the container"
expect_eq "$(cat "/proc/$pid/comm")" "mtlsgate" "the container's main process (the entrypoint must exec mtlsgate)"
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
expect_eq "$uids" "10001 10001 10001 10001" "real, effective, saved and fs uid of mtlsgate"
expect_eq "$(podman exec "$cid" id -un)" "mtlsgate" "user of a process started in the container"
pass "mtlsgate is PID 1 of the container and runs as uid 10001 (mtlsgate)"

phase "podman stop"
t0=$SECONDS
podman stop -t 10 "$cid" >"$TEST_TMPDIR/stop.out" 2>&1 || { cat "$TEST_TMPDIR/stop.out" >&2; fail "podman stop failed"; }
took=$((SECONDS - t0))
code=$(podman inspect -f '{{.State.ExitCode}}' "$cid")
[ "$code" = 0 ] || { dump_logs; fail "exit code after SIGTERM: $code (137 means it was killed after the 10 s timeout)"; }
[ "$took" -lt 10 ] || fail "podman stop took ${took}s: SIGTERM did not end mtlsgate before the timeout"
expect_not_contains "$(cat "$TEST_TMPDIR/stop.out")" "SIGKILL" "podman stop output"
pass "SIGTERM ended the container with exit code 0 in ${took}s"

phase "done"
