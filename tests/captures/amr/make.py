#!/usr/bin/env python3
"""Writes the AMR captures of tests/captures/amr/ and their reference decodes (README.md).

The speech frames come from independent encoders, not from earshot: OpenCORE's AMR-NB encoder
(libopencore-amrnb) and VisualOn's AMR-WB encoder (libvo-amrwbenc), driven through ctypes; the
references are FFmpeg's own AMR decoders (its native amrnb/amrwb, not OpenCORE, which earshot
decodes with). sox makes the tones. The SIP and RTP framing come from ../listening/make.py;
the RFC 4867 payload packing (octet-aligned, bandwidth-efficient) is written out below.

    apt-get install libopencore-amrnb-dev libvo-amrwbenc-dev ffmpeg sox
    python3 tests/captures/amr/make.py

Under each call: a 400 Hz tone from the caller and 1 kHz from the callee, 3 s each.
"""

import ctypes
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "listening"))
import make as listening  # noqa: E402

SECONDS = 3
# RFC 4867 §3.6 / TS 26.101, TS 26.201: speech bits per frame type.
NB_BITS = [95, 103, 118, 134, 148, 159, 204, 244, 39]
WB_BITS = [132, 177, 253, 285, 317, 365, 397, 461, 477, 40]


def tone(hz, rate):
    """SECONDS of a sine at half scale, 16-bit mono at `rate`, undithered (reproducible)."""
    with tempfile.NamedTemporaryFile(suffix=".raw", delete=False) as tmp:
        path = tmp.name
    subprocess.run(["sox", "-D", "-n", "-r", str(rate), "-b", "16", "-e", "signed", "-c", "1",
                    path, "synth", str(SECONDS), "sine", str(hz), "vol", "0.5"], check=True)
    data = open(path, "rb").read()
    os.unlink(path)
    return data


def encode_nb(pcm, mode=7):
    """Storage-format frames (RFC 4867 §5.3) from OpenCORE's AMR-NB encoder, 12.2 kbit/s."""
    lib = ctypes.CDLL("libopencore-amrnb.so.0")
    lib.Encoder_Interface_init.restype = ctypes.c_void_p
    lib.Encoder_Interface_Encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                             ctypes.c_char_p, ctypes.c_int]
    state = lib.Encoder_Interface_init(0)
    out = ctypes.create_string_buffer(64)
    frames = []
    for i in range(0, len(pcm) - 319, 320):
        n = lib.Encoder_Interface_Encode(state, mode, pcm[i:i + 320], out, 0)
        frames.append(out.raw[:n])
    return frames


def encode_wb(pcm, mode=8):
    """Storage-format frames from VisualOn's AMR-WB encoder, 23.85 kbit/s."""
    lib = ctypes.CDLL("libvo-amrwbenc.so.0")
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_int]
    state = lib.E_IF_init()
    out = ctypes.create_string_buffer(64)
    frames = []
    for i in range(0, len(pcm) - 639, 640):
        n = lib.E_IF_encode(state, mode, pcm[i:i + 640], out, 0)
        frames.append(out.raw[:n])
    return frames


def reference(frames, wideband, name):
    """FFmpeg's decode of the frames (as an RFC 4867 §5 storage file): 16-bit mono raw."""
    magic = b"#!AMR-WB\n" if wideband else b"#!AMR\n"
    with tempfile.NamedTemporaryFile(suffix=".amr", delete=False) as tmp:
        tmp.write(magic + b"".join(frames))
        path = tmp.name
    rate = "16000" if wideband else "8000"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", path, "-f", "s16le", "-ac", "1",
                    "-ar", rate, os.path.join(HERE, name)], check=True)
    os.unlink(path)


def bits_of(frame, n):
    """The n speech bits of a storage frame, MSB first, after its header byte."""
    data = frame[1:]
    return [(data[i // 8] >> (7 - i % 8)) & 1 for i in range(n)]


def pack_bits(bits):
    bits = bits + [0] * (-len(bits) % 8)
    return bytes(sum(b << (7 - j) for j, b in enumerate(bits[i:i + 8]))
                 for i in range(0, len(bits), 8))


def payload(frames, wideband, octet_aligned):
    """One RFC 4867 payload of `frames` (storage format): CMR 15 (no request), a table of
    contents entry per frame, then the frames, octet-aligned (§4.4) or bandwidth-efficient
    (§4.3)."""
    table = WB_BITS if wideband else NB_BITS
    if octet_aligned:
        toc = bytes(((0x80 if i + 1 < len(frames) else 0) | (f[0] & 0x7C))
                    for i, f in enumerate(frames))
        return bytes([0xF0]) + toc + b"".join(f[1:] for f in frames)
    bits = [1, 1, 1, 1]
    for i, f in enumerate(frames):
        ft, q = (f[0] >> 3) & 0x0F, (f[0] >> 2) & 1
        bits += [1 if i + 1 < len(frames) else 0] + [(ft >> k) & 1 for k in (3, 2, 1, 0)] + [q]
    for f in frames:
        ft = (f[0] >> 3) & 0x0F
        bits += bits_of(f, table[ft])
    return pack_bits(bits)


def call(name, wideband, octet_aligned, per_packet):
    rate = 16000 if wideband else 8000
    encode = encode_wb if wideband else encode_nb
    caller, callee = encode(tone(400, rate)), encode(tone(1000, rate))
    tag = "wb" if wideband else "nb"
    reference(caller, wideband, f"ref_{tag}_caller.s16")
    reference(callee, wideband, f"ref_{tag}_callee.s16")
    group = lambda fs: [payload(fs[i:i + per_packet], wideband, octet_aligned)
                        for i in range(0, len(fs), per_packet)]
    encoding = "AMR-WB/16000" if wideband else "AMR/8000"
    fmtp = "octet-align=1" if octet_aligned else None
    p = listening.Pcap(os.path.join(HERE, name))
    c = listening.Call(p, f"{name}@earshot-test", 96, encoding, fmtp)
    t = c.invite(listening.T0, 0.5)
    samples = per_packet * (320 if wideband else 160)
    # listening.Call spaces packets 20 ms apart; several frames a packet need more room.
    step = 0.020 * per_packet
    for payloads, from_caller, ssrc, start in ((group(caller), True, 0x1234AAAA, t),
                                              (group(callee), False, 0x5678BBBB, t + 0.005)):
        for i, data in enumerate(payloads):
            header = bytes([0x80, (0x80 if i == 0 else 0) | 96]) + (i & 0xFFFF).to_bytes(2, "big") \
                + ((1000 + i * samples) & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            sport, dport = (listening.RTP_CALLER, listening.RTP_CALLEE) if from_caller else \
                (listening.RTP_CALLEE, listening.RTP_CALLER)
            p.add(start + i * step, sport, dport, header + data)
    c.bye(t + SECONDS + 0.2)
    p.close()


if __name__ == "__main__":
    call("amr_nb_octet.pcap", wideband=False, octet_aligned=True, per_packet=1)
    call("amr_nb_efficient.pcap", wideband=False, octet_aligned=False, per_packet=2)
    call("amr_wb_efficient.pcap", wideband=True, octet_aligned=False, per_packet=1)
    call("amr_wb_octet.pcap", wideband=True, octet_aligned=True, per_packet=1)
