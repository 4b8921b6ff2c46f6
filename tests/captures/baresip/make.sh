#!/usr/bin/env bash
# Remakes amr_wb_call.pcap: a whole AMR-WB call between two real baresip user agents (Debian's
# baresip 1.0 with its amr module: VisualOn's AMR-WB encoder, octet-aligned, as baresip only
# speaks) on loopback, captured by tcpdump. The caller sends a 400 Hz tone, the callee 1 kHz
# (WAVs made by sox), so a listener's left and right channels can be checked for them.
#
# Needs: baresip, sox, tcpdump, and the right to capture on lo (root or CAP_NET_RAW).
# Usage: tests/captures/baresip/make.sh [SECONDS]   (default 20; writes next to this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-20}
work=$(mktemp -d)
dump=
trap '{ [ -z "$dump" ] || kill "$dump" 2>/dev/null || true; }; pkill -f "baresip -n 127.0.0.1 -f $work" 2>/dev/null || true; rm -rf "$work"' EXIT

sox -n -r 16000 -c 1 -b 16 "$work/caller.wav" synth $((seconds + 4)) sine 400 vol 0.5
sox -n -r 16000 -c 1 -b 16 "$work/callee.wav" synth $((seconds + 4)) sine 1000 vol 0.5

# One configuration per agent. SIP on 5071 and 5081 (baresip takes the next port for TLS);
# RTP from two port ranges; no sound card: the heard audio goes to an unpaired aubridge.
config() { # name sip_port rtp_ports wav
    mkdir -p "$work/$1"
    cat > "$work/$1/config" <<CONF
poll_method epoll
sip_listen 127.0.0.1:$2
audio_player aubridge,nowhere
audio_source aufile,$4
ausrc_srate 16000
ausrc_channels 1
auplay_srate 16000
auplay_channels 1
rtp_ports $3
module_path /usr/lib/baresip/modules
module amr.so
module aufile.so
module aubridge.so
module account.so
module_app menu.so
CONF
}
config caller 5071 20000-20009 "$work/caller.wav"
config callee 5081 20010-20019 "$work/callee.wav"
echo '<sip:1001@127.0.0.1:5071>;regint=0;audio_codecs=AMR-WB/16000/1' > "$work/caller/accounts"
echo '<sip:2002@127.0.0.1:5081>;regint=0;answermode=auto;audio_codecs=AMR-WB/16000/1' > "$work/callee/accounts"

out="$here/amr_wb_call.pcap"
tcpdump -i lo -U -w "$out" 'udp and (port 5071 or port 5081 or portrange 20000-20019)' >/dev/null 2>"$work/tcpdump.log" &
dump=$!
sleep 1
baresip -n 127.0.0.1 -f "$work/callee" -t $((seconds + 3)) </dev/null >"$work/callee.log" 2>&1 &
sleep 1
baresip -n 127.0.0.1 -f "$work/caller" -e "/dial sip:2002@127.0.0.1:5081" -t "$seconds" </dev/null >"$work/caller.log" 2>&1
sleep 2
kill "$dump"
wait "$dump" || true
dump=
grep -q "Call established" "$work/caller.log" || { cat "$work/caller.log"; exit 1; }
echo "wrote $out ($(stat -c %s "$out") bytes)"
