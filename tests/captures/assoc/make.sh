#!/usr/bin/env bash
# Makes the shared-media-address captures of this folder with SIPp on loopback (see README.md).
#   bash make.sh   writes shared_callee.pcap.gz, shared_ports.pcap.gz, doubled_rtp.pcap.gz and
#                  the tshark figures
# Needs sipp (sip-tester), tcpdump (run as root or with cap_net_raw), sox, tshark, python3.
# Ports: SIP 31000-31099, media 32000-33999.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One SIPp callee answering every call with the same media address (127.0.0.1:32000) and echoing
# RTP (-rtp_echo), and one SIPp caller process per call, each on its own SIP and media port,
# streaming its own tone of 1003 + 20*i Hz in PCMU: no harmonic of one falls on another, and an
# odd frequency spreads the tone's own G.711 quantisation noise instead of piling it on lines
# where another call's tone lies. Callers start STAGGER_MS apart and send SECONDS of media.
run() { # run NAME CALLS STAGGER_MS SECONDS
  local name=$1 calls=$2 stagger=$3 seconds=$4 out="$work/$1.pcap"
  tcpdump -i lo --immediate-mode -B 65536 -s 0 -U -w "$out" \
    'udp and (portrange 31000-31099 or portrange 32000-33999)' 2>"$work/tcpdump.log" &
  local dump=$!
  sleep 1
  sed -e 's#@PT@#0#g; s#@NAME@#PCMU/8000#g' "$here/sipp/uas_answer.xml" > "$work/uas.xml"
  (cd "$work" && sipp -sf uas.xml -i 127.0.0.1 -p 31000 -mi 127.0.0.1 -mp 32000 -rtp_echo \
    -m "$calls" -nostdin -timeout 60 >"$work/uas.log" 2>&1) &
  local uas=$! pids=()
  sleep 0.5
  for i in $(seq 0 $((calls - 1))); do
    local f=$((1003 + 20 * i))
    sox -n -r 8000 -c 1 -e u-law -t raw "$work/tone$i.ul" synth "$seconds" sine "$f" vol 0.5
    local pause=$(python3 -c "print(int($seconds * 1000) + 300)")
    sed -e "s#@AUDIO@#$work/tone$i.ul#; s#@PT@#0#g; s#@NAME@#PCMU/8000#g; s#@PAUSE_MS@#$pause#" \
      "$here/sipp/uac_rtp_stream.xml" > "$work/uac$i.xml"
    (cd "$work" && timeout 60 sipp -sf "uac$i.xml" 127.0.0.1:31000 -i 127.0.0.1 -p $((31001 + i)) \
      -mi 127.0.0.1 -mp $((32100 + 20 * i)) -m 1 -nostdin -timeout 50 >"$work/uac$i.log" 2>&1) &
    pids+=($!)
    sleep "$(printf '0.%03d' "$stagger")"
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  wait "$uas" || true
  sleep 1.5
  kill -INT "$dump"; wait "$dump" || true
  [ $rc -eq 0 ] || { echo "make.sh: a SIPp caller failed" >&2; tail -3 "$work"/uac*.log >&2; exit 1; }
}

# 50 concurrent calls; the callee's media address is shared, each caller's is its own.
run shared_callee 50 15 1
gzip -9 -c "$work/shared_callee.pcap" > "$here/shared_callee.pcap.gz"

# 20 calls, then every caller's media port rewritten to one (32100), in its SDP and its packets:
# both ends of every call's RTP are the same two addresses, the calls told apart by SSRC only.
# Calls start 300 ms apart (SIPp's rtp_stream may start sending 100 ms after the ACK, and
# nothing but the order of first packets can tell two new SSRCs on the same ports apart) and
# send 6.5 s of media each, so that all 20 are up at once from 5.7 s on.
run shared_ports_src 20 300 6.5
python3 "$here/same_ports.py" "$work/shared_ports_src.pcap" "$work/shared_ports.pcap"
gzip -9 -c "$work/shared_ports.pcap" > "$here/shared_ports.pcap.gz"

# RTP only (no SIP) of the first two calls of shared_callee, every packet captured twice.
python3 "$here/doubled.py" "$work/shared_callee.pcap" "$work/doubled_rtp.pcap"
gzip -9 -c "$work/doubled_rtp.pcap" > "$here/doubled_rtp.pcap.gz"

# tshark's per-stream figures, the reference the tests compare with (RTP found from the SDP, or
# by tshark's RTP heuristic where there is none).
for n in shared_callee shared_ports doubled_rtp; do
  tshark -r "$work/$n.pcap" -q --disable-protocol uaudp --enable-heuristic rtp_udp \
    -z rtp,streams > "$here/$n.tshark-rtp-streams.txt"
done
ls -l "$here"
