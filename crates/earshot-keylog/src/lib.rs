//! Key logs: the secrets a TLS or DTLS endpoint wrote down so that someone else can read its
//! traffic, in the NSS `SSLKEYLOGFILE` format curl, browsers, OpenSSL's keylog callback,
//! GnuTLS, Python's `ssl` (`keylog_filename`) and Wireshark share:
//!
//! ```text
//! # comment
//! CLIENT_RANDOM <64 hex: the ClientHello random> <96 hex: the TLS 1.2 master secret>
//! CLIENT_HANDSHAKE_TRAFFIC_SECRET <client random> <hex secret>      (TLS 1.3, and so on)
//! ```
//!
//! Sans-IO: bytes in ([`KeyLog::feed`], any chunking, as a file grows or a socket delivers
//! them), secrets out by client random ([`KeyLog::get`]). Nothing here reads a file.
//!
//! A key log is outside input like any packet: a line is at most [`MAX_LINE`] bytes (longer
//! ones are skipped up to their newline, never buffered), a secret at most 64 bytes, and the
//! store holds at most its capacity of sessions, forgetting the oldest first. Every line is
//! accounted for in [`KeyLogStats`]. Secrets are wiped from memory when dropped and never
//! printed by `Debug`.
//!
//! [`derive`] has the key derivations that turn a logged secret into keys: TLS 1.2's PRF and
//! exporter (DTLS-SRTP), TLS 1.3's HKDF-Expand-Label and exporter.

#![warn(missing_docs, unreachable_pub)]

pub mod derive;

use std::collections::{HashMap, VecDeque};
use zeroize::Zeroizing;

/// The longest line kept: a label, a 64-hex random and a 128-hex secret fit with room to spare.
pub const MAX_LINE: usize = 512;
/// Sessions kept by default. At 200 bytes or so each, about 20 MB.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// The longest secret of any label (SHA-384 secrets are 48 bytes, TLS 1.2 master secrets 48).
const MAX_SECRET: usize = 64;

/// A ClientHello's random, which names a TLS session in a key log.
pub type ClientRandom = [u8; 32];

/// One secret, wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// What a key log line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// TLS 1.2 (and DTLS 1.2) master secret.
    ClientRandom,
    /// TLS 1.3 `client_early_traffic_secret` (0-RTT data, RFC 8446 §7.1).
    ClientEarlyTrafficSecret,
    /// TLS 1.3 `client_handshake_traffic_secret`: the client's encrypted handshake messages.
    ClientHandshakeTrafficSecret,
    /// TLS 1.3 `server_handshake_traffic_secret`: the server's encrypted handshake messages.
    ServerHandshakeTrafficSecret,
    /// TLS 1.3 `client_application_traffic_secret_0`: the client's application data until a
    /// KeyUpdate.
    ClientTrafficSecret0,
    /// TLS 1.3 `server_application_traffic_secret_0`: the server's application data until a
    /// KeyUpdate.
    ServerTrafficSecret0,
    /// TLS 1.3 `early_exporter_master_secret` (RFC 8446 §7.5).
    EarlyExporterSecret,
    /// TLS 1.3 `exporter_master_secret` (RFC 8446 §7.5).
    ExporterSecret,
}

impl Label {
    /// Every label, in the order of the variants (which is also each one's slot in [`Secrets`]).
    pub const ALL: [Label; 8] = [
        Label::ClientRandom,
        Label::ClientEarlyTrafficSecret,
        Label::ClientHandshakeTrafficSecret,
        Label::ServerHandshakeTrafficSecret,
        Label::ClientTrafficSecret0,
        Label::ServerTrafficSecret0,
        Label::EarlyExporterSecret,
        Label::ExporterSecret,
    ];

    /// The label as a key log spells it.
    pub fn name(self) -> &'static str {
        match self {
            Label::ClientRandom => "CLIENT_RANDOM",
            Label::ClientEarlyTrafficSecret => "CLIENT_EARLY_TRAFFIC_SECRET",
            Label::ClientHandshakeTrafficSecret => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Label::ServerHandshakeTrafficSecret => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Label::ClientTrafficSecret0 => "CLIENT_TRAFFIC_SECRET_0",
            Label::ServerTrafficSecret0 => "SERVER_TRAFFIC_SECRET_0",
            Label::EarlyExporterSecret => "EARLY_EXPORTER_SECRET",
            Label::ExporterSecret => "EXPORTER_SECRET",
        }
    }

    fn from_name(name: &[u8]) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.name().as_bytes() == name)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The secrets logged for one session (one client random).
#[derive(Default)]
pub struct Secrets {
    slots: [Option<Secret>; Label::ALL.len()],
}

impl Secrets {
    /// The secret logged under `label` for this session, if a line gave it.
    pub fn get(&self, label: Label) -> Option<&[u8]> {
        self.slots[label.slot()].as_deref().map(Vec::as_slice)
    }
}

