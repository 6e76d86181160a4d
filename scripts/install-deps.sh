#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need.
# Usage: scripts/install-deps.sh [build|test|bench|container]...   (default: build)
# Idempotent: packages already present are not fetched again.
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(build)

pkgs=(build-essential cmake pkg-config openssl ca-certificates curl
      libssl-dev libevent-dev libyaml-dev libpq-dev libcmocka-dev)
for w in "${want[@]}"; do
    case "$w" in
    build) ;;
    test) pkgs+=(jq python3 iproute2 nginx-light postgresql postgresql-client
                 libpostgresql-jdbc-java default-jdk-headless clang
                 libclang-rt-14-dev prometheus procps) ;;
    bench) pkgs+=(nginx-light apache2-utils wrk procps util-linux linux-perf valgrind iproute2) ;;
    container) pkgs+=(podman runc debootstrap) ;;
    *) echo "install-deps: unknown set '$w' (build, test, bench, container)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
# Packages such as nginx and postgresql start a system service on install; the
# tests start their own instances on loopback, so keep the system ones down.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    added_policy=1
fi
trap '[ $added_policy -eq 1 ] && $sudo rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
