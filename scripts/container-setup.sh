#!/usr/bin/env bash
# Makes this machine able to build and run the mtlsgate image with podman
# (see ../shared/CONTAINERS.md: there is no Docker engine and no registry).
#
#  1. /etc/containers/containers.conf gets the two settings this kind of VM
#     needs: [engine] runtime = "runc" (crun fails with "cgroups in hybrid
#     mode not supported") and [containers] default_ulimits within the hard
#     limits of this machine (podman's defaults fail with "setrlimit ...:
#     Operation not permitted"). Other settings in the file are kept.
#  2. The base image docker.io/library/debian:bookworm-slim is made locally
#     with debootstrap from the Debian mirror this machine uses, slimmed as the
#     official slim image is, and imported under that exact tag so that
#     `FROM debian:bookworm-slim` never goes to a registry. The root file
#     system tarball is cached in $MTLSGATE_CONTAINER_CACHE
#     (default /var/cache/mtlsgate) and rebuilt when missing.
#
# Usage: scripts/container-setup.sh [--rebuild-base]
# Idempotent: a second run changes nothing and takes well under a second.
# Needs root (it writes /etc and podman's root storage); installs podman,
# runc and debootstrap through scripts/install-deps.sh when they are missing.
set -euo pipefail

BASE_TAG=docker.io/library/debian:bookworm-slim
CONF=/etc/containers/containers.conf
CACHE_DIR=${MTLSGATE_CONTAINER_CACHE:-/var/cache/mtlsgate}
TARBALL=$CACHE_DIR/debian-bookworm-slim-rootfs.tar
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rebuild=0
for a in "$@"; do
    case "$a" in
    --rebuild-base) rebuild=1 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container-setup: unknown argument '$a' (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "container-setup: $*" >&2; }
die() { echo "container-setup: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it writes $CONF and podman's root storage)"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    log "podman, runc or debootstrap missing: installing the 'container' package set"
    bash "$here/install-deps.sh" container
fi

# Two setups at once (parallel tests) would race on the config file and the
# import; one lock serialises them, bounded so a stuck holder is reported.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.setup.lock"
flock -w 900 9 || die "timed out after 900 s waiting for $CACHE_DIR/.setup.lock"

# ---- 1. containers.conf ---------------------------------------------------
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
runtime_line='runtime = "runc"'
ulimits_line="default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"

# Rewrites CONF with our two keys in their sections: any earlier value of
# those keys (one line, or a multi-line array) is dropped, every other line is
# kept, and a missing section is appended.
write_conf() {
    local tmp
    mkdir -p "$(dirname "$CONF")"
    tmp=$(mktemp "$CONF.XXXXXX")
    touch "$CONF"
    awk -v rt="$runtime_line" -v ul="$ulimits_line" '
        function sect(line) { s = line; sub(/^[ \t]*\[/, "", s); sub(/\][ \t]*(#.*)?$/, "", s); return s }
        /^[ \t]*\[[^\[]/ {
            cur = sect($0); print
            if (cur == "engine")     { print rt; seen_e = 1 }
            if (cur == "containers") { print ul; seen_c = 1 }
            next
        }
        skip { if ($0 ~ /\]/) skip = 0; next }
        cur == "engine" && /^[ \t]*runtime[ \t]*=/ { next }
        cur == "containers" && /^[ \t]*default_ulimits[ \t]*=/ {
            if ($0 !~ /\]/) skip = 1
            next
        }
        { print }
        END {
            if (!seen_c) { print ""; print "[containers]"; print ul }
            if (!seen_e) { print ""; print "[engine]"; print rt }
        }' "$CONF" >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$CONF"
}

conf_ok() {
    [ -f "$CONF" ] || return 1
    awk -v rt="$runtime_line" -v ul="$ulimits_line" '
        /^[ \t]*\[[^\[]/ { s = $0; sub(/^[ \t]*\[/, "", s); sub(/\][ \t]*(#.*)?$/, "", s); cur = s; next }
        cur == "engine" && $0 == rt { e = 1 }
        cur == "containers" && $0 == ul { c = 1 }
        END { exit !(e && c) }' "$CONF"
}

if conf_ok; then
    log "$CONF already has runtime=runc and default_ulimits nofile=$nofile nproc=$nproc"
else
    write_conf
    conf_ok || die "could not write the two settings into $CONF"
    log "wrote runtime=runc and default_ulimits (nofile=$nofile, nproc=$nproc) to $CONF"
fi

# ---- 2. base image ---------------------------------------------------------
# The mirror this machine installs from: first URIs: of the deb822 file that
# lists bookworm, else the first bookworm deb line of sources.list.
mirror() {
    local m="" f=/etc/apt/sources.list.d/debian.sources
    if [ -r "$f" ]; then
        m=$(awk 'BEGIN { RS = ""; FS = "\n" }
                 /Suites:[^\n]*bookworm([ \t\n]|$)/ {
                     for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); print a[2]; exit }
                 }' "$f")
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

ROOTFS=""
# Unmounts whatever a failed debootstrap left mounted under ROOTFS.
umount_rootfs() {
    local m
    [ -n "$ROOTFS" ] || return 0
    awk -v r="$ROOTFS/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

make_tarball() {
    local root mir t0
    mir=$(mirror)
    root=$(mktemp -d /var/tmp/mtlsgate-rootfs.XXXXXX)
    ROOTFS=$root
    # The root file system goes on any exit; --one-file-system so that a /proc
    # or /sys a failed debootstrap left mounted in it is never descended into.
    trap 'umount_rootfs; rm -rf --one-file-system "${ROOTFS:-}" "${ROOTFS:-}.log"' EXIT
    t0=$SECONDS
    log "debootstrap --variant=minbase bookworm from $mir (about a minute)"
    if ! debootstrap --variant=minbase bookworm "$root" "$mir" >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        rm -f "$root.log"
        die "debootstrap from $mir failed (log above)"
    fi
    rm -f "$root.log"
    # Slim it as the official image is: no docs, man pages, locales or apt
    # lists, and dpkg told to keep it that way for packages installed later.
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# As debian:bookworm-slim: leave documentation out of the image.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
    # Image builds use the same mirrors as this machine (bookworm, -updates,
    # -security), as the official image lists them.
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
        rm -f "$root/etc/apt/sources.list"
    fi
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
           "$root"/usr/share/groff/* "$root"/usr/share/lintian/* \
           "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
           "$root"/var/cache/debconf/*-old "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
    # An image has no machine id of its own; the runtime gives each container one.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
    mv -f "$TARBALL.tmp" "$TARBALL"
    rm -rf --one-file-system "$root"
    ROOTFS=""
    log "cached $(du -h "$TARBALL" | cut -f1) root file system in $TARBALL ($((SECONDS - t0)) s)"
}

if [ "$rebuild" -eq 1 ]; then
    rm -f "$TARBALL"
    podman rmi -f "$BASE_TAG" >/dev/null 2>&1 || true
fi

if podman image exists "$BASE_TAG"; then
    log "$BASE_TAG already present"
else
    [ -s "$TARBALL" ] || make_tarball
    podman import --quiet --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$TARBALL" "$BASE_TAG" >/dev/null ||
        die "podman import of $TARBALL as $BASE_TAG failed"
    log "imported $BASE_TAG from $TARBALL"
fi
