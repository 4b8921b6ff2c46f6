#!/usr/bin/env python3
"""Writes the captures of tests/captures/srtp/ (see README.md there).

An SRTP call as a PBX with SDES keys makes it: SIP in plain text whose SDP says RTP/SAVP and
carries each side's key (`a=crypto`, RFC 4568), and media protected by libsrtp2 (Cisco's
reference SRTP library, through the pylibsrtp wrapper), not by earshot. sox encodes the audio
(G.711 A-law). The SIP and packet framing come from ../listening/make.py.

    pip install pylibsrtp && python3 tests/captures/srtp/make.py    # needs sox on PATH

The keys are fixed (below), so a later test can decrypt with what the SDP says; the payload
under the encryption is a 400 Hz tone from the caller and 1 kHz from the callee.
"""

import base64
import os
import struct
import subprocess
import sys
import tempfile

from pylibsrtp import Policy, Session

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "listening"))
import make as listening  # noqa: E402

# Master key (16 bytes) then master salt (14), per direction: what each side sends with.
CALLER_KEY = bytes(range(1, 31))
CALLEE_KEY = bytes(range(101, 131))
SUITE = "AES_CM_128_HMAC_SHA1_80"


def crypto_line(key, suite=SUITE):
    return f"a=crypto:1 {suite} inline:{base64.b64encode(key).decode()}"


class SrtpCall(listening.Call):
    """The listening captures' call, with its RTP protected by libsrtp2 as it is added."""

    profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80

    def media(self, t, frames, from_caller, ssrc, samples_per_packet=160):
        key = CALLER_KEY if from_caller else CALLEE_KEY
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=self.profile)
        session = Session(policy=policy)
        start = len(self.pcap.packets)
        end = super().media(t, frames, from_caller, ssrc, samples_per_packet)
        for i in range(start, len(self.pcap.packets)):
            when, ident, frame = self.pcap.packets[i]
            headers, rtp = frame[:42], frame[42:]
            srtp = session.protect(rtp)
            self.pcap.packets[i] = (when, ident, rebuild(headers, srtp))
        return end


def rebuild(headers, payload):
    """Ethernet/IPv4/UDP headers of `headers` resized for `payload`, the IP checksum redone."""
    eth, ip, udp = headers[:14], bytearray(headers[14:34]), bytearray(headers[34:42])
    struct.pack_into("!H", udp, 4, 8 + len(payload))
    struct.pack_into("!H", ip, 2, 20 + 8 + len(payload))
    struct.pack_into("!H", ip, 10, 0)
    struct.pack_into("!H", ip, 10, listening.ip_checksum(bytes(ip)))
    return eth + bytes(ip) + bytes(udp) + payload


def alaw_tone(hz):
    """4 s of a sine at half scale in G.711 A-law by sox, undithered so the file is the same
    every time."""
    with tempfile.NamedTemporaryFile(suffix=".al", delete=False) as tmp:
        path = tmp.name
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", path, "synth", "4", "sine",
                    str(hz), "vol", "0.5"], check=True)
    data = open(path, "rb").read()
    os.unlink(path)
    return listening.chunks(data, 160)


def sdes_call():
    """4 s each way of G.711 A-law under AES_CM_128_HMAC_SHA1_80, then BYE."""
    caller, callee = alaw_tone(400), alaw_tone(1000)
    p = listening.Pcap(os.path.join(HERE, "sdes_aes_cm_80.pcap"))
    c = SrtpCall(p, "srtp-sdes-1@earshot-test", 8, "PCMA/8000", proto="RTP/SAVP",
                 offer_extra=[crypto_line(CALLER_KEY)], answer_extra=[crypto_line(CALLEE_KEY)])
    t = c.invite(listening.T0, 0.5)
    end = max(c.media(t, caller, True, 0x7777AAAA), c.media(t + 0.005, callee, False, 0x8888BBBB))
    c.bye(end + 0.1)
    p.close()


def sdes_32():
    """The SDES call under AES_CM_128_HMAC_SHA1_32 (a 4-byte tag)."""
    caller, callee = alaw_tone(400), alaw_tone(1000)
    suite = "AES_CM_128_HMAC_SHA1_32"
    p = listening.Pcap(os.path.join(HERE, "sdes_aes_cm_32.pcap"))
    c = SrtpCall(p, "srtp-sdes-1@earshot-test", 8, "PCMA/8000", proto="RTP/SAVP",
                 offer_extra=[crypto_line(CALLER_KEY, suite)],
                 answer_extra=[crypto_line(CALLEE_KEY, suite)])
    c.profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_32
    t = c.invite(listening.T0, 0.5)
    end = max(c.media(t, caller, True, 0x7777AAAA), c.media(t + 0.005, callee, False, 0x8888BBBB))
    c.bye(end + 0.1)
    p.close()


def no_key_and_clear_twin():
    """The SDES call twice more: as DTLS-SRTP (`UDP/TLS/RTP/SAVP`, a fingerprint, no
    a=crypto: keys a sensor without a key log cannot know) and in the clear (RTP/AVP, the same
    payloads unencrypted), the reference a decrypted call must equal."""
    caller, callee = alaw_tone(400), alaw_tone(1000)
    fingerprint = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)
    p = listening.Pcap(os.path.join(HERE, "dtls_no_key.pcap"))
    c = SrtpCall(p, "srtp-dtls-1@earshot-test", 8, "PCMA/8000", proto="UDP/TLS/RTP/SAVP",
                 offer_extra=[fingerprint, "a=setup:actpass"],
                 answer_extra=[fingerprint, "a=setup:active"])
    t = c.invite(listening.T0, 0.5)
    end = max(c.media(t, caller, True, 0x7777AAAA), c.media(t + 0.005, callee, False, 0x8888BBBB))
    c.bye(end + 0.1)
    p.close()
    p = listening.Pcap(os.path.join(HERE, "clear_twin.pcap"))
    c = listening.Call(p, "srtp-sdes-1@earshot-test", 8, "PCMA/8000")
    t = c.invite(listening.T0, 0.5)
    end = max(c.media(t, caller, True, 0x7777AAAA), c.media(t + 0.005, callee, False, 0x8888BBBB))
    c.bye(end + 0.1)
    p.close()


def late_join():
    """A call whose media the capture holds only from its 70,000th packet on: libsrtp2 protects
    70,100 packets of the caller's stream (the sequence number wraps once, so ROC 1 at the
    end) and the last 100 are written, 20 ms apart, after the call's SIP and SDP."""
    frames = alaw_tone(400)
    p = listening.Pcap(os.path.join(HERE, "late_join.pcap"))
    c = SrtpCall(p, "srtp-late-1@earshot-test", 8, "PCMA/8000", proto="RTP/SAVP",
                 offer_extra=[crypto_line(CALLER_KEY)], answer_extra=[crypto_line(CALLEE_KEY)])
    t = c.invite(listening.T0, 0.5)
    session = Session(policy=Policy(key=CALLER_KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    first = 70_000
    for i in range(first + 100):
        header = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, (1000 + i * 160) & 0xFFFFFFFF,
                             0x7777AAAA)
        srtp = session.protect(header + frames[i % len(frames)])
        if i >= first:
            p.add(t + (i - first) * 0.020, listening.RTP_CALLER, listening.RTP_CALLEE, srtp)
    c.bye(t + 100 * 0.020 + 0.1)
    p.close()


if __name__ == "__main__":
    sdes_call()
    sdes_32()
    no_key_and_clear_twin()
    late_join()
