#!/usr/bin/env bash
# Whole-process memory of the live sensor per concurrent call (BENCHMARKS.md, "Memory per
# active call"): `earshot sensor --pcap FILE` at --speed max on `earshot synth` captures, rewind
# off and on. For each run it prints
#
#   idle RSS      the sensor with a one-call capture, after it has settled
#   peak RSS      VmHWM of the run (every call of the capture is up at once)
#   per call      (peak - idle) / calls
#   after RSS     RSS once every call has ended and left the table (linger 2 s)
#
# Usage: scripts/bench-memory.sh            (builds release; CALLS, REWIND, BIN... below)
#   CALLS="1000 10000 100000"   concurrent calls per capture
#   REWIND="0 60"               rewind_s values to run (0 = rewind off)
#   SECS=3 LOSS=95              each call's RTP seconds and loss: few packets, memory is per call
#   BIN=target/debug/earshot    use an existing binary instead of building release
#   PORT=35029                  the sensor's manager port (loopback)
#   KEEP=1                      keep the captures in $DIR
#
# The frame queue is cut to 16 batches (`queue_batches`): at --speed max it otherwise fills
# to its bound (4,096 × 256 frames, hundreds of MB) and would hide the per-call figure.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-"1000 10000 100000"}
REWIND=${REWIND:-"0 60"}
SECS=${SECS:-3}
LOSS=${LOSS:-95}
PORT=${PORT:-35029}
DIR=${DIR:-/tmp/earshot-bench-memory}
mkdir -p "$DIR"

if [[ -z "${BIN:-}" ]]; then
    cargo build --release -j 2 -p earshot --bin earshot
    BIN=target/release/earshot
fi

capture() { # calls -> path of the capture
    local f="$DIR/calls-$1.pcap"
    [[ -s $f ]] || "$BIN" synth --calls "$1" --seconds "$SECS" --codec pcma --loss "$LOSS" \
        --out "$f" 2>/dev/null
    echo "$f"
}

config() { # rewind_s -> path of the sensor configuration
    local f="$DIR/sensor-rewind-$1.toml"
    cat >"$f" <<EOF
[capture]
speed = "max"
queue_batches = 16
[calls]
rewind_s = $1
linger_s = 2
# At --speed max capture time can fall behind the wall clock, which the sensor's clock also
# follows: an INVITE whose answer is still queued must not be ended as unanswered meanwhile.
unanswered_timeout_s = 0
[manager]
listen = "127.0.0.1:$PORT"
EOF
    echo "$f"
}

kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
total_calls() { echo totalcalls | timeout 5 nc -N 127.0.0.1 "$PORT" 2>/dev/null | tr -dc 0-9; }

# One sensor run: prints "peak_kb after_kb max_calls_listed".
run() { # capture config
    "$BIN" sensor --config "$2" --pcap "$1" --log-level warn >"$DIR/sensor.log" 2>&1 &
    local pid=$! seen=0 n waited=0
    # Up (the manager answers), then every call listed, then none left.
    until n=$(total_calls) && [[ -n $n ]]; do
        kill -0 "$pid" 2>/dev/null || { cat "$DIR/sensor.log" >&2; exit 1; }
        sleep 0.2
    done
    while :; do
        n=$(total_calls)
        [[ -n $n && $n -gt $seen ]] && seen=$n
        [[ $seen -gt 0 && -n $n && $n -eq 0 ]] && break
        sleep 0.5
        waited=$((waited + 1))
        [[ $waited -gt 3600 ]] && { echo "calls never ended" >&2; break; }
    done
    sleep 8 # housekeeping after the last call left, the trailing trim (5 s) included
    local peak after
    peak=$(kb $pid VmHWM) after=$(kb $pid VmRSS)
    # Gone before the next run starts on the same port.
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$peak $after $seen"
}

idle() { # config -> RSS kB of a sensor that saw one call
    local one
    one=$(capture 1)
    read -r _ after _ < <(run "$one" "$1")
    echo "$after"
}

printf '%-8s %-7s %10s %10s %10s %12s %12s\n' calls rewind_s "idle kB" "peak kB" "after kB" \
    "per call B" "listed"
for r in $REWIND; do
    cfg=$(config "$r")
    base=$(idle "$cfg")
    for n in $CALLS; do
        f=$(capture "$n")
        read -r peak after seen < <(run "$f" "$cfg")
        per=$(((peak - base) * 1024 / n))
        printf '%-8s %-7s %10s %10s %10s %12s %12s\n' "$n" "$r" "$base" "$peak" "$after" "$per" \
            "$seen"
    done
done
[[ -n "${KEEP:-}" ]] || rm -f "$DIR"/calls-*.pcap
