use thiserror::Error;

/// Why a payload could not be decoded. The decoder remains usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("{codec}: payload of {len} bytes is not a valid size ({expected})")]
    BadLength {
        codec: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("{codec}: malformed payload: {reason}")]
    Malformed { codec: &'static str, reason: String },
}

/// Why no decoder can be made for a codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unsupported {
    #[error("unsupported codec: {0}")]
    Codec(String),
    #[error("{0} carries events, not audio")]
    NotAudio(String),
}

/// Why an encoder could not be made or could not encode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{codec}: {reason}")]
    Failed { codec: &'static str, reason: String },
}
