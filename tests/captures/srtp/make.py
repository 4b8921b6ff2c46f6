#!/usr/bin/env python3
"""Writes the captures of tests/captures/srtp/ (see README.md there).

An SRTP call as a PBX with SDES keys makes it: SIP in plain text whose SDP says RTP/SAVP and
carries each side's key (`a=crypto`, RFC 4568), and media protected by libsrtp2 (Cisco's
reference SRTP library, through the pylibsrtp wrapper), not by earshot. sox encodes the audio
(G.711 A-law). The SIP and packet framing come from ../listening/make.py.

    pip install pylibsrtp && python3 tests/captures/srtp/make.py    # needs sox on PATH

The keys are fixed (below), so a later test can decrypt with what the SDP says; the payload
under the encryption is a 400 Hz tone from the caller and 1 kHz from the callee. Every suite
earshot decrypts has its call (AES-CM 128 and 256 with HMAC-SHA1 80/32, AES-GCM 128 and 256),
two with several keys told apart by MKI, with SRTCP sender reports; the files written before
those came are written byte for byte as they were.
"""

import base64
import ctypes
import os
import struct
import subprocess
import sys
import tempfile

from pylibsrtp import Policy, Session, _binding

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


class CryptoPolicy(ctypes.Structure):
    """libsrtp2's srtp_crypto_policy_t (srtp.h)."""
    _fields_ = [("cipher_type", ctypes.c_uint32), ("cipher_key_len", ctypes.c_int),
                ("auth_type", ctypes.c_uint32), ("auth_key_len", ctypes.c_int),
                ("auth_tag_len", ctypes.c_int), ("sec_serv", ctypes.c_int)]


class MasterKeyT(ctypes.Structure):
    """libsrtp2's srtp_master_key_t: one master key and salt, and the MKI that names it."""
    _fields_ = [("key", ctypes.c_char_p), ("mki_id", ctypes.c_char_p),
                ("mki_size", ctypes.c_uint)]


class PolicyT(ctypes.Structure):
    """libsrtp2's srtp_policy_t (2.x layout, as the library pylibsrtp ships has it)."""
    _fields_ = [("ssrc_type", ctypes.c_int), ("ssrc_value", ctypes.c_uint32),
                ("rtp", CryptoPolicy), ("rtcp", CryptoPolicy), ("key", ctypes.c_char_p),
                ("keys", ctypes.POINTER(ctypes.POINTER(MasterKeyT))),
                ("num_master_keys", ctypes.c_ulong), ("deprecated_ekt", ctypes.c_void_p),
                ("window_size", ctypes.c_ulong), ("allow_repeat_tx", ctypes.c_int),
                ("enc_xtn_hdr", ctypes.c_void_p), ("enc_xtn_hdr_count", ctypes.c_int),
                ("next", ctypes.c_void_p)]


# The libsrtp2 inside pylibsrtp, called directly for what its Python API does not wrap: the
# AES-256 counter-mode suites (RFC 6188) and several master keys told apart by MKI (RFC 3711
# §3.1). Still libsrtp2 doing every byte of the protection.
LIBSRTP = ctypes.CDLL(_binding.__file__)
# srtp_sec_serv_t: authentication only (SRTCP sent with its E flag clear).
SEC_SERV_AUTH = 2
# SDES suite -> libsrtp2's policy setters for SRTP and for SRTCP (RFC 4568 §6.2: the _32 suites
# keep an 80-bit tag on SRTCP).
POLICIES = {
    "AES_CM_128_HMAC_SHA1_80": ("rtp_default", "rtcp_default"),
    "AES_256_CM_HMAC_SHA1_80": ("aes_cm_256_hmac_sha1_80", "aes_cm_256_hmac_sha1_80"),
    "AES_256_CM_HMAC_SHA1_32": ("aes_cm_256_hmac_sha1_32", "aes_cm_256_hmac_sha1_80"),
    "AEAD_AES_128_GCM": ("aes_gcm_128_16_auth", "aes_gcm_128_16_auth"),
    "AEAD_AES_256_GCM": ("aes_gcm_256_16_auth", "aes_gcm_256_16_auth"),
}


