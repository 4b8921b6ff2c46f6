#!/usr/bin/env bash
# Reproduces "10,000 calls at real time" in BENCHMARKS.md. It replays `earshot synth` traffic
# of N concurrent G.711 calls through `earshot sensor --pcap`, once at --speed 1 (real time:
# N × 100 packets/s) and once at --speed max (the replay waits for the pipeline, so the rate
# is what the pipeline sustains). Every second it prints sniffer_stat's processed frames (and
# the rate over the real time between samples), internal drops, rewind bytes and RSS.
#
#   scripts/bench-realtime.sh                         # 10,000 calls, 12 s, default rewind
#   scripts/bench-realtime.sh --calls 1000 --seconds 30
#   scripts/bench-realtime.sh --no-rewind             # [calls] rewind_s = 0
#
# Needs ~2.8 GB free in TMP for the 10,000-call capture (removed unless KEEP=1), and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=10000
seconds=12
rewind=1
while [ $# -gt 0 ]; do
    case "$1" in
        --calls) calls=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --no-rewind) rewind=0; shift ;;
        *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$CARGO_TARGET_DIR/release/earshot
DIR=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
echo "date:  $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
echo "cpu:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -p earshot --bin earshot
"$BIN" synth --calls "$calls" --seconds "$seconds" --codec pcma --out "$DIR/calls.pcap"
config=()
if [ "$rewind" = 0 ]; then
    printf '[calls]\nrewind_s = 0\n' > "$DIR/sensor.toml"
    config=(--config "$DIR/sensor.toml")
fi
port=$((20000 + RANDOM % 20000))

# Samples sniffer_stat every second, over a socket of its own (not nc: `nc -q1` waits a second
# after each reply, which made rates computed from the loop's sleeps 1.5x too high).
sample() {
    python3 - "$port" $(( seconds + 4 )) <<'PY'
import json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def stat():
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"sniffer_stat\n")
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    return json.loads(buf)
time.sleep(1)
t0, d0 = time.monotonic(), stat()
for _ in range(n):
    time.sleep(1)
    t, d = time.monotonic(), stat()
    rate = (d["packets_processed"] - d0["packets_processed"]) / (t - t0) / 1e6
    print(f"processed {d['packets_processed']} ({rate:.3f} M/s), internal drops {d['internal_drops']}, "
          f"rewind {d['rewind_bytes'] >> 20} MiB, RSS {d['memory_bytes'] >> 20} MiB")
    t0, d0 = t, d
PY
}

run() {
    local speed=$1
    echo "== --speed $speed, $calls calls, rewind $([ "$rewind" = 1 ] && echo on || echo off)"
    "$BIN" sensor "${config[@]}" --pcap "$DIR/calls.pcap" --speed "$speed" \
        --manager "127.0.0.1:$port" > "$DIR/sensor.log" 2>&1 &
    local pid=$!
    sample
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
run 1
run max
