#!/usr/bin/env bash
# Makes b2bua_legs.pcap: the A- and B-legs of four calls through a "B2BUA" (SIPp on both
# sides of each leg, sipp/uac_leg.xml against sipp/uas_leg.xml), each pair tied by another
# correlation header, and one unrelated call:
#
#   pair  A-leg Call-ID         B-leg Call-ID        correlated by
#   xcid  a-xcid@pbx.example    b-xcid@sbc.example   B's X-CID = A's Call-ID
#   sid   a-sid@pbx.example     b-sid@sbc.example    same RFC 7989 Session-ID UUID
#   icid  a-icid@pbx.example    b-icid@sbc.example   same P-Charging-Vector icid-value
#   hdr   a-hdr@pbx.example     b-hdr@sbc.example    B's X-Orig-Call = A's Call-ID (only
#                                                    with --correlate-header X-Orig-Call)
#   sec   a-sec@pbx.example     b-sec@sbc.example    B's X-Merge = base64(A's Call-ID XOR
#                                                    "s3cret"), VoIPmonitor's callidmerge_secret
#                                                    (only with --correlate-header X-Merge
#                                                    --correlate-secret s3cret)
#   lone  lone@pbx.example      -                    nothing shared
#
# Every other correlation header carries a value unique to its call. The B-leg starts 0.3 s
# after its A-leg, as a B2BUA's would. Caller tone 440 Hz, callee tone 660 Hz (A-law).
# Loopback: SIP 127.0.0.1:47000-47021, media 47100-47319.
#
#   bash make-sipp.sh        # needs sipp (with RTP streaming), sox, tcpdump
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-b2bua_legs.pcap.gz}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cp sipp/*.xml "$work/"
sox -n -r 8000 -c 1 -e a-law "$work/tone_caller.wav" synth 6 sine 440 vol 0.5
sox -n -r 8000 -c 1 -e a-law "$work/tone_callee.wav" synth 6.6 sine 660 vol 0.5
cd "$work"

tcpdump -i lo -U -s 0 -w cap.pcap 'udp and portrange 47000-47399' 2>tcpdump.log &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

n=0
legs=()
# leg NAME CALL-ID CALLER XCID SID ICID XORIG [XMERGE]
leg() {
    local name=$1 cid=$2 caller=$3 xcid=$4 sid=$5 icid=$6 xorig=$7 xmerge=${8:-m-$1}
    local sip=$((47000 + 2 * n)) media=$((47100 + 20 * n))
    n=$((n + 1))
    sipp -sf uas_leg.xml -i 127.0.0.1 -p "$sip" -mi 127.0.0.1 -mp "$media" -m 1 \
        -nostdin -timeout 30 >"uas-$name.log" 2>&1 &
    pids+=($!)
    legs+=($!)
    sleep 0.2
    sipp -sf uac_leg.xml "127.0.0.1:$sip" -i 127.0.0.1 -p "$((sip + 1))" -mi 127.0.0.1 \
        -mp "$((media + 10))" -s 2002 -cid_str "$cid" -key caller "$caller" -key xcid "$xcid" \
        -key sid "$sid" -key icid "$icid" -key xorig "$xorig" -key xmerge "$xmerge" -m 1 -nostdin -timeout 30 \
        >"uac-$name.log" 2>&1 &
    pids+=($!)
    legs+=($!)
}
z=00000000000000000000000000000000
u() { printf '%032x' "$1"; }
leg a-xcid a-xcid@pbx.example 1001 x-a1 "$(u 11);remote=$z" icid-a1 o-a1
sleep 0.3
leg b-xcid b-xcid@sbc.example 1001 a-xcid@pbx.example "$(u 12);remote=$z" icid-b1 o-b1
leg a-sid a-sid@pbx.example 1002 x-a2 "ab30317f1a784dc48ff824d0d3715d86;remote=$z" icid-a2 o-a2
sleep 0.3
leg b-sid b-sid@sbc.example 1002 x-b2 "ab30317f1a784dc48ff824d0d3715d86;remote=$z" icid-b2 o-b2
leg a-icid a-icid@pbx.example 1003 x-a3 "$(u 31);remote=$z" icid-7f3a9c i-a3
sleep 0.3
leg b-icid b-icid@sbc.example 1003 x-b3 "$(u 32);remote=$z" icid-7f3a9c i-b3
leg a-hdr a-hdr@pbx.example 1004 x-a4 "$(u 41);remote=$z" icid-a4 o-a4
sleep 0.3
leg b-hdr b-hdr@sbc.example 1004 x-b4 "$(u 42);remote=$z" icid-b4 a-hdr@pbx.example
leg a-sec a-sec@pbx.example 1006 x-a6 "$(u 61);remote=$z" icid-a6 o-a6
sleep 0.3
hidden=$(python3 -c 'import base64,sys,itertools; s=b"s3cret"; v=sys.argv[1].encode(); print(base64.b64encode(bytes(a ^ b for a, b in zip(v, itertools.cycle(s)))).decode())' a-sec@pbx.example)
leg b-sec b-sec@sbc.example 1006 x-b6 "$(u 62);remote=$z" icid-b6 o-b6 "$hidden"
leg lone lone@pbx.example 1005 x-l5 "$(u 51);remote=$z" icid-l5 o-l5
for p in "${legs[@]}"; do
    wait "$p" || { tail -5 ./*.log >&2; exit 1; }
done
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
pids=()
cd - >/dev/null
gzip -9 -n -c "$work/cap.pcap" >"$out"
ls -l "$out"
