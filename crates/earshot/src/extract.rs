//! `earshot extract`: the audio of calls, or of one raw RTP stream, as WAV.

use crate::tls_keylog::KeyLogArgs;
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use earshot_audio::{
    decoder_with, CallAudio, Codec, DecoderOptions, G726Order, MixConfig, MixMode, Party,
    PlayoutConfig,
};
use earshot_core::{Call, CallKey, Config, Engine, Event, RtpPacket, Sink};
use earshot_sensor::listener::{audio_codec, audio_input, SRTP};
use earshot_wire::{CaptureError, CaptureReader};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Write the audio of calls or streams in a capture as WAV files (16-bit PCM).
///
/// Both legs of a call are placed on the capture clock, so caller and callee stay in step.
/// Codecs that cannot be decoded are reported on stderr and written as silence.
///
/// Examples:
///   earshot extract call.pcap --call 1-1966@10.0.2.20 --out call.wav
///   earshot extract call.pcap --all --out calls/ --mix mono --rate 16000
///   earshot extract call.pcap --stream 0x343DA99B --out stream.wav
///
/// Streams outside any SIP call (those `earshot analyze` lists under "unassociated RTP") are
/// extracted by SSRC too. A static payload type (0 PCMU, 8 PCMA, 9 G722, 3 GSM, 11 L16...)
/// needs nothing more; for a dynamic one (96-127) say what it carries, with an rtpmap:
///   earshot extract rtp.pcap --stream 0x043EEE04 --codec 99=opus/48000/2 --out opus.wav
///   earshot extract rtp.pcap --stream 0x043EEE04 --sdp offer.sdp --out opus.wav
/// (offer.sdp holds lines such as `a=rtpmap:99 opus/48000/2`, as a SIP body would.)
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["call", "all", "stream"])))]
pub struct Args {
    /// Capture files (pcap, pcapng, optionally .gz), read as one capture.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The SIP Call-ID of the call to extract.
    #[arg(long, value_name = "CALL_ID")]
    call: Option<String>,
    /// Every call, one file each in the directory given by --out.
    #[arg(long)]
    all: bool,
    /// One RTP stream by SSRC (hex, as `earshot analyze` prints it), in a call or not,
    /// decoded in sequence order without alignment, at the codec's own rate.
    #[arg(long, value_name = "SSRC")]
    stream: Option<String>,
    /// With --stream: what a payload type carries, as an SDP rtpmap says it, e.g.
    /// `99=opus/48000/2`, `96=L16/16000`, `97=speex/16000`. Repeatable; wins over the
    /// capture's SDP and --sdp.
    #[arg(long, value_name = "PT=NAME/RATE[/CH]", requires = "stream")]
    codec: Vec<String>,
    /// With --stream: an SDP file whose `a=rtpmap` lines say what the payload types carry.
    #[arg(long, value_name = "FILE", requires = "stream")]
    sdp: Option<PathBuf>,
    /// Output file (a directory with --all).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// stereo: caller left, called right; mono: both mixed; caller/called: one leg.
    #[arg(long, value_enum, default_value_t = Mix::Stereo)]
    mix: Mix,
    /// Output sample rate in Hz: 8000, 16000 or 48000.
    #[arg(long, value_name = "HZ", default_value_t = 8000)]
    rate: u32,
    /// Bit order of G.726 sent under its RFC 3551 name (G726-32...): auto (detected per stream
    /// at 16, 24 and 40 kbit/s; 32 kbit/s keeps the named order), rfc3551, or aal2 (devices
    /// that pack it like AAL2-G726, e.g. baresip).
    #[arg(long, value_name = "ORDER", default_value_t = G726Order::Auto)]
    g726_order: G726Order,
    #[command(flatten)]
    keylog: crate::tls_keylog::KeyLogArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mix {
    Stereo,
    Mono,
    Caller,
    Called,
}

impl From<Mix> for MixMode {
    fn from(m: Mix) -> Self {
        match m {
            Mix::Stereo => MixMode::Stereo,
            Mix::Mono => MixMode::Mono,
            Mix::Caller => MixMode::Caller,
            Mix::Called => MixMode::Called,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let decoder = DecoderOptions {
        g726_order: args.g726_order,
    };
    if let Some(ssrc) = &args.stream {
        let formats = user_formats(args.sdp.as_deref(), &args.codec)?;
        return extract_stream(
            &args.files,
            parse_ssrc(ssrc)?,
            &formats,
            &args.out,
            &decoder,
            &args.keylog,
        );
    }
    let playout = PlayoutConfig::offline().with_decoder(decoder);
    let cfg = MixConfig::new(args.rate, args.mix.into(), playout)?;
    let wanted = match &args.call {
        Some(id) => Wanted::Call(id.clone()),
        None => Wanted::All,
    };
    let mut sink = CallSink {
        wanted,
        cfg,
        calls: BTreeMap::new(),
    };
    feed_files(&args.files, &args.keylog, &mut sink)?;
    if sink.calls.is_empty() {
        match &args.call {
            Some(id) => bail!("no call with Call-ID {id} in the capture"),
            None => eprintln!("earshot: no calls found"),
        }
    }
    if args.all {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
    }
    for call in sink.calls.into_values() {
        let path = if args.all {
            args.out.join(call_file_name(call.start_ns, &call.call_id))
        } else {
            args.out.clone()
        };
        call.finish(&path)?;
    }
    Ok(())
}

fn parse_ssrc(s: &str) -> Result<u32> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(hex, 16).with_context(|| format!("--stream {s}: not a hex SSRC"))
}

fn feed_files(files: &[PathBuf], keylog: &KeyLogArgs, sink: &mut dyn Sink) -> Result<Engine> {
    let mut engine = Engine::new(Config::default());
    keylog.load_into(&mut engine)?;
    for path in files {
        let mut reader = CaptureReader::open(path).map_err(|e| match e {
            CaptureError::Open { .. } => anyhow::anyhow!("{e}"),
            other => anyhow::anyhow!("{}: {other}", path.display()),
        })?;
        while let Some(frame) = reader.next_frame() {
            match frame {
                Ok(f) => engine.handle_frame(f.ts, f.link, f.data, sink),
                Err(e) => {
                    eprintln!(
                        "earshot: {}: {e}; used the packets before it",
                        path.display()
                    );
                    break;
                }
            }
        }
    }
    Ok(engine)
}

/// Which calls to extract.
enum Wanted {
    Call(String),
    All,
}

struct CallOut {
    call_id: String,
    start_ns: i64,
    audio: CallAudio,
    pcm: Vec<i16>,
}

impl CallOut {
    fn finish(mut self, path: &Path) -> Result<()> {
        self.audio.finish(&mut self.pcm);
        for (leg, name) in [(Party::Caller, "caller"), (Party::Called, "called")] {
            for codec in &self.audio.stats(leg).unsupported {
                if codec.as_str() == SRTP {
                    eprintln!(
                        "earshot: call {} {name} leg: SRTP-encrypted media (the SDP says RTP/SAVP) and no key, written as silence",
                        self.call_id
                    );
                    continue;
                }
                eprintln!(
                    "earshot: call {} {name} leg ({codec}): unsupported codec, written as silence",
                    self.call_id
                );
            }
        }
        let cfg = self.audio.config();
        write_wav(path, cfg.rate, cfg.mode.channels(), &self.pcm)
    }
}

struct CallSink {
    wanted: Wanted,
    cfg: MixConfig,
    calls: BTreeMap<CallKey, CallOut>,
}

impl Sink for CallSink {
    fn event(&mut self, event: &Event, call: &Call) {
        let Event::CallNew(id) = event else {
            return;
        };
        if let Wanted::Call(want) = &self.wanted {
            if *want != call.sip_call_id {
                return;
            }
        }
        self.calls.insert(
            *id,
            CallOut {
                call_id: call.sip_call_id.clone(),
                start_ns: call.start.0,
                audio: CallAudio::new(self.cfg.clone()),
                pcm: Vec::new(),
            },
        );
    }