class Libsrtp:
    """One sender's libsrtp2 session for `suite`, with one master key (`keys` = [key]) or
    several, each with its MKI (`keys` = [(key, mki), ...]); SRTCP authenticated but not
    encrypted with `unencrypted_srtcp` (RFC 4568's UNENCRYPTED_SRTCP)."""

    def __init__(self, suite, keys, unencrypted_srtcp=False):
        policy = PolicyT()
        for setter, crypto in zip(POLICIES[suite], (policy.rtp, policy.rtcp)):
            getattr(LIBSRTP, "srtp_crypto_policy_set_" + setter)(ctypes.byref(crypto))
        if unencrypted_srtcp:
            policy.rtcp.sec_serv = SEC_SERV_AUTH
        policy.ssrc_type = _binding.lib.ssrc_any_outbound
        if len(keys) == 1 and isinstance(keys[0], bytes):
            policy.key = keys[0]
        else:
            self.masters = [MasterKeyT(key, mki, len(mki)) for key, mki in keys]
            array = (ctypes.POINTER(MasterKeyT) * len(keys))(
                *[ctypes.pointer(m) for m in self.masters])
            self.array = array
            policy.keys = array
            policy.num_master_keys = len(keys)
        self.ctx = ctypes.c_void_p()
        check(LIBSRTP.srtp_create(ctypes.byref(self.ctx), ctypes.byref(policy)))

    def protect(self, rtp, mki_index=None):
        return self._process(LIBSRTP.srtp_protect_mki, rtp, mki_index)

    def protect_rtcp(self, rtcp, mki_index=None):
        return self._process(LIBSRTP.srtp_protect_rtcp_mki, rtcp, mki_index)

    def _process(self, func, packet, mki_index):
        buf = ctypes.create_string_buffer(packet, len(packet) + 4 + 16 + 128)
        length = ctypes.c_int(len(packet))
        use_mki = 0 if mki_index is None else 1
        check(func(self.ctx, buf, ctypes.byref(length), use_mki, mki_index or 0))
        return buf.raw[:length.value]


def check(status):
    if status != 0:
        raise RuntimeError(f"libsrtp2 failed: srtp_err_status {status}")


def sender_report(ssrc, when, packets, cname):
    """An RTCP compound packet as a sender sends it every second: a sender report (RFC 3550
    §6.4.1) of `packets` 160-byte packets sent by `when`, then SDES with its CNAME."""
    ntp = int((when + 2_208_988_800) * 2**32)
    sr = struct.pack("!BBHIQIII", 0x80, 200, 6, ssrc, ntp, (1000 + packets * 160) & 0xFFFFFFFF,
                     packets, packets * 160)
    chunk = struct.pack("!I", ssrc) + bytes([1, len(cname)]) + cname + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return sr + struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk


