#!/usr/bin/env bash
# Live capture against tcpdump, the "Live capture vs tcpdump" table of BENCHMARKS.md.
#
# A veth pair joins a network namespace, where tcpreplay sends `earshot synth` traffic, to the
# root namespace, where either `earshot sensor --interface esbench0` or
# `tcpdump -w /dev/null -i esbench0` captures it. Each rate is run with each tool and each
# traffic, RUNS times, each run with a fresh capture process. Per run it prints what tcpreplay
# sent and at what rate, and for earshot what it captured, its kernel drops and internal (queue)
# drops from `sniffer_stat`, the packets nobody counted, its CPU (from /proc/PID/stat, from the
# start of sending until the pipeline has processed everything) and how long the pipeline took
# to catch up after sending ended; for tcpdump its "captured" and "dropped by kernel" lines.
#
#   scripts/bench-capture.sh                               # ~5 min: 1,000 and 10,000 calls
#   scripts/bench-capture.sh --packets 2000000 --runs 3    # longer runs
#   scripts/bench-capture.sh --rates "100000 top" --calls 10000 --tools earshot
#   PERF_OUT=top.txt scripts/bench-capture.sh --perf       # also `perf record -g` the sensor
#                                                          # at the last traffic and rate
#
# Options: --calls "1000 10000"  --rates "50000 100000 200000 400000 top" (top = --topspeed)
#          --packets N (per run, default 300000)  --runs N (default 2)  --tools "earshot tcpdump"
#          --earshot BIN (default target/release/earshot, built if missing)  --manager PORT
#          (default 15391)  --sensor-args "..." (extra sensor options, e.g. --snaplen 65535)
# Needs root, iproute2, tcpreplay (apt-get install tcpreplay), tcpdump, python3.
# Note: the sensor's queue holds 4,096 batches of up to 256 frames (~1 M frames), so a run
# shorter than that can hide a pipeline that is slower than the rate sent: the "catch-up"
# column shows it (seconds the pipeline still needed after the sender stopped).
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="1000 10000"
RATES="50000 100000 200000 400000 top"
PACKETS=300000
RUNS=2
TOOLS="earshot tcpdump"
EARSHOT=""
PORT=15391
SENSOR_ARGS=""
PERF=0
while [ $# -gt 0 ]; do
    case "$1" in
        --calls) CALLS=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --packets) PACKETS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --earshot) EARSHOT=$2; shift 2 ;;
        --manager) PORT=$2; shift 2 ;;
        --sensor-args) SENSOR_ARGS=$2; shift 2 ;;
        --perf) PERF=1; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, capture)" >&2; exit 1; }
for tool in ip tcpreplay tcpdump python3; do
    command -v $tool >/dev/null || { echo "needs $tool (Debian: apt-get install -y tcpreplay tcpdump iproute2 python3)" >&2; exit 1; }
done
if [ -z "$EARSHOT" ]; then
    EARSHOT=${CARGO_TARGET_DIR:-target}/release/earshot
    [ -x "$EARSHOT" ] || cargo build -j 2 --release -p earshot --bin earshot
fi

