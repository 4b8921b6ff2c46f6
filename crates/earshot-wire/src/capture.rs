//! Streaming reader for pcap and pcapng files (optionally gzip-compressed).
//! STUB: the real implementation replaces this file.

use crate::{LinkType, Timestamp};
use std::io::Read;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("not a pcap or pcapng file (magic number {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("empty file: no capture header")]
    Empty,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("damaged capture: {0}")]
    Damaged(String),
}

/// One captured frame, borrowed from the reader's buffer until the next call to `next_frame`.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the capture was cut by snaplen.
    pub orig_len: u32,
}

pub struct CaptureReader {
    _inner: Box<dyn Read + Send>,
}

impl CaptureReader {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let f = std::fs::File::open(path).map_err(|source| CaptureError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(Box::new(f))
    }
    pub fn new(inner: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        Ok(Self { _inner: inner })
    }
    /// Next frame, `None` at end of file. A damaged tail gives one `Err` and then `None`.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        None
    }
}
