//! Async client of a sensor's Manager API (TCP 5029): one command per connection.
//!
//! The player only ever connects to sensors from its configuration or its registry. Requests are
//! typed [`Command`]s written by earshot-manager's one encoder (the server's parser reads them
//! back), and their parameters are validated before that (no newlines, no spaces), so a browser
//! cannot smuggle commands.

use crate::callview::{has_earshot_columns, CallView};
use crate::db::{Sensor, SensorKind};
use crate::error::ManagerError;
use earshot_manager::replies::is_unauthorized;
use earshot_manager::stream_proto::{MAX_FRAME_PAYLOAD, MAX_HEADER_LINE};
use earshot_manager::{CallRef, Command, ListCallsFormat, ListParams, StreamRequest};
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A connection to a sensor, plain TCP or TLS.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}
type Sock = Box<dyn Conn>;

/// The certificates the player trusts for sensors registered with `tls`. Process-wide, like a
/// system's root store: every sensor connection is checked against the same anchors, and a
/// reload swaps them for all at once.
static SENSOR_TRUST: RwLock<Option<Arc<rustls::ClientConfig>>> = RwLock::new(None);

/// Sets (or, with `None`, clears) the trust anchors for TLS sensors.
pub fn trust_sensors(config: Option<Arc<rustls::ClientConfig>>) {
    if let Ok(mut t) = SENSOR_TRUST.write() {
        *t = config;
    }
}

fn sensor_trust() -> Option<Arc<rustls::ClientConfig>> {
    SENSOR_TRUST.read().ok().and_then(|t| t.clone())
}

/// How long a `stream` may stay silent before the sensor is given up: it sends audio every
/// 20 ms and a quality report every second while a call runs.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply larger than this is not a Manager API reply we understand.
const MAX_REPLY: u64 = 64 * 1024 * 1024;

fn addr(s: &Sensor) -> String {
    if s.host.contains(':') {
        format!("[{}]:{}", s.host, s.port)
    } else {
        format!("{}:{}", s.host, s.port)
    }
}

