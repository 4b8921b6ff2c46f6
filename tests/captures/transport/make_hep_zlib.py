#!/usr/bin/env python3
"""Writes hep-zlib.pcap: HEP3 datagrams to UDP port 9060 whose SIP payload is zlib-compressed
(chunk type 16 of the HEP3 spec, as Kamailio's sipcapture/siptrace and OpenSIPS write it).

Three calls of seven SIP messages each (INVITE, 100, 180, 200 with SDP, ACK, BYE, 200): 21
compressed SIP messages. Then four HEP3 datagrams that must be skipped and counted:
  * a zip bomb: 1 MiB of spaces after a SIP start line, compressed to ~1 KiB (too_big),
  * a chunk 16 that is not a zlib stream (inflate_failed),
  * a chunk 16 whose zlib stream is cut short (inflate_failed),
  * an envelope with addresses but no payload chunk at all (unsupported).

Only Python's standard library (zlib is the C zlib): independent of earshot's code.
Usage: python3 make_hep_zlib.py [out.pcap]
"""
import socket
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else "hep-zlib.pcap"
AGENT = "192.0.2.50"  # the HEP agent (a proxy)
COLLECTOR = "192.0.2.60"  # earshot's HEP port
A, B = "10.20.0.1", "10.20.0.2"  # caller and callee as seen by the agent
T0 = 1_767_000_000


def chunk(ctype, value):
    return struct.pack("!HHH", 0, ctype, 6 + len(value)) + value


def hep3(src, dst, sport, dport, secs, usecs, payload=None, compressed=None, proto=17):
    body = chunk(1, bytes([2]))  # IPv4
    body += chunk(2, bytes([proto]))
    body += chunk(3, socket.inet_aton(src)) + chunk(4, socket.inet_aton(dst))
    body += chunk(7, struct.pack("!H", sport)) + chunk(8, struct.pack("!H", dport))
    body += chunk(9, struct.pack("!I", secs)) + chunk(10, struct.pack("!I", usecs))
    body += chunk(11, bytes([1]))  # protocol type: SIP
    body += chunk(12, struct.pack("!I", 2001))  # capture agent id
    if payload is not None:
        body += chunk(15, payload)
    if compressed is not None:
        body += chunk(16, compressed)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def sip_call(n):
    cid = f"hepzlib-{n}@{A}"
    rtp_a, rtp_b = 44000 + 10 * n, 44500 + 10 * n

    def sdp(ip, port):
        return (
            f"v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )

    def msg(first, cseq, via_branch, to_tag, body=""):
        lines = [
            first,
            f"Via: SIP/2.0/UDP {A}:5060;branch=z9hG4bK-{n}-{via_branch}",
            f"From: <sip:alice{n}@{A}>;tag=a{n}",
            f"To: <sip:bob{n}@{B}>" + (f";tag=b{n}" if to_tag else ""),
            f"Call-ID: {cid}",
            f"CSeq: {cseq}",
            f"Contact: <sip:x@{A}:5060>",
            "Max-Forwards: 70",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    ruri = f"sip:bob{n}@{B}"
    return [
        (A, B, msg(f"INVITE {ruri} SIP/2.0", "1 INVITE", 1, False, sdp(A, rtp_a))),
        (B, A, msg("SIP/2.0 100 Trying", "1 INVITE", 1, False)),
        (B, A, msg("SIP/2.0 180 Ringing", "1 INVITE", 1, True)),
        (B, A, msg("SIP/2.0 200 OK", "1 INVITE", 1, True, sdp(B, rtp_b))),
        (A, B, msg(f"ACK {ruri} SIP/2.0", "1 ACK", 2, True)),
        (A, B, msg(f"BYE {ruri} SIP/2.0", "2 BYE", 3, True)),
        (B, A, msg("SIP/2.0 200 OK", "2 BYE", 3, True)),
    ]


def udp_frame(payload, sport=40000, dport=9060):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        socket.inet_aton(AGENT), socket.inet_aton(COLLECTOR),
    )
    csum = 0
    for i in range(0, 20, 2):
        csum += (ip[i] << 8) | ip[i + 1]
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def main():
    datagrams = []
    t = 0
    for n in range(3):
        for src, dst, sip in sip_call(n):
            t += 1
            datagrams.append(hep3(src, dst, 5060, 5060, T0 + t, 0, compressed=zlib.compress(sip, 9)))
    bomb = zlib.compress(b"INVITE sip:bomb@x SIP/2.0\r\n" + b" " * (1 << 20), 9)
    bad = [
        hep3(A, B, 5060, 5060, T0 + 30, 0, compressed=bomb),
        hep3(A, B, 5060, 5060, T0 + 31, 0, compressed=b"this is not a zlib stream at all"),
        hep3(A, B, 5060, 5060, T0 + 32, 0, compressed=zlib.compress(sip_call(9)[0][2])[:40]),
        hep3(A, B, 5060, 5060, T0 + 33, 0),
    ]
    datagrams += bad
    with open(OUT, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, d in enumerate(datagrams):
            frame = udp_frame(d)
            f.write(struct.pack("<IIII", T0 + i, 0, len(frame), len(frame)))
            f.write(frame)
    print(f"{OUT}: {len(datagrams)} HEP3 datagrams, 21 compressed SIP messages, {len(bad)} to skip")


if __name__ == "__main__":
    main()
