#!/usr/bin/env python3
"""Writes video-call.pcap (issue 12, item 8): one SIP call with an audio and a video m-line
(H.264) and one with H.263, their RTP made by ffmpeg.

ffmpeg sends real RTP on loopback (`-re`, so paced like a live sender): PCMU audio, H.264
(libx264, PT 96, 90 kHz) and H.263 (PT 34, 90 kHz), 4 s each, from a test pattern and a sine.
This script receives the datagrams, keeps their arrival times, and writes them into a pcap
between SIP text it writes itself (INVITE with SDP, 200 OK with SDP, ACK, BYE after the
media), with the addresses the SDPs announce. Needs ffmpeg with libx264.
Run: python3 make_video.py; then `tshark -r video-call.pcap -q -z rtp,streams >
tshark-video-streams.txt` for the reference counts and jitter."""
import socket
import struct
import subprocess
import time

# Loopback ports ffmpeg sends to (this engineer's range 41000-42999).
RECV = {"audio1": 41100, "video1": 41102, "audio2": 41104, "video2": 41106}

socks = {}
for name, port in RECV.items():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", port))
    s.setblocking(False)
    socks[name] = s

def ffmpeg(args):
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re"] + args,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=4"]
pattern = ["-f", "lavfi", "-i", "testsrc=size=176x144:rate=15:duration=4"]
procs = [
    ffmpeg(sine + ["-af", "asetnsamples=160", "-c:a", "pcm_mulaw", "-payload_type", "0", "-f", "rtp", f"rtp://127.0.0.1:{RECV['audio1']}"]),
    ffmpeg(pattern + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-g", "15", "-payload_type", "96",
                      "-f", "rtp", f"rtp://127.0.0.1:{RECV['video1']}"]),
    ffmpeg(sine + ["-af", "asetnsamples=160", "-c:a", "pcm_mulaw", "-payload_type", "0", "-f", "rtp", f"rtp://127.0.0.1:{RECV['audio2']}"]),
    ffmpeg(pattern + ["-c:v", "h263", "-g", "15", "-payload_type", "34",
                      "-f", "rtp", f"rtp://127.0.0.1:{RECV['video2']}"]),
]
got = {name: [] for name in RECV}
deadline = time.time() + 20
while time.time() < deadline:
    idle = True
    for name, s in socks.items():
        try:
            data = s.recv(65535)
        except BlockingIOError:
            continue
        idle = False
        if data[1] & 0x7F not in (72, 73, 74, 75, 76, 77, 78, 79):  # leave ffmpeg's RTCP out
            got[name].append((time.time(), data))
    if idle:
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.0005)
for p in procs:
    p.wait()

def ip(a):
    return bytes(int(x) for x in a.split("."))

def ipv4_checksum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def frame(src, dst, payload):
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ip(src[0]), ip(dst[0]))
    h = h[:10] + struct.pack("!H", ipv4_checksum(h)) + h[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + h + udp

records = []

def sip(t, src, dst, text):
    records.append((t, frame(src, dst, text.replace("\n", "\r\n").encode())))

def sdp(addr, audio_port, video_port, video_pt, video_map):
    return (f"v=0\no=- 1 1 IN IP4 {addr}\ns=-\nc=IN IP4 {addr}\nt=0 0\n"
            f"m=audio {audio_port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
            f"m=video {video_port} RTP/AVP {video_pt}\na=rtpmap:{video_pt} {video_map}\n")

def call(n, start, end, audio, video, video_pt, video_map):
    a, b = (f"10.0.{n}.1", 40000 + n), (f"10.0.{n}.2", 40050 + n)
    cid = f"video-{n}@10.0.{n}.1"
    hdr = (f"From: <sip:alice@{a[0]}>;tag=a{n}\nCall-ID: {cid}\n")
    offer = sdp(a[0], 41200 + 10 * n, 41202 + 10 * n, video_pt, video_map)
    answer = sdp(b[0], 41300 + 10 * n, 41302 + 10 * n, video_pt, video_map)
    sip(start - 0.2, a, b, f"INVITE sip:bob@{b[0]} SIP/2.0\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{n}i\n"
        f"{hdr}To: <sip:bob@{b[0]}>\nCSeq: 1 INVITE\nContact: <sip:alice@{a[0]}:{a[1]}>\n"
        f"Content-Type: application/sdp\nContent-Length: {len(offer.replace(chr(10), chr(13) + chr(10)))}\n\n{offer}")
    sip(start - 0.1, b, a, f"SIP/2.0 200 OK\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{n}i\n"
        f"{hdr}To: <sip:bob@{b[0]}>;tag=b{n}\nCSeq: 1 INVITE\nContact: <sip:bob@{b[0]}:{b[1]}>\n"
        f"Content-Type: application/sdp\nContent-Length: {len(answer.replace(chr(10), chr(13) + chr(10)))}\n\n{answer}")
    sip(start - 0.05, a, b, f"ACK sip:bob@{b[0]} SIP/2.0\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{n}a\n"
        f"{hdr}To: <sip:bob@{b[0]}>;tag=b{n}\nCSeq: 1 ACK\nContent-Length: 0\n\n")
    # Caller to callee: audio to the answer's audio port, video to its video port.
    for t, data in audio:
        records.append((t, frame((a[0], 41200 + 10 * n), (b[0], 41300 + 10 * n), data)))
    for t, data in video:
        records.append((t, frame((a[0], 41202 + 10 * n), (b[0], 41302 + 10 * n), data)))
    sip(end + 0.1, a, b, f"BYE sip:bob@{b[0]} SIP/2.0\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{n}b\n"
        f"{hdr}To: <sip:bob@{b[0]}>;tag=b{n}\nCSeq: 2 BYE\nContent-Length: 0\n\n")
    sip(end + 0.15, b, a, f"SIP/2.0 200 OK\nVia: SIP/2.0/UDP {a[0]}:{a[1]};branch=z9hG4bK{n}b\n"
        f"{hdr}To: <sip:bob@{b[0]}>;tag=b{n}\nCSeq: 2 BYE\nContent-Length: 0\n\n")

def span(*lists):
    ts = [t for l in lists for t, _ in l]
    return min(ts), max(ts)

s1, e1 = span(got["audio1"], got["video1"])
call(1, s1, e1, got["audio1"], got["video1"], 96, "H264/90000")
s2, e2 = span(got["audio2"], got["video2"])
call(2, s2, e2, got["audio2"], got["video2"], 34, "H263/90000")
records.sort(key=lambda r: r[0])
with open("video-call.pcap", "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for t, data in records:
        sec = int(t)
        usec = min(999_999, int(round((t - sec) * 1e6)))
        f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
print({k: len(v) for k, v in got.items()})
