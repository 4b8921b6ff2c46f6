#!/usr/bin/env python3
"""Writes tshark's view of every capture in ../shared/pcaps as expected results for earshot's
tests (crates/earshot/tests/tshark_compat.rs). Run from the repository root:

    python3 tests/expected/generate.py

Needs tshark (Debian package `tshark`). The numbers in the output files come from tshark alone;
this script only parses its text output. Where tshark needs a hint to see what earshot finds on
its own (SIP on a non-standard port, RTP without SDP), the hint and the reason are recorded in the
file's "notes".
"""
import json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "pcaps")
OUT = os.path.dirname(os.path.abspath(__file__))

# Captures where tshark needs decode-as hints, and why.
HINTS = {
    "heplify/sip_ipv4_tcp_fragmented.pcap": (["-d", "tcp.port==6060,sip"],
        "SIP on TCP port 6060: tshark sees no SIP without `-d tcp.port==6060,sip`; earshot finds it on any port."),
    "wireshark/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap": (["--disable-protocol", "t38", "--enable-heuristic", "rtp_udp"],
        "At 64.5 s a re-INVITE offers T.38 and is refused with 488, so RTP goes on; tshark nevertheless decodes the "
        "rest of the RTP as malformed T.38 and cuts the stream short (1838 packets, 6 'lost'). Figures here come "
        "from tshark with T.38 disabled and RTP heuristics on, which sees all 3848 packets as earshot does."),
}
# Streams whose sender restarted its RTP clock mid-stream: (ssrc, capture-relative time of the step).
CLOCK_RESETS = {
    "wireshark/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap": [("0x17D90134", 64.7)],
}
CLOCK_RESET_NOTE = ("The sender of {ssrc} restarts its RTP timestamps at {t} s (347200 -> 0). tshark measures every "
                    "later packet against the old clock (max jitter 2730 ms); earshot treats a step of more than 10 s "
                    "as a restarted clock. Its jitter is compared with tshark's on the two halves, split at the step: "
                    "max = the larger max, mean = the packet-weighted mean.")
NON_SIP_NOTE = ("Some streams here were set up by SDP outside SIP (MGCP), which earshot does not decode, or carry "
                "RTP that no SDP announced (tshark finds them with `--enable-heuristic rtp_udp`): earshot lists "
                "both as unassociated streams.")
NO_SDP_NOTE = ("No SDP announces this RTP: tshark's SDP-driven rtp,streams shows nothing, so these "
               "streams come from `--enable-heuristic rtp_udp`; earshot reports them as unassociated.")
EVENT_NOTE = ("Stream carries RFC 4733 telephone-events. Packets and loss come from the full capture; "
              "jitter comes from tshark on a copy without the event packets (`-Y '!rtpevent'`), because "
              "tshark folds the events' frozen timestamps into its jitter and earshot leaves them out.")

LINE = re.compile(
    r"^\s*(?P<start>[\d.]+)\s+(?P<end>[\d.]+)\s+(?P<src>\S+)\s+(?P<sport>\d+)\s+(?P<dst>\S+)\s+(?P<dport>\d+)\s+"
    r"(?P<ssrc>0x[0-9A-Fa-f]+)\s+(?P<payload>.*?)\s+(?P<pkts>\d+)\s+(?P<lost>-?\d+)\s+\((?P<pct>[-\d.]+)%\)\s+"
    r"(?P<mind>[-\d.]+)\s+(?P<meand>[-\d.]+)\s+(?P<maxd>[-\d.]+)\s+(?P<minj>[-\d.]+)\s+(?P<meanj>[-\d.]+)\s+(?P<maxj>[-\d.]+)\s*(?P<problem>X?)\s*$")


def tshark(args):
    r = subprocess.run(["tshark", *args], capture_output=True, text=True, check=True)
    return r.stdout


