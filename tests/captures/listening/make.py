#!/usr/bin/env python3
"""Writes the captures of tests/captures/listening/ (see README.md there).

The audio comes from sox (an independent GSM 06.10 encoder, libgsm through sox's gsm format,
and sox's own G.711 u-law writer); this script only wraps the frames in RTP/UDP/IPv4/Ethernet
and puts them inside a SIP call written as plain text messages. No earshot code is involved.

    python3 tests/captures/listening/make.py      # needs sox on PATH

Ports: SIP 37010 (caller) and 37020 (callee), media 38010 (caller) and 38020 (callee), all on
127.0.0.1, inside the range reserved for these captures.
"""

import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
IP = "127.0.0.1"
SIP_CALLER, SIP_CALLEE = 37010, 37020
RTP_CALLER, RTP_CALLEE = 38010, 38020
T0 = 1_764_000_000.0  # capture start, seconds since the epoch


def ip_checksum(header):
    s = sum(struct.unpack("!10H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(sport, dport, payload, ident):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    eth = b"\x00" * 12 + b"\x08\x00"
    return eth + ip + udp


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.packets = []
        self.ident = 0

    def add(self, t, sport, dport, payload):
        self.ident += 1
        self.packets.append((t, self.ident, frame(sport, dport, payload, self.ident)))

    def close(self):
        for t, _, data in sorted(self.packets):
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            if usec == 1_000_000:
                sec, usec = sec + 1, 0
            self.f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        self.f.close()


def sox(args, suffix):
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        path = tmp.name
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", path] + args, check=True)
    data = open(path, "rb").read()
    os.unlink(path)
    return data


def sdp(port, pt, rtpmap, fmtp=None, session=1, proto="RTP/AVP", extra=()):
    lines = [
        "v=0",
        f"o=- {session} 1 IN IP4 {IP}",
        "s=-",
        f"c=IN IP4 {IP}",
        "t=0 0",
        f"m=audio {port} {proto} {pt}",
        f"a=rtpmap:{pt} {rtpmap}",
    ]
    if fmtp:
        lines.append(f"a=fmtp:{pt} {fmtp}")
    lines.extend(extra)
    lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


def sip(start_line, call_id, cseq, method, from_tag, to_tag=None, body=""):
    to = f"<sip:callee@{IP}:{SIP_CALLEE}>" + (f";tag={to_tag}" if to_tag else "")
    headers = [
        start_line,
        f"Via: SIP/2.0/UDP {IP}:{SIP_CALLER};branch=z9hG4bK-{call_id}-{cseq}-{method}",
        f"From: \"caller\" <sip:caller@{IP}:{SIP_CALLER}>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:x@{IP}:{SIP_CALLER}>",
        "Max-Forwards: 70",
    ]
    if body:
        headers.append("Content-Type: application/sdp")
    headers.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


class Call:
    """One call between the caller and the callee: SIP in plain text, RTP added by the caller."""

    def __init__(self, pcap, call_id, pt, rtpmap, fmtp=None, proto="RTP/AVP", offer_extra=(),
                 answer_extra=()):
        self.pcap, self.call_id, self.pt = pcap, call_id, pt
        self.rtpmap, self.fmtp = rtpmap, fmtp
        self.proto, self.offer_extra, self.answer_extra = proto, offer_extra, answer_extra
        self.ftag, self.ttag = "f" + call_id[:6], "t" + call_id[:6]

    def invite(self, t, ringing_s):
        uri = f"INVITE sip:callee@{IP}:{SIP_CALLEE} SIP/2.0"
        offer = sdp(RTP_CALLER, self.pt, self.rtpmap, self.fmtp, 1, self.proto, self.offer_extra)
        answer = sdp(RTP_CALLEE, self.pt, self.rtpmap, self.fmtp, 2, self.proto,
                     self.answer_extra)
        cid, p = self.call_id, self.pcap
        p.add(t, SIP_CALLER, SIP_CALLEE, sip(uri, cid, 1, "INVITE", self.ftag, body=offer))
        p.add(t + 0.01, SIP_CALLEE, SIP_CALLER,
              sip("SIP/2.0 100 Trying", cid, 1, "INVITE", self.ftag))
        p.add(t + 0.05, SIP_CALLEE, SIP_CALLER,
              sip("SIP/2.0 180 Ringing", cid, 1, "INVITE", self.ftag, self.ttag))
        answered = t + 0.05 + ringing_s
        p.add(answered, SIP_CALLEE, SIP_CALLER,
              sip("SIP/2.0 200 OK", cid, 1, "INVITE", self.ftag, self.ttag, answer))
        ack = f"ACK sip:callee@{IP}:{SIP_CALLEE} SIP/2.0"
        p.add(answered + 0.01, SIP_CALLER, SIP_CALLEE, sip(ack, cid, 1, "ACK", self.ftag, self.ttag))
        return answered + 0.02

    def media(self, t, frames, from_caller, ssrc, samples_per_packet=160):
        sport, dport = (RTP_CALLER, RTP_CALLEE) if from_caller else (RTP_CALLEE, RTP_CALLER)
        for i, payload in enumerate(frames):
            header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | self.pt, i & 0xFFFF,
                                 (1000 + i * samples_per_packet) & 0xFFFFFFFF, ssrc)
            self.pcap.add(t + i * 0.020, sport, dport, header + payload)
        return t + len(frames) * 0.020

    def bye(self, t):
        bye = f"BYE sip:callee@{IP}:{SIP_CALLEE} SIP/2.0"
        cid, p = self.call_id, self.pcap
        p.add(t, SIP_CALLER, SIP_CALLEE, sip(bye, cid, 2, "BYE", self.ftag, self.ttag))
        p.add(t + 0.01, SIP_CALLEE, SIP_CALLER,
              sip("SIP/2.0 200 OK", cid, 2, "BYE", self.ftag, self.ttag))


def chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data) - size + 1, size)]


