#!/usr/bin/env python3
"""Writes two large captures for scripts/bench-srtp.sh: CALLS SDES-SRTP calls (RTP/SAVP,
AES_CM_128_HMAC_SHA1_80, protected by libsrtp2 through pylibsrtp) and their clear twin (RTP/AVP,
the same G.711 payloads unencrypted), SECONDS of media each way per call, all calls at once.

    python3 scripts/bench-srtp.py OUT_DIR [CALLS] [SECONDS]      # pip install pylibsrtp
"""

import base64
import os
import struct
import sys

from pylibsrtp import Policy, Session

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "captures", "listening"))
import make as listening  # noqa: E402

KEY_CALLER, KEY_CALLEE = bytes(range(1, 31)), bytes(range(101, 131))


def write(path, calls, seconds, srtp):
    p = listening.Pcap(path)
    proto = "RTP/SAVP" if srtp else "RTP/AVP"
    payload = bytes([0xD5]) * 160
    for n in range(calls):
        cid = f"bench-{n}@earshot-srtp"
        ports = (20000 + 4 * n, 20002 + 4 * n)
        keys = (KEY_CALLER, KEY_CALLEE)
        extra = [[f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(k).decode()}"]
                 if srtp else [] for k in keys]
        t = listening.T0 + n * 0.0003
        offer = listening.sdp(ports[0], 8, "PCMA/8000", None, 1, proto, extra[0])
        answer = listening.sdp(ports[1], 8, "PCMA/8000", None, 2, proto, extra[1])
        uri = f"INVITE sip:callee@{listening.IP}:{listening.SIP_CALLEE} SIP/2.0"
        p.add(t, listening.SIP_CALLER, listening.SIP_CALLEE,
              listening.sip(uri, cid, 1, "INVITE", "f", body=offer))
        p.add(t + 0.01, listening.SIP_CALLEE, listening.SIP_CALLER,
              listening.sip("SIP/2.0 200 OK", cid, 1, "INVITE", "f", "t", answer))
        for side in (0, 1):
            session = Session(policy=Policy(key=keys[side], ssrc_type=Policy.SSRC_ANY_OUTBOUND))
            ssrc = 0x10000000 + 2 * n + side
            for i in range(seconds * 50):
                rtp = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, i * 160, ssrc) + payload
                data = session.protect(rtp) if srtp else rtp
                p.add(t + 0.02 + i * 0.02 + side * 0.001, ports[side], ports[1 - side], data)
        bye = f"BYE sip:callee@{listening.IP}:{listening.SIP_CALLEE} SIP/2.0"
        p.add(t + 0.05 + seconds, listening.SIP_CALLER, listening.SIP_CALLEE,
              listening.sip(bye, cid, 2, "BYE", "f", "t"))
    p.close()


if __name__ == "__main__":
    out = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "srtp.pcap"), calls, seconds, True)
    write(os.path.join(out, "clear.pcap"), calls, seconds, False)
