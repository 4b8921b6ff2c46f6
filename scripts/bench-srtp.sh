#!/usr/bin/env bash
# What decrypting SDES SRTP costs in `earshot analyze`, against the same calls in the clear
# (issue 16: at most 2x). Makes CALLS calls of SECONDS each way (scripts/bench-srtp.py, libsrtp2
# protects them), then times analyze of each capture RUNS times, alternating, as user+system
# CPU seconds. Usage: scripts/bench-srtp.sh [CALLS] [SECONDS] [RUNS]   (needs pylibsrtp)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-200} seconds=${2:-20} runs=${3:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 scripts/bench-srtp.py "$dir" "$calls" "$seconds"
cargo build -q --release -p earshot
bin=target/release/earshot
packets=$((calls * seconds * 50 * 2))
echo "calls=$calls seconds=$seconds media packets=$packets commit=$(git rev-parse --short HEAD)"
cpu() { /usr/bin/time -f "%U %S" "$bin" analyze --json "$1" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
# The SRTP capture really was decrypted: every packet, no failures.
"$bin" analyze --json "$dir/srtp.pcap" | python3 -c '
import json, sys
d = json.load(sys.stdin)["capture"]["srtp_packets"]
assert d["decrypted"] > 0 and d["auth_failures"] == 0 and d["no_key"] == 0, d
print("srtp_packets:", d)'
for i in $(seq 1 "$runs"); do
    c=$(cpu "$dir/clear.pcap"); s=$(cpu "$dir/srtp.pcap")
    awk -v c="$c" -v s="$s" -v p="$packets" 'BEGIN { printf "run: clear %.2f s (%.0f ns/packet), srtp %.2f s (%.0f ns/packet), ratio %.2f\n", c, c*1e9/p, s, s*1e9/p, s/c }'
done
