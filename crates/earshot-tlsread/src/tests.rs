//! Connections written here with RustCrypto's sealing side and read back. The derivations
//! themselves are checked against RFC vectors in earshot-keylog, and the whole reader against
//! Python's (OpenSSL's) TLS in crates/earshot/tests/sip_tls.rs.

use super::*;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use earshot_keylog::derive::{hkdf_expand_label, tls12_prf, PrfHash, TLS13};

const CLIENT_RANDOM: [u8; 32] = [0xC1; 32];
const SERVER_RANDOM: [u8; 32] = [0x5E; 32];

fn record(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, 0, (body.len() >> 8) as u8, body.len() as u8];
    m.extend_from_slice(body);
    m
}

fn client_hello() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&CLIENT_RANDOM);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    let mut r = record(HANDSHAKE, &handshake_msg(1, &body));
    r[2] = 1;
    r
}

fn server_hello(suite: u16, tls13: bool) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&SERVER_RANDOM);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    if tls13 {
        body.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
    }
    record(HANDSHAKE, &handshake_msg(2, &body))
}

enum Seal {
    Aes128(Box<Aes128Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

use aes_gcm::Aes128Gcm;
use chacha20poly1305::ChaCha20Poly1305;

impl Seal {
    fn new(chacha: bool, key: &[u8]) -> Seal {
        match chacha {
            false => Seal::Aes128(Box::new(Aes128Gcm::new_from_slice(key).expect("key"))),
            true => Seal::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(key).expect("key"),
            )),
        }
    }
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut Vec<u8>) {
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            Seal::Aes128(c) => c.encrypt_in_place(nonce, aad, buf),
            Seal::ChaCha(c) => c.encrypt_in_place(nonce, aad, buf),
        }
        .expect("seal");
    }
}

/// One direction's sealing side.
struct Writer {
    seal: Seal,
    iv: [u8; 12],
    seq: u64,
    tls13: bool,
    chacha: bool,
}

fn nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (a, b) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *a ^= b;
    }
    n
}

impl Writer {
    fn tls13(secret: &[u8], chacha: bool) -> Writer {
        let key_len = if chacha { 32 } else { 16 };
        let key =
            hkdf_expand_label(PrfHash::Sha256, TLS13, secret, b"key", b"", key_len).expect("key");
        let iv = hkdf_expand_label(PrfHash::Sha256, TLS13, secret, b"iv", b"", 12).expect("iv");
        Writer {
            seal: Seal::new(chacha, &key),
            iv: iv.as_slice().try_into().expect("iv"),
            seq: 0,
            tls13: true,
            chacha,
        }
    }

    /// Client's and server's TLS 1.2 writers from a master secret (AES-128-GCM or ChaCha20).
    fn tls12(master: &[u8], chacha: bool) -> [Writer; 2] {
        let (key, iv) = if chacha { (32, 12) } else { (16, 4) };
        let mut seed = SERVER_RANDOM.to_vec();
        seed.extend_from_slice(&CLIENT_RANDOM);
        let block = tls12_prf(
            PrfHash::Sha256,
            master,
            b"key expansion",
            &seed,
            2 * (key + iv),
        )
        .expect("block");
        let w = |i: usize| {
            let mut fixed = [0u8; 12];
            fixed[..iv].copy_from_slice(&block[2 * key + i * iv..2 * key + (i + 1) * iv]);
            Writer {
                seal: Seal::new(chacha, &block[i * key..(i + 1) * key]),
                iv: fixed,
                seq: 0,
                tls13: false,
                chacha,
            }
        };
        [w(0), w(1)]
    }

