//! Command-line clients of the Manager API: `earshot calls` and `earshot listen`.

use anyhow::{anyhow, bail, Context, Result};
use earshot_manager::stream_proto::{Frame, StreamDecoder, StreamItem};
use earshot_manager::{Command, ListCallsFormat, ListParams};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Where the sensor is and how to authenticate.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// The sensor's Manager API.
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:5029",
        env = "EARSHOT_MANAGER"
    )]
    manager: String,
    /// Token, when the sensor requires one (sent as a first line `auth <token>`).
    #[arg(long, value_name = "T", env = "EARSHOT_TOKEN")]
    token: Option<String>,
    /// Speak TLS, trusting the certificates in this PEM file (the sensor's CA, or its own
    /// self-signed certificate).
    #[arg(long, value_name = "FILE", env = "EARSHOT_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

/// A connection to the sensor, plain or TLS.
trait Wire: Read + Write {
    /// Signals the end of the request where the transport allows it.
    fn half_close(&mut self) {}
}

impl Wire for TcpStream {
    fn half_close(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Wire for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {}

impl Connection {
    fn connect(&self) -> Result<Box<dyn Wire>> {
        let sock = self.connect_tcp()?;
        let Some(ca) = &self.tls_ca else {
            return Ok(Box::new(sock));
        };
        let config = earshot_tls::client_config(ca)?;
        let host = self
            .manager
            .rsplit_once(':')
            .map_or(self.manager.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| anyhow!("{host} is not a valid TLS server name"))?;
        let conn = rustls::ClientConnection::new(config, name)?;
        Ok(Box::new(rustls::StreamOwned::new(conn, sock)))
    }

    fn connect_tcp(&self) -> Result<TcpStream> {
        let addr = self
            .manager
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.manager))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", self.manager))?;
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
            format!("cannot connect to the sensor at {addr}: is `earshot sensor` running there (--manager)?")
        })?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        sock.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(sock)
    }

    /// Sends one command (with the auth line when a token is set), written by the Manager
    /// API's one encoder.
    fn send(&self, command: &Command) -> Result<Box<dyn Wire>> {
        let mut sock = self.connect()?;
        sock.write_all(&earshot_manager::encode_request(
            self.token.as_deref(),
            command,
        ))?;
        Ok(sock)
    }

    fn request(&self, command: &Command) -> Result<Vec<u8>> {
        let mut sock = self.send(command)?;
        sock.half_close();
        let mut reply = Vec::new();
        read_all(&mut sock, &mut reply).context("reading the sensor's reply")?;
        if earshot_manager::replies::is_unauthorized(&reply) {
            bail!(
                "the sensor refused the token: pass the right one with --token (or EARSHOT_TOKEN)"
            );
        }
        Ok(reply)
    }
}

/// List the calls a sensor sees right now.
///
/// MOS is caller/called; "-" where the sensor has no score (no media yet, a codec it cannot
/// decode such as AMR, an unknown clock rate). A VoIPmonitor sensor shows its own 4.5 there.
///
/// Examples:
///   earshot calls
///   earshot calls --manager sensor1:5029 --token s3cret --json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CallsArgs {
    #[command(flatten)]
    conn: Connection,
    /// Print the sensor's `listcalls json` reply as it is.
    #[arg(long)]
    json: bool,
}

