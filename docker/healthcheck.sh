#!/bin/bash
# mtlsgate-healthcheck: the image's HEALTHCHECK. Exit 0 when the admin
# listener answers GET /healthz with a 2xx status, 1 otherwise (what Docker and
# podman expect).
#
# The URL is MTLSGATE_HEALTHCHECK_URL when set (use it when a mounted config
# puts the admin listener elsewhere), else http://HOST:PORT/healthz from
# MTLSGATE_ADMIN_LISTEN (default 127.0.0.1:9090); a wildcard host (0.0.0.0,
# [::] or none) is asked on the matching loopback address.
set -u

url=${MTLSGATE_HEALTHCHECK_URL:-}
if [ -z "$url" ]; then
    addr=${MTLSGATE_ADMIN_LISTEN:-127.0.0.1:9090}
    port=${addr##*:}
    host=${addr%:*}
    case "$host" in
    ""|0.0.0.0|"*") host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
    esac
    if [ -z "$port" ] || [ "$port" = "$addr" ]; then
        echo "mtlsgate-healthcheck: MTLSGATE_ADMIN_LISTEN='$addr' is not HOST:PORT" >&2
        exit 1
    fi
    url="http://$host:$port/healthz"
fi

curl -fsS --max-time 4 -o /dev/null "$url" || exit 1