    fn rtp(&mut self, p: &RtpPacket<'_>) {
        let Some(out) = self.calls.get_mut(&p.call) else {
            return;
        };
        let codec = audio_codec(p);
        let (leg, rtp) = audio_input(p, codec.as_ref());
        out.audio.push(leg, &rtp, &mut out.pcm);
    }
}

/// `<start YYYYmmdd-HHMMSS>_<Call-ID with only safe characters>.wav`
fn call_file_name(start_ns: i64, call_id: &str) -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ns))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "00000000-000000".to_string());
    let safe: String = call_id
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{when}_{safe}.wav")
}

fn write_wav(path: &Path, rate: u32, channels: u16, pcm: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut i16w = w.get_i16_writer(u32::try_from(pcm.len()).unwrap_or(u32::MAX));
    for &s in pcm {
        i16w.write_sample(s);
    }
    i16w.flush()?;
    w.finalize()?;
    Ok(())
}

/// One decoded-later packet of a stream: payload type, codec, telephone-event, payload.
type StreamPacket = (u8, Option<Codec>, bool, Vec<u8>);

/// One stream's packets, kept for decoding in sequence order at the end.
struct StreamSink {
    ssrc: u32,
    /// Payload types the user described (--codec, --sdp): they win over the capture's SDP.
    formats: HashMap<u8, Codec>,
    packets: HashMap<i64, StreamPacket>,
    highest: Option<(u16, i64)>,
}

