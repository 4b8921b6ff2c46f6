//! Fixed replies. The VoIPmonitor strings are byte-exact copies of a real sensor's replies
//! (`/work/shared/voipmonitor/*.bin`): note which end in a newline and which do not.

/// `listen` on a call nobody listened to yet (`listen.bin`; no newline).
pub const SUCCESS: &[u8] = b"success";
/// `listen` on a call that already has a listener; the new listener is still registered
/// (`run2/nc_listen_abc_again.bin`; no newline).
pub const CALL_ALREADY_LISTENING: &[u8] = b"call already listening";
/// `listen` / `active_call_info` with an unknown reference (`listen_bad_ref.bin`; no newline).
pub const CALL_NOT_FOUND: &[u8] = b"call not found";
/// `readaudio` before any audio was produced (`readaudio_00.bin`; no newline).
pub const WAIT_FOR_DATA: &[u8] = b"information: wait for data";
/// `readaudio` on a call that has ended or never existed (no newline, like the other `error:`s).
pub const ERROR_CALL_NOT_FOUND: &[u8] = b"error: call not found";
/// `readaudio` on a live call that nobody listens to (`readaudio_no_listen.bin`).
pub const ERROR_WORKER_NOT_FOUND: &[u8] = b"error: worker not found";
/// `readaudio` with a listen id that was never registered on that call
/// (`run2/nc_readaudio_wrong_id.bin`).
pub const ERROR_CLIENT_NOT_FOUND: &[u8] = b"error: client of worker not found";
/// Unknown command (`bogus_command.bin`: this one *does* end in a newline).
pub const COMMAND_NOT_FOUND: &[u8] = b"command not found\n";
/// `listen_stop` answers nothing (`listen_stop.bin` is empty).
pub const LISTEN_STOP: &[u8] = b"";

// earshot's own connection-level errors. They end in a newline like VoIPmonitor's own
// connection-level refusals (`need aes!\n`), so they read well in a terminal.
/// Missing or wrong `auth` token.
pub const UNAUTHORIZED: &[u8] = b"error: unauthorized\n";

/// Whether a reply is the server's refusal of the client's token (or of its lack of one).
pub fn is_unauthorized(reply: &[u8]) -> bool {
    reply.starts_with(UNAUTHORIZED.strip_suffix(b"\n").unwrap_or(UNAUTHORIZED))
}
/// Request above 64 KiB without a terminator.
pub const REQUEST_TOO_LARGE: &[u8] = b"error: request too large\n";

/// Size of one `readaudio` block: 400 samples of s16le at 8 kHz, 50 ms. Replies carry whole blocks.
pub const READAUDIO_BLOCK_BYTES: usize = 800;

/// `getversion`: our version, bare and without newline like VoIPmonitor's `2026.04.0`.
pub fn version() -> &'static [u8] {
    env!("CARGO_PKG_VERSION").as_bytes()
}

/// `totalcalls`: the number of calls in memory, bare decimal, no newline (`totalcalls.bin`).
pub fn totalcalls(n: usize) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Commands and one-line descriptions for `help`, in VoIPmonitor's `name ... text.` layout.
const HELP: &[(&str, &str)] = &[
    ("active_call_info", "one call as JSON: its listcalls fields and its RTP streams. Usage: active_call_info <callreference>"),
    ("calls", "subscribe to call events on this connection, one JSON line each: snapshot, new, changed (only the changed fields), ended, overflow"),
    ("getversion", "print the sensor version"),
    ("help", "this list"),
    ("listcalls", "active calls, one [call] block each. 'listcalls json' or 'listcalls {\"limit\":10,\"sort_field\":\"calldate\",\"sort_dir\":\"desc\"}' prints VoIPmonitor's JSON layout; also offset, and filters number, caller, called, callid, state, codec, sensor_id"),
    ("listen", "start listening to a call. Usage: listen <callreference> <listen_id>"),
    ("listen_stop", "stop listening. Usage: listen_stop <callreference> <listen_id>"),
    ("readaudio", "audio since the last read, s16le 8 kHz mono in 800-byte blocks. Usage: readaudio <callreference> <listen_id>"),
    ("sniffer_stat", "sensor status as JSON"),
    ("stream", "push a call's audio, events and quality on this connection. Usage: stream <callreference> [rate=8000|16000|48000] [channels=1|2] [from=now|start|-SECONDS] [format=s16le|opus]"),
    ("totalcalls", "number of calls in memory"),
];

