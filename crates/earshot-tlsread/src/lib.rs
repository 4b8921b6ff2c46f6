//! One TLS connection read from outside, with the secrets its endpoints wrote to a key log:
//! the two directions' reassembled bytes in, their plaintext application data out.
//!
//! Sans-IO: [`Connection::feed`] takes the next bytes one side sent (any chunking) and hands
//! each record's application data to a callback; [`Connection::poll_keys`] looks the
//! connection's client random up in an [`earshot_keylog::KeyLog`]. Nothing here reads a
//! file, a socket or a clock; timestamps are the caller's and only travel with the data.
//!
//! From the plaintext handshake the reader takes ClientHello.random, the ServerHello's random,
//! cipher suite and version (TLS 1.3 through supported_versions). TLS 1.3 records are opened
//! with handshake keys, then after each side's Finished with its application keys, and after
//! a KeyUpdate with the next ones; TLS 1.2 records after ChangeCipherSpec with keys from the
//! master secret's key block. Suites: see [`Suite::from_id`].
//!
//! Records that need keys the key log does not have yet wait, in arrival order across both
//! directions (so a SIP request and its response come out in the order they were sent), up
//! to [`MAX_WAITING_BYTES`] per connection and a caller's [`Budget`] over all of them; the key
//! log is looked at again only when its generation moved. What does not fit is counted and
//! its place kept (so later records still get their sequence numbers right), and the reader
//! of the plaintext is told of the gap. A record whose authentication fails is counted and
//! never passed on. A record header that cannot be TLS, or a body longer than TLS allows
//! ([`MAX_BODY`]), means the stream is not (or no longer) TLS: the connection is broken and
//! reads nothing more.

#![warn(missing_docs, unreachable_pub)]

mod cipher;
mod hello;

pub use cipher::{Bulk, MacHash, Suite};

use cipher::Protection;
use earshot_keylog::{KeyLog, Label, Secret};
use std::collections::VecDeque;
use zeroize::Zeroizing;

/// The longest record body: 2^14 of plaintext plus 2048 of protection (RFC 5246 §6.2.3).
pub const MAX_BODY: usize = (1 << 14) + 2048;
/// Bytes of records one connection keeps while it waits for its keys.
pub const MAX_WAITING_BYTES: usize = 256 << 10;
/// Records one connection keeps while it waits, counting the places kept of records that
/// did not fit: each costs a few dozen bytes.
pub const MAX_WAITING_RECORDS: usize = 4096;
const HEADER: usize = 5;

const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

/// Who sent the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client (the side that sent the ClientHello).
    Client,
    /// From the server (the side that answered with the ServerHello).
    Server,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::Client => 0,
            Dir::Server => 1,
        }
    }
}

/// What the reader hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Application data one side sent, with the time of the bytes that completed its record.
    Data {
        /// The side that sent it.
        dir: Dir,
        /// The `ts` given with the bytes that completed the record (the caller's clock).
        ts: i64,
        /// The record's plaintext (borrowed until the callback returns).
        bytes: &'a [u8],
    },
    /// Some of that side's application data is missing (a record dropped while waiting for
    /// keys, or one that failed authentication): a reader of the plaintext must find its
    /// framing again.
    Gap {
        /// The side whose data is missing.
        dir: Dir,
    },
}

/// Bytes all connections of a caller may keep waiting for keys, shared among them.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Bytes of records waiting, over all connections fed with this budget.
    pub used: usize,
    /// The most `used` may reach; a record that would pass it is dropped and counted.
    pub max: usize,
}

impl Budget {
    /// A budget of `max` bytes, none used.
    pub fn new(max: usize) -> Budget {
        Budget { used: 0, max }
    }
}

/// What happened to a connection's records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Whole records seen, both directions, of any content type.
    pub records: u64,
    /// Protected records opened (tag or MAC verified).
    pub decrypted: u64,
    /// Records whose authentication tag (or MAC, or padding) did not verify.
    pub auth_failures: u64,
    /// Bytes of records dropped while waiting for keys (the connection's or the budget's
    /// limit was reached).
    pub dropped_waiting_bytes: u64,
    /// Protected records that cannot be read at all: a suite not supported here, or data
    /// before the version is known (TLS 1.3 early data).
    pub unreadable: u64,
}

