#!/usr/bin/env python3
"""Cuts the fuzz targets' seed corpus (fuzz/corpus-seed/<target>/) out of the public captures.

    python3 scripts/fuzz-seeds.py [PCAPS_DIR]     # default ../shared/pcaps

The seeds are not committed: they are pieces of captures whose licences (CATALOGUE.md) do not
all allow copying them into the project, so scripts/fuzz.sh runs this script before fuzzing.
SEEDS_OUT moves the output directory.

Each target gets at most MAX_FILES small inputs in the layout its fuzz_targets/<target>.rs
reads, so the fuzzer starts from real SIP, SDP, RTP, HEP and TCP rather than from nothing.
Rerunning rewrites the directories; the output depends only on the captures (no randomness).
Only the standard library is used: classic pcap and pcapng are read here directly.
"""

import hashlib
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("SEEDS_OUT") or os.path.join(ROOT, "fuzz", "corpus-seed")
MAX_FILES = 20
# Largest seed file: big enough for a short call, small enough to keep the corpus tiny.
MAX_BYTES = 8192

LINK_ETHERNET, LINK_SLL = 1, 113


def read_capture(path):
    """Yields (ts_us, link, frame) from a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from read_pcapng(data)
        return
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        return
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack(endian + "I", data[20:24])[0]
    at = 24
    while at + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        yield sec * 1_000_000 + (frac // 1000 if nano else frac), link, frame


def read_pcapng(data):
    links = []
    at = 0
    endian = "<"
    while at + 12 <= len(data):
        btype = struct.unpack(endian + "I", data[at:at + 4])[0]
        if btype == 0x0A0D0D0A:
            endian = "<" if data[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(endian + "I", data[at + 4:at + 8])[0]
        if blen < 12:
            return
        body = data[at + 8:at + blen - 4]
        if btype == 1:
            links.append(struct.unpack(endian + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            iface, hi, lo, caplen = struct.unpack(endian + "IIII", body[:16])
            if iface < len(links):
                # Microsecond resolution, the pcapng default.
                yield (hi << 32) | lo, links[iface], body[20:20 + caplen]
        at += blen


def ip_packet(link, frame):
    """(proto, src, sport, dst, dport, seq, flags, payload) of plain IPv4/IPv6 UDP/TCP, or None."""
    if link == LINK_ETHERNET:
        at, etype = 12, None
        while at + 2 <= len(frame):
            etype = struct.unpack(">H", frame[at:at + 2])[0]
            if etype in (0x8100, 0x88A8):
                at += 4
                continue
            break
        ip = frame[at + 2:]
    elif link == LINK_SLL:
        etype = struct.unpack(">H", frame[14:16])[0]
        ip = frame[16:]
    else:
        return None
    if etype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        frag = struct.unpack(">H", ip[6:8])[0] & 0x3FFF
        if frag:
            return None
        total = struct.unpack(">H", ip[2:4])[0]
        l4 = ip[ihl:total]
    elif etype == 0x86DD and len(ip) >= 40:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        l4 = ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack(">HH", l4[:4])
        return 17, src, sport, dst, dport, 0, 0, l4[8:]
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq = struct.unpack(">HHI", l4[:8])
        off = (l4[12] >> 4) * 4
        return 6, src, sport, dst, dport, seq, l4[13], l4[off:]
    return None


def frames(path):
    return list(read_capture(path))


def sip_payloads(path):
    out = []
    for _, link, frame in frames(path):
        p = ip_packet(link, frame)
        if p and p[7][:8].split(b" ")[0] in (b"INVITE", b"SIP/2.0", b"BYE", b"ACK", b"CANCEL",
                                             b"REGISTER", b"OPTIONS", b"UPDATE", b"PRACK",
                                             b"INFO", b"NOTIFY", b"SUBSCRIBE", b"REFER"):
            out.append(p)
    return out


def rtp_payloads(path, pt=None):
    out = []
    for ts, link, frame in frames(path):
        p = ip_packet(link, frame)
        if p and p[0] == 17 and len(p[7]) >= 12 and p[7][0] >> 6 == 2 and p[7][1] & 0x7F < 128:
            if 72 <= p[7][1] & 0x7F <= 76:
                continue  # RTCP
            if pt is None or p[7][1] & 0x7F == pt:
                out.append((ts, p))
    return out


class Seeds:
    def __init__(self, target):
        self.dir = os.path.join(OUT, target)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.count = 0

    def add(self, data):
        if self.count >= MAX_FILES or not data:
            return
        data = data[:MAX_BYTES]
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)
        self.count += 1


def pick(items, n):
    """n items spread over the list, deterministic."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def sip_seeds(pc):
    files = ["wireshark/sip-rtp-g711.pcap", "wireshark/aaa.pcap", "wireshark/SIP_DTMF2.cap",
             "wireshark/MagicJack-_short_call.pcap", "heplify/sip_ipv6_udp.pcap",
             "wireshark/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", "heplify/sip_sctp.pcap"]
    msgs = []
    for f in files:
        msgs += [p[7] for p in sip_payloads(os.path.join(pc, f)) if p[0] == 17]
    return msgs


