#!/usr/bin/env bash
# Installs what is missing, builds shoal with its tests and runs the whole suite.
# The suite starts its own MariaDB server (no systemd needed) and stops it afterwards.
#   SHOAL_BUILD_DIR   build directory (default: build-test)
#   SHOAL_CTEST_ARGS  extra ctest arguments, e.g. "-L unit"
#   SHOAL_SANITIZE    0 skips the second pass of unit tests under ASan/UBSan
#   SHOAL_TSAN        0 skips the pass of unit tests under ThreadSanitizer
#   SHOAL_FUZZ        0 skips the fuzz targets (clang); SHOAL_FUZZ_SECONDS per target (20)
set -euo pipefail
cd "$(dirname "$0")/.."
# Each pass says when it starts, so a slow pass shows in the log.
phase() { echo "== $1 ($((SECONDS / 60)) min $((SECONDS % 60)) s into the suite)"; }
phase "installing what is missing"
bash scripts/install-deps.sh test

# The RPM test builds the tree a second time with the main pass's flags: through ccache that
# build reuses the main one's objects. Paths are hashed relative to the checkout, so the
# cache also serves a later run from another clone.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
fi

build=${SHOAL_BUILD_DIR:-build-test}
jobs=$(nproc)
phase "build and the whole ctest suite"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON
cmake --build "$build" -j "$jobs"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j "$jobs" ${SHOAL_CTEST_ARGS:-}

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer (leaks included).
# SHOAL_SANITIZE=0 skips this pass.
if [ "${SHOAL_SANITIZE:-1}" != 0 ]; then
  phase "unit tests under ASan/UBSan"
  asan=${build}-asan
  cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON -DSHOAL_SANITIZE=ON
  cmake --build "$asan" -j "$jobs" --target unit_tests
  ctest --test-dir "$asan" --output-on-failure -j "$jobs" -L unit
fi

# The unit tests under ThreadSanitizer; tests/tsan.supp names the third-party reports it
# ignores, and why. SHOAL_TSAN=0 skips this pass.
if [ "${SHOAL_TSAN:-1}" != 0 ]; then
  phase "unit tests under TSan"
  tsan=${build}-tsan
  cmake -S . -B "$tsan" -DCMAKE_BUILD_TYPE=Debug -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON -DSHOAL_SANITIZE=thread
  cmake --build "$tsan" -j "$jobs" --target unit_tests
  TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    ctest --test-dir "$tsan" --output-on-failure -j "$jobs" -L unit
fi

# The fuzz targets (tests/fuzz), built by clang with libFuzzer, ASan and UBSan, each run for
# SHOAL_FUZZ_SECONDS on a copy of its seed corpus; any finding fails the suite. SHOAL_FUZZ=0
# skips them.
if [ "${SHOAL_FUZZ:-1}" != 0 ]; then
  phase "fuzz targets"
  fuzz=${build}-fuzz
  cmake -S . -B "$fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSHOAL_BUILD_TESTS=OFF -DSHOAL_WERROR=ON -DSHOAL_FUZZ=ON
  cmake --build "$fuzz" -j "$jobs" --target fuzz_targets
  bash tests/fuzz/run_fuzzers.sh "$fuzz" "${SHOAL_FUZZ_SECONDS:-20}"
fi
phase "done"
