#!/usr/bin/env python3
"""Captures for telling capture loss from network loss (issue 19).

Plain Python, no earshot code: a SIP call (INVITE/200/ACK ... BYE/200) whose caller sends
10 s of PCMU (500 packets, 20 ms) to the called party, and the called party sends back
10 s too. Every 2 s each side sends an RTCP receiver report about the stream it receives,
honestly computed from what that receiver got (RFC 3550 A.3: cumulative lost = expected -
received; extended highest sequence number).

* capture-loss.pcap: the caller's packets 100..109 reached the called party (its reports say
  0 lost), but are missing from the capture: the sensor missed them.
* network-loss.pcap: the same 10 packets never reached the called party (its reports count
  them) and are missing from the capture: the network lost them.

Run: python3 make.py (writes both files next to this script).
"""
import os
import struct

CALLER, CALLED = "10.0.0.1", "10.0.0.2"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MISSING = range(100, 110)


def ip(a):
    return bytes(int(x) for x in a.split("."))


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src, sport, dst, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, ip(src), ip(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + hdr + udp


def sdp(addr, port):
    return (
        "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
        "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % (addr, addr, port)
    )


def sip(first, cseq, to_tag, body=""):
    lines = [
        first,
        "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%s" % (CALLER, cseq.split()[0]),
        "From: <sip:alice@%s>;tag=ft1" % CALLER,
        "To: <sip:bob@%s>%s" % (CALLED, ";tag=tt1" if to_tag else ""),
        "Call-ID: capture-loss@example",
        "CSeq: %s" % cseq,
        "Contact: <sip:alice@%s:5060>" % CALLER,
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def rtp(ssrc, seq, ts):
    return struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + b"\xff" * 160


def rr(reporter, ssrc, lost, highest):
    block = struct.pack("!IIIIII", ssrc, lost & 0xFFFFFF, highest, 0, 0, 0)
    return struct.pack("!BBHI", 0x81, 201, 7, reporter) + block


def build(network_loss):
    pkts = []  # (time in µs, frame)
    add = lambda t, *f: pkts.append((t, frame(*f)))
    add(0, CALLER, 5060, CALLED, 5060,
        sip("INVITE sip:bob@%s SIP/2.0" % CALLED, "1 INVITE", False, sdp(CALLER, 4000)))
    add(500_000, CALLED, 5060, CALLER, 5060,
        sip("SIP/2.0 200 OK", "1 INVITE", True, sdp(CALLED, 5000)))
    add(510_000, CALLER, 5060, CALLED, 5060, sip("ACK sip:bob@%s SIP/2.0" % CALLED, "1 ACK", True))
    received = {"caller": 0, "called": 0}
    for seq in range(500):
        t = 1_000_000 + seq * 20_000
        lost_here = seq in MISSING
        # Caller -> called: the capture never has the missing ones; the called party got
        # them unless the network lost them.
        if not lost_here:
            add(t, CALLER, 4000, CALLED, 5000, rtp(0x1111, seq, seq * 160))
        if not (lost_here and network_loss):
            received["called"] += 1
        add(t + 3_000, CALLED, 5000, CALLER, 4000, rtp(0x2222, seq, seq * 160))
        received["caller"] += 1
        if seq % 100 == 99:
            lost = (seq + 1) - received["called"]
            add(t + 5_000, CALLED, 5001, CALLER, 4001, rr(0x2222, 0x1111, lost, seq))
            add(t + 6_000, CALLER, 4001, CALLED, 5001, rr(0x1111, 0x2222, 0, seq))
    end = 1_000_000 + 500 * 20_000
    add(end + 100_000, CALLER, 5060, CALLED, 5060, sip("BYE sip:bob@%s SIP/2.0" % CALLED, "2 BYE", True))
    add(end + 120_000, CALLED, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", "2 BYE", True))
    pkts.sort(key=lambda p: p[0])
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for t, f in pkts:
        sec, usec = divmod(t, 1_000_000)
        out += struct.pack("<IIII", T0 + sec, usec, len(f), len(f)) + f
    return out


here = os.path.dirname(os.path.abspath(__file__))
for name, network in [("capture-loss.pcap", False), ("network-loss.pcap", True)]:
    with open(os.path.join(here, name), "wb") as f:
        f.write(build(network))
