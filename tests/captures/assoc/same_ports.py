#!/usr/bin/env python3
"""Rewrites a SIPp capture so that every caller's media uses one port (32100).

make.sh runs one SIPp caller per call, each with its own media port 32100 + 20*i. This script
replaces every such port, in UDP headers and in the SDP `m=audio` lines, by 32100, so that all
calls' RTP runs between the same two addresses in both directions and only the SSRC tells the
calls apart. SIPp's rtp_stream gives every process the same SSRC (0xCA110000), so the RTP of
call i (and its echo) gets SSRC 0xCA110000 + i, as distinct SSRCs of real endpoints would be. Ports keep their number of digits, so lengths are unchanged;
UDP checksums are zeroed (optional in IPv4). Plain pcap, Ethernet link type (tcpdump on lo).
"""
import re
import struct
import sys

BASE, STEP, CALLS = 32100, 20, 50
SHARED = BASE


def caller_port(p):
    return BASE <= p < BASE + STEP * CALLS and (p - BASE) % STEP in (0, 1)


def main(src, dst):
    data = open(src, "rb").read()
    out = bytearray(data[:24])
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4, "little-endian pcap expected"
    assert struct.unpack("<I", data[20:24])[0] == 1, "Ethernet link type expected"
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        frame = bytearray(data[off + 16:off + 16 + incl])
        off += 16 + incl
        if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            u = 14 + ihl
            sport, dport = struct.unpack("!HH", frame[u:u + 4])
            call = next(((p - BASE) // STEP for p in (sport, dport) if caller_port(p)), None)
            rtp = u + 8
            if call is not None and len(frame) >= rtp + 12 and frame[rtp] >> 6 == 2:
                struct.pack_into("!I", frame, rtp + 8, 0xCA110000 + call)
            if caller_port(sport):
                sport = SHARED + (sport - BASE) % STEP
            if caller_port(dport):
                dport = SHARED + (dport - BASE) % STEP
            struct.pack_into("!HH", frame, u, sport, dport)
            struct.pack_into("!H", frame, u + 6, 0)
            body = bytes(frame[u + 8:])

            def port(m):
                p = int(m.group(1))
                return b"m=audio %d" % (SHARED if caller_port(p) else p)

            frame[u + 8:] = re.sub(rb"m=audio (\d+)", port, body)
        out += struct.pack("<IIII", sec, usec, len(frame), orig) + frame
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