def addr(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def streams(path, extra):
    out = tshark(["-n", "-q", "-r", path, *extra, "-z", "rtp,streams"])
    found = []
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        found.append({
            "src": addr(m["src"], m["sport"]), "dst": addr(m["dst"], m["dport"]),
            "ssrc": "0x%08X" % int(m["ssrc"], 16), "payload": m["payload"].strip(),
            "packets": int(m["pkts"]), "lost": int(m["lost"]),
            "mean_jitter_ms": float(m["meanj"]), "max_jitter_ms": float(m["maxj"]),
        })
    return sorted(found, key=lambda s: (s["src"], s["dst"], s["ssrc"]))


def calls(path, extra):
    out = tshark(["-n", "-r", path, *extra, "-Y", "sip.Method == \"INVITE\"", "-T", "fields",
                  "-E", "separator=\t", "-e", "sip.Call-ID", "-e", "sip.from.user", "-e", "sip.to.user"])
    seen = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        # tshark lists every Call-ID of a frame comma-separated; SIP has one per message.
        cid = parts[0].split(",")[0]
        seen.setdefault(cid, {"call_id": cid, "caller": parts[1].split(",")[0], "called": parts[2].split(",")[0]})
    return sorted(seen.values(), key=lambda c: c["call_id"])


def jitter_without_events(path, extra):
    with tempfile.TemporaryDirectory() as tmp:
        filtered = os.path.join(tmp, "no-events.pcap")
        subprocess.run(["tshark", "-n", "-r", path, *extra, "-2", "-Y", "!rtpevent", "-F", "pcap", "-w", filtered],
                       capture_output=True, check=True)
        return {(s["src"], s["dst"], s["ssrc"]): s for s in streams(filtered, extra)}


def sip_sdp_addresses(path, extra):
    out = tshark(["-n", "-r", path, *extra, "-Y", "sip && sdp", "-T", "fields", "-E", "separator=\t",
                  "-e", "sdp.connection_info.address", "-e", "sdp.media.port"])
    found = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        for ip in parts[0].split(","):
            for port in parts[1].split(","):
                if ip and port:
                    found.add(addr(ip, port))
    return found


def split_at_clock_reset(path, extra, stream_list, ssrc, t):
    halves = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, flt in enumerate([f"frame.time_relative < {t}", f"frame.time_relative >= {t}"]):
            part = os.path.join(tmp, f"{i}.pcap")
            subprocess.run(["tshark", "-n", "-r", path, "-Y", flt, "-F", "pcap", "-w", part], capture_output=True, check=True)
            halves += [s for s in streams(part, extra + ["--enable-heuristic", "rtp_udp"]) if s["ssrc"] == ssrc]
    for s in stream_list:
        if s["ssrc"] == ssrc and len(halves) == 2:
            total = sum(h["packets"] for h in halves)
            s["max_jitter_ms"] = max(h["max_jitter_ms"] for h in halves)
            s["mean_jitter_ms"] = round(sum(h["mean_jitter_ms"] * h["packets"] for h in halves) / total, 3)
            s["jitter_source"] = "split-at-clock-reset"


def describe(rel):
    path = os.path.join(SHARED, rel)
    extra, notes = [], []
    if rel in HINTS:
        extra, note = HINTS[rel]
        notes.append(note)
    sdp_streams = streams(path, extra)
    heuristic = []
    if not sdp_streams:
        heuristic = streams(path, extra + ["--enable-heuristic", "rtp_udp"])
        if heuristic:
            notes.append(NO_SDP_NOTE)
    else:
        sip_media = sip_sdp_addresses(path, extra)
        known = {(s["src"], s["dst"], s["ssrc"]) for s in sdp_streams}
        extra_h = [h for h in streams(path, extra + ["--enable-heuristic", "rtp_udp"])
                   if (h["src"], h["dst"], h["ssrc"]) not in known]
        outside = [s for s in sdp_streams if s["src"] not in sip_media and s["dst"] not in sip_media]
        if extra_h or outside:
            notes.append(NON_SIP_NOTE)
            sdp_streams = [s for s in sdp_streams if s not in outside]
            heuristic = sorted(outside + extra_h, key=lambda s: (s["src"], s["dst"], s["ssrc"]))
    for ssrc, t in CLOCK_RESETS.get(rel, []):
        split_at_clock_reset(path, extra, sdp_streams, ssrc, t)
        notes.append(CLOCK_RESET_NOTE.format(ssrc=ssrc, t=t))
    result = {"capture": rel, "tshark": tshark(["--version"]).splitlines()[0], "tshark_args": extra,
              "notes": notes, "calls": calls(path, extra),
              "streams": sdp_streams, "unassociated_streams": heuristic}
    evented = [s for s in sdp_streams if "event" in s["payload"].lower() or "RTPType" in s["payload"]]
    if evented:
        clean = jitter_without_events(path, extra)
        for s in evented:
            c = clean.get((s["src"], s["dst"], s["ssrc"]))
            if c and "event" in s["payload"].lower():
                s["jitter_source"] = "without-events"
                s["mean_jitter_ms"], s["max_jitter_ms"] = c["mean_jitter_ms"], c["max_jitter_ms"]
        if any(s.get("jitter_source") for s in evented):
            notes.append(EVENT_NOTE)
    return result


def main():
    rels = []
    for d in sorted(os.listdir(SHARED)):
        full = os.path.join(SHARED, d)
        if os.path.isdir(full) and d != "reference":
            rels += [f"{d}/{f}" for f in sorted(os.listdir(full)) if f.endswith((".pcap", ".pcapng", ".cap"))]
    for rel in rels:
        doc = describe(rel)
        name = rel.replace("/", "__") + ".json"
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"{rel}: {len(doc['calls'])} calls, {len(doc['streams'])} streams, "
              f"{len(doc['unassociated_streams'])} heuristic", file=sys.stderr)


if __name__ == "__main__":
    main()
