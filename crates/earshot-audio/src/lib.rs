//! Sans-IO decoders for the audio codecs carried in RTP.
//!
//! Feed each RTP payload of one stream, in order, to that stream's own
//! [`Decoder`]; get 16-bit PCM at the codec's native rate back. Gaps (lost
//! packets, DTX) are filled with [`Decoder::conceal`]. Nothing here touches
//! the network, files or clocks.
//!
//! ```
//! use earshot_audio::{decoder_for, Codec};
//! let codec = Codec::from_static_pt(0).unwrap();
//! let mut dec = decoder_for(&codec).unwrap();
//! let mut pcm = Vec::new();
//! assert_eq!(dec.decode(&[0xFF; 160], &mut pcm).unwrap(), 160);
//! ```

pub mod amr;
mod cn;
mod codec;
mod error;
mod fade;
mod g711;
mod g722;
pub mod g723;
mod g726;
#[cfg(feature = "g729")]
mod g729;
mod gsm;
#[cfg(any(feature = "g729", all(feature = "opus-rust", not(feature = "libopus"))))]
mod guard;
pub mod ilbc;
mod ima;
mod l16;
#[cfg(feature = "libavcodec")]
mod lavc;
mod mixer;
#[cfg(feature = "libopus")]
mod opus;
#[cfg(all(feature = "opus-rust", not(feature = "libopus")))]
#[path = "opus_rust.rs"]
mod opus;
mod playout;
mod resample;
mod speex;

pub use amr::{AmrWbEncoder, WB_FRAME};
pub use codec::Codec;
pub use error::{DecodeError, EncodeError, Unsupported};
pub use g711::{linear_to_alaw, linear_to_ulaw};
pub use g722::G722Encoder;
pub use g726::G726Order;
pub use mixer::{CallAudio, MixConfig, MixError, MixMode, Party};
#[cfg(feature = "libopus")]
pub use opus::OpusEncoder;
pub use playout::{Chunk, Playout, PlayoutConfig, PlayoutStats, RtpIn};
pub use resample::Resampler;

/// One decoder per RTP stream: decoders carry state between packets.
pub trait Decoder: Send {
    /// Decodes one RTP payload and appends its PCM (interleaved when stereo)
    /// to `out`. Returns the number of samples per channel appended.
    ///
    /// A malformed payload yields `Err` and appends nothing; the decoder
    /// stays usable for the next payload.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError>;

    /// Appends `samples` samples per channel standing in for lost or
    /// untransmitted audio: the codec's own concealment where it has one,
    /// else a short fade of the last audio into silence.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);

    /// Channels in the output (1 or 2).
    fn channels(&self) -> u8;

    /// Output sample rate in Hz (not always the RTP clock rate: see G.722).
    fn sample_rate(&self) -> u32;
}

/// Creates a fresh decoder for `codec`.
///
/// Codecs without a decoder here, and payload formats that are not audio
/// (telephone-event), return [`Unsupported`] so that callers never play
/// undecoded bytes as noise.
pub fn decoder_for(codec: &Codec) -> Result<Box<dyn Decoder>, Unsupported> {
    decoder_with(codec, &DecoderOptions::default())
}

/// Settings that choose how a codec's payloads are read, where devices disagree with the
/// specifications (a sensor's `[codecs]` section).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderOptions {
    /// The bit order of G.726 payloads (default: detected per stream).
    pub g726_order: G726Order,
}

