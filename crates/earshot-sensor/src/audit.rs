//! The sensor's own audit log: who listened to which call through the Manager API, when, for
//! how long, and who was refused. The player audits its users; this records what reaches the
//! sensor directly (VoIPmonitor tools, scripts, `nc`), which the player never sees.
//!
//! One JSON object per line, appended to a file opened with O_APPEND (so several writers and
//! log rotation by copy-truncate keep whole lines). Lines go through a small bounded queue to
//! a writer thread: a slow disk costs audit lines, counted, never a connection's or capture's
//! time. The token is never written, only the name of the credential ("token" or "none").

use crate::admission::Client;
use crate::counters::SensorCounters;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Lines waiting for the writer; past this they are dropped and counted.
const QUEUE_LINES: usize = 4096;

/// Where audit lines go; a disabled log (no `--audit-log`) costs nothing.
#[derive(Clone, Debug, Default)]
pub struct AuditLog {
    tx: Option<Sender<String>>,
    counters: Option<Arc<SensorCounters>>,
}

impl AuditLog {
    /// Opens (creating, appending to) `path` and starts the writer thread. Fails, with the
    /// path in the message, when the file cannot be opened: better than listening unaudited.
    pub fn open(path: &Path, counters: Arc<SensorCounters>) -> std::io::Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open the audit log {}: {e} (check the directory exists and \
                         the sensor's user may write to it)",
                        path.display()
                    ),
                )
            })?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_LINES);
        let path = path.to_path_buf();
        let c = counters.clone();
        std::thread::Builder::new()
            .name("earshot-audit".into())
            .spawn(move || write_lines(file, &path, &rx, &c))?;
        Ok(AuditLog {
            tx: Some(tx),
            counters: Some(counters),
        })
    }

    pub fn disabled() -> AuditLog {
        AuditLog::default()
    }

    fn write(&self, line: String) {
        let Some(tx) = &self.tx else { return };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(line) {
            if let Some(c) = &self.counters {
                SensorCounters::add(&c.audit_drops, 1);
            }
        }
    }

    /// A listener was refused before it started.
    pub fn refused(&self, client: &Client, peer: &str, call: &CallInfo, mode: Mode, reason: &str) {
        if self.tx.is_none() {
            return;
        }
        let mut line = Line::new("refused", client, peer, call, mode);
        line.str("reason", reason);
        self.write(line.end());
    }

    /// A listener started; the returned session writes the stop line when it ends or drops.
    pub fn start(&self, client: &Client, peer: &str, call: &CallInfo, mode: Mode) -> Session {
        let started_ms = unix_ms();
        if self.tx.is_some() {
            let mut line = Line::new("start", client, peer, call, mode);
            line.num("start_ms", started_ms);
            self.write(line.end());
        }
        Session {
            log: self.clone(),
            client: client.clone(),
            peer: peer.to_string(),
            call: call.clone(),
            mode,
            started_ms,
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            reason: None,
        }
    }
}

/// Which call, as the client named it and as SIP knows it.
#[derive(Clone, Debug, Default)]
pub struct CallInfo {
    pub callref: String,
    pub call_id: String,
    /// `now`, `start` or `-N` for streams; empty otherwise.
    pub from: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Listen,
    ReadAudio,
    Stream,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Listen => "listen",
            Mode::ReadAudio => "readaudio",
            Mode::Stream => "stream",
        }
    }
}

/// One listening session; its stop line (duration, frames, bytes, end reason) is written once,
/// when it is dropped.
#[derive(Debug)]
pub struct Session {
    log: AuditLog,
    client: Client,
    peer: String,
    call: CallInfo,
    mode: Mode,
    started_ms: u64,
    frames: AtomicU64,
    bytes: AtomicU64,
    reason: Option<&'static str>,
}

impl Session {
    pub fn sent(&self, frames: u64, bytes: u64) {
        self.frames.fetch_add(frames, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Why the session ended (written in the stop line); the last one set wins.
    pub fn end_reason(&mut self, reason: &'static str) {
        self.reason = Some(reason);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.log.tx.is_none() {
            return;
        }
        let mut line = Line::new("stop", &self.client, &self.peer, &self.call, self.mode);
        line.num("start_ms", self.started_ms);
        line.num("stop_ms", unix_ms());
        line.num("frames", self.frames.load(Ordering::Relaxed));
        line.num("bytes", self.bytes.load(Ordering::Relaxed));
        line.str("end", self.reason.unwrap_or("closed"));
        self.log.write(line.end());
    }
}

/// A JSON object being written, field by field.
struct Line(String);

impl Line {
    fn new(event: &str, client: &Client, peer: &str, call: &CallInfo, mode: Mode) -> Line {
        let mut l = Line(String::with_capacity(256));
        l.0.push('{');
        l.num("ts_ms", unix_ms());
        l.str("event", event);
        l.str("client", peer);
        l.str("identity", client.identity);
        l.str("callref", &call.callref);
        l.str("call_id", &call.call_id);
        l.str("mode", mode.as_str());
        if !call.from.is_empty() {
            l.str("from", &call.from);
        }
        l
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn num(&mut self, key: &str, v: u64) {
        self.key(key);
        let _ = write!(self.0, "{v}");
    }

    fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        json_string(&mut self.0, v);
    }

    fn end(mut self) -> String {
        self.0.push_str("}\n");
        self.0
    }
}

/// Writes `v` as a JSON string: a Call-ID is whatever the captured SIP said, so anything in
/// it is escaped and the line stays one valid JSON object.
fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn unix_ms() -> u64 {
    u64::try_from(earshot_wire::Timestamp::now().nanos() / 1_000_000).unwrap_or(0)
}

/// The writer thread: appends each line; a failed write is counted and warned about once per
/// run of failures (a full disk must not become a flood of warnings).
fn write_lines(mut file: File, path: &Path, rx: &Receiver<String>, counters: &SensorCounters) {
    let mut failing = false;
    while let Ok(line) = rx.recv() {
        match file.write_all(line.as_bytes()) {
            Ok(()) => failing = false,
            Err(e) => {
                SensorCounters::add(&counters.audit_drops, 1);
                if !failing {
                    tracing::warn!(
                        "cannot write the audit log {}: {e}; listening goes on unaudited \
                         until it can be written (check disk space and permissions)",
                        path.display()
                    );
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn lines_are_json_objects_with_the_call_id_escaped() {
        let client = Client {
            addr: IpAddr::from([127, 0, 0, 1]),
            identity: "none",
        };
        let call = CallInfo {
            callref: "abc".into(),
            call_id: "a\"b\\c\n\u{1}".into(),
            from: "start".into(),
        };
        let line = Line::new("start", &client, "127.0.0.1:5", &call, Mode::Stream).end();
        assert!(line.ends_with("}\n") && !line.trim_end().contains('\n'));
        assert!(line.contains(r#""call_id":"a\"b\\c\n\u0001""#), "{line}");
        assert!(line.contains(r#""mode":"stream","from":"start""#), "{line}");
    }
}