/// `help`: the list of our commands.
pub fn help() -> Vec<u8> {
    let mut out = String::from("List of commands:\n\n");
    for (name, text) in HELP {
        out.push_str(name);
        out.push_str(" ... ");
        out.push_str(text);
        out.push_str(".\n\n");
    }
    out.into_bytes()
}

/// What `sniffer_stat` reports; the server fills it.
#[derive(Clone, Debug, Default)]
pub struct SnifferStat {
    pub uptime_secs: u64,
    pub active_calls: usize,
    pub packets_seen: u64,
    pub packets_dropped: u64,
    pub memory_is_full: bool,
    /// Frames the pipeline has processed (`packets_seen` counts what the sources produced).
    pub packets_processed: u64,
    /// Listeners dropped because they fell behind (stopped reading).
    pub listener_drops: u64,
    /// Listeners currently attached (`listen` and `stream`).
    pub listeners: u64,
    /// Frames the kernel dropped before capture saw them (libpcap statistics).
    pub kernel_drops: u64,
    /// Frames dropped because the sensor's own capture queue was full.
    pub internal_drops: u64,
    /// Packets or events lost for listeners because the audio fan-out queue was full.
    pub audio_drops: u64,
    /// Resident memory of the sensor process, in bytes (0 where unknown).
    pub memory_bytes: u64,
    /// Bytes held by the per-call rewind buffers.
    pub rewind_bytes: u64,
    /// RTP packets not kept for rewind (a call or all calls at the rewind byte limit).
    pub rewind_overflow: u64,
    /// RTP packets the pipeline could not hand to the fan-out thread (which keeps the rewind
    /// and feeds listeners): the hand-off between them was at its byte bound.
    pub handoff_drops: u64,
    /// `calls` subscribers closed because they did not keep up with the events.
    pub calls_overflows: u64,
}

/// `sniffer_stat`: a JSON object whose VoIPmonitor keys keep VoIPmonitor's types (numbers as
/// strings, as in `sniffer_stat.bin`), plus earshot keys, ending in a newline like the recording.
pub fn sniffer_stat(s: &SnifferStat) -> Vec<u8> {
    let v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "build": "earshot",
        "uptime": s.uptime_secs.to_string(),
        "pbCountPacketDrop": s.packets_dropped.to_string(),
        "memory_is_full": if s.memory_is_full { "1" } else { "0" },
        "count_live_sniffers": "0",
        "terminating_error": "",
        "active_calls": s.active_calls,
        "packets_seen": s.packets_seen,
        "packets_processed": s.packets_processed,
        "listeners": s.listeners,
        "listener_drops": s.listener_drops,
        "kernel_drops": s.kernel_drops,
        "internal_drops": s.internal_drops,
        "audio_drops": s.audio_drops,
        "memory_bytes": s.memory_bytes,
        "rewind_bytes": s.rewind_bytes,
        "rewind_overflow": s.rewind_overflow,
        "handoff_drops": s.handoff_drops,
        "calls_overflows": s.calls_overflows,
    });
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command() {
        let h = String::from_utf8(help()).unwrap();
        assert!(h.starts_with("List of commands:\n\n"));
        for c in crate::command::COMMAND_NAMES {
            assert!(h.contains(&format!("\n{c} ... ")), "{c} missing from help");
        }
    }

    #[test]
    fn sniffer_stat_is_json_with_string_numbers() {
        let out = sniffer_stat(&SnifferStat {
            uptime_secs: 37,
            rewind_overflow: 5,
            calls_overflows: 3,
            ..Default::default()
        });
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["uptime"], "37");
        assert_eq!(v["memory_is_full"], "0");
        assert_eq!(v["rewind_overflow"], 5);
        assert_eq!(v["calls_overflows"], 3);
    }
}