/// [`decoder_for`] with explicit [`DecoderOptions`].
pub fn decoder_with(
    codec: &Codec,
    options: &DecoderOptions,
) -> Result<Box<dyn Decoder>, Unsupported> {
    match *codec {
        Codec::Pcmu => Ok(Box::new(g711::G711Decoder::ulaw())),
        Codec::Pcma => Ok(Box::new(g711::G711Decoder::alaw())),
        Codec::G722 => Ok(Box::new(g722::G722Decoder::new())),
        Codec::G726 { bits, aal2 } => g726::G726Decoder::new(bits, aal2, options.g726_order)
            .map(|d| Box::new(d) as Box<dyn Decoder>)
            .ok_or_else(|| Unsupported::Codec(codec.to_string())),
        Codec::G729 => g729_decoder(codec),
        Codec::Gsm => gsm::GsmDecoder::new()
            .map(|d| Box::new(d) as Box<dyn Decoder>)
            .ok_or_else(|| Unsupported::Codec(codec.to_string())),
        Codec::Opus { channels } => opus_decoder(codec, channels),
        Codec::Speex { rate } => speex::SpeexDecoder::new(rate)
            .map(|d| Box::new(d) as Box<dyn Decoder>)
            .ok_or_else(|| Unsupported::Codec(codec.to_string())),
        Codec::L16 { rate, channels } => l16::L16Decoder::new(rate, channels)
            .map(|d| Box::new(d) as Box<dyn Decoder>)
            .ok_or_else(|| Unsupported::Codec(codec.to_string())),
        Codec::Dvi4 { rate } => ima::Dvi4Decoder::new(rate)
            .map(|d| Box::new(d) as Box<dyn Decoder>)
            .ok_or_else(|| Unsupported::Codec(codec.to_string())),
        Codec::Cn { rate } => Ok(Box::new(cn::CnDecoder::new(rate))),
        Codec::Amr {
            wideband,
            octet_aligned,
        } => {
            let band = if wideband {
                amr::AmrBand::Wide
            } else {
                amr::AmrBand::Narrow
            };
            amr::AmrDecoder::new(band, octet_aligned)
                .map(|d| Box::new(d) as Box<dyn Decoder>)
                .ok_or_else(|| Unsupported::Codec(codec.to_string()))
        }
        Codec::G723 | Codec::Ilbc { .. } => libavcodec_decoder(codec),
        Codec::TelephoneEvent => Err(Unsupported::NotAudio(codec.to_string())),
        Codec::Unsupported(_) => Err(Unsupported::Codec(codec.to_string())),
    }
}

/// G.723.1 and iLBC come from the system's libavcodec (FFmpeg), behind the cargo feature
/// `libavcodec`: Debian builds FFmpeg with `--enable-gpl`, so a binary linked with it is bound
/// by the GPL when distributed (docs/codecs.md), and the plain build leaves it out.
#[cfg(feature = "libavcodec")]
fn libavcodec_decoder(codec: &Codec) -> Result<Box<dyn Decoder>, Unsupported> {
    let dec: Option<Box<dyn Decoder>> = match *codec {
        Codec::G723 => g723::G723Decoder::new().map(|d| Box::new(d) as Box<dyn Decoder>),
        Codec::Ilbc { mode } => {
            ilbc::IlbcDecoder::new(mode).map(|d| Box::new(d) as Box<dyn Decoder>)
        }
        _ => None,
    };
    dec.ok_or_else(|| Unsupported::Codec(format!("{codec}: libavcodec has no decoder for it")))
}

#[cfg(not(feature = "libavcodec"))]
fn libavcodec_decoder(codec: &Codec) -> Result<Box<dyn Decoder>, Unsupported> {
    let name = match codec {
        Codec::G723 => "G.723.1".to_string(),
        other => other.to_string(),
    };
    Err(Unsupported::Codec(format!(
        "{name}: built without libavcodec (cargo feature `libavcodec`)"
    )))
}

#[cfg(feature = "g729")]
fn g729_decoder(_codec: &Codec) -> Result<Box<dyn Decoder>, Unsupported> {
    Ok(Box::new(g729::G729Decoder::new()))
}

#[cfg(not(feature = "g729"))]
fn g729_decoder(codec: &Codec) -> Result<Box<dyn Decoder>, Unsupported> {
    Err(Unsupported::Codec(format!(
        "{codec} (built without the g729 feature)"
    )))
}

#[cfg(any(feature = "libopus", feature = "opus-rust"))]
fn opus_decoder(codec: &Codec, channels: u8) -> Result<Box<dyn Decoder>, Unsupported> {
    opus::OpusDecoder::new(channels)
        .map(|d| Box::new(d) as Box<dyn Decoder>)
        .ok_or_else(|| Unsupported::Codec(codec.to_string()))
}

#[cfg(not(any(feature = "libopus", feature = "opus-rust")))]
fn opus_decoder(codec: &Codec, _channels: u8) -> Result<Box<dyn Decoder>, Unsupported> {
    Err(Unsupported::Codec(format!(
        "{codec} (built without the libopus and opus-rust features)"
    )))
}
