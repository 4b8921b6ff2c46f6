//! Why a stream has no quality score: here, with the E-model, so that the Manager API and the
//! player can say it without depending on the call engine.

/// Why a stream (or a party without one) has no quality score: each is shown as "unknown",
/// never as a perfect score.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum QualityUnknown {
    /// The party has sent no RTP yet (a ringing call, or one-way media).
    NoMedia,
    /// Telephone-events or comfort noise alone: no voice to score, no clock to time.
    EventsOnly,
    /// A payload type with no known clock rate (dynamic, and no SDP described it): the jitter
    /// cannot be measured.
    ClockUnknown,
    /// A codec earshot cannot decode (EVS, codec2...): its E-model impairment is not known.
    /// The jitter is measured (its clock rate is known).
    Undecodable,
    /// A codec earshot decodes whose E-model impairment depends on its mode, which may change
    /// with every frame (AMR, AMR-WB, G.723.1, iLBC): any one figure would be a guess shown as
    /// a measurement.
    /// The jitter is measured.
    ModeDependent,
    /// Video: measured, never scored with the (speech) E-model.
    Video,
}

impl QualityUnknown {
    /// The word the Manager API and the player send.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityUnknown::NoMedia => "no_media",
            QualityUnknown::EventsOnly => "events_only",
            QualityUnknown::ClockUnknown => "clock_unknown",
            QualityUnknown::Undecodable => "undecodable",
            QualityUnknown::ModeDependent => "mode_dependent",
            QualityUnknown::Video => "video",
        }
    }

    /// Whether the stream's jitter was measured all the same.
    pub fn jitter_known(self) -> bool {
        matches!(
            self,
            QualityUnknown::Undecodable | QualityUnknown::ModeDependent | QualityUnknown::Video
        )
    }
}
