#!/usr/bin/env python3
"""Writes the G.723.1 call of tests/captures/g723/ and its reference decodes (README.md).

The speech frames come from an independent encoder, not from earshot: FFmpeg's `g723_1`
encoder (6.3 kbit/s), run as `ffmpeg -c:a g723_1 -f g723_1`; the references are FFmpeg's
decode of the same frames (the decoder earshot links too: see docs/codecs.md). sox makes the
tones. The SIP framing comes from ../listening/make.py; RTP (RFC 3551 §4.5.3, static payload
type 4) is written out below, because the call needs what FFmpeg's RTP muxer does not make:
two frames a packet on one side, and on the other a talkspurt break with a SID frame and no
packets for 0.6 s (DTX, as a G.723.1 Annex A sender does), its next packet marked.

    apt-get install ffmpeg sox
    python3 tests/captures/g723/make.py

A 400 Hz tone from the caller (SSRC 0x1234AAAA: 1.2 s, SID + 0.6 s DTX, 1.2 s), 1 kHz from the
callee (0x5678BBBB: 3 s, two frames = 60 ms a packet).
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "listening"))
import make as listening  # noqa: E402

FRAME = 240  # samples of one 30 ms frame
SECONDS = 3


def tone(hz, seconds, silent=None):
    """A sine at half scale, 16-bit mono 8 kHz, undithered; `silent` = (start, end) in seconds
    of digital silence inside it."""
    with tempfile.NamedTemporaryFile(suffix=".raw", delete=False) as tmp:
        path = tmp.name
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-b", "16", "-e", "signed", "-c", "1",
                    path, "synth", str(seconds), "sine", str(hz), "vol", "0.5"], check=True)
    data = bytearray(open(path, "rb").read())
    os.unlink(path)
    if silent:
        a, b = (int(s * 8000) * 2 for s in silent)
        data[a:b] = bytes(b - a)
    return bytes(data)


def encode(pcm):
    """FFmpeg's G.723.1 frames (6.3 kbit/s, 24 bytes each) of 8 kHz mono PCM."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.raw"), os.path.join(tmp, "out.tco")
        open(src, "wb").write(pcm)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", "8000", "-ac", "1",
                        "-i", src, "-c:a", "g723_1", "-b:a", "6300", "-f", "g723_1", dst],
                       check=True)
        data = open(dst, "rb").read()
    assert len(data) % 24 == 0 and all(data[i] & 3 == 0 for i in range(0, len(data), 24))
    return [data[i:i + 24] for i in range(0, len(data), 24)]


def sid(active):
    """A SID frame (G.723.1 Annex A: 4 bytes, type 2, 24 bits of LSP indices, a 6-bit gain
    index) with the LSPs of the active frame `active` (its first 24 bits after the type are
    LSP indices too) and a low gain, so the comfort noise is quiet."""
    bits = int.from_bytes(active[:4], "little")
    lsp = (bits >> 2) & 0xFFFFFF
    gain = 3
    word = 2 | (lsp << 2) | (gain << 26)
    return word.to_bytes(4, "little")


def reference(frames, name):
    """FFmpeg's decode of `frames` (a raw G.723.1 stream; one-byte frames of type 3 stand for
    the frames the sender did not send): 16-bit little-endian mono at 8 kHz."""
    with tempfile.NamedTemporaryFile(suffix=".tco", delete=False) as tmp:
        tmp.write(b"".join(frames))
        path = tmp.name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "g723_1", "-i", path, "-f", "s16le",
                    "-ac", "1", "-ar", "8000", os.path.join(HERE, name)], check=True)
    os.unlink(path)


def main():
    caller = encode(tone(400, SECONDS, silent=(1.2, 1.8)))
    callee = encode(tone(1000, SECONDS))
    # The caller's silent 0.6 s (frames 40..60): one SID frame, then nothing sent.
    dtx = range(40, 60)
    sent_caller = [(i, f) for i, f in enumerate(caller) if i not in dtx]
    sent_caller.insert(40, (40, sid(caller[40])))
    reference([sid(caller[40]) if i == 40 else b"\x03" if i in dtx else f
               for i, f in enumerate(caller)], "ref_caller.s16")
    reference(callee, "ref_callee.s16")

    p = listening.Pcap(os.path.join(HERE, "g723_call.pcap"))
    c = listening.Call(p, "g723-call@earshot-test", 4, "G723/8000")
    t = c.invite(listening.T0, 0.5)
    # Caller: one frame a packet, sequence numbers contiguous across the DTX gap (RFC 3550:
    # nothing was sent, nothing was lost), timestamps by frame index, the marker on the first
    # packet and on the one after the gap.
    for seq, (i, data) in enumerate(sent_caller):
        marker = 0x80 if seq == 0 or i == 60 else 0
        header = bytes([0x80, marker | 4]) + seq.to_bytes(2, "big") \
            + (1000 + i * FRAME).to_bytes(4, "big") + (0x1234AAAA).to_bytes(4, "big")
        p.add(t + i * 0.030, listening.RTP_CALLER, listening.RTP_CALLEE, header + data)
    # Callee: two frames (60 ms) a packet.
    for seq in range(len(callee) // 2):
        data = callee[2 * seq] + callee[2 * seq + 1]
        header = bytes([0x80, (0x80 if seq == 0 else 0) | 4]) + seq.to_bytes(2, "big") \
            + (5000 + seq * 2 * FRAME).to_bytes(4, "big") + (0x5678BBBB).to_bytes(4, "big")
        p.add(t + 0.005 + seq * 0.060, listening.RTP_CALLEE, listening.RTP_CALLER,
              header + data)
    c.bye(t + SECONDS + 0.2)
    p.close()


if __name__ == "__main__":
    main()
