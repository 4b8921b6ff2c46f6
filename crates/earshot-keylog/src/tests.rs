use super::*;
use proptest::prelude::*;

const RANDOM: &str = "52362c10a2665e323a2adb4b9da0c10d4a8823719272f8b4c97af24f92784812";
const MASTER: &str = "9e0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";

fn random() -> ClientRandom {
    decode_hex(RANDOM.as_bytes())
        .and_then(|r| r.try_into().ok())
        .expect("32 bytes")
}

fn log_of(text: &str) -> KeyLog {
    let mut log = KeyLog::default();
    log.feed(text.as_bytes());
    log.finish();
    log
}

#[test]
fn a_tls12_master_secret_is_found_by_its_client_random() {
    let log = log_of(&format!(
        "# SSL/TLS secrets log file\nCLIENT_RANDOM {RANDOM} {MASTER}\n"
    ));
    let secret = log.secret(&random(), Label::ClientRandom).expect("logged");
    assert_eq!(secret.len(), 48);
    assert_eq!(secret[0], 0x9e);
    assert_eq!(log.secret(&random(), Label::ServerTrafficSecret0), None);
    let stats = log.stats();
    assert_eq!((stats.secrets, stats.comments, stats.malformed), (1, 1, 0));
}

#[test]
fn tls13_labels_are_kept_apart() {
    let a = "aa".repeat(32);
    let b = "bb".repeat(48);
    let log = log_of(&format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {RANDOM} {a}\r\nSERVER_TRAFFIC_SECRET_0 {RANDOM} {b}\r\n"
    ));
    let s = log.get(&random()).expect("session");
    assert_eq!(
        s.get(Label::ClientHandshakeTrafficSecret),
        Some(&[0xaa; 32][..])
    );
    assert_eq!(s.get(Label::ServerTrafficSecret0), Some(&[0xbb; 48][..]));
    assert_eq!(s.get(Label::ClientTrafficSecret0), None);
    // Debug names the labels, never the bytes.
    let shown = format!("{s:?}");
    assert!(shown.contains("SERVER_TRAFFIC_SECRET_0"), "{shown}");
    assert!(!shown.contains("bb") && !shown.contains("187"), "{shown}");
}

#[test]
fn a_line_split_across_feeds_is_joined_and_a_last_line_needs_finish() {
    let line = format!("CLIENT_RANDOM {RANDOM} {MASTER}");
    let mut log = KeyLog::default();
    for piece in line.as_bytes().chunks(7) {
        log.feed(piece);
    }
    assert!(log.is_empty(), "no newline yet: the line may still grow");
    let before = log.generation();
    log.finish();
    assert!(log.secret(&random(), Label::ClientRandom).is_some());
    assert!(log.generation() > before);
}

#[test]
fn bad_lines_are_counted_and_change_nothing() {
    let long = "A".repeat(MAX_LINE * 3);
    let text = format!(
        "CLIENT_RANDOM {RANDOM}\n\
         CLIENT_RANDOM zz{} {MASTER}\n\
         CLIENT_RANDOM {RANDOM} abc\n\
         CLIENT_RANDOM {RANDOM} {}\n\
         RSA 0011 2233\n\
         {long}\n\
         CLIENT_RANDOM {RANDOM} {MASTER}\n",
        &RANDOM[2..],
        "00".repeat(MAX_SECRET + 1),
    );
    let log = log_of(&text);
    let stats = log.stats();
    assert_eq!(stats.malformed, 5, "{stats:?}");
    assert_eq!(stats.unknown_labels, 1, "{stats:?}");
    assert_eq!(
        stats.secrets, 1,
        "the good line after the long one is read: {stats:?}"
    );
    assert_eq!(log.len(), 1);
}

#[test]
fn the_oldest_session_is_forgotten_past_the_capacity() {
    let mut log = KeyLog::with_capacity(2);
    for n in 0..3u8 {
        log.insert([n; 32], Label::ClientRandom, Zeroizing::new(vec![n; 48]));
    }
    assert_eq!(log.len(), 2);
    assert!(log.get(&[0; 32]).is_none());
    assert!(log.get(&[2; 32]).is_some());
    assert_eq!(log.stats().evicted, 1);
    // A repeated secret is not a change.
    let g = log.generation();
    log.insert([2; 32], Label::ClientRandom, Zeroizing::new(vec![2; 48]));
    assert_eq!(log.generation(), g);
}

proptest! {
    /// Any bytes, in any chunks: nothing panics, the partial line never outgrows MAX_LINE, and
    /// the store never outgrows its capacity.
    #[test]
    fn any_input_stays_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..20)) {
        let mut log = KeyLog::with_capacity(4);
        for c in &chunks {
            log.feed(c);
            prop_assert!(log.partial.len() <= MAX_LINE);
        }
        log.finish();
        prop_assert!(log.len() <= 4);
    }

    /// However a good key log is cut into chunks, it reads the same.
    #[test]
    fn chunking_does_not_matter(cuts in proptest::collection::vec(1usize..40, 1..30)) {
        let text = format!("# x\nCLIENT_RANDOM {RANDOM} {MASTER}\nSERVER_TRAFFIC_SECRET_0 {RANDOM} {}\n", "cd".repeat(32));
        let mut log = KeyLog::default();
        let mut rest = text.as_bytes();
        for c in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let n = (*c).min(rest.len());
            log.feed(&rest[..n]);
            rest = &rest[n..];
        }
        prop_assert_eq!(log.stats().secrets, 2);
        prop_assert!(log.secret(&random(), Label::ServerTrafficSecret0).is_some());
    }
}