    fn record(&mut self, typ: u8, plain: &[u8]) -> Vec<u8> {
        let seq = self.seq;
        self.seq += 1;
        if self.tls13 {
            let mut buf = plain.to_vec();
            buf.push(typ);
            buf.extend_from_slice(&[0, 0, 0]);
            let mut header = vec![APPLICATION_DATA, 3, 3];
            header.extend_from_slice(&((buf.len() + 16) as u16).to_be_bytes());
            self.seal.seal(&nonce(&self.iv, seq), &header, &mut buf);
            header.extend_from_slice(&buf);
            return header;
        }
        let mut aad = seq.to_be_bytes().to_vec();
        aad.extend_from_slice(&[typ, 3, 3]);
        aad.extend_from_slice(&(plain.len() as u16).to_be_bytes());
        let mut buf = plain.to_vec();
        if self.chacha {
            self.seal.seal(&nonce(&self.iv, seq), &aad, &mut buf);
            return record(typ, &buf);
        }
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.iv[..4]);
        n[4..].copy_from_slice(&seq.to_be_bytes());
        self.seal.seal(&n, &aad, &mut buf);
        let mut body = seq.to_be_bytes().to_vec();
        body.extend_from_slice(&buf);
        record(typ, &body)
    }
}

const SECRETS: [(&str, u8); 4] = [
    ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 0x11),
    ("SERVER_HANDSHAKE_TRAFFIC_SECRET", 0x22),
    ("CLIENT_TRAFFIC_SECRET_0", 0x33),
    ("SERVER_TRAFFIC_SECRET_0", 0x44),
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key_log_line(label: &str, secret: &[u8]) -> String {
    format!("{label} {} {}\n", hex(&CLIENT_RANDOM), hex(secret))
}

fn tls13_key_log() -> KeyLog {
    let mut log = KeyLog::default();
    for (label, fill) in SECRETS {
        log.feed(key_log_line(label, &[fill; 32]).as_bytes());
    }
    log
}

/// A TLS 1.3 connection as two sides wrote it: the records of each, in the order sent.
fn tls13_conversation(chacha: bool, key_update: bool) -> Vec<(Dir, Vec<u8>)> {
    let suite = if chacha { 0x1303 } else { 0x1301 };
    let mut server_hs = Writer::tls13(&[0x22; 32], chacha);
    let mut client_hs = Writer::tls13(&[0x11; 32], chacha);
    let mut server_app = Writer::tls13(&[0x44; 32], chacha);
    let mut client_app = Writer::tls13(&[0x33; 32], chacha);
    let mut flight = handshake_msg(8, &[0, 0]);
    flight.extend_from_slice(&handshake_msg(20, &[0xAB; 32]));
    let mut v = vec![
        (Dir::Client, client_hello()),
        (Dir::Server, server_hello(suite, true)),
        (Dir::Server, server_hs.record(HANDSHAKE, &flight)),
        (
            Dir::Server,
            server_app.record(HANDSHAKE, &handshake_msg(4, &[9; 12])),
        ),
        (Dir::Client, record(CHANGE_CIPHER_SPEC, &[1])),
        (
            Dir::Client,
            client_hs.record(HANDSHAKE, &handshake_msg(20, &[0xCD; 32])),
        ),
        (
            Dir::Client,
            client_app.record(APPLICATION_DATA, b"INVITE sip:b SIP/2.0\r\n"),
        ),
        (
            Dir::Server,
            server_app.record(APPLICATION_DATA, b"SIP/2.0 200 OK\r\n"),
        ),
    ];
    if key_update {
        v.push((
            Dir::Client,
            client_app.record(HANDSHAKE, &handshake_msg(24, &[0])),
        ));
        let next =
            cipher::next_traffic_secret(Suite::from_id(suite, true).expect("suite"), &[0x33; 32])
                .expect("next");
        let mut updated = Writer::tls13(&next, chacha);
        v.push((
            Dir::Client,
            updated.record(APPLICATION_DATA, b"BYE sip:b SIP/2.0\r\n"),
        ));
    }
    v
}

