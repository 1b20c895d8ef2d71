#!/usr/bin/env bash
# Installs what is missing, builds shoal with its tests and runs the whole suite.
# The suite starts its own MariaDB server (no systemd needed) and stops it afterwards.
#   SHOAL_BUILD_DIR   build directory (default: build-test)
#   SHOAL_CTEST_ARGS  extra ctest arguments, e.g. "-L unit"
#   SHOAL_SANITIZE    0 skips the second pass of unit tests under ASan/UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test

build=${SHOAL_BUILD_DIR:-build-test}
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON
cmake --build "$build" -j "$jobs"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j "$jobs" ${SHOAL_CTEST_ARGS:-}

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer (leaks included).
# SHOAL_SANITIZE=0 skips this pass.
if [ "${SHOAL_SANITIZE:-1}" != 0 ]; then
  asan=${build}-asan
  cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON -DSHOAL_SANITIZE=ON
  cmake --build "$asan" -j "$jobs"
  ctest --test-dir "$asan" --output-on-failure -j "$jobs" -L unit
fi