/// TCP, then TLS when the sensor is registered with it, all within [`CONNECT_TIMEOUT`].
async fn connect(s: &Sensor) -> Result<Sock, ManagerError> {
    let a = addr(s);
    let trust = if s.tls {
        Some(sensor_trust().ok_or(ManagerError::TlsNoTrust)?)
    } else {
        None
    };
    let work = async {
        let tcp = TcpStream::connect(&a)
            .await
            .map_err(|e| ManagerError::Unreachable {
                addr: a.clone(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let Some(trust) = trust else {
            return Ok(Box::new(tcp) as Sock);
        };
        let name = rustls::pki_types::ServerName::try_from(s.host.clone())
            .map_err(|e| ManagerError::Tls(format!("{}: {e}", s.host)))?;
        let tls = tokio_rustls::TlsConnector::from(trust)
            .connect(name, tcp)
            .await
            .map_err(|e| ManagerError::Tls(e.to_string()))?;
        Ok(Box::new(tls) as Sock)
    };
    timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| ManagerError::Timeout(a.clone()))?
}

/// Connects and sends `auth` (when the sensor has a token) and the command.
async fn send(s: &Sensor, command: &Command) -> Result<Sock, ManagerError> {
    let a = addr(s);
    let mut sock = connect(s).await?;
    let req = earshot_manager::encode_request(s.token.as_deref(), command);
    sock.write_all(&req)
        .await
        .map_err(|e| ManagerError::Unreachable {
            addr: a,
            reason: e.to_string(),
        })?;
    Ok(sock)
}

/// One command, its whole reply (read to EOF), with a time limit on everything.
pub async fn request(
    s: &Sensor,
    command: &Command,
    limit: Duration,
) -> Result<Vec<u8>, ManagerError> {
    request_bounded(s, command, limit, MAX_REPLY).await
}

/// [`request`] for a reply of at most `max_reply` bytes: a longer one is an error, not cut.
pub async fn request_bounded(
    s: &Sensor,
    command: &Command,
    limit: Duration,
    max_reply: u64,
) -> Result<Vec<u8>, ManagerError> {
    let a = addr(s);
    let work = async {
        let mut sock = send(s, command).await?;
        // Plain TCP half-closes so VoIPmonitor sees the end of the request at once; a TLS
        // close_notify would end the whole session, so there the blank line ends it.
        if !s.tls {
            let _ = sock.shutdown().await;
        }
        let mut reply = Vec::new();
        (&mut sock)
            .take(max_reply.saturating_add(1))
            .read_to_end(&mut reply)
            .await
            .map_err(|e| ManagerError::Unreachable {
                addr: a.clone(),
                reason: e.to_string(),
            })?;
        if reply.len() as u64 > max_reply {
            return Err(ManagerError::Protocol(format!(
                "the sensor's reply is longer than {max_reply} bytes"
            )));
        }
        if is_unauthorized(&reply) {
            return Err(ManagerError::TokenRefused);
        }
        Ok(reply)
    };
    timeout(limit, work)
        .await
        .map_err(|_| ManagerError::Timeout(addr(s)))?
}

/// Accepts the hex callreferences sensors print (`0x…` or bare); anything else is refused so it
/// can never change the command line.
pub fn valid_callref(r: &str) -> bool {
    let hex = r
        .strip_prefix("0x")
        .or_else(|| r.strip_prefix("0X"))
        .unwrap_or(r);
    !hex.is_empty() && hex.len() <= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Listen ids: VoIPmonitor accepts up to 64 bytes without spaces; we allow a safe subset.
pub fn valid_listen_id(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `listcalls json` (earshot) or `listcalls` (VoIPmonitor prints JSON for it), as the player's
/// call objects.
pub async fn list_calls(s: &Sensor, limit: Duration) -> Result<Vec<CallView>, ManagerError> {
    // VoIPmonitor answers JSON to `listcalls` with a parameter object (its GUI sends one);
    // earshot answers both forms, the object form with a totals element that is skipped below.
    let params = match s.kind {
        // `"earshot":true` adds the call state, hold and codec names after VoIPmonitor's columns.
        SensorKind::Earshot => ListParams {
            earshot: true,
            ..ListParams::default()
        },
        SensorKind::Voipmonitor => ListParams {
            sort_field: Some("calldate".into()),
            sort_desc: true,
            ..ListParams::default()
        },
    };
    let command = Command::ListCalls(ListCallsFormat::JsonWithParams(params));
    let reply = request(s, &command, limit).await?;
    parse_list(s.id_sensor, &reply)
}

/// A `listcalls` JSON reply (a header row of column names, then one row per call) as calls.
pub fn parse_list(sensor_id: i64, reply: &[u8]) -> Result<Vec<CallView>, ManagerError> {
    let doc: Value = serde_json::from_slice(reply).map_err(|_| {
        ManagerError::Protocol(format!(
            "listcalls did not return JSON: {}",
            String::from_utf8_lossy(&reply[..reply.len().min(200)])
        ))
    })?;
    let rows = doc
        .as_array()
        .ok_or_else(|| ManagerError::Protocol("listcalls did not return an array".into()))?;
    let Some(header) = rows.first().and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.iter().filter_map(Value::as_str).collect();
    let earshot = has_earshot_columns(names.iter().copied());
    Ok(rows
        .iter()
        .skip(1)
        .filter_map(Value::as_array)
        // The totals element (`[{"total":…}]`) and malformed rows have another length.
        .filter(|row| row.len() == names.len())
        .map(|row| CallView::from_columns(sensor_id, earshot, names.iter().copied().zip(row)))
        .collect())
}

/// Finds one call on a sensor (for its Call-ID and parties); `None` when it is not listed.
pub async fn find_call(s: &Sensor, callref: &str) -> Result<Option<CallView>, ManagerError> {
    let want = normalize_ref(callref);
    Ok(list_calls(s, REPLY_TIMEOUT)
        .await?
        .into_iter()
        .find(|c| c.key() == want))
}

/// `active_call_info <ref>`'s `quality` (the call's streams' per-second points, see
/// docs/manager-protocol.md); `null` from a sensor that has none (VoIPmonitor).
pub async fn call_quality(s: &Sensor, callref: &str) -> Result<serde_json::Value, ManagerError> {
    let mut v = active_call_info(s, callref, MAX_REPLY).await?;
    Ok(v.get_mut("quality")
        .map(serde_json::Value::take)
        .unwrap_or_default())
}

/// A reference the player was given, as the command carries it; one that does not parse
/// names no call.
fn call_ref(r: &str) -> Result<CallRef, ManagerError> {
    CallRef::parse(r).map_err(|_| ManagerError::CallNotFound)
}

/// Lower case, no `0x`, no leading zeros: how two spellings of a reference are compared.
pub fn normalize_ref(r: &str) -> String {
    let l = r.to_ascii_lowercase();
    let hex = l.strip_prefix("0x").unwrap_or(&l);
    hex.trim_start_matches('0').to_string()
}

/// An open `stream`: the header was read, frames follow.
pub struct StreamConn {
    pub header: Map<String, Value>,
    reader: BufReader<Sock>,
}

impl StreamConn {
    /// Opens `stream <ref> rate= channels= from= [format=]` and reads the header line.
    pub async fn open(s: &Sensor, req: &StreamRequest) -> Result<StreamConn, ManagerError> {
        let a = addr(s);
        let sock = send(s, &Command::Stream(req.clone())).await?;
        let mut reader = BufReader::new(sock);
        let mut line = Vec::new();
        let mut limited = (&mut reader).take(MAX_HEADER_LINE as u64 + 1);
        match timeout(REPLY_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
            Err(_) => return Err(ManagerError::Timeout(a)),
            Ok(Err(e)) => {
                return Err(ManagerError::Unreachable {
                    addr: a,
                    reason: e.to_string(),
                })
            }
            Ok(Ok(_)) => {}
        }
        if line.last() != Some(&b'\n') {
            return Err(if line.is_empty() {
                ManagerError::Protocol("the sensor closed the stream without a header".into())
            } else {
                ManagerError::Protocol("the stream header line is too long or cut".into())
            });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if let Some(msg) = text.strip_prefix("error: ") {
            return Err(match msg {
                "unauthorized" => ManagerError::TokenRefused,
                "call not found" => ManagerError::CallNotFound,
                other => ManagerError::refusal(other),
            });
        }
        let header = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ManagerError::Protocol(format!(
                    "the stream header is not a JSON object: {}",
                    &text[..text.len().min(200)]
                )))
            }
        };
        Ok(StreamConn { header, reader })
    }

    /// The next frame, byte for byte as the sensor sent it (`kind`, length, payload); `None`
    /// at a clean end of input.
    pub async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ManagerError> {
        let mut head = [0u8; 5];
        let read = timeout(STREAM_IDLE_TIMEOUT, self.reader.read_exact(&mut head)).await;
        let Ok(read) = read else {
            return Err(ManagerError::Protocol(format!(
                "the sensor sent nothing for {} s",
                STREAM_IDLE_TIMEOUT.as_secs()
            )));
        };
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(ManagerError::Protocol(format!("stream read failed: {e}"))),
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME_PAYLOAD {
            return Err(ManagerError::Protocol(format!(
                "frame of {len} bytes exceeds the protocol's limit"
            )));
        }
        let mut frame = vec![0u8; 5 + len];
        frame[..5].copy_from_slice(&head);
        timeout(STREAM_IDLE_TIMEOUT, self.reader.read_exact(&mut frame[5..]))
            .await
            .map_err(|_| ManagerError::Protocol("the sensor stalled inside a frame".into()))?
            .map_err(|e| ManagerError::Protocol(format!("stream cut inside a frame: {e}")))?;
        Ok(Some(frame))
    }
}

/// Longest line of a `calls` subscription: one call object (68 columns and earshot's, about
/// 2 KB) with room to spare.
const MAX_CALLS_LINE: usize = 256 << 10;

/// An open `calls` subscription: one JSON line per event (docs/manager-protocol.md).
pub struct CallsConn {
    reader: BufReader<Sock>,
    line: Vec<u8>,
}

impl CallsConn {
    /// Sends `calls` (after `auth`).
    pub async fn open(s: &Sensor) -> Result<CallsConn, ManagerError> {
        let sock = send(s, &Command::Calls).await?;
        Ok(CallsConn {
            reader: BufReader::new(sock),
            line: Vec::new(),
        })
    }

    /// The next line, without its newline; `None` when the sensor closed the subscription.
    /// A sensor silent for `idle` (it says `alive` every 5 s) is given up on.
    pub async fn next_line(&mut self, idle: Duration) -> Result<Option<&[u8]>, ManagerError> {
        self.line.clear();
        let mut limited = (&mut self.reader).take(MAX_CALLS_LINE as u64 + 1);
        let read = timeout(idle, limited.read_until(b'\n', &mut self.line))
            .await
            .map_err(|_| {
                ManagerError::Protocol(format!(
                    "the sensor's call feed was silent for {} s",
                    idle.as_secs()
                ))
            })?
            .map_err(|e| ManagerError::Protocol(format!("the call feed failed: {e}")))?;
        if read == 0 {
            return Ok(None);
        }
        if self.line.last() != Some(&b'\n') {
            return Err(ManagerError::Protocol(
                "a call feed line is too long or cut".into(),
            ));
        }
        self.line.pop();
        if is_unauthorized(&self.line) {
            return Err(ManagerError::TokenRefused);
        }
        Ok(Some(&self.line))
    }
}

/// What `readaudio` answered.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadAudio {
    Pcm(Vec<u8>),
    Wait,
    /// The call ended or the listener was dropped; the text says which.
    Gone(String),
}

/// `listen <ref> <id>`: `success` and `call already listening` both register the listener.
pub async fn listen(s: &Sensor, callref: &str, listen_id: &str) -> Result<(), ManagerError> {
    let command = Command::Listen {
        callref: call_ref(callref)?,
        listen_id: listen_id.into(),
    };
    let r = request(s, &command, REPLY_TIMEOUT).await?;
    match r.as_slice() {
        b"success" | b"call already listening" => Ok(()),
        b"call not found" => Err(ManagerError::CallNotFound),
        other => Err(ManagerError::refusal(
            String::from_utf8_lossy(other)
                .trim()
                .trim_start_matches("error: "),
        )),
    }
}

pub async fn read_audio(
    s: &Sensor,
    callref: &str,
    listen_id: &str,
) -> Result<ReadAudio, ManagerError> {
    let command = Command::ReadAudio {
        callref: call_ref(callref)?,
        listen_id: listen_id.into(),
    };
    let r = request(s, &command, REPLY_TIMEOUT).await?;
    if r.starts_with(b"information: ") {
        return Ok(ReadAudio::Wait);
    }
    if let Some(msg) = r.strip_prefix(b"error: ") {
        return Ok(ReadAudio::Gone(
            String::from_utf8_lossy(msg).trim().to_string(),
        ));
    }
    Ok(ReadAudio::Pcm(r))
}

pub async fn listen_stop(s: &Sensor, callref: &str, listen_id: &str) -> Result<(), ManagerError> {
    let command = Command::ListenStop {
        callref: call_ref(callref)?,
        listen_id: listen_id.into(),
    };
    request(s, &command, REPLY_TIMEOUT).await?;
    Ok(())
}

/// The largest `active_call_info` reply read: the sensor keeps 8 KiB of SIP a call by
/// default, and its call fields and streams are a few KB more.
const MAX_CALL_INFO: u64 = 4 << 20;

/// `active_call_info <ref>`: the call's fields, its kept SIP messages and its streams.
pub async fn call_info(s: &Sensor, callref: &str) -> Result<Value, ManagerError> {
    active_call_info(s, callref, MAX_CALL_INFO).await
}

/// `active_call_info <ref>`'s reply of at most `max_reply` bytes, parsed; the sensor's "call
/// not found" (either spelling) as [`ManagerError::CallNotFound`].
async fn active_call_info(
    s: &Sensor,
    callref: &str,
    max_reply: u64,
) -> Result<Value, ManagerError> {
    let command = Command::ActiveCallInfo(call_ref(callref)?);
    let r = request_bounded(s, &command, REPLY_TIMEOUT, max_reply).await?;
    let text = r.trim_ascii();
    if text == b"call not found" || text == b"error: call not found" {
        return Err(ManagerError::CallNotFound);
    }
    serde_json::from_slice(&r).map_err(|_| {
        ManagerError::Protocol(format!(
            "active_call_info did not return JSON: {}",
            String::from_utf8_lossy(&r[..r.len().min(200)])
        ))
    })
}

/// Whether the sensor answers `getversion` (with its token) within `limit`.
pub async fn online(s: &Sensor, limit: Duration) -> bool {
    request(s, &Command::GetVersion, limit)
        .await
        .is_ok_and(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callrefs_and_listen_ids_cannot_carry_commands() {
        assert!(valid_callref("0x563de480a000"));
        assert!(valid_callref("563DE480A000"));
        for bad in [
            "",
            "0x",
            "abc def",
            "abc\nlistcalls",
            "12345678901234567",
            "xyz",
        ] {
            assert!(!valid_callref(bad), "{bad:?}");
        }
        assert!(valid_listen_id("earshot-player-1a.b_c"));
        for bad in ["", "a b", "a\n", &"x".repeat(65)] {
            assert!(!valid_listen_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn references_compare_in_any_spelling() {
        assert_eq!(normalize_ref("0x00AbC"), normalize_ref("abc"));
    }
}
