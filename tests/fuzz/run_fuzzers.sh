#!/usr/bin/env bash
# Runs every fuzz target of a SHOAL_FUZZ build for a bounded time, each on a copy of its seed
# corpus (corpus/<target>, never written to) with its dictionary when it has one, as many at
# once as SHOAL_FUZZ_JOBS (default: the number of cores). Exits non-zero when any target
# finds a problem; the input that found it is kept in the artifact folder
# (SHOAL_FUZZ_ARTIFACTS, default BUILD_DIR/fuzz-artifacts).
#   run_fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
build=$(realpath "${1:?usage: run_fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET] [TARGET...]}")
seconds=${2:-20}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(api_body join_token panel_definition queue_messages config ipvs_netlink proxy_protocol)
fi
artifacts=$(realpath -m "${SHOAL_FUZZ_ARTIFACTS:-$build/fuzz-artifacts}")
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One target; prints one line, and the end of libFuzzer's report when it found something.
run_one() {
  local target=$1 binary=$build/tests/fuzz/fuzz_$1 corpus=$work/$1
  [ -x "$binary" ] || { echo "fuzz: $binary is not built" >&2; return 2; }
  mkdir -p "$corpus"
  cp "$here/corpus/$target"/* "$corpus/"
  local args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
              -artifact_prefix="$artifacts/$target-")
  [ -f "$here/$target.dict" ] && args+=(-dict="$here/$target.dict")
  if (cd "$work" && "$binary" "${args[@]}" "$corpus" >"$work/$target.log" 2>&1); then
    echo "fuzz: $target: no finding in ${seconds}s ($(sed -n 's/^stat::number_of_executed_units: //p' "$work/$target.log") inputs)"
  else
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz: $target FOUND A PROBLEM; the input is in $artifacts (replay: $binary FILE)" >&2
    return 1
  fi
}

export -f run_one
export build seconds here work artifacts
printf '%s\n' "${targets[@]}" | xargs -P "${SHOAL_FUZZ_JOBS:-$(nproc)}" -I{} bash -c 'run_one "$1"' _ {}