class SuiteCall(listening.Call):
    """The SDES call with each side's media protected by a `Libsrtp` session of `suite`: keys
    by direction; with MKIs, packets from `switch_at` on use the second key (a rekey mid-call
    without signalling, what MKI is for). A sender report by SRTCP every second (50 packets)
    from the RTCP port (RTP + 1), when `rtcp`; not encrypted, only authenticated, with
    `unencrypted_srtcp` (which the a=crypto lines then say)."""

    def __init__(self, pcap, suite, caller_keys, callee_keys, switch_at=None, rtcp=True,
                 unencrypted_srtcp=False):
        params = " UNENCRYPTED_SRTCP" if unencrypted_srtcp else ""
        super().__init__(pcap, "srtp-sdes-1@earshot-test", 8, "PCMA/8000", proto="RTP/SAVP",
                         offer_extra=[crypto_line_keys(caller_keys, suite) + params],
                         answer_extra=[crypto_line_keys(callee_keys, suite) + params])
        self.suite, self.keys = suite, (caller_keys, callee_keys)
        self.switch_at, self.rtcp = switch_at, rtcp
        self.unencrypted_srtcp = unencrypted_srtcp

    def mki_index(self, i):
        if self.switch_at is None:
            return None
        return 0 if i < self.switch_at else 1

    def media(self, t, frames, from_caller, ssrc, samples_per_packet=160):
        keys = self.keys[0] if from_caller else self.keys[1]
        session = Libsrtp(self.suite, [k if isinstance(k, bytes) else k[:2] for k in keys],
                          self.unencrypted_srtcp)
        start = len(self.pcap.packets)
        end = super().media(t, frames, from_caller, ssrc, samples_per_packet)
        for n, i in enumerate(range(start, len(self.pcap.packets))):
            when, ident, frame = self.pcap.packets[i]
            srtp = session.protect(frame[42:], self.mki_index(n))
            self.pcap.packets[i] = (when, ident, rebuild(frame[:42], srtp))
        if self.rtcp:
            sport, dport = ((listening.RTP_CALLER, listening.RTP_CALLEE) if from_caller
                            else (listening.RTP_CALLEE, listening.RTP_CALLER))
            cname = b"caller@127.0.0.1" if from_caller else b"callee@127.0.0.1"
            for sent in range(50, len(frames), 50):
                when = t + sent * 0.020 - 0.001
                sr = sender_report(ssrc, when, sent, cname)
                srtcp = session.protect_rtcp(sr, self.mki_index(sent))
                self.pcap.add(when, sport + 1, dport + 1, srtcp)
        return end


def crypto_line_keys(keys, suite):
    """`a=crypto:1 SUITE inline:KEY` for one key; with MKIs (`(key, mki, lifetime)` each),
    RFC 4568's `inline:KEY|LIFETIME|MKI:LENGTH` for each, separated by `;`."""
    if len(keys) == 1 and isinstance(keys[0], bytes):
        return crypto_line(keys[0], suite)
    params = []
    for key, mki, lifetime in keys:
        value = int.from_bytes(mki, "big")
        params.append(f"inline:{base64.b64encode(key).decode()}|{lifetime}|{value}:{len(mki)}")
    return f"a=crypto:1 {suite} " + ";".join(params)


def suite_call(name, suite, caller_keys, callee_keys, switch_at=None, unencrypted_srtcp=False):
    """The SDES call (the clear twin's media, SSRCs and times) under `suite`, to `name`."""
    caller, callee = alaw_tone(400), alaw_tone(1000)
    p = listening.Pcap(os.path.join(HERE, name))
    c = SuiteCall(p, suite, caller_keys, callee_keys, switch_at,
                  unencrypted_srtcp=unencrypted_srtcp)
    t = c.invite(listening.T0, 0.5)
    end = max(c.media(t, caller, True, 0x7777AAAA), c.media(t + 0.005, callee, False, 0x8888BBBB))
    c.bye(end + 0.1)
    p.close()


def more_suites():
    """The SDES call under the other suites earshot decrypts, each with SRTCP sender reports:
    AES-256 counter mode (RFC 6188), AES-GCM (RFC 7714: a 16-byte master key and 12-byte salt
    for 128, 32 and 12 for 256), and two master keys per side told apart by a 4-byte MKI, the
    sender moving to the second key at packet 100 (AES_CM_128_HMAC_SHA1_80) and at packet 120
    (AEAD_AES_128_GCM, a 1-byte MKI). The _32 and AES-256-GCM calls send SRTCP authenticated
    but not encrypted (UNENCRYPTED_SRTCP)."""
    suite_call("sdes_aes_256_cm_80.pcap", "AES_256_CM_HMAC_SHA1_80",
               [bytes(range(1, 47))], [bytes(range(101, 147))])
    suite_call("sdes_aes_256_cm_32.pcap", "AES_256_CM_HMAC_SHA1_32",
               [bytes(range(1, 47))], [bytes(range(101, 147))], unencrypted_srtcp=True)
    suite_call("sdes_aead_aes_128_gcm.pcap", "AEAD_AES_128_GCM",
               [bytes(range(1, 29))], [bytes(range(101, 129))])
    suite_call("sdes_aead_aes_256_gcm.pcap", "AEAD_AES_256_GCM",
               [bytes(range(1, 45))], [bytes(range(101, 145))], unencrypted_srtcp=True)
    suite_call("sdes_mki.pcap", "AES_CM_128_HMAC_SHA1_80",
               [(CALLER_KEY, b"\x00\x00\x00\x01", "2^20"),
                (bytes(range(31, 61)), b"\x00\x00\x00\x02", "2^20")],
               [(CALLEE_KEY, b"\x00\x00\x00\x01", "2^20"),
                (bytes(range(131, 161)), b"\x00\x00\x00\x02", "2^20")], switch_at=100)
    suite_call("sdes_mki_gcm.pcap", "AEAD_AES_128_GCM",
               [(bytes(range(1, 29)), b"\x07", "1048576"), (bytes(range(31, 59)), b"\x09", "1048576")],
               [(bytes(range(101, 129)), b"\x07", "1048576"),
                (bytes(range(131, 159)), b"\x09", "1048576")], switch_at=120)