impl StreamSink {
    fn push(&mut self, seq: u16, pt: u8, codec: Option<Codec>, event: bool, payload: &[u8]) {
        let ext = match self.highest {
            None => i64::from(seq),
            Some((last, ext)) => ext + i64::from(seq.wrapping_sub(last) as i16),
        };
        if self.highest.is_none_or(|(_, h)| ext > h) {
            self.highest = Some((seq, ext));
        }
        // What the user said a payload type is does not make ciphertext audio.
        let srtp = matches!(&codec, Some(Codec::Unsupported(n)) if n == SRTP);
        let codec = if srtp {
            codec
        } else {
            self.formats.get(&pt).cloned().or(codec)
        };
        let event = event || matches!(codec, Some(Codec::TelephoneEvent));
        self.packets
            .entry(ext)
            .or_insert_with(|| (pt, codec, event, payload.to_vec()));
    }
}

impl Sink for StreamSink {
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        if p.ssrc != self.ssrc {
            return;
        }
        self.push(p.seq, p.payload_type, audio_codec(p), p.event, p.payload);
    }
}

/// The payload types given on the command line: --sdp's rtpmaps, then --codec over them.
fn user_formats(sdp: Option<&Path>, codecs: &[String]) -> Result<HashMap<u8, Codec>> {
    let mut formats = HashMap::new();
    if let Some(path) = sdp {
        let text =
            std::fs::read(path).with_context(|| format!("reading --sdp {}", path.display()))?;
        let parsed = earshot_sip::sdp::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "--sdp {}: {e}; give a session description with `m=` and `a=rtpmap:` lines",
                path.display()
            )
        })?;
        for m in &parsed.media {
            for map in &m.rtpmap {
                let codec =
                    Codec::from_sdp(map.encoding, map.clock_rate, map.channels, m.fmtp(map.pt));
                formats.insert(map.pt, codec);
            }
        }
        if formats.is_empty() {
            bail!(
                "--sdp {}: no `a=rtpmap:` line found; add one per payload type, e.g. `a=rtpmap:99 opus/48000/2`",
                path.display()
            );
        }
    }
    for spec in codecs {
        let (pt, codec) = parse_codec_spec(spec)?;
        formats.insert(pt, codec);
    }
    Ok(formats)
}

/// `PT=NAME/RATE[/CHANNELS]` as the codec it names (see `codec_spec`).
fn parse_codec_spec(spec: &str) -> Result<(u8, Codec)> {
    let f = crate::codec_spec::parse("--codec", spec)?;
    let codec = Codec::from_sdp(&f.encoding, f.clock_rate, f.channels, None);
    Ok((f.pt, codec))
}

/// A stream outside any call: every RTP packet of `ssrc` on the first flow that carried it,
/// read straight from the capture (the engine hands its sink only packets of calls).
fn collect_raw(files: &[PathBuf], sink: &mut StreamSink) -> Result<()> {
    let mut decap = earshot_wire::Decapsulator::new();
    let mut flow: Option<(std::net::SocketAddr, std::net::SocketAddr)> = None;
    for path in files {
        let mut reader = CaptureReader::open(path).map_err(|e| match e {
            CaptureError::Open { .. } => anyhow::anyhow!("{e}"),
            other => anyhow::anyhow!("{}: {other}", path.display()),
        })?;
        while let Some(frame) = reader.next_frame() {
            let f = match frame {
                Ok(f) => f,
                Err(e) => {
                    eprintln!(
                        "earshot: {}: {e}; used the packets before it",
                        path.display()
                    );
                    break;
                }
            };
            decap.decode(f.ts, f.link, f.data, &mut |p| {
                if p.transport != earshot_wire::Transport::Udp || earshot_rtp::is_rtcp(p.payload) {
                    return;
                }
                let Some(rtp) = earshot_rtp::Rtp::parse(p.payload) else {
                    return;
                };
                if rtp.ssrc() != sink.ssrc || *flow.get_or_insert((p.src, p.dst)) != (p.src, p.dst)
                {
                    return;
                }
                let pt = rtp.payload_type();
                sink.push(
                    rtp.sequence(),
                    pt,
                    Codec::from_static_pt(pt),
                    false,
                    rtp.payload(),
                );
            });
        }
    }
    Ok(())
}

