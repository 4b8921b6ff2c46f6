#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md:
#   1. `earshot analyze` throughput on a synth capture of 1,000 concurrent calls x 60 s, against
#      a bare read of the same file (the ceiling) and `tshark -q -z rtp,streams`;
#   2. engine heap per active call (examples/call_memory.rs) at 1,000 and 10,000 calls.
# Each timing is run RUNS times (default 2) and the best is kept, because the machine may be
# shared. The capture is written to TMP (default: a fresh temporary directory; the files are
# removed at the end unless KEEP=1) and is read from the page cache, so disk speed is not measured.
#
#   scripts/bench-analyze.sh                 # everything, ~3 minutes (tshark dominates)
#   RUNS=3 TSHARK=0 scripts/bench-analyze.sh # no tshark
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-2}
TSHARK=${TSHARK:-1}
if [ -n "${TMP:-}" ]; then
    mkdir -p "$TMP"
    OWN_TMP=0
else
    TMP=$(mktemp -d)
    OWN_TMP=1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$CARGO_TARGET_DIR/release
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time, package 'time')" >&2; exit 1; }
if [ "$TSHARK" = 1 ] && ! command -v tshark >/dev/null; then
    echo "tshark not found: skipping it (install tshark, or set TSHARK=0 to silence this)" >&2
    TSHARK=0
fi
# Removes only what this script made: a TMP given by the caller keeps everything else in it.
cleanup() {
    [ "${KEEP:-0}" = 1 ] && return
    if [ "$OWN_TMP" = 1 ]; then
        rm -rf "$TMP"
    else
        rm -f "$TMP/bench.pcap" "$TMP/calls-1k.pcap" "$TMP/calls-10k.pcap" "$TMP/time"
    fi
}
trap cleanup EXIT

echo "== machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
echo "rustc:   $(rustc --version)"
[ "$TSHARK" = 1 ] && echo "tshark:  $(tshark --version 2>/dev/null | head -1)"

echo "== build"
cargo build --release -p earshot --bin earshot --example bare_read --example engine_only --example call_memory

echo "== synth"
"$BIN/earshot" synth --calls 1000 --seconds 60 --codec pcma --out "$TMP/bench.pcap"
ls -l "$TMP/bench.pcap"
# Warm the page cache so the first timed run is not a disk benchmark.
cat "$TMP/bench.pcap" > /dev/null

# timed NAME CMD...: runs CMD (stdout discarded) RUNS times; sets BEST_S (wall seconds) and
# BEST_RSS (max RSS, KB) and BEST_CPU (user + system seconds) of the fastest run.
timed() {
    local name=$1; shift
    BEST_S=""; BEST_RSS=""; BEST_CPU=""
    for run in $(seq "$RUNS"); do
        local t0 t1 s rss
        t0=$(date +%s%N)
        /usr/bin/time -f "%M %U %S" -o "$TMP/time" "$@" > /dev/null
        t1=$(date +%s%N)
        s=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
        read -r rss user sys < "$TMP/time"
        LAST_CPU=$(echo "$user + $sys" | bc)
        printf "  %-8s run %d: %7.3f s wall, %6.2f s user, %5.2f s sys, max RSS %d KB\n" \
            "$name" "$run" "$s" "$user" "$sys" "$rss"
        if [ -z "$BEST_S" ] || [ "$(echo "$s < $BEST_S" | bc)" = 1 ]; then
            BEST_S=$s; BEST_RSS=$rss; BEST_CPU=$LAST_CPU
        fi
    done
}

FRAMES=$("$BIN/examples/bare_read" "$TMP/bench.pcap" | awk '{print $2}')
echo "== timing ($FRAMES frames, best of $RUNS)"
timed bare "$BIN/examples/bare_read" "$TMP/bench.pcap"
BARE_S=$BEST_S; BARE_RSS=$BEST_RSS
timed analyze "$BIN/earshot" analyze "$TMP/bench.pcap"
AN_S=$BEST_S; AN_RSS=$BEST_RSS; AN_CPU=$BEST_CPU
if [ "$TSHARK" = 1 ]; then
    timed tshark tshark -q -z rtp,streams -r "$TMP/bench.pcap"
    TS_S=$BEST_S; TS_RSS=$BEST_RSS
fi

pps() { echo "$FRAMES / $1" | bc; }
echo "== results"
printf "%-34s %9s %14s %12s\n" reader seconds packets/s "max RSS KB"
printf "%-34s %9s %14s %12s\n" "bare read (examples/bare_read)" "$BARE_S" "$(pps "$BARE_S")" "$BARE_RSS"
printf "%-34s %9s %14s %12s\n" "earshot analyze" "$AN_S" "$(pps "$AN_S")" "$AN_RSS"
[ "$TSHARK" = 1 ] && printf "%-34s %9s %14s %12s\n" "tshark -q -z rtp,streams" "$TS_S" "$(pps "$TS_S")" "$TS_RSS"
echo "analyze / bare-read ceiling: $(echo "scale=1; 100 * $BARE_S / $AN_S" | bc)% (wall time)"
# analyze reads the file on a second thread; its CPU time is both threads' together.
echo "analyze CPU (both threads):  $AN_CPU s user+sys in its best run"
# The one-core figure: the engine alone over frames already in memory (no file reading).
echo "engine alone on one core:    $("$BIN/examples/engine_only" "$TMP/bench.pcap" | awk '{print $8}') packets/s (examples/engine_only)"
[ "$TSHARK" = 1 ] && echo "analyze speed-up over tshark:  $(echo "scale=1; $TS_S / $AN_S" | bc)x"

echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, after the timings)"

echo "== memory per active call"
"$BIN/earshot" synth --calls 1000 --seconds 2 --codec pcma --out "$TMP/calls-1k.pcap"
"$BIN/earshot" synth --calls 10000 --seconds 2 --codec pcma --out "$TMP/calls-10k.pcap"
"$BIN/examples/call_memory" "$TMP/calls-1k.pcap" "$TMP/calls-10k.pcap"
