//! Who sends a stream. Here, below the call engine, so that everything that handles a call's
//! RTP (the engine, the audio mixer, the Manager API's summaries) names the parties alike.

/// The two parties of a call, named from the INVITE: the caller sent it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Caller,
    Called,
}

impl Party {
    pub fn other(self) -> Party {
        match self {
            Party::Caller => Party::Called,
            Party::Called => Party::Caller,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Caller => "caller",
            Party::Called => "called",
        }
    }
}
