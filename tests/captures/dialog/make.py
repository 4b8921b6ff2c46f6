#!/usr/bin/env python3
"""Writes the dialog test captures (pcap, Ethernet/IPv4/UDP) from plain Python, with G.722
audio encoded by ffmpeg. Run from this folder: python3 make.py

hold_reinvite.pcap  one call, baresip-style: PCMU, hold (sendonly offer, recvonly answer),
                    resume (sendrecv), re-INVITE to PCMA, re-INVITE to G.722, BYE. The caller
                    keeps one SSRC throughout, as baresip does. A proxy's 100 Trying (Server:
                    proxy) comes before the callee's 180 and 200 (User-Agent: baresip callee).
unanswered.pcap     an INVITE that gets only a 100 Trying, then 40 s later a second call that
                    is answered (for the short timeout of unanswered INVITEs).
"""
import math
import struct
import subprocess

CALLER = "127.0.0.1"
CALLEE = "127.0.0.2"
SIP_A, SIP_B = 34000, 34010
RTP_A, RTP_B = 35000, 35010


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src, sport, dst, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + hdr + udp


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.recs = []

    def add(self, t, data):
        self.recs.append((t, data))

    def close(self):
        for t, data in sorted(self.recs, key=lambda r: r[0]):
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            self.f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        self.f.close()


def ulaw(x):
    # G.711 µ-law of a 16-bit sample (the classic Sun reference algorithm).
    bias, clip = 0x84, 32635
    sign = 0x80 if x < 0 else 0
    x = min(abs(x), clip) + bias
    exp = 7
    mask = 0x4000
    while exp > 0 and not x & mask:
        exp -= 1
        mask >>= 1
    mant = (x >> (exp + 3)) & 0x0F
    return ~(sign | exp << 4 | mant) & 0xFF


def alaw(x):
    sign = 0x80 if x >= 0 else 0
    x = min(abs(x), 32767) >> 3
    if x < 32:
        v = x >> 1
    else:
        exp = 1
        while x >= 64 and exp < 7:
            x >>= 1
            exp += 1
        v = exp << 4 | (x >> 1) & 0x0F
    return (sign | v) ^ 0x55


def tone(freq, rate, n, start):
    return [int(8000 * math.sin(2 * math.pi * freq * (start + i) / rate)) for i in range(n)]


def g722_frames(freq, seconds):
    raw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency={freq}:sample_rate=16000:duration={seconds}",
         "-ac", "1", "-ar", "16000", "-c:a", "g722", "-f", "g722", "-"],
        check=True, capture_output=True).stdout
    return [raw[i:i + 160] for i in range(0, len(raw) - 159, 160)]