pub fn calls(args: CallsArgs) -> Result<()> {
    if args.json {
        let reply = args
            .conn
            .request(&Command::ListCalls(ListCallsFormat::Json))?;
        std::io::stdout().write_all(&reply)?;
        return Ok(());
    }
    // earshot's own columns say where a MOS is unknown (null); VoIPmonitor's MOS columns hold
    // its no-data 45 there. A VoIPmonitor sensor ignores the key and answers its 68 columns.
    let params = ListParams {
        earshot: true,
        ..ListParams::default()
    };
    let reply = args
        .conn
        .request(&Command::ListCalls(ListCallsFormat::JsonWithParams(params)))?;
    let doc: Value = serde_json::from_slice(&reply).map_err(|_| {
        anyhow!(
            "the sensor answered something other than JSON: {}",
            String::from_utf8_lossy(&reply)
        )
    })?;
    let rows = doc
        .as_array()
        .ok_or_else(|| anyhow!("listcalls json did not return an array"))?;
    let Some(header) = rows.first().and_then(Value::as_array) else {
        bail!("listcalls json has no header row");
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let cols = [
        "callreference",
        "caller",
        "called",
        "duration",
        "lastSIPresponseNum",
        "callercodec",
        "calledcodec",
        "src_mosf1",
        "dst_mosf1",
    ];
    let idx: Vec<Option<usize>> = cols.iter().map(|c| col(c)).collect();
    let own_mos = [col("caller_mos"), col("called_mos")];
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<14} {:<18} {:<18} {:>7} {:>4} {:>9} {:>7}",
        "REF", "CALLER", "CALLED", "SECONDS", "SIP", "CODECS", "MOS"
    )?;
    let calls: Vec<&Vec<Value>> = rows
        .iter()
        .skip(1)
        .filter_map(Value::as_array)
        .filter(|r| r.len() == header.len())
        .collect();
    for row in &calls {
        let get = |i: usize| {
            idx[i]
                .and_then(|p| row.get(p))
                .map(text)
                .unwrap_or_default()
        };
        let mos = |i: usize| match own_mos[i - 7] {
            Some(p) => row.get(p).and_then(Value::as_f64),
            None => idx[i]
                .and_then(|p| row.get(p))
                .and_then(Value::as_f64)
                .map(|m| m / 10.0),
        };
        let mos_text = match (mos(7), mos(8)) {
            (Some(a), Some(b)) => format!("{:.1}/{:.1}", a, b),
            (Some(a), None) | (None, Some(a)) => format!("{a:.1}"),
            _ => "-".into(),
        };
        // VoIPmonitor numbers codecs (316 is Opus): print their names.
        let codec = |i: usize| {
            let v = idx[i].and_then(|p| row.get(p));
            match v.and_then(Value::as_i64) {
                Some(id) => earshot_manager::listcalls::codec_id_name(id)
                    .map_or_else(|| format!("PT{id}"), str::to_string),
                None => v.map(text).unwrap_or_else(|| "-".into()),
            }
        };
        let codecs = format!("{}/{}", codec(5), codec(6));
        writeln!(
            out,
            "{:<14} {:<18} {:<18} {:>7} {:>4} {:>9} {:>7}",
            get(0).trim_start_matches("0x"),
            get(1),
            get(2),
            get(3),
            get(4),
            codecs,
            mos_text
        )?;
    }
    writeln!(
        out,
        "{} call{}",
        calls.len(),
        if calls.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}

/// Reads to the end of the reply. A TLS peer that closes without close_notify (the server
/// closes right after its reply) is the end of the reply, not an error.
fn read_all(sock: &mut Box<dyn Wire>, out: &mut Vec<u8>) -> std::io::Result<()> {
    match sock.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(e),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Listen to a call: write its audio as WAV, or raw PCM to stdout.
///
/// Uses the sensor's `stream` command: audio arrives as it is captured, both parties on their
/// own channel with --stereo (left: caller, right: called party).
///
/// Examples:
///   earshot listen 4a3f7b2c1d --out call.wav --seconds 30
///   earshot listen 4a3f7b2c1d --out - | aplay -f S16_LE -r 8000 -c 1
///   earshot listen 4a3f7b2c1d --stereo --rate 16000 --from start --out call.wav
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ListenArgs {
    /// The call's callreference, as `earshot calls` or `listcalls` show it.
    #[arg(value_name = "REF")]
    callref: String,
    #[command(flatten)]
    conn: Connection,
    /// WAV file to write, or `-` for raw signed 16-bit little-endian PCM on stdout.
    #[arg(long, value_name = "FILE.wav|-")]
    out: PathBuf,
    /// Stop after this many seconds of audio (default: until the call ends).
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    /// Sample rate: 8000, 16000 or 48000.
    #[arg(long, value_name = "HZ", default_value_t = 8000)]
    rate: u32,
    /// Two channels: left = caller, right = called party (default: both mixed to mono).
    #[arg(long)]
    stereo: bool,
    /// Where to start: now, start (of the call, from the sensor's rewind buffer) or -SECONDS.
    #[arg(
        long,
        value_name = "now|start|-N",
        default_value = "now",
        allow_hyphen_values = true
    )]
    from: String,
}