def gsm_tone():
    """10 s of GSM: the caller a steady 1000 Hz sine at half scale (-9.0 dBFS RMS), the callee
    a 600 Hz sine at a quarter scale (-15.1 dBFS)."""
    caller = chunks(sox(["synth", "10", "sine", "1000", "vol", "0.5"], ".gsm"), 33)
    callee = chunks(sox(["synth", "10", "sine", "600", "vol", "0.25"], ".gsm"), 33)
    p = Pcap(os.path.join(HERE, "gsm_tone.pcap"))
    c = Call(p, "gsm-tone-1@earshot-test", 3, "GSM/8000")
    t = c.invite(T0, 0.5)
    end = max(c.media(t, caller, True, 0x1111AAAA), c.media(t + 0.005, callee, False, 0x2222BBBB))
    c.bye(end + 0.1)
    p.close()


def ringing_then_answered():
    """12 s of ringing with no media, then 4 s of G.711 u-law both ways (sox), then BYE."""
    caller = chunks(sox(["synth", "4", "sine", "1000", "vol", "0.5"], ".ul"), 160)
    callee = chunks(sox(["synth", "4", "sine", "600", "vol", "0.25"], ".ul"), 160)
    p = Pcap(os.path.join(HERE, "ringing_then_answered.pcap"))
    c = Call(p, "ringing-1@earshot-test", 0, "PCMU/8000")
    t = c.invite(T0, 12.0)
    end = max(c.media(t, caller, True, 0x3333CCCC), c.media(t + 0.005, callee, False, 0x4444DDDD))
    c.bye(end + 0.1)
    p.close()


def evs_payload(i):
    """One EVS payload in its compact format (3GPP TS 26.445 Annex A.2.1): a single 13.2 kbit/s
    frame is 33 bytes, no header. The bits are a pattern: earshot cannot decode EVS, and what
    matters is that a sensor names the codec and never plays the bytes."""
    return bytes(((i * 37 + k * 11) & 0xFF) for k in range(33))


def evs_call():
    """An answered call whose SDP offers only EVS (PT 96, 16 kHz clock): 6 s each way."""
    frames = [evs_payload(i) for i in range(300)]
    p = Pcap(os.path.join(HERE, "evs_call.pcap"))
    c = Call(p, "evs-1@earshot-test", 96, "EVS/16000")
    t = c.invite(T0, 0.5)
    end = max(c.media(t, frames, True, 0x5555EEEE, 320),
              c.media(t + 0.005, frames, False, 0x6666FFFF, 320))
    c.bye(end + 0.1)
    p.close()


if __name__ == "__main__":
    which = sys.argv[1:] or ["gsm", "ringing", "evs"]
    if "gsm" in which:
        gsm_tone()
    if "ringing" in which:
        ringing_then_answered()
    if "evs" in which:
        evs_call()
