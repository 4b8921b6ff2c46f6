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
//!
//! `--tls-keylog-socket PATH` is the same for writers that would rather connect than share a
//! file (a PBX's or SBC's key log callback, `socat`): a Unix stream socket, readable by the
//! sensor's user only (key log lines are secrets), at most [`MAX_WRITERS`] writers at once,
//! each read as a growing file is, by the same thread at the same pace. A writer whose lines
//! wait for a full control queue is not read meanwhile (the kernel's socket buffer, then the
//! writer, waits): its lines are never dropped.

use crate::pipeline::Control;
use crate::source::StopFlag;
use crossbeam_channel::{Sender, TrySendError};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// Bytes read from one file per poll: thousands of key log lines.
const MAX_READ: usize = 256 << 10;
/// A line longer than this is no key log line (earshot_keylog::MAX_LINE is 512): it is
/// dropped rather than kept whole.
const MAX_PARTIAL: usize = 4096;

/// Writers connected to the key log socket at once; more are closed as they come (a writer
/// is a PBX or SBC process: a handful).
pub const MAX_WRITERS: usize = 16;

/// Whole lines out of bytes that arrive in pieces (a growing file, a socket).
#[derive(Default)]
struct Lines {
    /// What came after the last newline so far.
    partial: Vec<u8>,
}

impl Lines {
    /// `chunk` after the partial line before it, cut after its last newline.
    fn push(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
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

    /// The partial line as a whole one: its writer has gone, nothing will end it.
    fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() {
            return None;
        }
        let mut line = std::mem::take(&mut self.partial);
        line.push(b'\n');
        Some(line)
    }

    fn clear(&mut self) {
        self.partial.clear();
    }
}

/// Hands `lines` to the pipeline without waiting: Ok(None) when taken, Ok(Some(lines)) when
/// the queue is full (to keep for the next poll), Err when the pipeline is gone.
fn hand_over(control: &Sender<Control>, lines: Vec<u8>) -> Result<Option<Vec<u8>>, ()> {
    match control.try_send(Control::KeyLog(lines)) {
        Ok(()) => Ok(None),
        Err(TrySendError::Full(Control::KeyLog(lines))) => Ok(Some(lines)),
        Err(TrySendError::Full(_)) => Ok(None),
        Err(TrySendError::Disconnected(_)) => Err(()),
    }
}

/// One followed file.
struct Followed {
    path: PathBuf,
    /// Bytes of the file already read.
    offset: u64,
    lines: Lines,
    /// Whole lines read and not yet handed over (the control queue was full).
    unsent: Option<Vec<u8>>,
    said_missing: bool,
}

impl Followed {
    fn new(path: PathBuf) -> Followed {
        Followed {
            path,
            offset: 0,
            lines: Lines::default(),
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
            self.lines.clear();
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
        self.lines.push(&chunk)
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
        match hand_over(control, lines) {
            Ok(unsent) => {
                self.unsent = unsent;
                true
            }
            Err(()) => false,
        }
    }
}

/// The key log socket (`--tls-keylog-socket`), bound before the sensor starts so a bad path
/// stops it with a clear message. The socket file is removed when this is dropped.
pub struct KeyLogSocket {
    listener: UnixListener,
    path: PathBuf,
    writers: Vec<Writer>,
    /// Writers closed because [`MAX_WRITERS`] were connected (said once per poll).
    refused: u64,
}

impl KeyLogSocket {
    /// Listens at `path`: a socket left there by an earlier sensor is replaced, anything else
    /// (a file, a directory) is refused rather than deleted. Only the sensor's user may
    /// connect (mode 0600): whoever writes here can decrypt nothing, but whoever could read
    /// the lines could.
    pub fn bind(path: &Path) -> std::io::Result<KeyLogSocket> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a socket; give --tls-keylog-socket a path of its own",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(KeyLogSocket {
            listener,
            path: path.to_path_buf(),
            writers: Vec::new(),
            refused: 0,
        })
    }

    /// Takes new writers, reads the connected ones and hands their whole lines over; false
    /// when the pipeline is gone.
    fn step(&mut self, control: &Sender<Control>) -> bool {
        self.accept();
        let mut alive = true;
        self.writers.retain_mut(|w| match w.step(control) {
            Ok(open) => open,
            Err(()) => {
                alive = false;
                false
            }
        });
        alive
    }

    fn accept(&mut self) {
        let refused_before = self.refused;
        while let Ok((stream, _)) = self.listener.accept() {
            if self.writers.len() >= MAX_WRITERS || stream.set_nonblocking(true).is_err() {
                self.refused += 1;
                continue;
            }
            self.writers.push(Writer {
                stream,
                lines: Lines::default(),
                unsent: None,
                closed: false,
            });
        }
        if self.refused > refused_before {
            tracing::warn!(
                socket = %self.path.display(),
                refused = self.refused - refused_before,
                "key log writers closed: {MAX_WRITERS} are connected already"
            );
        }
    }
}