enum Output {
    Wav(hound::WavWriter<std::io::BufWriter<std::fs::File>>),
    Raw(std::io::Stdout),
}

pub fn listen(args: ListenArgs) -> Result<()> {
    let channels = if args.stereo { 2 } else { 1 };
    // Checked here by the sensor's own parser: a bad option is said before connecting, in the
    // words the sensor would use.
    let line = format!(
        "stream {} rate={} channels={} from={}",
        args.callref, args.rate, channels, args.from
    );
    let command = match earshot_manager::parse_command(&line) {
        Ok(c @ Command::Stream(_)) => c,
        Ok(_) => bail!("{:?} is not a call reference", args.callref),
        Err(earshot_manager::CommandError::BadCallRef { .. }) => bail!(
            "{:?} is not a call reference: give it in hex, as `earshot calls` shows it",
            args.callref
        ),
        Err(e) => bail!("{e}"),
    };
    let mut sock = args.conn.send(&command)?;
    let mut out = if args.out.as_os_str() == "-" {
        Output::Raw(std::io::stdout())
    } else {
        let spec = hound::WavSpec {
            channels,
            sample_rate: args.rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Output::Wav(
            hound::WavWriter::create(&args.out, spec)
                .with_context(|| format!("cannot write {}", args.out.display()))?,
        )
    };
    let limit = args
        .seconds
        .map(|s| (s.max(0.0) * f64::from(args.rate)) as u64 * u64::from(channels));
    let written = pump(&mut sock, &mut out, limit)?;
    if let Output::Wav(w) = out {
        w.finalize()?;
        eprintln!(
            "earshot listen: wrote {:.1} s to {}",
            written as f64 / f64::from(args.rate) / f64::from(channels),
            args.out.display()
        );
    }
    Ok(())
}

/// Reads frames until the end frame, EOF or the sample limit; returns samples written.
fn pump(sock: &mut Box<dyn Wire>, out: &mut Output, limit: Option<u64>) -> Result<u64> {
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut written = 0u64;
    loop {
        let n = match sock.read(&mut buf) {
            Ok(n) => n,
            // A TLS server that closes without close_notify has still finished its stream.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(anyhow::Error::new(e).context("reading from the sensor")),
        };
        if n == 0 {
            decoder
                .finish()
                .map_err(|e| anyhow!("the stream stopped early: {e}"))?;
            return Ok(written);
        }
        decoder.push(buf.get(..n).unwrap_or_default());
        while let Some(item) = decoder.next_item().map_err(|e| anyhow!("{e}"))? {
            match item {
                StreamItem::Header(h) => eprintln!(
                    "earshot listen: {} -> {} ({}), {} Hz, {} channel(s)",
                    h.caller, h.called, h.callid, h.rate, h.channels
                ),
                StreamItem::Frame(Frame::Audio(a)) => {
                    let take = limit.map_or(a.samples.len(), |l| {
                        (l.saturating_sub(written) as usize).min(a.samples.len())
                    });
                    write_samples(out, a.samples.get(..take).unwrap_or_default())?;
                    written += take as u64;
                    if limit.is_some_and(|l| written >= l) {
                        return Ok(written);
                    }
                }
                StreamItem::Frame(Frame::Event(e)) => eprintln!("earshot listen: event {e:?}"),
                StreamItem::Frame(Frame::End(e)) => {
                    eprintln!(
                        "earshot listen: stream ended ({:?}{})",
                        e.reason,
                        e.detail.map(|d| format!(": {d}")).unwrap_or_default()
                    );
                    return Ok(written);
                }
                StreamItem::Frame(_) => {}
            }
        }
    }
}

fn write_samples(out: &mut Output, samples: &[i16]) -> Result<()> {
    match out {
        Output::Wav(w) => {
            for &s in samples {
                w.write_sample(s)?;
            }
        }
        Output::Raw(stdout) => {
            let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
            stdout.write_all(&bytes)?;
        }
    }
    Ok(())
}
