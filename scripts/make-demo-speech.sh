#!/bin/sh
# Makes the speech of `earshot demo`: four short sentences in four espeak-ng voices, stored as
# raw 16 kHz mono mu-law (8 bits a sample: compact, decoded by earshot's own G.711 decoder, and
# wideband enough for the G.722 and Opus demo calls). The files are committed; rerun this only
# to change the sentences. Needs espeak-ng and sox (apt-get install espeak-ng sox).
set -eu
out="$(dirname "$0")/../crates/earshot/demo"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { # name voice words-per-minute pitch text
    espeak-ng -v "$2" -s "$3" -p "$4" -w "$tmp/$1.wav" "$5"
    # Trim the leading and trailing silence, peak at -3 dBFS, 16 kHz mono mu-law without header.
    sox "$tmp/$1.wav" -t raw -e mu-law -b 8 -r 16000 -c 1 "$out/$1.ulaw" \
        silence 1 0.02 1% reverse silence 1 0.02 1% reverse norm -3
}

say alice en-us+f3 160 60 "Hello, this is Alice on the left. Can you hear me clearly?"
say bob en-gb 150 35 "Yes, this is Bob on the right. I hear you very well."
say carol en-us+f4 165 70 "The quarterly figures are ready. Shall I send them now?"
say dave en-gb-scotland 150 30 "Please do, and copy the support team. Thank you."
ls -l "$out"
