#!/usr/bin/env python3
"""Wraps the raw G.726 files make_g726.sh wrote into RTP (PT 99, 20 ms, 160 samples a packet)
after a SIP INVITE / 200 OK whose SDP says a=rtpmap:99 G726-<kbit>/8000, whatever the order.
One call per file, the caller 10.30.0.1:44000+i sending to the callee 10.30.0.2:44500+i.
Standard library only. Usage: make_g726_pcap.py DIR OUT.pcap"""
import socket
import struct
import sys

DIR, OUT = sys.argv[1], sys.argv[2]
A, B = "10.30.0.1", "10.30.0.2"
T0 = 1_767_100_000
FILES = [(order, kbit) for order in ("aal2", "rfc3551") for kbit in (16, 24, 32, 40)]


def ip_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = sum(struct.unpack("!10H", hdr))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    hdr = hdr[:10] + struct.pack("!H", ~c & 0xFFFF) + hdr[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + hdr + udp


def sip(first, n, kbit, to_tag, ip, port, cseq="1 INVITE"):
    sdp = (f"v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
           f"m=audio {port} RTP/AVP 99\r\na=rtpmap:99 G726-{kbit}/8000\r\n")
    h = [first, f"Via: SIP/2.0/UDP {A}:43000;branch=z9hG4bK-g726-{n}",
         f"From: <sip:caller{n}@{A}>;tag=f{n}",
         f"To: <sip:callee{n}@{B}>" + (f";tag=t{n}" if to_tag else ""),
         f"Call-ID: g726-{n}@{A}", f"CSeq: {cseq}", f"Contact: <sip:c@{A}:43000>",
         "Content-Type: application/sdp", f"Content-Length: {len(sdp)}"]
    return ("\r\n".join(h) + "\r\n\r\n" + sdp).encode()


records = []  # (time in µs, frame)
for n, (order, kbit) in enumerate(FILES):
    data = open(f"{DIR}/{order}-{kbit}.g726", "rb").read()
    t = (T0 + 3 * n) * 1_000_000
    pa, pb = 44000 + n, 44500 + n
    records.append((t, ip_udp(A, B, 43000, 43001, sip(f"INVITE sip:callee{n}@{B} SIP/2.0", n, kbit, False, A, pa))))
    records.append((t + 10_000, ip_udp(B, A, 43001, 43000, sip("SIP/2.0 200 OK", n, kbit, True, B, pb))))
    step = 160 * kbit // 8 // 8  # bytes per 20 ms
    ssrc = 0x726000 + n
    for i in range(len(data) // step):
        rtp = struct.pack("!BBHII", 0x80, 99, i, i * 160, ssrc) + data[i * step:(i + 1) * step]
        records.append((t + 20_000 + i * 20_000, ip_udp(A, B, pa, pb, rtp)))
records.sort(key=lambda r: r[0])
with open(OUT, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, frame in records:
        f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
        f.write(frame)
print(f"{OUT}: {len(FILES)} calls, {len(records)} frames")
