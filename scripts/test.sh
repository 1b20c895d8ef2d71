#!/usr/bin/env bash
# Installs what is missing, builds shoal with its tests and runs the whole suite.
# The suite starts its own MariaDB server (no systemd needed) and stops it afterwards.
#   SHOAL_BUILD_DIR   build directory (default: build-test)
#   SHOAL_CTEST_ARGS  extra ctest arguments, e.g. "-L unit"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test

build=${SHOAL_BUILD_DIR:-build-test}
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_BUILD_TESTS=ON -DSHOAL_WERROR=ON
cmake --build "$build" -j "$jobs"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -j "$jobs" ${SHOAL_CTEST_ARGS:-}