/// Feeds the records (each cut in `cut`-byte pieces) and returns what came out.
fn read_all(
    conn: &mut Connection,
    records: &[(Dir, Vec<u8>)],
    cut: usize,
    log: Option<&KeyLog>,
) -> Vec<(Dir, Vec<u8>)> {
    let mut got = Vec::new();
    let mut budget = Budget::new(1 << 20);
    let mut out = |o: Output<'_>| {
        if let Output::Data { dir, bytes, .. } = o {
            got.push((dir, bytes.to_vec()));
        }
    };
    for (i, (dir, bytes)) in records.iter().enumerate() {
        for piece in bytes.chunks(cut) {
            conn.feed(*dir, i as i64, piece, &mut budget, &mut out);
            if let Some(log) = log {
                conn.poll_keys(log, &mut budget, &mut out);
            }
        }
    }
    got
}

fn expected_sip() -> Vec<(Dir, Vec<u8>)> {
    vec![
        (Dir::Client, b"INVITE sip:b SIP/2.0\r\n".to_vec()),
        (Dir::Server, b"SIP/2.0 200 OK\r\n".to_vec()),
    ]
}

#[test]
fn tls13_application_data_of_both_sides_comes_out_however_the_bytes_are_cut() {
    let log = tls13_key_log();
    for chacha in [false, true] {
        for cut in [1, 3, 7, 100, 5000] {
            let mut conn = Connection::new();
            let got = read_all(
                &mut conn,
                &tls13_conversation(chacha, false),
                cut,
                Some(&log),
            );
            assert_eq!(got, expected_sip(), "chacha {chacha}, cut {cut}");
            assert_eq!(conn.stats().auth_failures, 0);
            assert_eq!(conn.version(), Some(Version::Tls13));
        }
    }
}

#[test]
fn a_key_update_moves_to_the_next_traffic_secret() {
    let mut conn = Connection::new();
    let got = read_all(
        &mut conn,
        &tls13_conversation(false, true),
        1000,
        Some(&tls13_key_log()),
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2], (Dir::Client, b"BYE sip:b SIP/2.0\r\n".to_vec()));
    assert_eq!(conn.stats().auth_failures, 0);
}

#[test]
fn records_before_their_keys_wait_and_come_out_in_arrival_order() {
    let mut conn = Connection::new();
    let mut budget = Budget::new(1 << 20);
    let empty = KeyLog::default();
    let mut got = Vec::new();
    for (dir, bytes) in tls13_conversation(false, false) {
        conn.feed(dir, 0, &bytes, &mut budget, &mut |o| {
            got.push(format!("{o:?}"))
        });
        conn.poll_keys(&empty, &mut budget, &mut |o| got.push(format!("{o:?}")));
    }
    assert!(got.is_empty());
    assert!(conn.is_waiting() && conn.has_waited());
    assert!(budget.used > 0);
    // Looked at once for this generation: not again until the key log moves.
    assert_eq!(conn.looked_at, Some(empty.generation()));
    let mut log = KeyLog::default();
    let mut out = Vec::new();
    for (label, fill) in SECRETS {
        log.feed(key_log_line(label, &[fill; 32]).as_bytes());
        conn.poll_keys(&log, &mut budget, &mut |o| {
            if let Output::Data { dir, bytes, .. } = o {
                out.push((dir, bytes.to_vec()));
            }
        });
    }
    assert_eq!(out, expected_sip());
    assert!(!conn.is_waiting());
    assert_eq!(budget.used, 0);
}

#[test]
fn a_wrong_secret_counts_authentication_failures_and_passes_nothing_on() {
    let mut log = KeyLog::default();
    for (label, fill) in SECRETS {
        log.feed(key_log_line(label, &[fill ^ 1; 32]).as_bytes());
    }
    let mut conn = Connection::new();
    let got = read_all(
        &mut conn,
        &tls13_conversation(false, false),
        4096,
        Some(&log),
    );
    assert!(got.is_empty());
    assert!(conn.stats().auth_failures >= 3, "{:?}", conn.stats());
    assert_eq!(conn.stats().decrypted, 0);
}

