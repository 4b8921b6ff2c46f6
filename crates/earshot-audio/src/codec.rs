use std::fmt;

/// An RTP audio payload format, as negotiated in SDP or implied by a static
/// payload type (RFC 3551).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    /// 16 kHz audio on an 8000 Hz RTP clock (RFC 3551 §4.5.2).
    G722,
    /// G.729 / G.729A, with Annex B SID frames.
    G729,
    /// G.723.1, 6.3 and 5.3 kbit/s (the rate may change every 30 ms frame), with Annex A SID
    /// frames.
    G723,
    /// Output channel count; the RTP clock is always 48 kHz (RFC 7587).
    Opus {
        channels: u8,
    },
    Gsm,
    /// `bits` per sample (2..=5, i.e. 16..=40 kbit/s). `aal2` selects the
    /// ITU-T I.366.2 bit order (first sample in the most significant bits);
    /// otherwise RFC 3551 order (first sample in the least significant bits).
    G726 {
        bits: u8,
        aal2: bool,
    },
    L16 {
        rate: u32,
        channels: u8,
    },
    /// 20 or 30 ms frames.
    Ilbc {
        mode: u8,
    },
    Speex {
        rate: u32,
    },
    Dvi4 {
        rate: u32,
    },
    /// AMR (`wideband: false`, 8 kHz) or AMR-WB (16 kHz) in RFC 4867's octet-aligned or
    /// bandwidth-efficient payload format.
    Amr {
        wideband: bool,
        octet_aligned: bool,
    },
    /// RFC 3389 comfort noise.
    Cn {
        rate: u32,
    },
    /// RFC 4733 named events (DTMF): never audio.
    TelephoneEvent,
    Unsupported(String),
}

impl Codec {
    /// Maps an SDP `a=rtpmap` entry (plus its `a=fmtp`, if any) to a codec.
    /// `channels` is the optional third rtpmap field; pass 0 when absent.
    pub fn from_sdp(encoding: &str, clock_rate: u32, channels: u8, fmtp: Option<&str>) -> Codec {
        let name = encoding.trim().to_ascii_uppercase();
        let mono_or = |n: u8| if n == 0 { 1 } else { n };
        match name.as_str() {
            "PCMU" => Codec::Pcmu,
            "PCMA" => Codec::Pcma,
            "G722" => Codec::G722,
            "G729" | "G729A" => Codec::G729,
            "G723" | "G723.1" => Codec::G723,
            "GSM" => Codec::Gsm,
            "OPUS" => Codec::Opus {
                channels: opus_channels(fmtp),
            },
            "L16" => Codec::L16 {
                rate: clock_rate,
                channels: mono_or(channels),
            },
            "ILBC" => Codec::Ilbc {
                mode: ilbc_mode(fmtp),
            },
            "SPEEX" => Codec::Speex { rate: clock_rate },
            "AMR" | "AMR-WB" => amr_from_fmtp(encoding, name == "AMR-WB", fmtp),
            "DVI4" => Codec::Dvi4 { rate: clock_rate },
            "CN" => Codec::Cn { rate: clock_rate },
            "TELEPHONE-EVENT" => Codec::TelephoneEvent,
            "G721" => Codec::G726 {
                bits: 4,
                aal2: false,
            },
            _ => g726_from_name(&name).unwrap_or_else(|| Codec::Unsupported(encoding.to_string())),
        }
    }

    /// The codec a static payload type stands for (RFC 3551 table 4), or
    /// `None` for dynamic and unassigned types.
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        let unsupported = |name: &str| Some(Codec::Unsupported(name.to_string()));
        match pt {
            0 => Some(Codec::Pcmu),
            3 => Some(Codec::Gsm),
            4 => Some(Codec::G723),
            5 => Some(Codec::Dvi4 { rate: 8000 }),
            6 => Some(Codec::Dvi4 { rate: 16000 }),
            7 => unsupported("LPC"),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            10 => Some(Codec::L16 {
                rate: 44100,
                channels: 2,
            }),
            11 => Some(Codec::L16 {
                rate: 44100,
                channels: 1,
            }),
            12 => unsupported("QCELP"),
            13 => Some(Codec::Cn { rate: 8000 }),
            14 => unsupported("MPA"),
            15 => unsupported("G728"),
            16 => Some(Codec::Dvi4 { rate: 11025 }),
            17 => Some(Codec::Dvi4 { rate: 22050 }),
            18 => Some(Codec::G729),
            _ => None,
        }
    }

    /// Sample rate of the decoded PCM.
    pub fn output_rate(&self) -> u32 {
        match self {
            Codec::G722 => 16000,
            Codec::Opus { .. } => 48000,
            _ => self.rtp_clock_rate(),
        }
    }

    /// Rate of the RTP timestamp clock, used to turn timestamp gaps into
    /// sample counts (scale by `output_rate / rtp_clock_rate`).
    pub fn rtp_clock_rate(&self) -> u32 {
        match self {
            Codec::Opus { .. } => 48000,
            Codec::Amr { wideband: true, .. } => 16000,
            Codec::L16 { rate, .. }
            | Codec::Speex { rate }
            | Codec::Dvi4 { rate }
            | Codec::Cn { rate } => *rate,
            _ => 8000,
        }
    }

    /// Output channel count.
    pub fn channels(&self) -> u8 {
        match self {
            Codec::Opus { channels } | Codec::L16 { channels, .. } => *channels,
            _ => 1,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::Pcmu => write!(f, "PCMU"),
            Codec::Pcma => write!(f, "PCMA"),
            Codec::G722 => write!(f, "G722"),
            Codec::G729 => write!(f, "G729"),
            Codec::G723 => write!(f, "G723"),
            Codec::Opus { channels } => write!(f, "opus/48000/{channels}"),
            Codec::Gsm => write!(f, "GSM"),
            Codec::G726 { bits, aal2 } => {
                let prefix = if *aal2 { "AAL2-" } else { "" };
                write!(f, "{prefix}G726-{}", u32::from(*bits) * 8)
            }
            Codec::L16 { rate, channels } => write!(f, "L16/{rate}/{channels}"),
            Codec::Ilbc { mode } => write!(f, "iLBC mode={mode}"),
            Codec::Speex { rate } => write!(f, "speex/{rate}"),
            Codec::Amr {
                wideband,
                octet_aligned,
            } => {
                let name = if *wideband { "AMR-WB" } else { "AMR" };
                let form = if *octet_aligned { " octet-align" } else { "" };
                write!(f, "{name}{form}")
            }
            Codec::Dvi4 { rate } => write!(f, "DVI4/{rate}"),
            Codec::Cn { rate } => write!(f, "CN/{rate}"),
            Codec::TelephoneEvent => write!(f, "telephone-event"),
            Codec::Unsupported(name) => write!(f, "{name}"),
        }
    }
}

