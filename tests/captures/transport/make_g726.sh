#!/usr/bin/env bash
# Makes g726-ffmpeg.pcap and its references: G.726 at 16/24/32/40 kbit/s in both bit orders,
# encoded by ffmpeg (its `g726` encoder packs AAL2 / I.366.2 order, first code word in the
# most significant bits; `g726le` RFC 3551 order), wrapped in RTP by make_g726_pcap.py, every
# stream announced under the RFC 3551 name G726-xx, as baresip and many devices do.
# References: ffmpeg's own decode of each AAL2-ordered stream (ref-aal2-<kbit>.s16, s16le
# 8 kHz mono) and the source signal (src.s16).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
q=(-hide_banner -loglevel error -y)
# A 440 Hz tone, amplitude-modulated at 3 Hz, with a quieter 1250 Hz one: 2 s at 8 kHz.
ffmpeg "${q[@]}" -f lavfi -i \
    "aevalsrc='0.3*sin(2*PI*440*t)*(0.6+0.4*sin(2*PI*3*t))+0.15*sin(2*PI*1250*t)':s=8000:d=2" \
    -ac 1 -ar 8000 -f s16le src.s16
for kbit in 16 24 32 40; do
    bits=$((kbit / 8))
    ffmpeg "${q[@]}" -f s16le -ar 8000 -ac 1 -i src.s16 -c:a g726 -b:a "${kbit}k" -f g726 "$tmp/aal2-$kbit.g726"
    ffmpeg "${q[@]}" -f s16le -ar 8000 -ac 1 -i src.s16 -c:a g726le -b:a "${kbit}k" -f g726le "$tmp/rfc3551-$kbit.g726"
    ffmpeg "${q[@]}" -f g726 -code_size "$bits" -ar 8000 -i "$tmp/aal2-$kbit.g726" -f s16le "ref-aal2-$kbit.s16"
done
python3 make_g726_pcap.py "$tmp" g726-ffmpeg.pcap
