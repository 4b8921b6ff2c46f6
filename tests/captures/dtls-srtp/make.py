#!/usr/bin/env python3
"""Writes the captures of tests/captures/dtls-srtp/ (see README.md there).

DTLS-SRTP (RFC 5764) made by independent implementations: OpenSSL's s_server and s_client run
real DTLS 1.2 handshakes with `use_srtp` on loopback while tcpdump captures them, s_client
writes the key log (`-keylogfile`) and both print the SRTP keying material they exported
(`-keymatexport EXTRACTOR-dtls_srtp`). Then libsrtp2 (through pylibsrtp) protects the media
with exactly that keying material, so earshot's exporter is checked against OpenSSL's: if it
derived anything else, no packet would authenticate. sox encodes the audio (G.711 A-law), the
SIP and packet framing come from ../listening/make.py. No earshot code is involved.

    python3 make.py handshakes   # runs openssl and tcpdump (root, loopback UDP 38010/38020):
                                 # handshake_*.pcap, keys.log, keymat.txt
    python3 make.py              # builds the calls from those (needs sox and pylibsrtp)

The DTLS server is the caller (SDP offer `a=setup:actpass`, the answer says `a=setup:active`:
the callee is the DTLS client, RFC 5763 §5). Under the encryption: a 400 Hz tone from the
caller (sending with server_write_key), 1 kHz from the callee (client_write_key).
"""

import os
import struct
import subprocess
import sys
import tempfile
import time

from pylibsrtp import Policy, Session

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "listening"))
import make as listening  # noqa: E402

# The DTLS server listens on the caller's media port, the client binds the callee's.
SERVER, CLIENT = listening.RTP_CALLER, listening.RTP_CALLEE

# name: (OpenSSL profile, libsrtp2 profile, master key bytes, master salt bytes, extra s_client
# options). "fragmented" pads the ClientHello with a 243-byte server name and sets a 256-byte
# MTU on both ends, so OpenSSL sends its ClientHello (both times: before and after the cookie)
# in three fragments.
HANDSHAKES = {
    "aes_cm_80": ("SRTP_AES128_CM_SHA1_80", Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14, []),
    "aead_aes_128_gcm": ("SRTP_AEAD_AES_128_GCM", Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12,
                         []),
    "fragmented": ("SRTP_AES128_CM_SHA1_80", Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14,
                   ["-mtu", "256", "-servername", ".".join(["a" * 60] * 4)]),
}


def run_handshake(name, workdir):
    """One DTLS 1.2 handshake between s_server and s_client, captured on lo. Returns the
    keying material s_client printed (s_server's must be the same)."""
    profile, _, key_len, salt_len, extra = HANDSHAKES[name]
    length = 2 * (key_len + salt_len)
    pcap = os.path.join(HERE, f"handshake_{name}.pcap")
    keylog = os.path.join(workdir, f"{name}.keys")
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", pcap, f"udp and port {SERVER}"],
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    mtu = ["-mtu", "256"] if "-mtu" in extra else []
    server = subprocess.Popen(
        ["openssl", "s_server", "-dtls1_2", "-accept", f"127.0.0.1:{SERVER}",
         "-cert", f"{workdir}/caller.pem", "-key", f"{workdir}/caller.key", "-verify", "1",
         "-use_srtp", profile, "-keymatexport", "EXTRACTOR-dtls_srtp",
         "-keymatexportlen", str(length)] + mtu,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1)
    # s_client ends when its stdin does (it sends close_notify then, dropped below).
    client = subprocess.run(
        ["openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{SERVER}",
         "-bind", f"127.0.0.1:{CLIENT}", "-cert", f"{workdir}/callee.pem",
         "-key", f"{workdir}/callee.key", "-use_srtp", profile, "-keylogfile", keylog,
         "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", str(length)] + extra,
        input=b"", capture_output=True, check=True, timeout=30)
    time.sleep(0.5)
    server_out, _ = server.communicate(input=b"", timeout=30)
    time.sleep(0.5)
    dump.terminate()
    dump.wait()
    mine, theirs = keymat(client.stdout), keymat(server_out)
    assert mine and mine == theirs, (name, mine, theirs)
    assert f"profile={profile}".encode() in client.stdout, client.stdout
    return mine, open(keylog).read()


def keymat(output):
    for line in output.decode(errors="replace").splitlines():
        if "Keying material:" in line:
            return line.split(":", 1)[1].strip().lower()
    return None


def fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                         capture_output=True, check=True, text=True).stdout
    return out.strip().split("=", 1)[1]


def handshakes():
    """Runs every handshake; writes handshake_*.pcap, keys.log and keymat.txt."""
    with tempfile.TemporaryDirectory() as workdir:
        prints = {}
        for who in ("caller", "callee"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                            "-subj", f"/CN=earshot-test-{who}", "-keyout", f"{workdir}/{who}.key",
                            "-out", f"{workdir}/{who}.pem"], check=True, capture_output=True)
            prints[who] = fingerprint(f"{workdir}/{who}.pem")
        lines, logs = [], ["# SSL/TLS secrets log file, generated by OpenSSL s_client\n"]
        for name in HANDSHAKES:
            material, log = run_handshake(name, workdir)
            lines.append(f"{name} {material}")
            logs.extend(l + "\n" for l in log.splitlines() if l.startswith("CLIENT_RANDOM"))
        lines += [f"fingerprint-caller {prints['caller']}", f"fingerprint-callee {prints['callee']}"]
        open(os.path.join(HERE, "keymat.txt"), "w").write("\n".join(lines) + "\n")
        open(os.path.join(HERE, "keys.log"), "w").write("".join(logs))


