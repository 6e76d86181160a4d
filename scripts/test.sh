#!/usr/bin/env bash
# The one test command: installs what is missing, builds twice (release, and
# ASan+UBSan), and runs every test through ctest in both builds, then a short
# libFuzzer run of each fuzz target. Exit 0 only when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh build test

jobs=$(nproc)
echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)

echo "== ASan+UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMTLSGATE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs" --timeout 900 -LE slow)

if command -v clang >/dev/null 2>&1; then
    echo "== libFuzzer (30 s per target)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMTLSGATE_FUZZ=ON \
        -DMTLSGATE_TESTS=ON >/dev/null
    cmake --build build-fuzz -j"$jobs"
    for f in build-fuzz/bin/fuzz_*; do
        [ -x "$f" ] || continue
        name=${f##*/fuzz_}
        mkdir -p build-fuzz/corpus-"$name"
        "$f" -max_total_time=30 -rss_limit_mb=2048 -print_final_stats=0 \
            build-fuzz/corpus-"$name" tests/fuzz/corpus/"$name" 2>build-fuzz/fuzz-"$name".log \
            || { tail -40 build-fuzz/fuzz-"$name".log; echo "fuzz target $name failed"; exit 1; }
        echo "fuzz $name: $(grep -Eo 'Done [0-9]+ runs' build-fuzz/fuzz-"$name".log | tail -1)"
    done
fi
echo "== all tests passed"
