#!/usr/bin/env python3
"""Writes the reference decode of the iLBC call in Wireshark's sample capture
(shared/pcaps/wireshark/sip-rtp-ilbc.pcap, used by path, not copied): the RTP payloads are read
straight from the pcap here (Ethernet/IPv4/UDP, no earshot code), put in sequence order into an
RFC 3951 storage file (`#!iLBC30`), and decoded by FFmpeg (its `ilbc` decoder: the same
implementation earshot links, see docs/codecs.md).

    python3 tests/captures/ilbc/make.py [PCAP]

Writes ref_ilbc30.s16 (16-bit little-endian mono, 8 kHz) and prints what it found. Then, as
there is no iLBC encoder in Debian (FFmpeg has the decoder only) and none on PyPI, a call made
of the same real frames in other packets, for what the sample does not have (one frame a packet,
one way, no loss): ilbc_call.pcap, SIP from ../listening/make.py, `iLBC/8000` `mode=30`,
PT 99; the caller sends the sample's frames two a packet (60 ms), the callee the same frames in
reverse order (other audio: which channel is which can be told) one a packet, and one of the
callee's packets is lost (sequence number skipped). References: the caller's is ref_ilbc30.s16,
the callee's ref_call_callee.s16 (FFmpeg's decode of the reversed frames without the lost one:
neither decoder sees it; 30 ms of silence stand in its place, where a listener hears the last
audio fade out).
"""

import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "listening"))
import make as listening  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PCAP = os.path.join(HERE, "..", "..", "..", "..", "shared", "pcaps", "wireshark",
                    "sip-rtp-ilbc.pcap")


def udp_payloads(path):
    """(src port, dst port, payload) of every Ethernet/IPv4/UDP packet of a classic pcap."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        udp = ip[ihl:]
        sport, dport, length = struct.unpack("!HHH", udp[:6])
        yield sport, dport, udp[8:length]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else PCAP
    packets = {}
    for _, _, p in udp_payloads(path):
        # RTP version 2, payload type 99 (the SDP's iLBC), no CSRCs or extension here.
        if len(p) < 12 or p[0] >> 6 != 2 or p[1] & 0x7F != 99:
            continue
        assert p[0] & 0x3F == 0, "CSRC or extension or padding"
        seq, ts, ssrc = struct.unpack("!HII", p[2:12])
        packets.setdefault(ssrc, []).append((seq, ts, p[12:]))
    assert len(packets) == 1, packets.keys()
    (ssrc, stream), = packets.items()
    stream.sort()
    sizes = sorted({len(x) for _, _, x in stream})
    seqs = [s for s, _, _ in stream]
    print(f"SSRC {ssrc:#x}: {len(stream)} packets, seq {seqs[0]}..{seqs[-1]}, "
          f"payload sizes {sizes}, timestamp steps "
          f"{sorted({b[1] - a[1] for a, b in zip(stream, stream[1:])})}")
    assert all(len(x) % 50 == 0 for _, _, x in stream), "not 30 ms frames"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the sequence"
    frames = [x for _, _, x in stream]
    reference(frames, "ref_ilbc30.s16")
    call(frames)


LOST = 100  # the callee's packet (= frame) that is lost


def reference(frames, name):
    """FFmpeg's decode of `frames` as an RFC 3951 storage file (30 ms mode)."""
    with tempfile.NamedTemporaryFile(suffix=".lbc", delete=False) as tmp:
        tmp.write(b"#!iLBC30\n" + b"".join(frames))
        storage = tmp.name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "ilbc", "-i", storage, "-f", "s16le",
                    "-ac", "1", "-ar", "8000", os.path.join(HERE, name)], check=True)
    os.unlink(storage)


def call(frames):
    assert len(frames) % 2 == 0
    backwards = frames[::-1]
    reference([f for i, f in enumerate(backwards) if i != LOST], "ref_call_callee.s16")
    path = os.path.join(HERE, "ref_call_callee.s16")
    pcm = open(path, "rb").read()
    at = LOST * 240 * 2
    open(path, "wb").write(pcm[:at] + bytes(240 * 2) + pcm[at:])
    p = listening.Pcap(os.path.join(HERE, "ilbc_call.pcap"))
    c = listening.Call(p, "ilbc-call@earshot-test", 99, "iLBC/8000", "mode=30")
    t = c.invite(listening.T0, 0.5)
    for seq in range(len(frames) // 2):
        header = bytes([0x80, (0x80 if seq == 0 else 0) | 99]) + seq.to_bytes(2, "big") \
            + (1000 + seq * 480).to_bytes(4, "big") + (0x1234AAAA).to_bytes(4, "big")
        p.add(t + seq * 0.060, listening.RTP_CALLER, listening.RTP_CALLEE,
              header + frames[2 * seq] + frames[2 * seq + 1])
    for seq, data in enumerate(backwards):
        if seq == LOST:
            continue
        header = bytes([0x80, (0x80 if seq == 0 else 0) | 99]) + seq.to_bytes(2, "big") \
            + (7000 + seq * 240).to_bytes(4, "big") + (0x5678BBBB).to_bytes(4, "big")
        p.add(t + 0.005 + seq * 0.030, listening.RTP_CALLEE, listening.RTP_CALLER, header + data)
    c.bye(t + len(frames) * 0.030 + 0.2)
    p.close()


if __name__ == "__main__":
    main()
