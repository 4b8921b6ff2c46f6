#!/usr/bin/env bash
# Makes rtp-only-pcma.pcap: two RTP streams on loopback with no SIP at all, as a sensor sees
# media whose signalling goes elsewhere (SIP over TLS, another interface). ffmpeg's RTP muxer
# (an independent RTP implementation) sends them: 127.0.0.1:48010 -> 48020 a 440 Hz tone and
# 48020 -> 48010 a 1000 Hz tone, PCMA (static payload type 8, no SDP needed), 3 s each.
# Needs ffmpeg and tcpdump, and root for tcpdump on lo.
set -euo pipefail
cd "$(dirname "$0")"
out=rtp-only-pcma.pcap
tcpdump -i lo -w "$out.tmp" -U 'udp and (port 48010 or port 48020)' 2>/dev/null &
dump=$!
sleep 1
send() { # FREQ FROM_PORT TO_PORT
    ffmpeg -loglevel error -re -f lavfi -i "sine=frequency=$1:sample_rate=8000:duration=3:samples_per_frame=160" \
        -ac 1 -c:a pcm_alaw -max_delay 0 -f rtp "rtp://127.0.0.1:$3?localrtpport=$2&localrtcpport=$(($2 + 1))" >/dev/null
}
send 440 48010 48020 &
sleep 0.05
send 1000 48020 48010
wait %2 2>/dev/null || true
sleep 1
kill "$dump"
wait "$dump" 2>/dev/null || true
mv "$out.tmp" "$out"
# tshark's view, committed for the tests (CI has no tshark).
tshark -r "$out" -d udp.port==48010,rtp -d udp.port==48020,rtp -q -z rtp,streams 2>/dev/null \
    | tee tshark-rtp-streams.txt
