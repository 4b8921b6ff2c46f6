#!/usr/bin/env bash
# Reproduces the "Sensor: latency and throughput" figures of BENCHMARKS.md: builds the release
# `earshot` binary and examples/sensor_bench.rs, which starts `earshot sensor` as a child on
# captures written by `earshot synth` and measures it through the Manager API.
#
#   scripts/bench-sensor.sh                       # latency (jitter 0 and 30 ms) + throughput, ~3 min
#   scripts/bench-sensor.sh --part latency        # any sensor_bench option is passed through
#
# Needs ~2 GB free in TMP for the throughput capture (100 calls x 900 s); removed unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$CARGO_TARGET_DIR/release
DIR=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
echo "date:  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
echo "rustc: $(rustc --version)"
cargo build --release -p earshot --bin earshot --example sensor_bench
ulimit -n 4096 2>/dev/null || true   # 500 listener connections
"$BIN/examples/sensor_bench" --earshot "$BIN/earshot" --dir "$DIR" \
    --seconds 12 --warmup 3 --jitter 0,30 \
    --calls 100 --call-seconds 900 --window 4 --runs 2 --readers 100 --stalled 500 "$@"
