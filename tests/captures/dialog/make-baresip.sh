#!/usr/bin/env bash
# Makes baresip_hold.pcap: a real call between two baresip instances on loopback, captured
# with tcpdump. The caller (127.0.0.1:46000, a 440 Hz ausine source) calls the callee
# (127.0.0.1:46010, 1000 Hz, answers by itself); then, over baresip's ctrl_tcp, the caller
# holds (re-INVITE a=sendonly, answered a=recvonly), resumes (a=sendrecv), sends a plain
# re-INVITE (/reinvite: the same SDP again) and hangs up. Media on 46100-46299.
#
#   bash make-baresip.sh            # needs baresip (with its g711, ausine, alsa, menu,
#                                   # ctrl_tcp modules), tcpdump, python3; tshark for figures
#
# baresip 1.0.0 (this machine's) has no command to change the codec of a call in progress
# (no /set_audio_codec; /reinvite re-offers the same codecs), so the codec change by re-INVITE
# is not in this capture; make-sipp.sh makes that part with SIPp.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-baresip_hold.pcap}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# One baresip configuration: dir, SIP port, ctrl_tcp port, first RTP port, tone, user,
# answer mode. ausine makes 48 kHz stereo only; baresip resamples to the codec's rate. No sound
# card: alsa's null device plays.
config() {
    mkdir -p "$1"
    cat > "$1/config" <<C
poll_method epoll
net_interface 127.0.0.1
sip_listen 127.0.0.1:$2
audio_player alsa,null
audio_alert alsa,null
audio_source ausine,$5
ausrc_srate 48000
ausrc_channels 2
auplay_srate 48000
rtp_ports $4-$(($4 + 99))
rtcp_mux no
module_path /usr/lib/baresip/modules
module account.so
module g711.so
module g722.so
module ausine.so
module alsa.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:$3
C
    echo "<sip:$6@127.0.0.1:$2>;regint=0;answermode=$7" > "$1/accounts"
    : > "$1/contacts"
}
config "$work/caller" 46000 46050 46100 440 caller manual
config "$work/callee" 46010 46051 46200 1000 callee auto

# A ctrl_tcp command: a netstring of {"command","params","token"}.
ctl() {
    python3 - "$@" <<'PY'
import json, socket, sys
port, command, params = int(sys.argv[1]), sys.argv[2], " ".join(sys.argv[3:])
body = json.dumps({"command": command, "params": params, "token": command}).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(str(len(body)).encode() + b":" + body + b",")
# Events may come before the command's response: read for up to 2 s.
s.settimeout(2)
reply = ""
try:
    while '"response":true' not in reply:
        data = s.recv(65536)
        if not data:
            break
        reply += data.decode(errors="replace")
except socket.timeout:
    pass
ok = '"response":true,"ok":true' in reply
print(f"{command} {params}: {'ok' if ok else reply}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

tcpdump -i lo -U -s 0 -w "$work/cap.pcap" 'udp portrange 46000-46299' 2>"$work/tcpdump.log" &
pids+=($!)
baresip -f "$work/callee" >"$work/callee.log" 2>&1 &
pids+=($!)
baresip -f "$work/caller" >"$work/caller.log" 2>&1 &
pids+=($!)
sleep 2

ctl 46050 dial sip:callee@127.0.0.1:46010
sleep 3     # answered at once: 3 s of audio both ways
ctl 46050 hold
sleep 4     # held: the caller's a=sendonly, the callee's a=recvonly
ctl 46050 resume
sleep 3
ctl 46050 reinvite
sleep 3
ctl 46050 hangup || true  # its reply may be the CALL_CLOSED event instead
sleep 1

for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
cp "$work/cap.pcap" "$out"
grep -ahoE "call: [^[]*|audio: Set [^[]*" "$work/caller.log" "$work/callee.log" >&2 || true

if command -v tshark >/dev/null; then
    base=${out%.pcap}
    tshark -r "$out" -q -z rtp,streams >"$base.tshark-rtp-streams.txt"
    tshark -r "$out" -Y sip -T fields -e frame.time_relative -e ip.src -e udp.srcport \
        -e sip.Method -e sip.Status-Code -e sip.CSeq -e sdp.media_attr \
        -E separator=' ' >"$base.tshark-sip.txt"
    cat "$base.tshark-rtp-streams.txt" "$base.tshark-sip.txt"
fi
ls -l "$out"