def hep3(p, payload, ts_us):
    proto, src, sport, dst, dport = p[:5]
    def chunk(ctype, val):
        return struct.pack(">HHH", 0, ctype, 6 + len(val)) + val
    v4 = len(src) == 4
    body = chunk(1, bytes([2 if v4 else 10])) + chunk(2, bytes([proto]))
    body += chunk(3 if v4 else 5, src) + chunk(4 if v4 else 6, dst)
    body += chunk(7, struct.pack(">H", sport)) + chunk(8, struct.pack(">H", dport))
    body += chunk(9, struct.pack(">I", ts_us // 1_000_000))
    body += chunk(10, struct.pack(">I", ts_us % 1_000_000))
    body += chunk(11, bytes([1])) + chunk(12, struct.pack(">I", 2001)) + chunk(15, payload)
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


def hep2(p, payload, ts_us):
    proto, src, sport, dst, dport = p[:5]
    head = struct.pack(">BBBBHH", 2, 28, 2, proto, sport, dport) + src + dst
    return head + struct.pack("<IIHH", ts_us // 1_000_000, ts_us % 1_000_000, 2001, 0) + payload


def main():
    pc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "pcaps")
    if not os.path.isdir(pc):
        sys.exit(f"no captures at {pc}: pass the folder holding wireshark/, heplify/, sipp/")
    J = lambda *a: os.path.join(pc, *a)
    msgs = sip_seeds(pc)

    s = Seeds("sip_parser")
    for m in pick(msgs, MAX_FILES):
        s.add(m)

    s = Seeds("sdp_parser")
    bodies = [m.split(b"\r\n\r\n", 1)[1] for m in msgs if b"\r\n\r\nv=0" in m]
    for b in pick(sorted(set(bodies)), MAX_FILES):
        s.add(b)

    s = Seeds("capture_reader")
    for f in ["sipp/dtmf_2833_0.pcap", "heplify/sip_ipv6_udp.pcap", "heplify/sip_sctp.pcap"]:
        s.add(open(J(f), "rb").read())
    for f in ["heplify/erspan_sip_ipv4_udp.pcapng", "wireshark/sip-rtp-opus-hybrid.pcap"]:
        s.add(open(J(f), "rb").read()[:MAX_BYTES])

    # decap: a selector byte picking the link type (its index in the target's LINKS), the frame.
    decap_links = [0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276, 147]
    s = Seeds("decap")
    for f in ["heplify/erspan_sip_ipv4_udp.pcapng", "wireshark/DTMFsipinfo.pcap",
              "heplify/sip_sctp.pcap", "heplify/sip_ipv6_udp.pcap",
              "heplify/sip_ipv4_tcp_retrans.pcap", "heplify/sip_tcp_websocket.pcap",
              "wireshark/sip-rtp-g711.pcap"]:
        fs = frames(J(f))
        for _, link, frame in pick(fs, 3):
            if link in decap_links:
                s.add(bytes([decap_links.index(link)]) + frame)

    # decoders: a codec selector, then payloads each prefixed with its length (u8).
    s = Seeds("decoders")
    for sel, f, pt in [(0, "wireshark/sip-rtp-g711.pcap", 0), (1, "wireshark/sip-rtp-g711.pcap", 8),
                       (2, "wireshark/sip-rtp-g722.pcap", 9), (3, "wireshark/sip-rtp-g729a.pcap", 18),
                       (4, "wireshark/sip-rtp-gsm.pcap", 3), (6, "wireshark/sip-rtp-opus.pcap", 99),
                       (6, "wireshark/sip-rtp-opus-hybrid.pcap", 99),
                       (9, "wireshark/sip-rtp-dvi4.pcap", 5), (14, "wireshark/sip-rtp-g726.pcap", 99),
                       (20, "wireshark/sip-rtp-speex.pcap", 99)]:
        seed = bytes([sel])
        for _, p in rtp_payloads(J(f), pt)[:8]:
            payload = p[7][12:][:255]
            seed += bytes([len(payload)]) + payload
        s.add(seed)

    # playout, playout_live: 12 header bytes (time step in 10 µs LE, payload type, leg/ssrc,
    # seq LE, timestamp LE, marker, event), then a length-prefixed payload.
    for target in ["playout", "playout_live"]:
        s = Seeds(target)
        for f, pt in [("wireshark/sip-rtp-g711.pcap", 0), ("wireshark/sip-rtp-g711.pcap", 8),
                      ("wireshark/sip-rtp-g722.pcap", 9), ("wireshark/sip-rtp-gsm.pcap", 3),
                      ("wireshark/sip-rtp-g729a.pcap", 18), ("wireshark/SIP_DTMF2.cap", 8),
                      ("wireshark/MagicJack-_short_call.pcap", 0)]:
            seed, last = b"", None
            for i, (ts, p) in enumerate(rtp_payloads(J(f), pt)[:30]):
                r = p[7]
                step = 0 if last is None else min((ts - last) // 10, 0xFFFE)
                last = ts
                seq, rts = struct.unpack(">HI", r[2:8])
                payload = r[12:][:255]
                seed += struct.pack("<HBBHIBB", step, pt, (i // 15) & 1, seq, rts, r[1] >> 7, 0)
                seed += bytes([len(payload)]) + payload
            s.add(seed)

    # engine: mode byte 0, then records (time step i32 LE µs, link index, length u16 LE, frame).
    engine_links = [0, 1, 101, 108, 113, 228, 229, 276, 147]
    s = Seeds("engine")
    for f in ["wireshark/sip-rtp-g711.pcap", "wireshark/SIP_DTMF2.cap", "wireshark/aaa.pcap",
              "heplify/sip_ipv4_tcp.pcap", "heplify/sip_ipv4_tcp_fragmented.pcap",
              "heplify/sip_tcp_websocket.pcap", "heplify/sip_ipv6_udp.pcap",
              "heplify/erspan_sip_ipv4_udp.pcapng", "heplify/rtp_rtcp_sip_ipv4_udp.pcap",
              "wireshark/MagicJack-_short_call.pcap", "heplify/sip_sctp.pcap",
              "wireshark/DTMFsipinfo.pcap"]:
        fs = frames(J(f))
        # The SIP of the capture and the media around it, then an expire.
        sip_idx = [i for i, (_, l, fr) in enumerate(fs) if (p := ip_packet(l, fr)) and
                   p[7][:3] in (b"INV", b"SIP", b"BYE", b"ACK")]
        keep = sorted(set(sip_idx[:12]) | set(range(sip_idx[0], min(sip_idx[0] + 20, len(fs))) if sip_idx else []))
        seed, last = b"\x00", None
        for i in keep:
            ts, link, frame = fs[i]
            if link not in engine_links or len(seed) + len(frame) > MAX_BYTES - 7:
                continue
            step = 0 if last is None else max(min(ts - last, 2**31 - 1), -2**31)
            last = ts
            seed += struct.pack("<iBH", step, engine_links.index(link), len(frame)) + frame
        seed += struct.pack("<iBH", 400_000_000, 0xFF, 0)
        s.add(seed)
    # The same call carried in HEP3 envelopes (link index 9).
    seed, last = b"\x00", None
    for ts, link, frame in frames(J("wireshark/sip-rtp-g711.pcap"))[:40]:
        p = ip_packet(link, frame)
        if p and p[0] == 17:
            h = hep3(p, p[7], ts)
            step = 0 if last is None else ts - last
            last = ts
            if len(seed) + len(h) < MAX_BYTES - 7:
                seed += struct.pack("<iBH", step, 9, len(h)) + h
    s.add(seed)

    # engine_time is the engine target with any capture time: the same seeds.
    shutil.rmtree(os.path.join(OUT, "engine_time"), ignore_errors=True)
    shutil.copytree(s.dir, os.path.join(OUT, "engine_time"))

    # hep: cut byte 1, then datagrams each prefixed with its length (u16 BE); and single ones.
    s = Seeds("hep")
    for f in ["wireshark/sip-rtp-g711.pcap", "heplify/sip_ipv6_udp.pcap", "heplify/sip_ipv4_tcp.pcap",
              "wireshark/aaa.pcap"]:
        pkts = [(ts, p) for ts, l, fr in frames(J(f)) if (p := ip_packet(l, fr)) and p[7]]
        for make in (hep3, hep2):
            seed = b"\x01"
            for ts, p in pkts[:12]:
                if make is hep2 and len(p[1]) != 4:
                    continue
                d = make(p, p[7], ts)
                if len(seed) + len(d) < MAX_BYTES:
                    seed += struct.pack(">H", len(d)) + d
            s.add(seed)
        ts, p = pkts[0]
        s.add(b"\x00" + hep3(p, p[7], ts))

    # rtp_over_tcp: records (op, seq offset i16 BE, length field u16 BE, body length, body);
    # op bits 2-3 shape the body (raw, RFC 4571 RTP, ChannelData, STUN), bit 0 the direction.
    # Made here rather than cut from captures: none of ../shared carries RTP on TCP.
    s = Seeds("rtp_over_tcp")
    body = bytes(range(160))
    rec = lambda op, delta, ln, b: struct.pack(">BhHB", op, delta, ln, len(b)) + b
    s.add(b"".join(rec(0x04 | (i & 1), 0, 0, body) for i in range(20)))
    s.add(rec(0x0C, 0, 0, bytes(8)) + b"".join(rec(0x08 | (i & 1), 0, 0, body[:13 + i]) for i in range(10)))
    s.add(b"".join(rec(0x04, 0, 0, body[:100]) for _ in range(5)) + rec(0x84, 0, 65535, body[:50]))
    s.add(rec(0x04, 0, 0, body) + rec(0x04, -40, 0, body) + rec(0x04, 300, 0, body)
          + rec(0x00, 0, 0, b"\x00\xac\x80\x00") + rec(0x00, 0, 0, body))

    # tcp_reassembly: records (op, flow, seq BE, step in ms i16 BE, length, payload).
    s = Seeds("tcp_reassembly")
    for f in ["heplify/sip_ipv4_tcp_fragmented.pcap", "heplify/sip_ipv4_tcp.pcap",
              "heplify/sip_ipv4_tcp_retrans.pcap", "heplify/sip_tcp_websocket.pcap"]:
        for part in range(3):
            flows, seed, last = {}, b"", None
            segs = [(ts, p) for ts, l, fr in frames(J(f)) if (p := ip_packet(l, fr)) and p[0] == 6]
            segs = segs[part * 40:(part + 1) * 40]
            for ts, p in segs:
                key = (p[1], p[2], p[3], p[4])
                flow = flows.setdefault(key, len(flows))
                flags = p[6]
                op = (0x10 if flags & 2 else 0) | (0x20 if flags & 1 else 0) | (0x40 if flags & 4 else 0)
                step = 0 if last is None else max(min((ts - last) // 1000, 32767), -32768)
                last = ts
                payload, seq = p[7], p[5]
                while True:
                    piece = payload[:255]
                    rec = struct.pack(">BBIhB", op, flow, seq, step, len(piece)) + piece
                    if len(seed) + len(rec) > MAX_BYTES:
                        break
                    seed += rec
                    payload, seq, step = payload[255:], (seq + len(piece)) & 0xFFFFFFFF, 0
                    if not payload:
                        break
            s.add(seed)

    # rtp_stats: selector 0 + one packet (RTP or RTCP); selector 1 + 12-byte records.
    s = Seeds("rtp_stats")
    rtcp = [p[7] for _, l, fr in frames(J("heplify/rtp_rtcp_sip_ipv4_udp.pcap"))
            if (p := ip_packet(l, fr)) and p[0] == 17 and len(p[7]) >= 8 and p[7][0] >> 6 == 2
            and 200 <= p[7][1] <= 204]
    for r in rtcp[:4]:
        s.add(b"\x00" + r)
    for f, pt in [("sipp/dtmf_2833_0.pcap", 101), ("wireshark/sip-rtp-g711.pcap", 0)]:
        for _, p in rtp_payloads(J(f), pt)[:2]:
            s.add(b"\x00" + p[7])
    for sel, f, pt, rate in [(1, "wireshark/sip-rtp-g711.pcap", 0, 1),
                             (3, "wireshark/sip-rtp-opus.pcap", 99, 2),
                             (1, "sipp/dtmf_2833_5.pcap", 101, 0),
                             (5, "wireshark/Asterisk_ZFONE_XLITE.pcap", 0, 1),
                             (1, "wireshark/SIP_DTMF2.cap", 8, 1),
                             (1, "wireshark/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", 8, 1)]:
        seed, last = bytes([sel]), None
        for ts, p in rtp_payloads(J(f), pt)[:200]:
            r = p[7]
            step = 0 if last is None else ts - last
            last = ts
            seq, rts = struct.unpack(">HI", r[2:8])
            seed += struct.pack("<iHIBB", step, seq, rts, r[1], rate)
        s.add(seed)

    # manager_request: mode 1 and a conversation (op: segment length << 3, or 6 = idle
    # timeout, 7 = end of input); mode 0 and a bare command line.
    s = Seeds("manager_request")
    lines = ["listcalls", "listcalls json", 'listcalls {"limit":10,"sort_field":"callid"}',
             "listen 0x4a3f7b2c1d mine", "readaudio 0x4a3f7b2c1d mine",
             "listen_stop 0x4a3f7b2c1d mine", "stream 0x4a3f7b2c1d rate=16000 channels=2 from=-30",
             "active_call_info 0x4a3f7b2c1d", "totalcalls", "sniffer_stat", "getversion", "help"]
    for line in lines:
        s.add(b"\x00" + line.encode())
    for text, end in [(b"listcalls\r\n\r\n", b""), (b"auth s3cret\n", b"listcalls\n"),
                      (b"stream 0x1 from=start\n", b""), (b"auth s3cret\r\nlisten 0x1 a", b"\n")]:
        seed = b"\x01" + bytes([len(text) << 3]) + text
        if end:
            seed += bytes([len(end) << 3]) + end
        s.add(seed + b"\x06\x07")

    # stream_decoder: chunk-size bytes (size * 4 + 1 bytes follow) over a whole stream.
    s = Seeds("stream_decoder")
    header = json.dumps({"version": 1, "callreference": "563de480a000", "callid": "1-29453@x",
                         "caller": "alice", "called": "bob", "format": "s16le", "rate": 8000,
                         "channels": 1, "from": "now"}).encode() + b"\n"
    def frame(kind, payload):
        return bytes([kind]) + struct.pack(">I", len(payload)) + payload
    audio = [p[7][12:172] for _, p in rtp_payloads(J("wireshark/sip-rtp-g711.pcap"), 0)[:2]]
    frames_ = [frame(1, struct.pack(">IqIB", i, 1_795_692_898_000_000_000 + i, 8000, 1) + a)
               for i, a in enumerate(audio)]
    events = [{"event": "answered", "ts_ns": 5, "code": 200},
              {"event": "codec_change", "ts_ns": 6, "party": "caller", "codec": "PCMA", "payload_type": 8},
              {"event": "hold", "ts_ns": 7}, {"event": "ended", "ts_ns": 9, "state": "ended", "code": 487}]
    frames_ += [frame(2, json.dumps(e).encode()) for e in events]
    frames_.append(frame(3, json.dumps({"ts_ns": 8, "leg": "called", "ssrc": 1, "packets": 111, "lost": 1,
                                        "loss_pct": 0.9, "jitter_ms": 1.5, "mos": 4.3}).encode()))
    frames_.append(frame(9, b"reserved"))
    end = frame(4, json.dumps({"reason": "call_ended"}).encode())
    def chunked(data, size):
        out = b""
        while data:
            n = size * 4 + 1
            out += bytes([size]) + data[:n]
            data = data[n:]
        return out
    s.add(chunked(header + b"".join(frames_) + end, 255))
    s.add(chunked(header + b"".join(frames_[2:]) + end, 3))
    s.add(chunked(b"error: no such call\n", 255))
    for f in frames_:
        s.add(chunked(header + f, 255))

    s = Seeds("metrics_head")
    for head in [b"GET /metrics HTTP/1.1\r\nHost: sensor:9105\r\nUser-Agent: Prometheus/2.45.0\r\n"
                 b"Accept: text/plain;version=0.0.4\r\nAuthorization: Bearer t0k\r\n\r\n",
                 b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"GET /metrics\n\n",
                 b"GET /metrics HTTP/1.1\r\nauthorization:  Bearer t0k \r\n\r\n"]:
        s.add(head)

    tls_records_seeds()

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"seed corpus: {OUT} ({total // 1024} KiB)")


def tls_records_seeds():
    """tls_records: [key log length] [key log] then pieces [flags] [len] [bytes], flags bit 0
    the side (server), bit 1 "the key log arrives now". From the project's own SIP-over-TLS
    captures (tests/captures/sip-tls/, made here, so these seeds could be committed): each
    connection's TCP payloads in capture order, with its key log arriving after the
    handshake, and once with no key log at all."""
    s = Seeds("tls_records")
    here = os.path.join(ROOT, "tests", "captures", "sip-tls")
    for name in ["tls12_chacha20", "tls12_cbc_etm", "tls12_cbc_mte", "tls12_aes_gcm", "tls13"]:
        keys = b"".join(l + b"\n" for l in open(os.path.join(here, name + ".keys"), "rb")
                        .read().splitlines() if not l.startswith(b"#"))[:255]
        pieces = []
        for _, link, frame in frames(os.path.join(here, name + ".pcap")):
            p = ip_packet(link, frame)
            if not p or p[0] != 6 or not p[7]:
                continue
            server = p[2] == 45061
            pieces.append((1 if server else 0, p[7]))
        for with_keys in (True, False):
            out = bytes([len(keys) if with_keys else 0]) + (keys if with_keys else b"")
            for i, (side, payload) in enumerate(pieces):
                late = 2 if with_keys and i == 3 else 0
                for at in range(0, len(payload), 255):
                    chunk = payload[at:at + 255]
                    out += bytes([side | late, len(chunk)]) + chunk
                    late = 0
            s.add(out[:MAX_BYTES])


if __name__ == "__main__":
    main()