#[test]
fn tls12_gcm_and_chacha_read_with_the_master_secret() {
    let master = [0x4D; 48];
    for (chacha, suite) in [(false, 0xC02F), (true, 0xCCA8)] {
        let [mut c, mut s] = Writer::tls12(&master, chacha);
        let records = vec![
            (Dir::Client, client_hello()),
            (Dir::Server, server_hello(suite, false)),
            (Dir::Client, record(CHANGE_CIPHER_SPEC, &[1])),
            (
                Dir::Client,
                c.record(HANDSHAKE, &handshake_msg(20, &[1; 12])),
            ),
            (Dir::Server, record(CHANGE_CIPHER_SPEC, &[1])),
            (
                Dir::Server,
                s.record(HANDSHAKE, &handshake_msg(20, &[2; 12])),
            ),
            (
                Dir::Client,
                c.record(APPLICATION_DATA, b"INVITE sip:b SIP/2.0\r\n"),
            ),
            (
                Dir::Server,
                s.record(APPLICATION_DATA, b"SIP/2.0 200 OK\r\n"),
            ),
        ];
        let mut log = KeyLog::default();
        log.feed(key_log_line("CLIENT_RANDOM", &master).as_bytes());
        for cut in [1, 9, 4096] {
            let mut conn = Connection::new();
            let got = read_all(&mut conn, &records, cut, Some(&log));
            assert_eq!(got, expected_sip(), "chacha {chacha} cut {cut}");
            assert_eq!(conn.version(), Some(Version::Tls12));
            assert_eq!(conn.stats().decrypted, 4);
        }
    }
}

#[test]
fn hostile_record_lengths_break_the_connection_without_buffering_them() {
    let mut budget = Budget::new(1 << 20);
    // A length past 2^14 + 2048.
    let mut conn = Connection::new();
    conn.feed(
        Dir::Client,
        0,
        &[HANDSHAKE, 3, 3, 0xFF, 0xFF, 1, 2, 3],
        &mut budget,
        &mut |_| {},
    );
    assert!(conn.is_broken());
    // Not a TLS content type.
    let mut conn = Connection::new();
    conn.feed(Dir::Client, 0, &client_hello(), &mut budget, &mut |_| {});
    conn.feed(
        Dir::Client,
        0,
        &[0x47, 0x45, 0x54, 0x20, 0x2F],
        &mut budget,
        &mut |_| {},
    );
    assert!(conn.is_broken());
    // The largest legal length waits for its bytes, holding only what came.
    let mut conn = Connection::new();
    let len = MAX_BODY as u16;
    let mut head = vec![APPLICATION_DATA, 3, 3];
    head.extend_from_slice(&len.to_be_bytes());
    conn.feed(Dir::Server, 0, &head, &mut budget, &mut |_| {});
    assert!(!conn.is_broken());
    assert!(conn.halves[1].buf.capacity() < 1024);
}

#[test]
fn records_past_the_waiting_limit_are_counted_and_later_ones_still_read() {
    let mut conn = Connection::new();
    let mut budget = Budget::new(1 << 30);
    let mut records = tls13_conversation(false, false);
    // Without the client's INVITE (sealed at sequence 0): its writer goes on from here.
    records.remove(6);
    let mut client_app = Writer::tls13(&[0x33; 32], false);
    let big = vec![b'x'; 16_000];
    let mut wrote = Vec::new();
    for _ in 0..20 {
        wrote.push((Dir::Client, client_app.record(APPLICATION_DATA, &big)));
    }
    wrote.push((
        Dir::Client,
        client_app.record(APPLICATION_DATA, b"BYE sip:b SIP/2.0\r\n"),
    ));
    let mut gaps = 0;
    let mut data = Vec::new();
    let mut out = |o: Output<'_>| match o {
        Output::Gap { .. } => gaps += 1,
        Output::Data { bytes, .. } => data.push(bytes.to_vec()),
    };
    for (dir, bytes) in records.iter().chain(wrote.iter()) {
        conn.feed(*dir, 0, bytes, &mut budget, &mut out);
    }
    assert!(conn.waiting_bytes <= MAX_WAITING_BYTES);
    assert!(conn.stats().dropped_waiting_bytes > 0);
    conn.poll_keys(&tls13_key_log(), &mut budget, &mut out);
    assert!(gaps > 0);
    assert_eq!(
        data.last().map(Vec::as_slice),
        Some(&b"BYE sip:b SIP/2.0\r\n"[..])
    );
    assert_eq!(conn.stats().auth_failures, 0);
}

