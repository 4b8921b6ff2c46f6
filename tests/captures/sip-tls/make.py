#!/usr/bin/env python3
"""Writes the captures of tests/captures/sip-tls/ (see README.md there).

SIP over TLS as two real TLS stacks speak it, captured on the loopback interface: Python's
`ssl` module (OpenSSL) runs a server and a client on 127.0.0.1, the client writes its secrets
to a key log (`SSLContext.keylog_filename`, the NSS format), and tcpdump captures `lo`. The
client sends an INVITE whose SDP offers RTP/SAVP with an SDES key (`a=crypto`), the server
answers 100 and 200 OK with its own key, the client ACKs; then SRTP protected by libsrtp2
(pylibsrtp) goes both ways over real UDP sockets on loopback (a 400 Hz tone from the caller,
1 kHz from the callee, G.711 A-law by sox), and the client ends the call with BYE / 200. No
earshot code is involved in making them.

    pip install pylibsrtp && sudo python3 tests/captures/sip-tls/make.py   # tcpdump, sox, openssl

Each run writes NAME.pcap and NAME.keys (the key log of that run's one TLS connection).
"""

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from pylibsrtp import Policy, Session

HERE = os.path.dirname(os.path.abspath(__file__))

def _load_srtp_helpers():
    """../srtp/make.py (its keys, crypto lines and A-law tones), under a name of its own: it
    imports ../listening/make.py as `make` itself."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "srtp_make", os.path.join(HERE, "..", "srtp", "make.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


srtp = _load_srtp_helpers()

IP = "127.0.0.1"
SIP_PORT = 45061
RTP_CALLER, RTP_CALLEE = 39010, 39020
CALL_ID = "sip-tls-1@earshot-test"
CALLER, CALLED = "1001", "2002"
# Media each way: 3 s by default (160-byte A-law frames, 20 ms apart).
MEDIA_FRAMES = 150


def sdp(port, key, session):
    return (
        "v=0\r\n"
        f"o=- {session} 1 IN IP4 {IP}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {IP}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/SAVP 8\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        f"{srtp.crypto_line(key)}\r\n"
        "a=sendrecv\r\n"
    )


def message(start, headers, body=""):
    lines = [start] + headers
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def dialog_headers(method, cseq, client_port, to_tag=None):
    to = f"<sip:{CALLED}@{IP}>" + (f";tag={to_tag}" if to_tag else "")
    return [
        f"Via: SIP/2.0/TLS {IP}:{client_port};branch=z9hG4bK-{method.lower()}-{cseq}",
        f"From: <sip:{CALLER}@{IP}>;tag=caller-1",
        f"To: {to}",
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{CALLER}@{IP}:{client_port};transport=tls>",
        "Max-Forwards: 70",
    ]


def response(request, code, reason, to_tag, body=""):
    """A response copying the request's Via, From, To (with our tag), Call-ID and CSeq."""
    text = request.decode()
    keep = []
    for line in text.split("\r\n")[1:]:
        name = line.split(":", 1)[0].lower()
        if name in ("via", "from", "call-id", "cseq"):
            keep.append(line)
        elif name == "to":
            keep.append(line if ";tag=" in line or code == 100 else f"{line};tag={to_tag}")
    keep.append(f"Contact: <sip:{CALLED}@{IP}:{SIP_PORT};transport=tls>")
    return message(f"SIP/2.0 {code} {reason}", keep, body)


def read_message(conn, buf):
    """One SIP message off a TLS socket (Content-Length framing); returns it and the rest."""
    while b"\r\n\r\n" not in buf:
        buf += conn.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        rest += conn.recv(4096)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def send_media(sock, dest, frames, key, ssrc, start_at):
    """SRTP from `sock` to `dest`: one A-law frame every 20 ms from `start_at` on."""
    session = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    for i, payload in enumerate(frames):
        wait = start_at + i * 0.020 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        header = bytes([0x80, 8]) + (1000 + i).to_bytes(2, "big")
        header += (160 * i).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
        sock.sendto(session.protect(header + payload), dest)


def make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=sip.earshot.test"],
                   check=True, capture_output=True)
    return cert, key