fn extract_stream(
    files: &[PathBuf],
    ssrc: u32,
    formats: &HashMap<u8, Codec>,
    out: &Path,
    decoder: &DecoderOptions,
    keylog: &KeyLogArgs,
) -> Result<()> {
    let mut sink = StreamSink {
        ssrc,
        formats: formats.clone(),
        packets: HashMap::new(),
        highest: None,
    };
    let engine = feed_files(files, keylog, &mut sink)?;
    if sink.packets.is_empty() {
        // Outside calls, what the capture itself said about the stream (the SDP of a dialog
        // whose INVITE is missing) comes after the user's word.
        if let Some(s) = engine
            .unassociated_streams()
            .iter()
            .find(|s| s.key.ssrc == ssrc)
        {
            if let Some(name) = s.codec.as_deref() {
                sink.formats
                    .entry(s.payload_type)
                    .or_insert_with(|| Codec::from_sdp(name, s.clock_rate, 0, None));
            }
        }
        collect_raw(files, &mut sink)?;
    }
    let mut packets: Vec<_> = sink.packets.into_iter().collect();
    if packets.is_empty() {
        bail!(
            "no RTP stream with SSRC 0x{ssrc:08X} in the capture; `earshot analyze FILE` lists every stream's SSRC"
        );
    }
    packets.sort_by_key(|(ext, _)| *ext);
    let audio: Vec<_> = packets
        .into_iter()
        .map(|(_, p)| p)
        .filter(|(_, codec, event, _)| {
            !*event && !matches!(codec, Some(Codec::Cn { .. } | Codec::TelephoneEvent))
        })
        .collect();
    if let Some(pt) = main_unknown_pt(&audio) {
        bail!(
            "stream 0x{ssrc:08X}: payload type {pt} is dynamic and no SDP in the capture says what it carries; \
             name it with --codec {pt}=NAME/RATE[/CHANNELS] (e.g. --codec {pt}=opus/48000/2) or --sdp FILE"
        );
    }
    let (rate, channels, pcm) = decode_in_order(ssrc, &audio, decoder);
    write_wav(out, rate, channels, &pcm)
}

/// The stream's most frequent payload type, when nothing says what it carries.
fn main_unknown_pt(packets: &[StreamPacket]) -> Option<u8> {
    let mut counts = [0u32; 128];
    for (pt, _, _, _) in packets {
        counts[usize::from(*pt & 0x7f)] += 1;
    }
    let main = (0u8..128).max_by_key(|&pt| counts[usize::from(pt)])?;
    let unknown = packets
        .iter()
        .any(|(pt, codec, _, _)| *pt == main && codec.is_none());
    unknown.then_some(main)
}

/// The decoder over the packets in order, switching decoder when the payload type changes.
fn decode_in_order(
    ssrc: u32,
    packets: &[StreamPacket],
    decoder: &DecoderOptions,
) -> (u32, u16, Vec<i16>) {
    let mut pcm = Vec::new();
    let mut current: Option<(u8, Box<dyn earshot_audio::Decoder>)> = None;
    let mut format = (8000u32, 1u16);
    let mut reported = Vec::new();
    for (pt, codec, _, payload) in packets {
        if current.as_ref().is_none_or(|(cur, _)| cur != pt) {
            let codec = codec
                .clone()
                .unwrap_or(Codec::Unsupported(format!("payload type {pt}")));
            match decoder_with(&codec, decoder) {
                Ok(dec) => {
                    format = (dec.sample_rate(), u16::from(dec.channels()));
                    current = Some((*pt, dec));
                }
                Err(_) => {
                    if !reported.contains(&codec) {
                        eprintln!(
                            "earshot: stream 0x{ssrc:08X} ({codec}): unsupported codec, written as silence"
                        );
                        reported.push(codec.clone());
                    }
                    current = None;
                    let frame = codec.rtp_clock_rate() as usize / 50;
                    pcm.resize(pcm.len() + frame * usize::from(format.1), 0);
                    continue;
                }
            }
        }
        if let Some((_, dec)) = current.as_mut() {
            if dec.decode(payload, &mut pcm).is_err() {
                eprintln!("earshot: stream 0x{ssrc:08X}: malformed payload skipped");
            }
        }
    }
    (format.0, format.1, pcm)
}
