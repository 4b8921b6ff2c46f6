#!/usr/bin/env python3
"""One row of BENCHMARKS.md's "Sensor at 100 to 100,000 calls" table (scripts/bench-scale.sh).

It replays a capture of N concurrent calls through `earshot sensor --pcap FILE --speed max`
(the replay waits for the pipeline, so the rate it reaches is the highest the sensor sustains
with zero internal drops) and measures over the Manager API:

  rate        frames / time from the sensor's launch to the sniffer_stat sample (every 0.1 s)
              that saw the last one processed
  CPU         the sensor's user+system CPU until then, per frame (from /proc)
  analyze     `earshot analyze FILE` CPU per packet on the same file, for comparison
  RSS         VmHWM of the sensor
  listcalls   whole table (text and JSON) and a 100-call page (first and last), median of 5
  calls       a `calls` subscriber: time to receive the snapshot of all N calls, then the
              latency of `new` events for INVITEs sent as HEP while the N calls are listed
              (from the datagram leaving to the event line arriving; median and worst of 20)

The calls linger (linger_s) after their BYE so that all N are in the table while listcalls and
the subscription are measured.
"""
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def ask(port, cmd, timeout=120):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode() + b"\r\n\r\n")  # a whole request in one segment (framing.rs)
        chunks = []
        while chunk := s.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def timed(port, cmd, runs=5):
    times, size = [], 0
    for _ in range(runs):
        t = time.monotonic()
        size = len(ask(port, cmd))
        times.append((time.monotonic() - t) * 1e3)
    return statistics.median(times), size


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def stat(port):
    return json.loads(ask(port, "sniffer_stat", timeout=10))


def hep3_sip(payload, src, dst):
    """A HEP3 datagram carrying one SIP message over UDP (chunk types of the HEP3 spec)."""
    def chunk(kind, data):
        return struct.pack(">HHH", 0, kind, 6 + len(data)) + data
    now = time.time()
    body = b"".join([
        chunk(1, b"\x02"),                       # IPv4
        chunk(2, b"\x11"),                       # UDP
        chunk(3, socket.inet_aton(src[0])),
        chunk(4, socket.inet_aton(dst[0])),
        chunk(7, struct.pack(">H", src[1])),
        chunk(8, struct.pack(">H", dst[1])),
        chunk(9, struct.pack(">I", int(now))),
        chunk(10, struct.pack(">I", int((now % 1) * 1e6))),
        chunk(11, b"\x01"),                      # SIP
        chunk(12, struct.pack(">I", 2001)),
        chunk(15, payload),
    ])
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


def invite(call_id):
    sdp = ("v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
           "m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
    return (f"INVITE sip:9000@example.net SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:8000@example.net>;tag=a{call_id}\r\nTo: <sip:9000@example.net>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:8000@198.51.100.7:5060>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def subscription(port, calls, hep_port, probes=20):
    """Seconds to the full snapshot, then (median, worst) ms of `new` events for HEP INVITEs."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.sendall(b"calls\r\n\r\n")
    f = s.makefile("rb")
    t = time.monotonic()
    seen = 0
    while seen < calls:
        line = f.readline()
        if not line:
            raise SystemExit("the calls subscription closed during the snapshot")
        if b'"event":"snapshot"' in line:
            seen += 1
    snapshot_s = time.monotonic() - t
    sent, got = {}, {}
    done = threading.Event()

    def read():
        while not done.is_set():
            line = f.readline()
            if not line:
                return
            if b'"event":"new"' in line:
                for cid in sent:
                    if cid.encode() in line and cid not in got:
                        got[cid] = time.monotonic()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(probes):
        cid = f"probe-{os.getpid()}-{i}@bench"
        datagram = hep3_sip(invite(cid), ("198.51.100.7", 5060), ("203.0.113.9", 5060))
        sent[cid] = time.monotonic()
        u.sendto(datagram, ("127.0.0.1", hep_port))
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while len(got) < probes and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    s.close()
    lat = sorted((got[c] - sent[c]) * 1e3 for c in got)
    if not lat:
        return snapshot_s, None, None, 0
    return snapshot_s, statistics.median(lat), lat[-1], len(lat)


def main():
    binary, pcap, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    port, hep_port = 20000 + os.getpid() % 20000, 40000 + os.getpid() % 20000
    frames = int(subprocess.run(["capinfos", "-c", "-M", pcap], capture_output=True,
                                text=True, check=True).stdout.split()[-1])
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write('[capture]\nspeed = "max"\n'
                  "[calls]\nlinger_s = 600\nunanswered_timeout_s = 0\n"
                  f'[manager]\nlisten = "127.0.0.1:{port}"\n')
    log = open(pcap + ".log", "w")
    launched = time.monotonic()
    sensor = subprocess.Popen([binary, "sensor", "--config", cfg.name, "--pcap", pcap,
                               "--hep", f"127.0.0.1:{hep_port}", "--log-level", "warn"],
                              stdout=log, stderr=log)
    try:
        while True:
            try:
                d = stat(port)
                break
            except OSError:
                if sensor.poll() is not None:
                    raise SystemExit(f"the sensor exited: see {pcap}.log")
                time.sleep(0.05)
        # From the launch (0 frames, 0 CPU) to the sample that saw the last frame processed:
        # under full load the Manager API answers slowly, so few samples fall in between.
        while True:
            d, now, cpu = stat(port), time.monotonic(), cpu_seconds(sensor.pid)
            if d["packets_processed"] >= frames:
                break
            time.sleep(0.1)
        done = d["packets_processed"]
        rate = done / (now - launched) / 1e6
        cpu_us = cpu / done * 1e6
        drops = d["internal_drops"]
        hwm = vm_hwm_kb(sensor.pid) / 1024
        while int(ask(port, "totalcalls").strip() or 0) < calls:
            time.sleep(0.2)
        text_ms, text_b = timed(port, "listcalls")
        json_ms, json_b = timed(port, "listcalls json")
        page_ms, _ = timed(port, 'listcalls {"limit":100}')
        last_ms, _ = timed(port, 'listcalls {"offset":%d,"limit":100}' % max(calls - 100, 0))
        snap_s, lat_med, lat_max, got = subscription(port, calls, hep_port)
    finally:
        sensor.kill()
        sensor.wait()
        os.unlink(cfg.name)
    t = time.monotonic()
    a = subprocess.run(["/usr/bin/time", "-f", "%U %S", binary, "analyze", pcap],
                       capture_output=True, text=True)
    user, system = map(float, a.stderr.strip().splitlines()[-1].split())
    analyze_us = (user + system) / frames * 1e6
    lat = "n/a" if lat_med is None else f"{lat_med:.0f} ms (worst {lat_max:.0f}, {got}/20)"
    print(f"| {calls:,} | {frames:,} | {rate:.2f} M/s | {drops} | {cpu_us:.2f} µs "
          f"({analyze_us:.2f} µs analyze, {cpu_us / analyze_us:.1f}×) | {hwm:.0f} MiB | "
          f"{text_ms:.1f} ms ({text_b / 1e6:.1f} MB) | {json_ms:.1f} ms ({json_b / 1e6:.1f} MB) | "
          f"{page_ms:.2f} / {last_ms:.2f} ms | {snap_s:.2f} s | {lat} |")
    print(f"(analyze took {time.monotonic() - t:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