/// The TLS version the ServerHello chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.2 (RFC 5246): one key block from the master secret (`CLIENT_RANDOM`), used after
    /// each side's ChangeCipherSpec.
    Tls12,
    /// TLS 1.3 (RFC 8446), chosen by the ServerHello's `supported_versions`: handshake, then
    /// application traffic secrets.
    Tls13,
}

/// Where a direction is in its key schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Epoch {
    Plain,
    /// TLS 1.3 handshake keys.
    Handshake,
    /// TLS 1.3 application keys, or TLS 1.2 keys after ChangeCipherSpec.
    Application,
}

/// One direction of the connection.
struct Half {
    /// Bytes of a record not yet complete (at most one record).
    buf: Vec<u8>,
    handshake: hello::HandshakeReader,
    epoch: Epoch,
    /// Keys of the current epoch, once known.
    protection: Option<Protection>,
    /// Records opened under the current keys (the next record's sequence number).
    seq: u64,
    /// TLS 1.3: the application traffic secret in use (for KeyUpdate).
    traffic_secret: Option<Secret>,
}

impl Default for Half {
    fn default() -> Half {
        Half {
            buf: Vec::new(),
            handshake: hello::HandshakeReader::default(),
            epoch: Epoch::Plain,
            protection: None,
            seq: 0,
            traffic_secret: None,
        }
    }
}

impl Half {
    /// New keys: the sequence number starts again.
    fn switch(&mut self, epoch: Epoch) {
        self.epoch = epoch;
        self.protection = None;
        self.seq = 0;
    }
}

/// The secrets taken from the key log (each kept once seen; a later look fills what is
/// still missing).
#[derive(Default)]
struct Secrets {
    master: Option<Secret>,
    handshake: [Option<Secret>; 2],
    application: [Option<Secret>; 2],
}

/// A record that arrived before its keys: its header and body, or only its place if it did
/// not fit.
struct Waiting {
    dir: Dir,
    ts: i64,
    header: [u8; HEADER],
    body: Option<Vec<u8>>,
}

/// What processing one record came to.
enum Step {
    Done,
    NeedKeys,
}

/// One TLS connection seen from outside.
pub struct Connection {
    halves: [Half; 2],
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    version: Option<Version>,
    suite: Option<Suite>,
    encrypt_then_mac: bool,
    secrets: Secrets,
    waiting: VecDeque<Waiting>,
    waiting_bytes: usize,
    /// The key log's generation when it was last looked at.
    looked_at: Option<u64>,
    broken: bool,
    /// The connection waited for a key at some point.
    waited: bool,
    stats: Stats,
    /// Where a record is decrypted: reused, at most one record.
    scratch: Vec<u8>,
}