fn g726_from_name(name: &str) -> Option<Codec> {
    let (aal2, rest) = match name.strip_prefix("AAL2-") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let bits = match rest {
        "G726-16" => 2,
        "G726-24" => 3,
        "G726-32" => 4,
        "G726-40" => 5,
        _ => return None,
    };
    Some(Codec::G726 { bits, aal2 })
}

fn fmtp_param<'a>(fmtp: Option<&'a str>, key: &str) -> Option<&'a str> {
    fmtp?.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// RFC 7587 always advertises "opus/48000/2"; only `sprop-stereo=1` says the
/// sender actually produces stereo, so decode to mono otherwise.
fn opus_channels(fmtp: Option<&str>) -> u8 {
    match fmtp_param(fmtp, "sprop-stereo") {
        Some("1") => 2,
        _ => 1,
    }
}

/// RFC 4867 §8.1: `octet-align=1` chooses the octet-aligned format (bandwidth-efficient
/// otherwise). Interleaving, CRCs and robust sorting change the payload's layout in ways
/// earshot does not read yet: such a stream is named unsupported rather than decoded wrongly.
fn amr_from_fmtp(encoding: &str, wideband: bool, fmtp: Option<&str>) -> Codec {
    let on = |key| fmtp_param(fmtp, key).is_some_and(|v| v != "0");
    for (key, what) in [
        ("interleaving", "interleaved"),
        ("crc", "with CRCs"),
        ("robust-sorting", "robust-sorted"),
    ] {
        if fmtp_param(fmtp, key).is_some() && (key == "interleaving" || on(key)) {
            return Codec::Unsupported(format!("{encoding} ({what})"));
        }
    }
    Codec::Amr {
        wideband,
        octet_aligned: on("octet-align"),
    }
}

/// RFC 3952: without `mode=20` the mode is 30 ms.
fn ilbc_mode(fmtp: Option<&str>) -> u8 {
    match fmtp_param(fmtp, "mode") {
        Some("20") => 20,
        _ => 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_names() {
        assert_eq!(Codec::from_sdp("pcmu", 8000, 0, None), Codec::Pcmu);
        assert_eq!(
            Codec::from_sdp("AAL2-G726-24", 8000, 0, None),
            Codec::G726 {
                bits: 3,
                aal2: true
            }
        );
        assert_eq!(
            Codec::from_sdp("G726-40", 8000, 0, None),
            Codec::G726 {
                bits: 5,
                aal2: false
            }
        );
        assert_eq!(
            Codec::from_sdp("opus", 48000, 2, Some("useinbandfec=1; sprop-stereo=1")),
            Codec::Opus { channels: 2 }
        );
        assert_eq!(
            Codec::from_sdp("opus", 48000, 2, Some("useinbandfec=1")),
            Codec::Opus { channels: 1 }
        );
        assert_eq!(
            Codec::from_sdp("L16", 16000, 2, None),
            Codec::L16 {
                rate: 16000,
                channels: 2
            }
        );
        assert_eq!(
            Codec::from_sdp("iLBC", 8000, 0, Some("mode=20")),
            Codec::Ilbc { mode: 20 }
        );
        assert_eq!(
            Codec::from_sdp("LPC", 8000, 0, None),
            Codec::Unsupported("LPC".into())
        );
    }

    #[test]
    fn g722_rates() {
        assert_eq!(Codec::G722.output_rate(), 16000);
        assert_eq!(Codec::G722.rtp_clock_rate(), 8000);
        let l16 = Codec::from_static_pt(11).unwrap();
        assert_eq!(l16.output_rate(), 44100);
        assert_eq!(Codec::from_static_pt(96), None);
    }
}
