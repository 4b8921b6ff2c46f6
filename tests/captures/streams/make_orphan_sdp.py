#!/usr/bin/env python3
"""Writes orphan-sdp.pcap: a dialog whose INVITE was not captured (issue 12, item 7).

Only the callee's 183 Session Progress with SDP is in the capture, announcing
10.0.0.2:41002 with `a=rtpmap:96 AMR-WB/16000` and `a=rtpmap:101 telephone-event/16000`;
then RTP with the dynamic payload type 96 in both directions (20 ms, 320 ticks of the
16 kHz clock, arrival times jittered by a seeded random walk), one stream of
telephone-events alone (PT 101), and one stream with PT 97, which no SDP describes.

No call can be made of a 183 alone; tshark still uses its SDP to decode the streams.
Run: python3 make_orphan_sdp.py  (no dependencies; tshark-rtp-streams.txt is then
`tshark -r orphan-sdp.pcap -q -z rtp,streams`)."""
import random
import struct

CALLER = ("10.0.0.1", 41000)
CALLEE = ("10.0.0.2", 41002)
OTHER = ("10.0.0.3", 41004)
SIP_A = ("10.0.0.1", 40000)
SIP_B = ("10.0.0.2", 40002)
T0 = 1_700_000_000.0

def ip(a):
    return bytes(int(x) for x in a.split("."))

def ipv4_checksum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def frame(src, dst, payload):
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ip(src[0]), ip(dst[0]))
    h = h[:10] + struct.pack("!H", ipv4_checksum(h)) + h[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + h + udp

records = []

def add(t, src, dst, payload):
    records.append((t, frame(src, dst, payload)))

sdp = (
    "v=0\r\n"
    "o=callee 1 1 IN IP4 10.0.0.2\r\n"
    "s=-\r\n"
    "c=IN IP4 10.0.0.2\r\n"
    "t=0 0\r\n"
    "m=audio 41002 RTP/AVP 96 101\r\n"
    "a=rtpmap:96 AMR-WB/16000\r\n"
    "a=rtpmap:101 telephone-event/16000\r\n"
    "a=sendrecv\r\n"
)
sip = (
    "SIP/2.0 183 Session Progress\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:40000;branch=z9hG4bK-orphan\r\n"
    "From: <sip:alice@10.0.0.1>;tag=a1\r\n"
    "To: <sip:bob@10.0.0.2>;tag=b1\r\n"
    "Call-ID: orphan-183@10.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@10.0.0.2:40002>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
)
add(T0, SIP_B, SIP_A, sip.encode())

def rtp(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload

rng = random.Random(12)
def stream(src, dst, pt, ssrc, start, n, max_jitter_s):
    offset = 0.0
    for i in range(n):
        offset = min(max_jitter_s, max(0.0, offset + rng.uniform(-0.006, 0.006)))
        add(start + 0.02 * i + offset, src, dst, rtp(pt, 1000 + i, 5000 + 320 * i, ssrc, bytes([0xF0]) + bytes(32)))

stream(CALLER, CALLEE, 96, 0x11110001, T0 + 0.1, 250, 0.030)
stream(CALLEE, CALLER, 96, 0x22220002, T0 + 0.1, 250, 0.060)
stream(OTHER, CALLER, 97, 0x33330003, T0 + 0.1, 250, 0.030)

# Telephone-events alone, a digit '5' for 12 packets then its three end packets.
for i in range(15):
    end = i >= 12
    duration = 160 * min(i + 1, 12)
    ev = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, duration)
    add(T0 + 1.0 + 0.02 * i, CALLER, CALLEE, rtp(101, 7000 + i, 90000, 0x44440004, ev, marker=(i == 0)))

records.sort(key=lambda r: r[0])
with open("orphan-sdp.pcap", "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, data in records:
        sec = int(t)
        usec = int(round((t - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
