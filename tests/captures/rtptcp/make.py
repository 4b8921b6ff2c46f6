#!/usr/bin/env python3
"""Writes rtp-over-tcp.pcap: one SIP call (UDP, INVITE / 200 / ACK / BYE / 200) whose SDP
says `m=audio ... TCP/RTP/AVP 0` (RFC 4571) with `a=setup:active` (caller, port 9) and
`a=setup:passive` (callee, port 44000), `a=connection:new`; then a TCP connection (handshake,
FIN at the end) from the caller 10.40.0.1:44100 to the callee 10.40.0.2:44000 carrying
RFC 4571-framed PCMU RTP both ways for 5 s: the caller a 800 Hz tone, the callee 1300 Hz,
both made by sox (u-law). Segmentation is deliberately awkward: frames split across
segments, several frames in one segment, one segment retransmitted (caller -> callee) and one
pair of segments swapped (callee -> caller).

Needs sox and dpkt (pip install dpkt). Usage: make.py OUT.pcap"""
import subprocess
import sys

import dpkt

OUT = sys.argv[1]
A, B = "10.40.0.1", "10.40.0.2"
A_SIP, B_SIP = 43000, 43001
A_RTP, B_RTP = 44100, 44000
T0 = 1_767_200_000.0
SSRC = {"a": 0xA11CE001, "b": 0xB0B0B002}
TONE = {"a": 800, "b": 1300}
SECONDS = 5
PACKETS = SECONDS * 50


def ip(addr):
    return bytes(int(x) for x in addr.split("."))


def frame(src, dst, l4, proto):
    pkt = dpkt.ip.IP(src=ip(src), dst=ip(dst), p=proto, data=l4, ttl=64)
    pkt.len = 20 + len(bytes(l4))
    eth = dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\x01", dst=b"\x02\0\0\0\0\x02",
                                 type=dpkt.ethernet.ETH_TYPE_IP, data=pkt)
    return bytes(eth)


def udp(src, dst, sport, dport, payload):
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = 8 + len(payload)
    return frame(src, dst, u, dpkt.ip.IP_PROTO_UDP)


def sdp(ipaddr, port, setup):
    return (f"v=0\r\no=- 1 1 IN IP4 {ipaddr}\r\ns=-\r\nc=IN IP4 {ipaddr}\r\nt=0 0\r\n"
            f"m=audio {port} TCP/RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=setup:{setup}\r\na=connection:new\r\na=sendrecv\r\n")


def sip(first, cseq, to_tag, body=""):
    h = [first, f"Via: SIP/2.0/UDP {A}:{A_SIP};branch=z9hG4bK-rtptcp-{cseq.split()[0]}",
         f"From: <sip:alice@{A}>;tag=alice1", f"To: <sip:bob@{B}>" + (";tag=bob1" if to_tag else ""),
         f"Call-ID: rtp-over-tcp-1@{A}", f"CSeq: {cseq}", f"Contact: <sip:alice@{A}:{A_SIP}>",
         "Max-Forwards: 70"]
    if body:
        h.append("Content-Type: application/sdp")
    h.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n" + body).encode()


def tone(hz):
    return subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw", "-",
                           "synth", str(SECONDS), "sine", str(hz), "vol", "0.5"],
                          check=True, capture_output=True).stdout


class Tcp:
    """One direction of the connection: sequence numbers and segments."""

    def __init__(self, src, dst, sport, dport, isn):
        self.src, self.dst, self.sport, self.dport, self.seq = src, dst, sport, dport, isn
        self.ack = 0

    def seg(self, payload=b"", flags=dpkt.tcp.TH_ACK, seq=None):
        t = dpkt.tcp.TCP(sport=self.sport, dport=self.dport, seq=self.seq if seq is None else seq,
                         ack=self.ack, flags=flags, win=65535, data=payload)
        t.off = 5
        if seq is None:
            self.seq = (self.seq + len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)) & 0xFFFFFFFF
        return frame(self.src, self.dst, t, dpkt.ip.IP_PROTO_TCP)


