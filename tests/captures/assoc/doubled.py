#!/usr/bin/env python3
"""Makes doubled_rtp.pcap from a SIPp capture: RTP only, every packet captured twice.

Like a VoLTE mirror that sees each uplink packet at two points: the SIP is dropped (so the
streams are "RTP only", associated with no call) and every RTP frame is followed 50 µs later by
an identical copy. Input: plain little-endian pcap, Ethernet (tcpdump on lo). Keeps the RTP of
the first `calls` SIPp callers (media ports 32100 + 20*i) and the callee's echo to them.
"""
import struct
import sys


def main(src, dst, calls=2):
    data = open(src, "rb").read()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, "little-endian pcap expected"
    out = bytearray(data[:24])
    wanted = {32100 + 20 * i for i in range(calls)}
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        u = 14 + (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", frame[u:u + 4])
        if frame[u + 8] >> 6 != 2 or not ({sport, dport} & wanted):
            continue
        for extra in (0, 50):
            t = sec * 1_000_000 + usec + extra
            out += struct.pack("<IIII", t // 1_000_000, t % 1_000_000, incl, orig) + frame
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
