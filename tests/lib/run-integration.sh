#!/usr/bin/env bash
# Runs one integration script in a fresh temporary directory that is removed
# afterwards (kept when KEEP_TMP=1, for debugging). Usage: run-integration.sh SCRIPT
set -u
script=$1
TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/mtlsgate-it.XXXXXX")
export TEST_TMPDIR
bash "$script"
rc=$?
if [ "${KEEP_TMP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "${KEEP_TMP_ON_FAIL:-0}" = 1 ]; }; then
    echo "run-integration: kept $TEST_TMPDIR" >&2
else
    rm -rf "$TEST_TMPDIR"
fi
exit $rc