def rtp_frames(who):
    audio = tone(TONE[who])
    out = []
    for i in range(PACKETS):
        hdr = bytes([0x80, 0x00]) + (1000 + i).to_bytes(2, "big") + (160 * i).to_bytes(4, "big") \
            + SSRC[who].to_bytes(4, "big")
        pkt = hdr + audio[160 * i:160 * i + 160]
        out.append(len(pkt).to_bytes(2, "big") + pkt)
    return out


def segments(frames):
    """(frame index at which it is sent, bytes): a cycle of 5 frames gives one segment with a
    whole frame, a frame and a half, then the rest with two more frames (several frames, one
    split), then one more."""
    pending, out = b"", []
    for i, f in enumerate(frames):
        pending += f
        step = i % 5
        if step == 1:
            out.append((i, pending[:-60]))
            pending = pending[-60:]
        elif step in (0, 4):
            out.append((i, pending))
            pending = b""
    if pending:
        out.append((len(frames) - 1, pending))
    return out


records = []


def at(t, data):
    records.append((t, data))


at(T0, udp(A, B, A_SIP, B_SIP, sip(f"INVITE sip:bob@{B}:{B_SIP} SIP/2.0", "1 INVITE", False,
                                  sdp(A, 9, "active"))))
at(T0 + 0.05, udp(B, A, B_SIP, A_SIP, sip("SIP/2.0 200 OK", "1 INVITE", True,
                                         sdp(B, B_RTP, "passive"))))
at(T0 + 0.06, udp(A, B, A_SIP, B_SIP, sip(f"ACK sip:bob@{B}:{B_SIP} SIP/2.0", "1 ACK", True)))

ab = Tcp(A, B, A_RTP, B_RTP, 0x10000000)
ba = Tcp(B, A, B_RTP, A_RTP, 0xFFFFF000)  # wraps past 2^32 during the call
t = T0 + 0.07
at(t, ab.seg(flags=dpkt.tcp.TH_SYN))
ba.ack = ab.seq
at(t + 0.0005, ba.seg(flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK))
ab.ack = ba.seq
at(t + 0.001, ab.seg())

start = T0 + 0.1
segs_ab = segments(rtp_frames("a"))
segs_ba = segments(rtp_frames("b"))
for n, (i, data) in enumerate(segs_ab):
    seq = ab.seq
    at(start + 0.02 * i + 0.0001, ab.seg(data))
    if n == 40:  # retransmitted 30 ms later, after newer segments
        at(start + 0.02 * i + 0.03, ab.seg(data, seq=seq))
ba_frames = []
for n, (i, data) in enumerate(segs_ba):
    ba_frames.append([start + 0.02 * i + 0.0002, ba.seg(data)])
# One out-of-order pair: segments 60 and 61 of callee -> caller captured in swapped order.
ba_frames[60][1], ba_frames[61][1] = ba_frames[61][1], ba_frames[60][1]
for tt, data in ba_frames:
    at(tt, data)

end = start + 0.02 * PACKETS + 0.05
ab.ack, ba.ack = ba.seq, ab.seq
at(end, ab.seg(flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK))
ba.ack = ab.seq
at(end + 0.0005, ba.seg(flags=dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK))
ab.ack = ba.seq
at(end + 0.001, ab.seg())
at(end + 0.01, udp(A, B, A_SIP, B_SIP, sip(f"BYE sip:bob@{B}:{B_SIP} SIP/2.0", "2 BYE", True)))
at(end + 0.02, udp(B, A, B_SIP, A_SIP, sip("SIP/2.0 200 OK", "2 BYE", True)))

records.sort(key=lambda r: r[0])
with open(OUT, "wb") as f:
    w = dpkt.pcap.Writer(f)
    for ts, data in records:
        w.writepkt(data, ts=ts)
