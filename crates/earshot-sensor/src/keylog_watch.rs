//! `--tls-keylog FILE`: key log files the sensor follows as their TLS endpoints append to them,
//! handing each new whole line to the pipeline ([`Control::KeyLog`]), where the engine reads
//! the SIP-over-TLS records that waited for those secrets.
//!
//! One thread polls every file every [`POLL`] from where it last read: a file that does not
//! exist yet is waited for (said once), one that shrank (rotated, truncated) is read again
//! from its start. Only whole lines travel, so lines of two files never mix in the engine's
//! key log. Handing over never blocks: when the control queue is full the lines wait here
//! for the next poll, and no more is read meanwhile (a file is only ever read ahead by
//! [`MAX_READ`] bytes), so nothing is lost and nothing grows.

use crate::pipeline::Control;
use crate::source::StopFlag;
use crossbeam_channel::{Sender, TrySendError};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// Bytes read from one file per poll: thousands of key log lines.
const MAX_READ: usize = 256 << 10;
/// A line longer than this is no key log line (earshot_keylog::MAX_LINE is 512): it is
/// dropped rather than kept whole.
const MAX_PARTIAL: usize = 4096;

/// One followed file.
struct Followed {
    path: PathBuf,
    /// Bytes of the file already read.
    offset: u64,
    /// The end of the file read so far that no newline has ended yet.
    partial: Vec<u8>,
    /// Whole lines read and not yet handed over (the control queue was full).
    unsent: Option<Vec<u8>>,
    said_missing: bool,
}

impl Followed {
    fn new(path: PathBuf) -> Followed {
        Followed {
            path,
            offset: 0,
            partial: Vec::new(),
            unsent: None,
            said_missing: false,
        }
    }

    /// Reads what was appended since the last poll; returns its whole lines, if any.
    fn poll(&mut self) -> Option<Vec<u8>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) => {
                if !self.said_missing {
                    self.said_missing = true;
                    tracing::warn!(
                        file = %self.path.display(),
                        "cannot open the TLS key log yet ({e}); waiting for it to appear"
                    );
                }
                return None;
            }
        };
        if self.said_missing {
            self.said_missing = false;
            tracing::info!(file = %self.path.display(), "TLS key log found, reading it");
        }
        let len = file.metadata().map(|m| m.len()).ok()?;
        if len < self.offset {
            tracing::info!(
                file = %self.path.display(),
                "the TLS key log shrank (rotated or truncated): reading it again from the start"
            );
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return None;
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut chunk = Vec::new();
        let read = file
            .take(MAX_READ as u64)
            .read_to_end(&mut chunk)
            .unwrap_or(0);
        self.offset += read as u64;
        self.whole_lines(&chunk)
    }

    /// `chunk` after the partial line before it, cut after its last newline.
    fn whole_lines(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let Some(last_newline) = chunk.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(chunk);
            if self.partial.len() > MAX_PARTIAL {
                // No newline for this long: not a key log line. Its end is dropped too,
                // which the key log counts as one malformed line when a newline comes.
                self.partial.truncate(MAX_PARTIAL);
            }
            return None;
        };
        let mut lines = std::mem::take(&mut self.partial);
        lines.extend_from_slice(&chunk[..=last_newline]);
        self.partial.extend_from_slice(&chunk[last_newline + 1..]);
        Some(lines)
    }

    /// Hands `unsent` lines and then new ones to the pipeline, without ever waiting.
    fn step(&mut self, control: &Sender<Control>) -> bool {
        let lines = match self.unsent.take() {
            Some(l) => l,
            None => match self.poll() {
                Some(l) => l,
                None => return true,
            },
        };
        match control.try_send(Control::KeyLog(lines)) {
            Ok(()) => true,
            Err(TrySendError::Full(Control::KeyLog(lines))) => {
                self.unsent = Some(lines);
                true
            }
            Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Follows `files` on a thread of its own until `stop` (or the pipeline is gone).
pub fn spawn(
    files: Vec<PathBuf>,
    control: Sender<Control>,
    stop: StopFlag,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("earshot-keylog".into())
        .spawn(move || {
            let mut followed: Vec<Followed> = files.into_iter().map(Followed::new).collect();
            while !stop.is_stopped() {
                for f in &mut followed {
                    if !f.step(&control) {
                        return;
                    }
                }
                std::thread::sleep(POLL);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("earshot-kl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir.join("keys.log")
    }

    fn sent(rx: &crossbeam_channel::Receiver<Control>) -> Vec<u8> {
        let mut all = Vec::new();
        while let Ok(Control::KeyLog(b)) = rx.try_recv() {
            all.extend(b);
        }
        all
    }

    #[test]
    fn a_growing_file_is_handed_over_in_whole_lines_and_a_shrunk_one_from_its_start() {
        let path = scratch("grow");
        let (tx, rx) = crossbeam_channel::bounded(8);
        let mut f = Followed::new(path.clone());
        assert!(f.step(&tx));
        assert!(f.said_missing, "a missing file is waited for");
        std::fs::write(&path, "A 1\nB 2").expect("write");
        f.step(&tx);
        assert_eq!(sent(&rx), b"A 1\n");
        std::fs::write(&path, "A 1\nB 2\nC 3\n").expect("write");
        f.step(&tx);
        assert_eq!(sent(&rx), b"B 2\nC 3\n");
        std::fs::write(&path, "D 4\n").expect("write");
        f.step(&tx);
        assert_eq!(sent(&rx), b"D 4\n");
    }

    #[test]
    fn a_full_control_queue_keeps_the_lines_for_the_next_poll() {
        let path = scratch("full");
        let (tx, rx) = crossbeam_channel::bounded(1);
        tx.send(Control::Shutdown).expect("fill");
        std::fs::write(&path, "A 1\n").expect("write");
        let mut f = Followed::new(path);
        f.step(&tx);
        assert!(f.unsent.is_some());
        assert!(matches!(rx.try_recv(), Ok(Control::Shutdown)));
        f.step(&tx);
        assert_eq!(sent(&rx), b"A 1\n");
    }
}
