#!/usr/bin/env bash
# Reproduces "Sensor at 100 to 100,000 calls" in BENCHMARKS.md: for each number of concurrent
# G.711 calls it makes a capture with `earshot synth` (about 4 M RTP packets whatever the
# number of calls: long calls for few, RTP thinned by --loss for many) and runs
# scripts/bench_scale.py on it, which prints one row of the table (see its header for what
# each column is and how it is measured).
#
#   scripts/bench-scale.sh                         # 100 1000 10000 50000 100000 calls
#   scripts/bench-scale.sh 10000                   # some of them
#
# Needs python3, capinfos (wireshark-common), ~1 GB free in TMP per capture (removed unless
# KEEP=1). About 5 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$CARGO_TARGET_DIR/release/earshot
DIR=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
sizes=${*:-100 1000 10000 50000 100000}
echo "date:  $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
echo "cpu:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -p earshot --bin earshot
echo "| calls | frames | rate (zero internal drops) | internal drops | sensor CPU per frame | peak RSS | listcalls text, whole table | listcalls json, whole table | 100-call page (first / last) | calls: snapshot of all | calls: new-event latency |"
echo "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
for n in $sizes; do
    # seconds and loss so that n x 100 packets/s x seconds x (1 - loss) is about 4 M.
    case $n in
        100) seconds=400; loss=0 ;;
        1000) seconds=40; loss=0 ;;
        10000) seconds=20; loss=80 ;;
        50000) seconds=20; loss=96 ;;
        100000) seconds=20; loss=98 ;;
        *) seconds=20; loss=$(( 100 - 200000 / n )); [ "$loss" -ge 0 ] || loss=0 ;;
    esac
    pcap=$DIR/calls-$n.pcap
    "$BIN" synth --calls "$n" --seconds "$seconds" --codec pcma --loss "$loss" --out "$pcap" >/dev/null
    python3 scripts/bench_scale.py "$BIN" "$pcap" "$n"
    [ "${KEEP:-0}" = 1 ] || rm -f "$pcap"
done
