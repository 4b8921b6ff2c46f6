#!/usr/bin/env bash
# Makes sipp_codec_change.pcap: a SIPp call (sipp/uac_codec_change.xml against
# sipp/uas_codec_change.xml run with -rtp_echo) that starts in PCMU and changes to PCMA by a
# re-INVITE; the caller streams a 440 Hz tone (sox: µ-law, then A-law WAV), the callee echoes
# it back, so both parties change codec. SIP 127.0.0.1:46030 -> 46020, media 46300 (callee)
# and 46400 (caller). baresip cannot change a call's codec (see README.md), hence SIPp.
#
#   bash make-sipp.sh        # needs sipp (with RTP streaming), sox, tcpdump; tshark for figures
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-sipp_codec_change.pcap}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cp sipp/*.xml "$work/"
sox -n -r 8000 -c 1 -e u-law "$work/tone_pcmu.wav" synth 2 sine 440 vol 0.5
sox -n -r 8000 -c 1 -e a-law "$work/tone_pcma.wav" synth 2 sine 440 vol 0.5
cd "$work"

tcpdump -i lo -U -s 0 -w cap.pcap 'udp and (port 46020 or port 46030 or portrange 46300-46499)' \
    2>tcpdump.log &
pids+=($!)
sleep 1
sipp -sf uas_codec_change.xml -i 127.0.0.1 -p 46020 -mi 127.0.0.1 -mp 46300 -rtp_echo -m 1 \
    -nostdin -timeout 30 >uas.log 2>&1 &
uas=$!
sleep 0.5
sipp -sf uac_codec_change.xml 127.0.0.1:46020 -i 127.0.0.1 -p 46030 -mi 127.0.0.1 -mp 46400 \
    -s callee -m 1 -nostdin -timeout 30 >uac.log 2>&1 || { tail -20 uac.log >&2; exit 1; }
wait "$uas" || { tail -20 uas.log >&2; exit 1; }
sleep 0.5
kill -INT "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()
cd - >/dev/null
cp "$work/cap.pcap" "$out"

if command -v tshark >/dev/null; then
    base=${out%.pcap}
    tshark -r "$out" -q -z rtp,streams >"$base.tshark-rtp-streams.txt"
    tshark -r "$out" -Y sip -T fields -e frame.time_relative -e ip.src -e udp.srcport \
        -e sip.Method -e sip.Status-Code -e sip.CSeq -e sdp.media -E separator=' ' \
        >"$base.tshark-sip.txt"
    cat "$base.tshark-rtp-streams.txt" "$base.tshark-sip.txt"
fi
ls -l "$out"