NS=esbench
IF=esbench0       # root namespace: captured here
PEER=esbench1     # in $NS: tcpreplay sends here
DIR=$(mktemp -d)
SENSOR_PID=""
cleanup() {
    [ -n "$SENSOR_PID" ] && kill "$SENSOR_PID" 2>/dev/null || true
    ip netns del $NS 2>/dev/null || true
    ip link del $IF 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT

ip netns del $NS 2>/dev/null || true
ip link del $IF 2>/dev/null || true
ip netns add $NS
ip link add $IF type veth peer name $PEER
ip link set $PEER netns $NS
# No IPv6 on the pair: its autoconfiguration chatter would be captured with the traffic.
sysctl -qw net.ipv6.conf.$IF.disable_ipv6=1
ip netns exec $NS sysctl -qw net.ipv6.conf.$PEER.disable_ipv6=1
ip link set $IF up
ip -n $NS link set $PEER up
ip -n $NS link set lo up
# No address on $IF: the captured frames (for 10.x hosts elsewhere) stop at the link layer.

CLK_TCK=$(getconf CLK_TCK)
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kernel:  $(uname -r); $(tcpdump --version 2>&1 | head -2 | tr '\n' ' ')"
echo "traffic: $PACKETS packets per run, runs $RUNS, sensor args: ${SENSOR_ARGS:-(defaults)}"

cpu_ticks() { # utime + stime of a process, in clock ticks
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

stat_json() { # sniffer_stat of the sensor as one JSON line
    python3 - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"sniffer_stat\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode().strip())
EOF
}

field() { # field NAME JSON
    python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"
}

replay() { # replay FILE RATE: prints "sent pps"
    local file=$1 rate=$2 speed out
    if [ "$rate" = top ]; then speed=--topspeed; else speed=--pps=$rate; fi
    out=$(ip netns exec $NS tcpreplay -q -K --limit="$PACKETS" $speed -i $PEER "$file" 2>&1)
    local sent pps secs
    sent=$(echo "$out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' | head -1)
    pps=$(echo "$out" | sed -n 's/.*Rated: .* \([0-9.]*\) pps.*/\1/p' | head -1)
    secs=$(echo "$out" | sed -n 's/.*Actual: .* sent in \([0-9.]*\) seconds.*/\1/p' | head -1)
    echo "${sent:-0} ${pps:-0} ${secs:-0}"
}

run_earshot() { # run_earshot FILE RATE CALLS
    local log=$DIR/sensor.log
    # shellcheck disable=SC2086
    "$EARSHOT" sensor --interface $IF --manager 127.0.0.1:$PORT $SENSOR_ARGS 2>"$log" &
    SENSOR_PID=$!
    for _ in $(seq 100); do stat_json >/dev/null 2>&1 && break; sleep 0.1; done
    local before t0 sent pps secs t1 js seen processed live cap_before cap_after
    # The capture thread on its own ("earshot-live-IF", truncated to 15 characters by the kernel).
    live=$(grep -l '^earshot-live' /proc/$SENSOR_PID/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
    cap_before=$(cpu_ticks "$SENSOR_PID/task/$live")
    before=$(cpu_ticks $SENSOR_PID)
    t0=$(date +%s.%N)
    read -r sent pps secs < <(replay "$1" "$2")
    t1=$(date +%s.%N)
    # CPU is judged over the sending time (tcpreplay's own figure; loading the file before it
    # costs the sensor nothing) plus the catch-up.
    t0=$(python3 -c "print($t1 - $secs)")
    # Until the pipeline has processed everything captured (or 120 s).
    local internal
    for _ in $(seq 600); do
        js=$(stat_json)
        seen=$(field packets_seen "$js"); processed=$(field packets_processed "$js")
        internal=$(field internal_drops "$js")
        [ $((processed + internal)) -ge "$seen" ] && break
        sleep 0.2
    done
    local t2 after
    t2=$(date +%s.%N)
    after=$(cpu_ticks $SENSOR_PID)
    cap_after=$(cpu_ticks "$SENSOR_PID/task/$live")
    if [ "$PERF" = 1 ] && [ "$2" = "$LAST_RATE" ] && [ "$3" = "$LAST_CALLS" ] && [ "$RUN" = 1 ]; then
        perf_profile "$1" "$2"
    fi
    kill -TERM $SENSOR_PID; wait $SENSOR_PID 2>/dev/null || true; SENSOR_PID=""
    local kernel internal calls lost cpu
    kernel=$(field kernel_drops "$js"); internal=$(field internal_drops "$js")
    calls=$(field active_calls "$js")
    lost=$((sent - seen + internal))
    cpu=$(python3 -c "print(f'{($after-$before)/$CLK_TCK/($t2-$t0)*100:.0f}')")
    python3 - "$3" "$2" "$sent" "$pps" "$seen" "$kernel" "$internal" "$lost" "$cpu" "$t1" "$t2" "$calls" "$before" "$after" "$CLK_TCK" "$cap_before" "$cap_after" <<'EOF'
import sys
(calls, rate, sent, pps, seen, kernel, internal, lost, cpu, t1, t2, active, b, a, tck, cb, ca) = sys.argv[1:]
sent, seen, kernel, internal, lost = int(sent), int(seen), int(kernel), int(internal), int(lost)
loss = 100.0 * lost / sent if sent else 0
us = (int(a) - int(b)) / int(tck) * 1e6 / sent if sent else 0
cap = (int(ca) - int(cb)) / int(tck) * 1e6 / sent if sent else 0
print(f"| earshot | {calls} | {rate} | {sent} | {float(pps):.0f} | {seen} | {kernel} | {internal} | "
      f"{lost} ({loss:.3f} %) | {cpu} % ({us:.1f} µs/packet; capture thread {cap:.2f}) | {float(t2) - float(t1):.1f} s | {active} |")
EOF
    if grep -q "capture lost" "$log"; then
        echo "  sensor warned: $(grep -m1 -o 'capture lost.*' "$log" | cut -c1-160)…"
    fi
}

run_tcpdump() { # run_tcpdump FILE RATE CALLS
    local log=$DIR/tcpdump.log pid
    tcpdump -n -i $IF -w /dev/null 2>"$log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
    local before t0 sent pps secs after t1
    before=$(cpu_ticks $pid)
    t0=$(date +%s.%N)
    read -r sent pps secs < <(replay "$1" "$2")
    t1=$(date +%s.%N)
    t0=$(python3 -c "print($t1 - $secs)")
    sleep 1
    after=$(cpu_ticks $pid)
    kill -INT $pid; wait $pid 2>/dev/null || true
    local captured dropped lost cpu
    captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$log")
    dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log")
    lost=$((sent - captured))
    cpu=$(python3 -c "print(f'{($after-$before)/$CLK_TCK/($t1-$t0)*100:.0f}')")
    python3 -c "
import sys
sent, lost = $sent, $lost
us = ($after - $before) / $CLK_TCK * 1e6 / max(sent, 1)
print(f'| tcpdump | $3 | $2 | {sent} | {float($pps):.0f} | $captured | $dropped | – | {lost} ({100.0*lost/max(sent,1):.3f} %) | $cpu % ({us:.1f} µs/packet) | – | – |')"
}

perf_profile() { # perf record -g the sensor's pipeline thread while the same traffic replays
    local tid
    tid=$(grep -l '^earshot-pipelin' /proc/$SENSOR_PID/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
    echo "  perf: recording the sensor (pid $SENSOR_PID, pipeline thread ${tid:-?}) for one more replay"
    # Recorded from before the replay until the pipeline has caught up again.
    perf record -g -q -o "$DIR/perf.data" -p "$SENSOR_PID" >/dev/null 2>&1 &
    local perf_pid=$! js
    sleep 0.5
    replay "$1" "$2" >/dev/null
    for _ in $(seq 600); do
        js=$(stat_json)
        [ $(($(field packets_processed "$js") + $(field internal_drops "$js"))) -ge \
            "$(field packets_seen "$js")" ] && break
        sleep 0.2
    done
    kill -INT $perf_pid; wait $perf_pid || true
    local out=${PERF_OUT:-$DIR/perf-top15.txt}
    perf report -i "$DIR/perf.data" --no-children --sort symbol ${tid:+--tid $tid} --stdio 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -15 > "$out" || true
    echo "  perf: top 15 symbols of the pipeline thread in $out:"
    sed 's/^/    /' "$out"
}

LAST_RATE=${RATES##* }
LAST_CALLS=${CALLS##* }
echo
echo "| tool | calls | rate asked | sent | rate sent (pps) | captured | kernel drops | internal drops | lost | CPU (1 core = 100 %) | catch-up | active calls |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for calls in $CALLS; do
    file=$DIR/calls$calls.pcap
    # Enough RTP for $PACKETS packets with every call started (calls start over the first second).
    seconds=$(python3 -c "print(max(1.2, $PACKETS / ($calls * 100) + 1))")
    "$EARSHOT" synth --calls "$calls" --seconds "$seconds" --codec pcma --out "$file" 2>/dev/null
    for rate in $RATES; do
        for RUN in $(seq "$RUNS"); do
            for tool in $TOOLS; do
                "run_$tool" "$file" "$rate" "$calls"
            done
        done
    done
    rm -f "$file"
done
