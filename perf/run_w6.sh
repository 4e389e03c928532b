#!/usr/bin/env bash
# Builds gradflow's peer in release and times W6 against PyTorch (eager and compiled) and JAX.
#   PERF_PY   a python with torch and jax (default: python3)
# Args: [reps] [secs] [steps]; more options: perf/compare_w6.py --help
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release --example perf_peer
# Absolute: compare_w6.py starts the peers from perf/.
target="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
python3 "$here/compare_w6.py" --gradflow "$target/release/examples/perf_peer" --python "${PERF_PY:-python3}" \
  --reps "${1:-7}" --secs "${2:-1.0}" --steps "${3:-5}" --out "$here/w6_results.jsonl"