impl std::fmt::Debug for Secrets {
    // Secrets never reach a log: only which labels are known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known: Vec<&str> = Label::ALL
            .into_iter()
            .filter(|l| self.get(*l).is_some())
            .map(Label::name)
            .collect();
        f.debug_struct("Secrets").field("known", &known).finish()
    }
}

/// What became of the lines fed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyLogStats {
    /// Lines that added (or repeated) a secret.
    pub secrets: u64,
    /// Comments and blank lines.
    pub comments: u64,
    /// Well-formed lines of labels earshot has no use for (`RSA`, a future label).
    pub unknown_labels: u64,
    /// Lines that are not `LABEL <64 hex> <hex>`, or longer than [`MAX_LINE`].
    pub malformed: u64,
    /// Sessions forgotten to stay within the capacity.
    pub evicted: u64,
}

/// The secrets of a key log, by client random; bounded (see the crate's documentation).
pub struct KeyLog {
    sessions: HashMap<ClientRandom, Secrets>,
    /// Client randoms in the order they were first seen, for forgetting the oldest.
    order: VecDeque<ClientRandom>,
    capacity: usize,
    /// The part of a line not yet ended by a newline (at most MAX_LINE bytes).
    partial: Vec<u8>,
    /// The current line is too long: its bytes are dropped up to the next newline.
    skipping: bool,
    generation: u64,
    stats: KeyLogStats,
}

impl Default for KeyLog {
    fn default() -> KeyLog {
        KeyLog::with_capacity(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLog")
            .field("sessions", &self.sessions.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl KeyLog {
    /// A key log holding at most `capacity` sessions (at least one).
    pub fn with_capacity(capacity: usize) -> KeyLog {
        KeyLog {
            sessions: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            partial: Vec::with_capacity(MAX_LINE),
            skipping: false,
            generation: 0,
            stats: KeyLogStats::default(),
        }
    }

    /// Takes the next bytes of a key log, in any chunks: a line split between two calls is
    /// joined. A last line without a newline waits for [`KeyLog::finish`] or more bytes.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (line, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            self.take_piece(line, ended);
        }
    }

    /// The end of the input: a last line without a newline is read too.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.take_piece(&[], true);
        }
        self.skipping = false;
    }

    fn take_piece(&mut self, piece: &[u8], ended: bool) {
        if !self.skipping && self.partial.len() + piece.len() > MAX_LINE {
            // Too long for any key log line: dropped up to its newline, never buffered.
            self.skipping = true;
            self.partial.clear();
            self.stats.malformed += 1;
        }
        if !self.skipping {
            self.partial.extend_from_slice(piece);
        }
        if ended {
            if !self.skipping {
                let line = std::mem::take(&mut self.partial);
                self.read_line(&line);
                // The buffer is kept for the next line.
                self.partial = line;
                self.partial.clear();
            }
            self.skipping = false;
        }
    }

    fn read_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            self.stats.comments += 1;
            return;
        }
        let mut words = trimmed
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            self.stats.malformed += 1;
            return;
        };
        let Some(label) = Label::from_name(label) else {
            self.stats.unknown_labels += 1;
            return;
        };
        let random = decode_hex(random).and_then(|r| ClientRandom::try_from(r.as_slice()).ok());
        let secret = decode_hex(secret).filter(|s| !s.is_empty() && s.len() <= MAX_SECRET);
        let (Some(random), Some(secret)) = (random, secret) else {
            self.stats.malformed += 1;
            return;
        };
        self.insert(random, label, Zeroizing::new(secret));
    }

    /// Adds one secret, as a key log line would.
    pub fn insert(&mut self, random: ClientRandom, label: Label, secret: Secret) {
        self.stats.secrets += 1;
        if !self.sessions.contains_key(&random) {
            while self.sessions.len() >= self.capacity {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.sessions.remove(&oldest);
                self.stats.evicted += 1;
            }
            self.order.push_back(random);
        }
        let slot = &mut self.sessions.entry(random).or_default().slots[label.slot()];
        if slot.as_deref() != Some(&secret) {
            *slot = Some(secret);
            self.generation += 1;
        }
    }

    /// The secrets logged for a session.
    pub fn get(&self, random: &ClientRandom) -> Option<&Secrets> {
        self.sessions.get(random)
    }

    /// One secret of a session.
    pub fn secret(&self, random: &ClientRandom, label: Label) -> Option<&[u8]> {
        self.get(random)?.get(label)
    }

    /// Grows by one each time a secret is added or changed: a reader waiting for a key need
    /// only look again when this moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True while no session's secret has been read.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The line counts so far.
    pub fn stats(&self) -> KeyLogStats {
        self.stats
    }
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 2 * MAX_SECRET.max(32) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