def read_keymat():
    out = {}
    for line in open(os.path.join(HERE, "keymat.txt")):
        name, value = line.split(None, 1)
        out[name] = value.strip()
    return out


def datagrams(path):
    """(seconds since the first, source port, destination port, UDP payload) of a tcpdump
    capture on lo (Ethernet framing, IPv4), leaving out alerts (the close_notify s_client sends
    when it ends: an SRTP call goes on after its handshake)."""
    data = open(path, "rb").read()
    magic, = struct.unpack_from("<I", data, 0)
    assert magic == 0xA1B2C3D4, "a little-endian microsecond pcap"
    out, at, first = [], 24, None
    while at + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, at)
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        sport, dport, length = struct.unpack_from("!HHH", udp, 0)
        payload = udp[8:length]
        if payload[:1] == b"\x15":
            continue
        t = sec + usec / 1e6
        first = t if first is None else first
        out.append((t - first, sport, dport, payload))
    return out


def alaw_tone(hz):
    """4 s of a sine at half scale in G.711 A-law by sox, undithered so the file is the same
    every time."""
    with tempfile.NamedTemporaryFile(suffix=".al", delete=False) as tmp:
        path = tmp.name
    subprocess.run(["sox", "-D", "-n", "-r", "8000", "-c", "1", path, "synth", "4", "sine",
                    str(hz), "vol", "0.5"], check=True)
    data = open(path, "rb").read()
    os.unlink(path)
    return listening.chunks(data, 160)


CALL_ID = "dtls-srtp-1@earshot-test"
CALLER_SSRC, CALLEE_SSRC = 0x7777AAAA, 0x8888BBBB
# Media starts this long after the ACK, whatever the handshake took (a few ms on loopback), so
# every capture here has its media at the same times as the clear twin.
MEDIA_AFTER = 0.5


def rtp_packets(frames, ssrc):
    return [struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 8, i, 1000 + i * 160, ssrc)
            + payload for i, payload in enumerate(frames)]


def write_call(path, proto, offer_extra, answer_extra, handshake, protect):
    """The call: SIP, then (DTLS-SRTP) the handshake's datagrams as captured, then 4 s of
    media each way at fixed times, each packet through `protect(from_caller, rtp)`."""
    p = listening.Pcap(path)
    c = listening.Call(p, CALL_ID, 8, "PCMA/8000", proto=proto, offer_extra=offer_extra,
                       answer_extra=answer_extra)
    t = c.invite(listening.T0, 0.5)
    for offset, sport, dport, payload in handshake:
        p.add(t + offset, sport, dport, payload)
    media = t + MEDIA_AFTER
    ends = []
    for from_caller, hz, ssrc, start in ((True, 400, CALLER_SSRC, media),
                                         (False, 1000, CALLEE_SSRC, media + 0.005)):
        sport, dport = (SERVER, CLIENT) if from_caller else (CLIENT, SERVER)
        packets = rtp_packets(alaw_tone(hz), ssrc)
        for i, rtp in enumerate(packets):
            p.add(start + i * 0.020, sport, dport, protect(from_caller, rtp))
        ends.append(start + len(packets) * 0.020)
    c.bye(max(ends) + 0.1)
    p.close()


def dtls_call(name, material):
    _, profile, key_len, salt_len, _ = HANDSHAKES[name]
    m = bytes.fromhex(material)
    assert len(m) == 2 * (key_len + salt_len)
    # RFC 5764 §4.2: client_write_key | server_write_key | client_write_salt | server_write_salt.
    client_key, server_key = m[:key_len], m[key_len:2 * key_len]
    client_salt = m[2 * key_len:2 * key_len + salt_len]
    server_salt = m[2 * key_len + salt_len:]
    sessions = {}
    for from_caller, key in ((True, server_key + server_salt), (False, client_key + client_salt)):
        policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        sessions[from_caller] = Session(policy=policy)
    prints = read_keymat()
    offer = [f"a=fingerprint:sha-256 {prints['fingerprint-caller']}", "a=setup:actpass",
             "a=rtcp-mux"]
    answer = [f"a=fingerprint:sha-256 {prints['fingerprint-callee']}", "a=setup:active",
              "a=rtcp-mux"]
    handshake = datagrams(os.path.join(HERE, f"handshake_{name}.pcap"))
    assert handshake and handshake[-1][0] < MEDIA_AFTER, "the handshake ends before the media"
    write_call(os.path.join(HERE, f"dtls_srtp_{name}.pcap"), "UDP/TLS/RTP/SAVPF", offer, answer,
               handshake, lambda from_caller, rtp: sessions[from_caller].protect(rtp))


def clear_twin():
    write_call(os.path.join(HERE, "clear_twin.pcap"), "RTP/AVP", [], [], [],
               lambda _from_caller, rtp: rtp)


def wrong_keys():
    """keys.log with every master secret's first byte flipped: the sessions are found, their
    keys are wrong, and no packet may authenticate."""
    out = []
    for line in open(os.path.join(HERE, "keys.log")):
        if line.startswith("CLIENT_RANDOM"):
            label, random, secret = line.split()
            secret = f"{int(secret[:2], 16) ^ 0xFF:02x}" + secret[2:]
            line = f"{label} {random} {secret}\n"
        out.append(line)
    open(os.path.join(HERE, "keys_wrong.log"), "w").write("".join(out))


if __name__ == "__main__":
    if sys.argv[1:] == ["handshakes"]:
        handshakes()
    else:
        material = read_keymat()
        for name in HANDSHAKES:
            dtls_call(name, material[name])
        clear_twin()
        wrong_keys()