def late_join_gcm():
    """late_join.pcap under AEAD_AES_128_GCM (the key of sdes_aead_aes_128_gcm.pcap): the last
    100 of 70,100 packets, ROC 1, which only AES-GCM's tag can tell from the other ROCs."""
    frames = alaw_tone(400)
    caller_key, callee_key = bytes(range(1, 29)), bytes(range(101, 129))
    suite = "AEAD_AES_128_GCM"
    p = listening.Pcap(os.path.join(HERE, "late_join_gcm.pcap"))
    c = SrtpCall(p, "srtp-late-1@earshot-test", 8, "PCMA/8000", proto="RTP/SAVP",
                 offer_extra=[crypto_line(caller_key, suite)],
                 answer_extra=[crypto_line(callee_key, suite)])
    t = c.invite(listening.T0, 0.5)
    session = Session(policy=Policy(key=caller_key, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                    srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM))
    first = 70_000
    for i in range(first + 100):
        header = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, (1000 + i * 160) & 0xFFFFFFFF,
                             0x7777AAAA)
        srtp = session.protect(header + frames[i % len(frames)])
        if i >= first:
            p.add(t + (i - first) * 0.020, listening.RTP_CALLER, listening.RTP_CALLEE, srtp)
    c.bye(t + 100 * 0.020 + 0.1)
    p.close()


def receiver_report(reporter, ssrc, received, highest, cname):
    """An RTCP compound packet of a receiver (RFC 3550 §6.4.2): a receiver report with one
    block about `ssrc`, honestly computed from the `received` of its packets 0..`highest`
    (RFC 3550 A.3: cumulative lost = expected - received), then SDES with its CNAME."""
    expected = highest + 1
    lost = expected - received
    block = struct.pack("!IIIIII", ssrc, lost & 0xFFFFFF, highest, 0, 0, 0)
    rr = struct.pack("!BBHI", 0x81, 201, 7, reporter) + block
    chunk = struct.pack("!I", reporter) + bytes([1, len(cname)]) + cname + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return rr + struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk


# srtcp_rr*.pcap: of the caller's packets, 100..104 never reach the callee (network loss) and
# 105..109 reach it but not the capture (capture loss).
NETWORK_LOST, CAPTURE_MISSED = range(100, 105), range(105, 110)


