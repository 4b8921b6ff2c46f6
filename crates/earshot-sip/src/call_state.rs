//! Where an INVITE dialog is in its life, as the engine follows it and the Manager API and
//! the player show it. Here, with the SIP parsing, so the protocol crates can name it without
//! depending on the engine.

use std::fmt;

/// Where a call is in its life. The names are part of the `analyze --json` schema.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CallState {
    /// INVITE sent, no provisional response beyond 100 yet.
    Trying,
    /// 180/183 without media.
    Ringing,
    /// A provisional response carried SDP: early media may flow.
    Early,
    /// 2xx received; the call is up.
    Answered,
    /// Answered, then a BYE.
    Ended,
    /// A final error response to the INVITE.
    Failed,
    /// The caller cancelled before an answer.
    Cancelled,
    /// Nothing but 100 Trying answered the INVITE within the engine's `unanswered_timeout_ns`.
    Unanswered,
}

impl CallState {
    /// The lower-case name the Manager API (`listcalls`, its state filter) and logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Trying => "trying",
            CallState::Ringing => "ringing",
            CallState::Early => "early",
            CallState::Answered => "answered",
            CallState::Ended => "ended",
            CallState::Failed => "failed",
            CallState::Cancelled => "cancelled",
            CallState::Unanswered => "unanswered",
        }
    }
    /// True once nothing more can happen to the call but retransmissions.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::Ended | CallState::Failed | CallState::Cancelled | CallState::Unanswered
        )
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