/// RFC 8448 §3 ("Simple 1-RTT Handshake"): the server's handshake traffic secret and the one
/// protected record of its flight (EncryptedExtensions, Certificate, CertificateVerify,
/// Finished), with the flight's plaintext, as the RFC prints them.
const RFC8448_SERVER_HS_SECRET: &str =
    "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const RFC8448_SERVER_FLIGHT_RECORD: &str = concat!(
    "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35e",
    "df7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78",
    "b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13b",
    "d9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9",
    "d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2e",
    "d65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd61092",
    "8d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead68694",
    "5ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b368",
    "4596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f",
    "4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26",
    "f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b65962224531",
    "7b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e",
    "1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da",
    "8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d4",
    "61e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe",
    "5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb",
    "992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c859",
    "77b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038",
    "ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b84",
    "5e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5",
    "d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e",
    "750edc53370d2b",
);
/// The flight's first bytes: EncryptedExtensions (type 8, 36 bytes of extensions).
const RFC8448_ENCRYPTED_EXTENSIONS: &str = concat!(
    "080000240022000a00140012001d00170018001901000101010201030104001c",
    "0002400100000000",
);
/// And its end: Finished (type 20) with its 32-byte verify_data.
const RFC8448_FINISHED: &str =
    "140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn rfc_8448_the_servers_protected_flight_opens_with_its_handshake_secret() {
    let record = unhex(RFC8448_SERVER_FLIGHT_RECORD);
    assert_eq!(record.len(), 679);
    let suite = Suite::from_id(0x1301, true).expect("TLS_AES_128_GCM_SHA256");
    let keys = Protection::tls13(suite, &unhex(RFC8448_SERVER_HS_SECRET)).expect("keys");
    let header: [u8; HEADER] = record[..HEADER].try_into().expect("header");
    let mut body = record[HEADER..].to_vec();
    let opened = keys
        .open(&header, 0, &mut body)
        .expect("the record authenticates");
    assert_eq!(opened.content_type, HANDSHAKE);
    let plain = &body[opened.start..opened.end];
    assert_eq!(plain.len(), 657);
    assert!(plain.starts_with(&unhex(RFC8448_ENCRYPTED_EXTENSIONS)));
    assert!(plain.ends_with(&unhex(RFC8448_FINISHED)));

    // The same record through a connection whose key log names the RFC's secret: it opens,
    // and the server's Finished at its end moves the server to its application keys.
    let mut log = KeyLog::default();
    log.feed(
        key_log_line(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            &unhex(RFC8448_SERVER_HS_SECRET),
        )
        .as_bytes(),
    );
    let mut conn = Connection::new();
    let mut budget = Budget::new(1 << 20);
    for (dir, bytes) in [
        (Dir::Client, client_hello()),
        (Dir::Server, server_hello(0x1301, true)),
        (Dir::Server, record),
    ] {
        conn.feed(dir, 0, &bytes, &mut budget, &mut |_| {});
        conn.poll_keys(&log, &mut budget, &mut |_| {});
    }
    assert_eq!((conn.stats().decrypted, conn.stats().auth_failures), (1, 0));
    assert_eq!(conn.halves[1].epoch, Epoch::Application);
}