def server(ctx, listener, frames, ready):
    raw, _ = listener.accept()
    conn = ctx.wrap_socket(raw, server_side=True)
    invite, buf = read_message(conn, b"")
    conn.sendall(response(invite, 100, "Trying", "callee-1"))
    conn.sendall(response(invite, 200, "OK", "callee-1",
                          sdp(RTP_CALLEE, srtp.CALLEE_KEY, 2002)))
    _ack, buf = read_message(conn, buf)
    ready.set()
    bye, buf = read_message(conn, buf)
    conn.sendall(response(bye, 200, "OK", "callee-1"))
    try:
        conn.unwrap()
    except (ssl.SSLError, OSError):
        pass
    conn.close()


def run(name, tls12_cipher=None, media=True, no_etm=False):
    """One call over one TLS connection, captured into NAME.pcap, its key log into NAME.keys."""
    pcap, keys = os.path.join(HERE, f"{name}.pcap"), os.path.join(HERE, f"{name}.keys")
    for path in (pcap, keys):
        if os.path.exists(path):
            os.unlink(path)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(cert, key)
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        cctx.keylog_filename = keys
        if tls12_cipher:
            for ctx in (sctx, cctx):
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ciphers(tls12_cipher)
                if no_etm:
                    # SSL_OP_NO_ENCRYPT_THEN_MAC: CBC records MAC-then-encrypt, as before
                    # RFC 7366.
                    ctx.options |= 0x00080000
        else:
            cctx.minimum_version = ssl.TLSVersion.TLSv1_3

        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", pcap,
             f"tcp port {SIP_PORT} or udp port {RTP_CALLER} or udp port {RTP_CALLEE}"],
            stderr=subprocess.PIPE)
        # tcpdump says "listening on lo" once its capture is open.
        tcpdump.stderr.readline()
        time.sleep(0.5)

        frames_caller, frames_callee = srtp.alaw_tone(400), srtp.alaw_tone(1000)
        frames_caller, frames_callee = frames_caller[:MEDIA_FRAMES], frames_callee[:MEDIA_FRAMES]
        listener = socket.create_server((IP, SIP_PORT))
        acked = threading.Event()
        srv = threading.Thread(target=server, args=(sctx, listener, frames_callee, acked))
        srv.start()
        rtp_caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp_caller.bind((IP, RTP_CALLER))
        rtp_callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp_callee.bind((IP, RTP_CALLEE))

        conn = cctx.wrap_socket(socket.create_connection((IP, SIP_PORT)))
        port = conn.getsockname()[1]
        conn.sendall(message(f"INVITE sip:{CALLED}@{IP} SIP/2.0",
                             dialog_headers("INVITE", 1, port),
                             sdp(RTP_CALLER, srtp.CALLER_KEY, 1001)))
        buf = b""
        while True:
            resp, buf = read_message(conn, buf)
            if resp.startswith(b"SIP/2.0 200"):
                break
        to_tag = resp.split(b";tag=")[-1].split(b"\r\n")[0].decode()
        conn.sendall(message(f"ACK sip:{CALLED}@{IP}:{SIP_PORT};transport=tls SIP/2.0",
                             dialog_headers("ACK", 1, port, to_tag)))
        acked.wait()
        if media:
            start = time.monotonic() + 0.05
            threads = [
                threading.Thread(target=send_media, args=(
                    rtp_caller, (IP, RTP_CALLEE), frames_caller, srtp.CALLER_KEY, 0x7777AAAA,
                    start)),
                threading.Thread(target=send_media, args=(
                    rtp_callee, (IP, RTP_CALLER), frames_callee, srtp.CALLEE_KEY, 0x8888BBBB,
                    start + 0.005)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        time.sleep(0.1)
        conn.sendall(message(f"BYE sip:{CALLED}@{IP}:{SIP_PORT};transport=tls SIP/2.0",
                             dialog_headers("BYE", 2, port, to_tag)))
        resp, buf = read_message(conn, buf)
        assert resp.startswith(b"SIP/2.0 200"), resp
        try:
            conn.unwrap()
        except (ssl.SSLError, OSError):
            pass
        conn.close()
        srv.join()
        listener.close()
        rtp_caller.close()
        rtp_callee.close()
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait()
    print(f"{name}: {os.path.getsize(pcap)} bytes, {open(keys).read().count(chr(10))} key lines")


if __name__ == "__main__":
    run("tls13")
    run("tls12_aes_gcm", "ECDHE-RSA-AES128-GCM-SHA256")
    run("tls12_chacha20", "ECDHE-RSA-CHACHA20-POLY1305", media=False)
    run("tls12_cbc_etm", "ECDHE-RSA-AES128-SHA", media=False)
    run("tls12_cbc_mte", "ECDHE-RSA-AES256-SHA384", media=False, no_etm=True)
