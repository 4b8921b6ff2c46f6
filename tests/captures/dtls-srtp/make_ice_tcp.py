#!/usr/bin/env python3
"""Makes ice_tcp_aes_cm_80.pcap from dtls_srtp_aes_cm_80.pcap: the same call with its media
(the DTLS handshake OpenSSL made and the SRTP libsrtp2 protected) carried as ICE-TCP carries it
(RFC 6544): one TCP connection between the two media addresses, each datagram framed by RFC
4571's 2-byte length. The SIP stays on UDP as captured; the callee, the DTLS client
(a=setup:active), opens the connection. Several frames share a segment now and then, and one
frame is split across two segments, as TCP is free to do. Only the framing changes: every byte
of every datagram is the one the independent implementations wrote.

Usage: python3 make_ice_tcp.py   (standard library only; writes next to this script)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "dtls_srtp_aes_cm_80.pcap")
OUT = os.path.join(HERE, "ice_tcp_aes_cm_80.pcap")
MEDIA_PORTS = {38010, 38020}
CLIENT_PORT = 38020  # the callee: s_client, a=setup:active


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident):
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def tcp(src, dst, sport, dport, seq, ack, flags, payload):
    head = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(head) + len(payload))
    c = checksum(pseudo + head + payload)
    return head[:16] + struct.pack("!H", c) + head[18:] + payload


def read(path):
    data = open(path, "rb").read()
    header, at, packets = data[:24], 24, []
    while at + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[at : at + 16])
        packets.append((sec, usec, data[at + 16 : at + 16 + incl]))
        at += 16 + incl
    return header, packets


def udp_of(frame):
    """(eth, src, dst, sport, dport, body) of a UDP/IPv4 frame, None otherwise."""
    eth, ip = frame[:14], frame[14:]
    if ip[9] != 17:
        return None
    ihl = (ip[0] & 0x0F) * 4
    sport, dport, ulen = struct.unpack("!HHH", ip[ihl : ihl + 6])
    return eth, ip[12:16], ip[16:20], sport, dport, ip[ihl + 8 : ihl + ulen]


def main():
    header, packets = read(SRC)
    out = [header]
    seq = {}  # source port -> next sequence number
    ident = [1]

    def raw(sec, usec, frame):
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)

    def write(sec, usec, eth, src, dst, sport, dport, payload, flags=0x18):
        seg = tcp(src, dst, sport, dport, seq[sport], seq.get(dport, 0), flags, payload)
        seq[sport] = (seq[sport] + len(payload) + (1 if flags & 0x02 else 0)) & 0xFFFFFFFF
        raw(sec, usec, eth + ipv4(src, dst, 6, seg, ident[0]))
        ident[0] += 1

    opened, media, held = False, 0, None
    for n, (sec, usec, frame) in enumerate(packets):
        u = udp_of(frame)
        if u is None or not (u[3] in MEDIA_PORTS and u[4] in MEDIA_PORTS):
            raw(sec, usec, frame)
            continue
        eth, src, dst, sport, dport, body = u
        if not opened:
            # The callee connects: SYN, SYN-ACK, ACK before the first datagram.
            client_is_src = sport == CLIENT_PORT
            c_ip, s_ip = (src, dst) if client_is_src else (dst, src)
            c_port, s_port = (sport, dport) if client_is_src else (dport, sport)
            seq[c_port], seq[s_port] = 1000, 5000
            write(sec, usec, eth, c_ip, s_ip, c_port, s_port, b"", flags=0x02)
            write(sec, usec, eth, s_ip, c_ip, s_port, c_port, b"", flags=0x12)
            write(sec, usec, eth, c_ip, s_ip, c_port, s_port, b"", flags=0x10)
            opened = True
        framed = struct.pack("!H", len(body)) + body
        if held is not None:
            framed, held = held + framed, None
        media += 1
        nxt = udp_of(packets[n + 1][2]) if n + 1 < len(packets) else None
        if media % 5 == 0 and nxt is not None and nxt[3] == sport and nxt[4] == dport:
            held = framed  # written with the next frame, in one segment
            continue
        if media % 7 == 0 and len(framed) > 40:
            write(sec, usec, eth, src, dst, sport, dport, framed[:25])  # split in two segments
            write(sec, usec + 1, eth, src, dst, sport, dport, framed[25:])
        else:
            write(sec, usec, eth, src, dst, sport, dport, framed)
    open(OUT, "wb").write(b"".join(out))
    print(f"wrote {OUT}: {len(out) - 1} packets, {media} datagrams framed")


if __name__ == "__main__":
    main()
