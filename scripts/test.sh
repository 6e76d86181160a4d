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
    # Everything compiled with clang, coverage-instrumented, ASan+UBSan; -O1 so
    # the fuzzers run at a useful speed; only the fuzz_* binaries are built.
    echo "== libFuzzer (30 s per target)"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 \
        -DMTLSGATE_FUZZ=ON -DMTLSGATE_TESTS=ON >/dev/null
    cmake --build build-fuzz -j"$jobs" --target fuzzers
    mkdir -p build-fuzz/artifacts
    for f in build-fuzz/bin/fuzz_*; do
        [ -x "$f" ] || continue
        name=${f##*/fuzz_}
        # New inputs go to the scratch corpus (first directory), never into
        # the committed seeds; crash reproducers go to build-fuzz/artifacts.
        dirs=(build-fuzz/corpus-"$name")
        mkdir -p "${dirs[0]}"
        [ -d tests/fuzz/corpus/"$name" ] && dirs+=(tests/fuzz/corpus/"$name")
        log=build-fuzz/fuzz-"$name".log
        if ! "$f" -max_total_time=30 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix=build-fuzz/artifacts/"$name"- "${dirs[@]}" >"$log" 2>&1; then
            tail -40 "$log"
            echo "fuzz target $name failed; reproducer: build-fuzz/artifacts/$name-*" \
                 "(replay: $f <file>)"
            exit 1
        fi
        echo "fuzz $name: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)s"
    done
fi
echo "== all tests passed"