impl Default for Connection {
    fn default() -> Connection {
        Connection::new()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.version)
            .field("suite", &self.suite)
            .field("broken", &self.broken)
            .field("waiting", &self.waiting.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection before its first byte.
    pub fn new() -> Connection {
        Connection {
            halves: [Half::default(), Half::default()],
            client_random: None,
            server_random: None,
            version: None,
            suite: None,
            encrypt_then_mac: false,
            secrets: Secrets::default(),
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            looked_at: None,
            broken: false,
            waited: false,
            stats: Stats::default(),
            scratch: Vec::new(),
        }
    }

    /// What happened to its records so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The stream stopped looking like TLS (see the crate's documentation).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The ClientHello's random: the key log's index of the session, once it was read.
    pub fn client_random(&self) -> Option<&[u8; 32]> {
        self.client_random.as_ref()
    }

    /// The version the ServerHello chose, once it was read.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The cipher suite the ServerHello chose, once it was read and if it is one read here.
    pub fn suite(&self) -> Option<Suite> {
        self.suite
    }

    /// Records are waiting for keys: [`Connection::poll_keys`] when the key log grows.
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Waited for a key at some point.
    pub fn has_waited(&self) -> bool {
        self.waited
    }

    /// Some record was decrypted.
    pub fn has_decrypted(&self) -> bool {
        self.stats.decrypted > 0
    }

    /// The next bytes `dir` sent; `out` gets the application data of every record they
    /// complete (or that can be read now).
    pub fn feed(
        &mut self,
        dir: Dir,
        ts: i64,
        data: &[u8],
        budget: &mut Budget,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if self.broken {
            return;
        }
        let mut buf = std::mem::take(&mut self.halves[dir.index()].buf);
        buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(head) = buf.get(at..at + HEADER) {
            let header: [u8; HEADER] = [head[0], head[1], head[2], head[3], head[4]];
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if !plausible(&header, len) {
                self.break_off(budget);
                return;
            }
            let Some(body) = buf.get(at + HEADER..at + HEADER + len) else {
                break;
            };
            self.stats.records += 1;
            if self.waiting.is_empty() {
                if let Step::NeedKeys = self.process(dir, ts, &header, body, out) {
                    self.wait(dir, ts, header, body, budget);
                }
            } else {
                // Keep the order: behind the records already waiting.
                self.wait(dir, ts, header, body, budget);
            }
            at += HEADER + len;
        }
        buf.drain(..at);
        self.halves[dir.index()].buf = buf;
    }

    /// Looks the connection's secrets up if records wait for them and the key log has grown
    /// since the last look, then reads what they open.
    pub fn poll_keys(
        &mut self,
        log: &KeyLog,
        budget: &mut Budget,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if self.waiting.is_empty() || self.looked_at == Some(log.generation()) {
            return;
        }
        self.looked_at = Some(log.generation());
        self.take_secrets(log);
        while let Some(w) = self.waiting.pop_front() {
            let size = w.body.as_ref().map_or(0, Vec::len);
            let step = match &w.body {
                Some(body) => self.process(w.dir, w.ts, &w.header, body, out),
                None => {
                    self.skip_lost(w.dir, &w.header, out);
                    Step::Done
                }
            };
            if let Step::NeedKeys = step {
                self.waiting.push_front(w);
                return;
            }
            self.waiting_bytes -= size;
            budget.used = budget.used.saturating_sub(size);
        }
    }

    /// Gives back what the connection's waiting records hold of `budget`, counting them as
    /// dropped; call it before forgetting a connection.
    pub fn close(&mut self, budget: &mut Budget) {
        for w in self.waiting.drain(..) {
            let size = w.body.as_ref().map_or(0, Vec::len);
            budget.used = budget.used.saturating_sub(size);
            self.stats.dropped_waiting_bytes += size as u64;
        }
        self.waiting_bytes = 0;
    }

    /// Gives the connection up (bytes of a side were never captured, so its records cannot
    /// be found again): what waits is dropped and counted, nothing more is read.
    pub fn abandon(&mut self, budget: &mut Budget) {
        self.break_off(budget);
    }

    fn break_off(&mut self, budget: &mut Budget) {
        self.broken = true;
        self.close(budget);
        self.halves = [Half::default(), Half::default()];
        self.scratch = Vec::new();
    }

    fn wait(&mut self, dir: Dir, ts: i64, header: [u8; HEADER], body: &[u8], budget: &mut Budget) {
        if !self.waited && !self.has_decrypted() {
            self.waited = true;
        }
        if self.waiting.len() >= MAX_WAITING_RECORDS {
            // Not even its place fits: the connection cannot be read in order any more.
            self.stats.dropped_waiting_bytes += body.len() as u64;
            self.break_off(budget);
            return;
        }
        let fits = self.waiting_bytes + body.len() <= MAX_WAITING_BYTES
            && budget.used + body.len() <= budget.max;
        let body = if fits {
            self.waiting_bytes += body.len();
            budget.used += body.len();
            Some(body.to_vec())
        } else {
            self.stats.dropped_waiting_bytes += body.len() as u64;
            None
        };
        self.waiting.push_back(Waiting {
            dir,
            ts,
            header,
            body,
        });
    }

    /// A record that was dropped while waiting, now that the records before it were read:
    /// it still took a sequence number, and its side's plaintext has a gap.
    fn skip_lost(&mut self, dir: Dir, header: &[u8; HEADER], out: &mut dyn FnMut(Output<'_>)) {
        let half = &mut self.halves[dir.index()];
        if header[0] == APPLICATION_DATA
            && half.epoch == Epoch::Plain
            && self.version == Some(Version::Tls13)
        {
            half.switch(Epoch::Handshake);
        }
        if half.epoch != Epoch::Plain {
            half.seq = half.seq.wrapping_add(1);
        }
        out(Output::Gap { dir });
    }

    fn process(
        &mut self,
        dir: Dir,
        ts: i64,
        header: &[u8; HEADER],
        body: &[u8],
        out: &mut dyn FnMut(Output<'_>),
    ) -> Step {
        let typ = header[0];
        let epoch = self.halves[dir.index()].epoch;
        if typ == CHANGE_CIPHER_SPEC {
            // TLS 1.3 sends one for middlebox compatibility only (RFC 8446 §D.4).
            if self.version != Some(Version::Tls13) && epoch == Epoch::Plain {
                self.halves[dir.index()].switch(Epoch::Application);
            }
            return Step::Done;
        }
        if epoch == Epoch::Plain {
            match (typ, self.version) {
                (HANDSHAKE, _) => {
                    self.plain_handshake(dir, body);
                    return Step::Done;
                }
                // TLS 1.3 protects everything after the ServerHello, in both directions.
                (APPLICATION_DATA, Some(Version::Tls13)) => {
                    self.halves[dir.index()].switch(Epoch::Handshake)
                }
                (APPLICATION_DATA, _) => {
                    self.stats.unreadable += 1;
                    return Step::Done;
                }
                _ => return Step::Done,
            }
        }
        if self.suite.is_none() {
            self.stats.unreadable += 1;
            return Step::Done;
        }
        if self.halves[dir.index()].protection.is_none() {
            match self.make_protection(dir) {
                Some(p) => self.halves[dir.index()].protection = Some(p),
                None => return Step::NeedKeys,
            }
        }
        self.open(dir, ts, header, body, out);
        Step::Done
    }

    fn open(
        &mut self,
        dir: Dir,
        ts: i64,
        header: &[u8; HEADER],
        body: &[u8],
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(body);
        let half = &mut self.halves[dir.index()];
        let seq = half.seq;
        half.seq = half.seq.wrapping_add(1);
        let opened = match &half.protection {
            Some(p) => p.open(header, seq, &mut scratch),
            None => Err(cipher::OpenError::Authentication),
        };
        match opened {
            Ok(o) => {
                self.stats.decrypted += 1;
                let plain = scratch.get(o.start..o.end).unwrap_or_default();
                match o.content_type {
                    APPLICATION_DATA if !plain.is_empty() => out(Output::Data {
                        dir,
                        ts,
                        bytes: plain,
                    }),
                    HANDSHAKE => self.protected_handshake(dir, plain),
                    // Alerts, heartbeats, empty application data: nothing to hand on.
                    _ => {}
                }
            }
            Err(_) => {
                self.stats.auth_failures += 1;
                out(Output::Gap { dir });
            }
        }
        self.scratch = scratch;
    }

    /// ClientHello and ServerHello: the randoms, the suite, the version.
    fn plain_handshake(&mut self, dir: Dir, body: &[u8]) {
        let mut hello_client = None;
        let mut hello_server = None;
        self.halves[dir.index()]
            .handshake
            .push(body, &mut |typ, msg| match (dir, typ) {
                (Dir::Client, hello::CLIENT_HELLO) => hello_client = hello::client_random(msg),
                (Dir::Server, hello::SERVER_HELLO) => {
                    if let Some(h) = hello::server_hello(msg) {
                        hello_server = Some(h);
                    }
                }
                _ => {}
            });
        if let Some(random) = hello_client {
            // A second ClientHello (after a HelloRetryRequest) repeats the random.
            self.client_random = Some(random);
        }
        if let Some(h) = hello_server {
            self.server_random = Some(h.random);
            self.encrypt_then_mac = h.encrypt_then_mac;
            self.version = Some(if h.tls13 {
                Version::Tls13
            } else {
                Version::Tls12
            });
            self.suite = Suite::from_id(h.suite, h.tls13);
            if h.tls13 {
                // Everything the server sends next is under its handshake keys; the
                // client's records switch when they come (after its compatibility CCS).
                self.halves[Dir::Server.index()].switch(Epoch::Handshake);
            }
        }
    }

    /// TLS 1.3 handshake messages under protection: Finished ends the handshake keys,
    /// KeyUpdate moves to the next application secret.
    fn protected_handshake(&mut self, dir: Dir, plain: &[u8]) {
        if self.version != Some(Version::Tls13) {
            return;
        }
        let mut finished = false;
        let mut key_updates = 0u32;
        self.halves[dir.index()]
            .handshake
            .push(plain, &mut |typ, _| match typ {
                hello::FINISHED => finished = true,
                hello::KEY_UPDATE => key_updates += 1,
                _ => {}
            });
        let epoch = self.halves[dir.index()].epoch;
        if finished && epoch == Epoch::Handshake {
            self.halves[dir.index()].switch(Epoch::Application);
        }
        // A record ends where keys change, so at most one KeyUpdate counts.
        if key_updates > 0 && epoch == Epoch::Application {
            self.key_update(dir);
        }
    }

    fn key_update(&mut self, dir: Dir) {
        let Some(suite) = self.suite else { return };
        let half = &mut self.halves[dir.index()];
        let next = half
            .traffic_secret
            .as_deref()
            .and_then(|s| cipher::next_traffic_secret(suite, s));
        half.switch(Epoch::Application);
        half.traffic_secret = next;
        if half.traffic_secret.is_none() {
            // Without the secret in use the next one cannot be derived; the direction's
            // records from here on fail and are counted.
            self.secrets.application[dir.index()] = None;
        }
    }

    /// Keys for `dir`'s current epoch from the secrets at hand; `None` while some are missing.
    fn make_protection(&mut self, dir: Dir) -> Option<Protection> {
        let suite = self.suite?;
        let i = dir.index();
        match self.version? {
            Version::Tls13 => match self.halves[i].epoch {
                Epoch::Plain => None,
                Epoch::Handshake => Protection::tls13(suite, self.secrets.handshake[i].as_deref()?),
                Epoch::Application => {
                    if self.halves[i].traffic_secret.is_none() {
                        let first = self.secrets.application[i].as_deref()?;
                        self.halves[i].traffic_secret = Some(Zeroizing::new(first.to_vec()));
                    }
                    Protection::tls13(suite, self.halves[i].traffic_secret.as_deref()?)
                }
            },
            Version::Tls12 => {
                let [client, server] = Protection::tls12(
                    suite,
                    self.secrets.master.as_deref()?,
                    self.client_random.as_ref()?,
                    self.server_random.as_ref()?,
                    self.encrypt_then_mac,
                )?;
                Some(match dir {
                    Dir::Client => client,
                    Dir::Server => server,
                })
            }
        }
    }

    fn take_secrets(&mut self, log: &KeyLog) {
        let Some(random) = self.client_random else {
            return;
        };
        let copy = |label| {
            log.secret(&random, label)
                .map(|s| Zeroizing::new(s.to_vec()))
        };
        let s = &mut self.secrets;
        s.master = copy(Label::ClientRandom).or(s.master.take());
        let pairs = [
            (
                &mut s.handshake,
                Label::ClientHandshakeTrafficSecret,
                Label::ServerHandshakeTrafficSecret,
            ),
            (
                &mut s.application,
                Label::ClientTrafficSecret0,
                Label::ServerTrafficSecret0,
            ),
        ];
        for (slots, client, server) in pairs {
            slots[0] = copy(client).or(slots[0].take());
            slots[1] = copy(server).or(slots[1].take());
        }
    }
}

/// A record header TLS could send: a known content type, version 3.x, a body within bounds.
fn plausible(header: &[u8; HEADER], len: usize) -> bool {
    (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&header[0])
        && header[1] == 3
        && header[2] <= 4
        && len <= MAX_BODY
}

/// The first bytes of a TLS connection: a handshake record of TLS 1.0–1.2's record version
/// (TLS 1.3 keeps 0x0301/0x0303 in the record layer).
pub fn looks_like_tls(first: &[u8]) -> bool {
    matches!(first, [HANDSHAKE, 3, 1..=3, ..])
}

#[cfg(test)]
mod tests;
