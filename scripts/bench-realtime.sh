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
#   scripts/bench-realtime.sh --listeners 100         # and 100 `stream` listeners, on 100 calls
#   scripts/bench-realtime.sh --speeds max --taskset 0   # the sensor on one core (taskset -c 0)
#                                                        # ("Scaling over this machine's two cores")
#
# Needs ~2.8 GB free in TMP for the 10,000-call capture (removed unless KEEP=1), and python3.
# PCAP=FILE replays an existing capture instead of making one (it must match --calls).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=10000
seconds=12
rewind=1
listeners=0
speeds="1 max"
cpus=""
while [ $# -gt 0 ]; do
    case "$1" in
        --calls) calls=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --no-rewind) rewind=0; shift ;;
        --listeners) listeners=$2; shift 2 ;;
        --speeds) speeds=$2; shift 2 ;;
        --taskset) cpus=$2; shift 2 ;;
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
pcap=${PCAP:-$DIR/calls.pcap}
[ -n "${PCAP:-}" ] || "$BIN" synth --calls "$calls" --seconds "$seconds" --codec pcma --out "$pcap"
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
          f"hand-off drops {d.get('handoff_drops', 0)}, rewind {d['rewind_bytes'] >> 20} MiB "
          f"(overflow {d['rewind_overflow']}), RSS {d['memory_bytes'] >> 20} MiB, "
          f"listeners {d['listeners']} (dropped {d['listener_drops']}, audio drops {d['audio_drops']})")
    t0, d0 = t, d
PY
}

# Opens N `stream` listeners on N different calls two seconds in and reads them until the
# sensor closes them; prints how much audio each got (8 kHz mono: seconds = samples / 8000).
listen() {
    python3 - "$port" "$listeners" <<'PY'
import json, socket, struct, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def ask(cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        while chunk := s.recv(1 << 20):
            buf += chunk
    return buf
time.sleep(2)
table = json.loads(ask('listcalls {"limit":%d,"state":"answered"}' % n))
col = table[0].index("callreference")
refs = [row[col] for row in table[2:]]
got = [0] * len(refs)
ends = [""] * len(refs)
def read_exact(s, k):
    buf = b""
    while len(buf) < k:
        chunk = s.recv(k - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf
def one(i, ref):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(f"stream {ref}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            line += s.recv(1)
        if line.startswith(b"error"):
            ends[i] = line.decode().strip()
            return
        while True:
            kind, size = struct.unpack(">BI", read_exact(s, 5))
            payload = read_exact(s, size)
            if kind == 1:
                got[i] += (size - 17) // 2
            elif kind == 4:
                ends[i] = json.loads(payload).get("reason", "?")
                return
    except (OSError, EOFError) as e:
        ends[i] = ends[i] or type(e).__name__
threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(refs)]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = sorted(g / 8000 for g in got)
print(f"listeners: {len(refs)}, audio per listener {secs[0]:.1f}-{secs[-1]:.1f} s "
      f"(median {secs[len(secs) // 2]:.1f}), ended: "
      + ", ".join(f"{e} x{ends.count(e)}" for e in sorted(set(ends))))
PY
}

run() {
    local speed=$1
    echo "== --speed $speed, $calls calls, rewind $([ "$rewind" = 1 ] && echo on || echo off)${cpus:+, on CPUs $cpus}"
    local pin=()
    [ -z "$cpus" ] || pin=(taskset -c "$cpus")
    "${pin[@]}" "$BIN" sensor "${config[@]}" --pcap "$pcap" --speed "$speed" \
        --manager "127.0.0.1:$port" > "$DIR/sensor.log" 2>&1 &
    local pid=$!
    local lpid=
    if [ "$listeners" -gt 0 ] && [ "$speed" = 1 ]; then
        listen & lpid=$!
    fi
    sample
    [ -z "$lpid" ] || wait "$lpid"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}
for speed in $speeds; do
    run "$speed"
done
