#!/usr/bin/env python3
"""Reference figures for ../shared/pcaps/wireshark/RTP_L16_monaural_sample.pcapng (no SIP,
static PT 11 = L16/44100 mono), taken from tshark's own RTP dissection, not from earshot:
the payloads in sequence order as big-endian 16-bit samples (RFC 3551 L16).
Writes l16-reference.txt: sample count, sum, sum of squares, and a position-weighted sum
(mod 2^61-1) that changes if any sample moves."""
import subprocess, sys

cap = sys.argv[1]  # path of RTP_L16_monaural_sample.pcapng
out = subprocess.run(
    ["tshark", "-r", cap, "-d", "udp.port==1234,rtp", "-Y", "rtp.ssrc==0x6cf6a0e4",
     "-T", "fields", "-e", "rtp.seq", "-e", "rtp.payload"],
    check=True, capture_output=True, text=True).stdout
rows = []
for line in out.splitlines():
    seq, payload = line.split("\t")
    rows.append((int(seq), bytes.fromhex(payload.replace(":", ""))))
# Extended sequence order (the capture has no wrap inside it, checked by tshark: 0 lost).
rows.sort(key=lambda r: r[0])
samples = []
for _, p in rows:
    for i in range(0, len(p) - 1, 2):
        v = int.from_bytes(p[i:i + 2], "big", signed=True)
        samples.append(v)
M = (1 << 61) - 1
weighted = 0
for i, v in enumerate(samples):
    weighted = (weighted + (i + 1) * (v & 0xFFFF)) % M
with open("l16-reference.txt", "w") as f:
    f.write(f"packets {len(rows)}\nsamples {len(samples)}\nsum {sum(samples)}\n"
            f"sumsq {sum(v * v for v in samples)}\nweighted {weighted}\n")
print(open("l16-reference.txt").read(), end="")