def sdp(ip, port, pts, direction, version):
    names = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000", 101: "telephone-event/8000"}
    lines = [
        "v=0", f"o=- 1 {version} IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
        "m=audio %d RTP/AVP %s" % (port, " ".join(str(p) for p in pts + [101])),
    ]
    lines += ["a=rtpmap:%d %s" % (p, names[p]) for p in pts + [101]]
    lines += ["a=fmtp:101 0-15", "a=ptime:20", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


class Dialog:
    def __init__(self, cap, call_id, ua_b="baresip callee"):
        self.cap, self.call_id, self.ua_b = cap, call_id, ua_b
        self.from_ = f"<sip:alice@{CALLER}>;tag=fa"
        self.to = f"<sip:bob@{CALLEE}>"
        self.to_tag = None

    def msg(self, first, cseq, method, body=None, extra=()):
        to = self.to + (f";tag={self.to_tag}" if self.to_tag else "")
        h = [first, f"Via: SIP/2.0/UDP {CALLER}:{SIP_A};branch=z9hG4bK{cseq}{method}",
             f"From: {self.from_}", f"To: {to}", f"Call-ID: {self.call_id}",
             f"CSeq: {cseq} {method}", f"Contact: <sip:alice@{CALLER}:{SIP_A}>", *extra]
        if body:
            h.append("Content-Type: application/sdp")
        h.append(f"Content-Length: {len(body.encode()) if body else 0}")
        return ("\r\n".join(h) + "\r\n\r\n" + (body or "")).encode()

    def a2b(self, t, data):
        self.cap.add(t, frame(CALLER, SIP_A, CALLEE, SIP_B, data))

    def b2a(self, t, data):
        self.cap.add(t, frame(CALLEE, SIP_B, CALLER, SIP_A, data))

    def invite(self, t, cseq, body):
        self.a2b(t, self.msg(f"INVITE sip:bob@{CALLEE} SIP/2.0", cseq, "INVITE", body,
                             ["User-Agent: baresip caller"]))

    def reply(self, t, code, reason, cseq, method, body=None, agent=None):
        extra = [agent or f"User-Agent: {self.ua_b}"]
        self.b2a(t, self.msg(f"SIP/2.0 {code} {reason}", cseq, method, body, extra))

    def ack(self, t, cseq):
        self.a2b(t, self.msg(f"ACK sip:bob@{CALLEE}:{SIP_B} SIP/2.0", cseq, "ACK"))


class Rtp:
    def __init__(self, cap, src, sport, dst, dport, ssrc, freq):
        self.cap, self.src, self.sport, self.dst, self.dport = cap, src, sport, dst, dport
        self.ssrc, self.freq, self.seq, self.ts, self.sample = ssrc, freq, 1000, 5000, 0

    def run(self, t0, seconds, pt, g722=None):
        n = int(seconds / 0.02)
        for i in range(n):
            if pt == 9:
                payload = g722[i]
            else:
                enc = ulaw if pt == 0 else alaw
                payload = bytes(enc(x) for x in tone(self.freq, 8000, 160, self.sample))
            self.sample += 160
            hdr = struct.pack("!BBHII", 0x80, pt | (0x80 if i == 0 else 0), self.seq & 0xFFFF,
                              self.ts & 0xFFFFFFFF, self.ssrc)
            self.cap.add(t0 + i * 0.02 + 0.0001,
                         frame(self.src, self.sport, self.dst, self.dport, hdr + payload))
            self.seq += 1
            self.ts += 160


def hold_reinvite():
    cap = Pcap("hold_reinvite.pcap")
    T = 1_790_000_000.0
    d = Dialog(cap, "hold-reinvite-1@127.0.0.1")
    a = Rtp(cap, CALLER, RTP_A, CALLEE, RTP_B, 0xA11CE, 440)
    b = Rtp(cap, CALLEE, RTP_B, CALLER, RTP_A, 0xB0B, 1000)
    d.invite(T, 1, sdp(CALLER, RTP_A, [0, 8, 9], "sendrecv", 1))
    d.reply(T + 0.01, 100, "Trying", 1, "INVITE", agent="Server: proxy")
    d.to_tag = "tb"
    d.reply(T + 0.05, 180, "Ringing", 1, "INVITE")
    d.reply(T + 0.5, 200, "OK", 1, "INVITE", sdp(CALLEE, RTP_B, [0], "sendrecv", 1))
    d.ack(T + 0.51, 1)
    a.run(T + 0.52, 2, 0)
    b.run(T + 0.52, 2, 0)
    # Hold: the caller offers sendonly, the callee answers recvonly; the caller keeps sending.
    d.invite(T + 2.6, 2, sdp(CALLER, RTP_A, [0], "sendonly", 2))
    d.reply(T + 2.61, 200, "OK", 2, "INVITE", sdp(CALLEE, RTP_B, [0], "recvonly", 2))
    d.ack(T + 2.62, 2)
    a.run(T + 2.7, 2, 0)
    # Resume.
    d.invite(T + 4.8, 3, sdp(CALLER, RTP_A, [0], "sendrecv", 3))
    d.reply(T + 4.81, 200, "OK", 3, "INVITE", sdp(CALLEE, RTP_B, [0], "sendrecv", 3))
    d.ack(T + 4.82, 3)
    a.run(T + 4.9, 2, 0)
    b.run(T + 4.9, 2, 0)
    # Re-INVITE to PCMA.
    d.invite(T + 7.0, 4, sdp(CALLER, RTP_A, [8], "sendrecv", 4))
    d.reply(T + 7.01, 200, "OK", 4, "INVITE", sdp(CALLEE, RTP_B, [8], "sendrecv", 4))
    d.ack(T + 7.02, 4)
    a.run(T + 7.1, 2, 8)
    b.run(T + 7.1, 2, 8)
    # Re-INVITE to G.722.
    d.invite(T + 9.2, 5, sdp(CALLER, RTP_A, [9], "sendrecv", 5))
    d.reply(T + 9.21, 200, "OK", 5, "INVITE", sdp(CALLEE, RTP_B, [9], "sendrecv", 5))
    d.ack(T + 9.22, 5)
    a.run(T + 9.3, 2, 9, g722_frames(440, 2.2))
    b.run(T + 9.3, 2, 9, g722_frames(1000, 2.2))
    d.a2b(T + 11.4, d.msg(f"BYE sip:bob@{CALLEE}:{SIP_B} SIP/2.0", 6, "BYE"))
    d.reply(T + 11.41, 200, "OK", 6, "BYE")
    cap.close()


def unanswered():
    cap = Pcap("unanswered.pcap")
    T = 1_790_000_100.0
    d = Dialog(cap, "unanswered-1@127.0.0.1")
    d.invite(T, 1, sdp(CALLER, RTP_A, [0], "sendrecv", 1))
    d.reply(T + 0.01, 100, "Trying", 1, "INVITE", agent="Server: proxy")
    e = Dialog(cap, "answered-2@127.0.0.1")
    e.from_ = f"<sip:carol@{CALLER}>;tag=fc"
    e.invite(T + 40, 1, sdp(CALLER, RTP_A + 100, [0], "sendrecv", 1))
    e.to_tag = "td"
    e.reply(T + 40.5, 200, "OK", 1, "INVITE", sdp(CALLEE, RTP_B + 100, [0], "sendrecv", 1))
    e.ack(T + 40.51, 1)
    a = Rtp(cap, CALLER, RTP_A + 100, CALLEE, RTP_B + 100, 0xC0C, 440)
    a.run(T + 40.6, 1, 0)
    cap.close()


hold_reinvite()
unanswered()