impl Drop for KeyLogSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One writer connected to the key log socket.
struct Writer {
    stream: UnixStream,
    lines: Lines,
    unsent: Option<Vec<u8>>,
    /// The writer closed its end; its last lines may still wait for the queue.
    closed: bool,
}

impl Writer {
    /// Ok(false) once the writer has gone and all its lines were handed over.
    fn step(&mut self, control: &Sender<Control>) -> Result<bool, ()> {
        if let Some(lines) = self.unsent.take() {
            self.unsent = hand_over(control, lines)?;
            if self.unsent.is_some() {
                return Ok(true);
            }
        }
        if self.closed {
            return Ok(false);
        }
        let lines = self.read();
        if let Some(lines) = lines {
            self.unsent = hand_over(control, lines)?;
        }
        Ok(!self.closed || self.unsent.is_some())
    }

    /// Up to [`MAX_READ`] bytes of what the writer sent since the last poll, as whole lines.
    fn read(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 16 << 10];
        let mut out: Option<Vec<u8>> = None;
        let mut read = 0;
        while read < MAX_READ {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    let last = self.lines.finish();
                    append(&mut out, last);
                    break;
                }
                Ok(n) => {
                    read += n;
                    let lines = self.lines.push(&buf[..n]);
                    append(&mut out, lines);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        out
    }
}

fn append(out: &mut Option<Vec<u8>>, more: Option<Vec<u8>>) {
    match (out.as_mut(), more) {
        (Some(o), Some(m)) => o.extend(m),
        (None, Some(m)) => *out = Some(m),
        (_, None) => {}
    }
}

/// Follows `files` and serves `socket` on a thread of its own until `stop` (or the pipeline
/// is gone).
pub fn spawn(
    files: Vec<PathBuf>,
    mut socket: Option<KeyLogSocket>,
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
                if let Some(s) = socket.as_mut() {
                    if !s.step(&control) {
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
    #[test]
    fn socket_writers_lines_are_handed_over_whole_and_their_last_line_on_close() {
        use std::io::Write;
        let path = scratch("socket").with_file_name("keylog.sock");
        let (tx, rx) = crossbeam_channel::bounded(8);
        let mut socket = KeyLogSocket::bind(&path).expect("bind");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("socket file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "only the sensor's user may connect");
        }
        let mut a = UnixStream::connect(&path).expect("connect");
        let mut b = UnixStream::connect(&path).expect("connect");
        a.write_all(b"A 1\nB").expect("write");
        b.write_all(b"C 3\n").expect("write");
        assert!(socket.step(&tx));
        let first = sent(&rx);
        assert!(
            first == b"A 1\nC 3\n" || first == b"C 3\nA 1\n",
            "{:?}",
            String::from_utf8_lossy(&first)
        );
        a.write_all(b" 2").expect("write");
        drop(a);
        assert!(socket.step(&tx));
        assert_eq!(
            sent(&rx),
            b"B 2\n",
            "a closed writer's last line ends with it"
        );
        assert_eq!(socket.writers.len(), 1, "the closed writer is gone");
        drop(socket);
        assert!(!path.exists(), "the socket file is removed with the socket");
    }

    #[test]
    fn a_socket_writer_waits_for_a_full_queue_and_extra_writers_are_closed() {
        use std::io::Write;
        let path = scratch("socket-full").with_file_name("keylog.sock");
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut socket = KeyLogSocket::bind(&path).expect("bind");
        tx.send(Control::Shutdown).expect("fill");
        let mut w = UnixStream::connect(&path).expect("connect");
        w.write_all(b"A 1\n").expect("write");
        assert!(socket.step(&tx));
        assert!(socket.writers[0].unsent.is_some(), "kept, not dropped");
        assert!(matches!(rx.try_recv(), Ok(Control::Shutdown)));
        assert!(socket.step(&tx));
        assert_eq!(sent(&rx), b"A 1\n");
        let extra: Vec<UnixStream> = (0..MAX_WRITERS + 3)
            .map(|_| UnixStream::connect(&path).expect("connect"))
            .collect();
        assert!(socket.step(&tx));
        assert_eq!(socket.writers.len(), MAX_WRITERS);
        assert_eq!(socket.refused, 4);
        drop(extra);
    }

    #[test]
    fn a_path_that_is_not_a_socket_is_refused_not_deleted() {
        let path = scratch("not-socket");
        std::fs::write(&path, "keep me").expect("write");
        let e = KeyLogSocket::bind(&path).err().expect("refused");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "keep me");
    }
}