def srtcp_receiver_reports():
    """The SDES call (AES_CM_128_HMAC_SHA1_80) whose callee reports on the caller's stream by
    SRTCP, and its clear twin: after the caller's 50th, 100th, 150th and 200th packet the callee
    sends a receiver report of what it got (SSRC 0x8888BBBB, its CNAME) from its RTCP port,
    encrypted by libsrtp2's `srtp_protect_rtcp` with the callee's key (the clear twin sends the
    same report unprotected). Of the caller's packets the capture lacks 100..109: the reports
    say the callee lost 100..104 (network loss) and got 105..109 (capture loss)."""
    for name, secure in (("srtcp_rr.pcap", True), ("srtcp_rr_clear.pcap", False)):
        caller, callee = alaw_tone(400), alaw_tone(1000)
        p = listening.Pcap(os.path.join(HERE, name))
        extra = {"proto": "RTP/SAVP", "offer_extra": [crypto_line(CALLER_KEY)],
                 "answer_extra": [crypto_line(CALLEE_KEY)]} if secure else {}
        c = (SrtpCall if secure else listening.Call)(p, "srtp-rtcp-1@earshot-test", 8,
                                                     "PCMA/8000", **extra)
        t = c.invite(listening.T0, 0.5)
        start = len(p.packets)
        end = c.media(t, caller, True, 0x7777AAAA)
        # The caller's packets are the `start + seq`th; drop the ten the capture lacks.
        missing = {start + seq for seq in (*NETWORK_LOST, *CAPTURE_MISSED)}
        p.packets = [pk for i, pk in enumerate(p.packets) if i not in missing]
        end = max(end, c.media(t + 0.005, callee, False, 0x8888BBBB))
        session = Libsrtp(SUITE, [CALLEE_KEY]) if secure else None
        for highest in (49, 99, 149, 199):
            received = sum(1 for s in range(highest + 1) if s not in NETWORK_LOST)
            rr = receiver_report(0x8888BBBB, 0x7777AAAA, received, highest, b"callee@127.0.0.1")
            when = t + highest * 0.020 + 0.010
            packet = session.protect_rtcp(rr) if secure else rr
            p.add(when, listening.RTP_CALLEE + 1, listening.RTP_CALLER + 1, packet)
        c.bye(end + 0.1)
        p.close()


def srtp_dtmf():
    """An SDES call (AES_CM_128_HMAC_SHA1_80) whose caller sends DTMF as telephone-events
    (RFC 4733, PT 101, SRTP like its audio), and its clear twin: 3 s of the 400 Hz tone in which
    the digit 5 (packets 50-54) and then 9 (100-104) replace the audio, each event five
    packets with one RTP timestamp, the last three its end (E bit)."""
    tone = alaw_tone(400)
    for name, secure in (("srtp_dtmf.pcap", True), ("srtp_dtmf_clear.pcap", False)):
        p = listening.Pcap(os.path.join(HERE, name))
        events = ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
        extra = {"proto": "RTP/SAVP", "offer_extra": events + [crypto_line(CALLER_KEY)],
                 "answer_extra": events + [crypto_line(CALLEE_KEY)]} if secure else {
                 "offer_extra": events, "answer_extra": events}
        c = listening.Call(p, "srtp-dtmf-1@earshot-test", 8, "PCMA/8000", **extra)
        t = c.invite(listening.T0, 0.5)
        session = Session(policy=Policy(key=CALLER_KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        for i in range(150):
            digit = {0: 5, 1: 9}.get((i - 50) // 50) if (i - 50) % 50 < 5 and i >= 50 else None
            if digit is None:
                pt, ts, payload = 8, 1000 + i * 160, tone[i % len(tone)]
            else:
                n = (i - 50) % 50
                end = 0x80 if n >= 2 else 0
                # The event starts at its first packet's time and lasts 3 packets' worth.
                pt, ts = 101, 1000 + (i - n) * 160
                payload = struct.pack("!BBH", digit, end | 10, 160 * min(n + 1, 3))
            marker = 0x80 if i == 0 or (digit is not None and (i - 50) % 50 == 0) else 0
            rtp = struct.pack("!BBHII", 0x80, marker | pt, i, ts, 0x7777AAAA) + payload
            data = session.protect(rtp) if secure else rtp
            p.add(t + i * 0.020, listening.RTP_CALLER, listening.RTP_CALLEE, data)
        c.bye(t + 150 * 0.020 + 0.1)
        p.close()


if __name__ == "__main__":
    sdes_call()
    sdes_32()
    no_key_and_clear_twin()
    late_join()
    more_suites()
    late_join_gcm()
    srtcp_receiver_reports()
    srtp_dtmf()
