use super::*;
use proptest::prelude::*;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/captures/dtls-srtp/"
);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// (source, destination, UDP payload) of every datagram of a tcpdump capture on lo (little
/// endian pcap, Ethernet framing, IPv4 without options), read by hand to keep this crate's
/// tests free of the capture reader.
fn datagrams(name: &str) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let data = std::fs::read(format!("{CAPTURES}{name}")).expect("the capture (make.py)");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..at + 16 + incl];
        at += 16 + incl;
        let udp = &frame[34..];
        let port = |i: usize| u16::from_be_bytes([udp[i], udp[i + 1]]);
        let len = usize::from(port(4));
        out.push((addr(port(0)), addr(port(2)), udp[8..len].to_vec()));
    }
    out
}

fn key_log(name: &str) -> KeyLog {
    let mut log = KeyLog::default();
    log.feed(&std::fs::read(format!("{CAPTURES}{name}")).expect("the key log (make.py)"));
    log.finish();
    log
}

/// The keying material OpenSSL's s_client printed for a handshake (`keymat.txt`).
fn openssl_keymat(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{CAPTURES}keymat.txt")).expect("keymat.txt");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .expect("the handshake's line");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn observe(name: &str) -> DtlsObserver {
    let mut o = DtlsObserver::new();
    for (src, dst, d) in datagrams(&format!("handshake_{name}.pcap")) {
        assert!(is_dtls(&d), "OpenSSL's datagrams are DTLS by RFC 7983");
        o.on_datagram(src, dst, &d);
    }
    o
}

/// Client key | server key | client salt | server salt, as RFC 5764 §4.2 lays them out.
fn material(keys: &SrtpKeys) -> Vec<u8> {
    let (ck, cs) = keys.key_and_salt(keys.client).expect("client");
    let (sk, ss) = keys.key_and_salt(keys.server).expect("server");
    [ck, sk, cs, ss].concat()
}

#[test]
fn openssl_handshakes_give_the_keying_material_openssl_exported() {
    // s_server on 38010 (the caller), s_client on 38020; ECDHE-ECDSA-AES256-GCM-SHA384, so
    // the PRF is SHA-384; a HelloVerifyRequest cookie; "fragmented": the ClientHello in three
    // fragments each time.
    for (name, profile) in [
        ("aes_cm_80", Profile::AesCm128HmacSha1_80),
        ("aead_aes_128_gcm", Profile::AeadAes128Gcm),
        ("fragmented", Profile::AesCm128HmacSha1_80),
    ] {
        let mut o = observe(name);
        let stats = o.stats();
        assert_eq!(
            (stats.handshakes, stats.malformed),
            (1, 0),
            "{name}: {stats:?}"
        );
        assert_eq!(o.client(), Some(addr(38020)), "{name}");
        assert_eq!(o.profile(), Some(profile), "{name}");
        assert_eq!(
            o.look_up(&key_log("keys.log")),
            Lookup::Keyed { first: true }
        );
        let keys = o.keys().expect("keyed");
        assert_eq!((keys.client, keys.server), (addr(38020), addr(38010)));
        assert_eq!(material(keys), openssl_keymat(name), "{name}");
    }
}

#[test]
fn sender_keys_are_the_write_keys_of_its_side() {
    let mut o = observe("aes_cm_80");
    o.look_up(&key_log("keys.log"));
    let keys = o.keys().expect("keyed");
    let m = openssl_keymat("aes_cm_80");
    assert_eq!(keys.key_and_salt(addr(38020)), Ok((&m[..16], &m[32..46])));
    assert_eq!(keys.key_and_salt(addr(38010)), Ok((&m[16..32], &m[46..60])));
    assert!(keys.master_key(addr(38010)).is_ok());
    assert_eq!(
        keys.key_and_salt(addr(1)),
        Err(KeyError::NotAnEndpoint(addr(1)))
    );
    let shown = format!("{keys:?}");
    assert!(
        !shown.contains("material") && !shown.contains(&format!("{:?}", &m[..4])),
        "{shown}"
    );
}

#[test]
fn a_gcm_profile_gives_gcm_master_keys_with_their_12_byte_salt() {
    let mut o = observe("aead_aes_128_gcm");
    o.look_up(&key_log("keys.log"));
    let keys = o.keys().expect("keyed");
    let client = keys.master_key(keys.client).expect("a GCM key");
    assert_eq!(client.suite, earshot_srtp::Suite::AeadAes128Gcm);
    assert_eq!(material(keys), openssl_keymat("aead_aes_128_gcm"));
    assert!(matches!(
        keys.master_key("192.0.2.1:9".parse().expect("address")),
        Err(KeyError::NotAnEndpoint(_))
    ));
}

#[test]
fn a_key_log_that_arrives_later_keys_the_handshake_then() {
    let mut o = observe("aes_cm_80");
    let mut log = KeyLog::default();
    assert_eq!(o.look_up(&log), Lookup::Unchanged);
    // Nothing changed: no second search.
    assert_eq!(o.look_up(&log), Lookup::Unchanged);
    log.feed(
        b"CLIENT_RANDOM 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 01\n",
    );
    assert_eq!(o.look_up(&log), Lookup::Unchanged, "another session's line");
    log.feed(&std::fs::read(format!("{CAPTURES}keys.log")).unwrap());
    assert_eq!(o.look_up(&log), Lookup::Keyed { first: true });
    assert_eq!(material(o.keys().unwrap()), openssl_keymat("aes_cm_80"));
}

#[test]
fn a_corrected_secret_rekeys_and_a_new_handshake_forgets_the_keys() {
    let mut o = observe("aes_cm_80");
    let mut log = key_log("keys_wrong.log");
    assert_eq!(o.look_up(&log), Lookup::Keyed { first: true });
    assert_ne!(material(o.keys().unwrap()), openssl_keymat("aes_cm_80"));
    log.feed(&std::fs::read(format!("{CAPTURES}keys.log")).unwrap());
    assert_eq!(o.look_up(&log), Lookup::Keyed { first: false });
    assert_eq!(material(o.keys().unwrap()), openssl_keymat("aes_cm_80"));
    // Another handshake on the same 5-tuple (its ClientHello has another random).
    let other = datagrams("handshake_fragmented.pcap");
    let (src, dst, hello) = &other[0];
    let mut seen = Seen::default();
    for (s, d, bytes) in &other {
        seen.handshake |= o.on_datagram(*s, *d, bytes).handshake;
    }
    assert!(seen.handshake, "{src} -> {dst}: {} bytes", hello.len());
    assert_eq!(o.stats().handshakes, 2);
    assert!(o.keys().is_none(), "the old handshake's keys are gone");
    assert_eq!(o.look_up(&log), Lookup::Keyed { first: true });
    assert_eq!(material(o.keys().unwrap()), openssl_keymat("fragmented"));
}

/// A record of one handshake fragment.
fn record(msg_type: u8, length: usize, seq: u16, offset: usize, fragment: &[u8]) -> Vec<u8> {
    let mut hs = vec![msg_type];
    hs.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&seq.to_be_bytes());
    hs.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&(fragment.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(fragment);
    let mut r = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
    r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    r.extend_from_slice(&hs);
    r
}

fn client_hello_body(random: [u8; 32]) -> Vec<u8> {
    let mut b = vec![0xfe, 0xfd];
    b.extend_from_slice(&random);
    b.extend_from_slice(&[0, 0, 0, 2, 0xc0, 0x2b, 1, 0]);
    b
}

fn server_hello_body(random: [u8; 32], suite: u16, profile: u16) -> Vec<u8> {
    let mut b = vec![0xfe, 0xfd];
    b.extend_from_slice(&random);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    let srtp = [0, 2, (profile >> 8) as u8, profile as u8, 0];
    let mut ext = vec![0, 14, 0, srtp.len() as u8];
    ext.extend_from_slice(&srtp);
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    b
}

#[test]
fn a_client_hello_in_fragments_out_of_order_and_repeated_is_reassembled() {
    let random = [7u8; 32];
    let body = client_hello_body(random);
    let n = body.len();
    let mut o = DtlsObserver::new();
    let (c, s) = (addr(5000), addr(6000));
    // Bytes 20.., then 0..10 twice, then 10..20: whole only at the last.
    o.on_datagram(c, s, &record(1, n, 0, 20, &body[20..]));
    o.on_datagram(c, s, &record(1, n, 0, 0, &body[..10]));
    o.on_datagram(c, s, &record(1, n, 0, 0, &body[..10]));
    assert_eq!(o.client_random(), None);
    // Two fragments in one record, overlapping.
    let mut two = record(1, n, 0, 8, &body[8..15]);
    let more = record(1, n, 0, 12, &body[12..20]);
    let hs_len = u16::from_be_bytes([two[11], two[12]]) + (more.len() as u16 - 13);
    two[11..13].copy_from_slice(&hs_len.to_be_bytes());
    two.extend_from_slice(&more[13..]);
    o.on_datagram(c, s, &two);
    assert_eq!(o.client_random(), Some(&random));
    assert_eq!(o.client(), Some(c));
    let seen = o.on_datagram(s, c, &record(2, 0, 0, 0, &[]));
    assert!(!seen.handshake, "an empty ServerHello is no hello");
    let sh = server_hello_body([9; 32], 0xc02b, 1);
    let seen = o.on_datagram(s, c, &record(2, sh.len(), 1, 0, &sh));
    assert!(seen.handshake);
    assert_eq!(o.profile(), Some(Profile::AesCm128HmacSha1_80));
    assert_eq!(o.stats().malformed, 1, "{:?}", o.stats());
}

#[test]
fn hostile_lengths_are_refused_without_allocating_or_waiting_for_them() {
    let mut o = DtlsObserver::new();
    let (c, s) = (addr(5000), addr(6000));
    // A ServerHello that claims 16 MB: counted, never buffered.
    o.on_datagram(s, c, &record(2, 0xff_ffff, 0, 0, &[0; 40]));
    assert_eq!(o.stats().oversized, 1);
    // A fragment past its message's length, a fragment length past the record, a record
    // length past the datagram, a header cut short.
    o.on_datagram(c, s, &record(1, 40, 0, 30, &[0; 20]));
    let mut lying = record(1, 40, 0, 0, &[0; 10]);
    lying[13 + 11] = 200;
    o.on_datagram(c, s, &lying);
    let mut long = record(1, 40, 0, 0, &[0; 40]);
    long[11] = 0xff;
    o.on_datagram(c, s, &long);
    o.on_datagram(c, s, &[22, 0xfe, 0xfd, 0]);
    assert_eq!(o.stats().malformed, 4, "{:?}", o.stats());
    // A ClientHello too short for its random; a ServerHello whose extensions are cut short.
    o.on_datagram(c, s, &record(1, 10, 0, 0, &[0; 10]));
    let mut sh = server_hello_body([1; 32], 0xc02b, 1);
    let at = sh.len() - 5;
    sh.truncate(at);
    sh.extend_from_slice(&[0, 0, 0]);
    o.on_datagram(s, c, &record(2, sh.len(), 0, 0, &sh));
    assert_eq!(o.stats().malformed, 6, "{:?}", o.stats());
    assert_eq!(o.stats().handshakes, 0);
    assert!(o.keys().is_none());
}

/// Found by the fuzz target: a ServerHello from the ClientHello's own address was kept, and a
/// key log then keyed a handshake that was never counted.
#[test]
fn a_server_hello_that_answers_no_client_hello_is_not_a_handshake() {
    let mut o = DtlsObserver::new();
    let (c, s) = (addr(5000), addr(6000));
    let random = [3; 32];
    let ch = client_hello_body(random);
    o.on_datagram(c, s, &record(1, ch.len(), 0, 0, &ch));
    let sh = server_hello_body([4; 32], 0xc02b, 1);
    assert!(
        !o.on_datagram(c, s, &record(2, sh.len(), 0, 0, &sh))
            .handshake
    );
    let mut log = KeyLog::default();
    log.insert(random, Label::ClientRandom, vec![0x42; 48].into());
    assert_eq!(o.look_up(&log), Lookup::Unchanged);
    assert!(o.keys().is_none());
    // The real answer, from the other side, pairs.
    assert!(
        o.on_datagram(s, c, &record(2, sh.len(), 1, 0, &sh))
            .handshake
    );
    assert_eq!(o.look_up(&log), Lookup::Keyed { first: true });
    assert_eq!(o.stats().handshakes, 1);
}

#[test]
fn dtls_1_0_and_1_3_server_hellos_are_not_keyed() {
    let mut o = DtlsObserver::new();
    let (c, s) = (addr(5000), addr(6000));
    let ch = client_hello_body([3; 32]);
    o.on_datagram(c, s, &record(1, ch.len(), 0, 0, &ch));
    let mut sh = server_hello_body([4; 32], 0xc02b, 1);
    sh[1] = 0xff;
    o.on_datagram(s, c, &record(2, sh.len(), 0, 0, &sh));
    assert_eq!(o.stats().unsupported_version, 1);
    assert_eq!(o.stats().handshakes, 0);
}

#[test]
fn sha384_suites_use_the_sha384_prf() {
    assert!(parse::prf_is_sha384(0xc02c));
    assert!(parse::prf_is_sha384(0xc030));
    assert!(!parse::prf_is_sha384(0xc02b));
    assert!(!parse::prf_is_sha384(0xcca9));
}

#[test]
fn rfc_7983_demultiplexing() {
    assert!(is_dtls(&[22]));
    assert!(is_dtls(&[63]));
    for b in [0u8, 3, 19, 64, 79, 128, 191] {
        assert!(!is_dtls(&[b]), "{b}");
    }
    assert!(!is_dtls(&[]));
}

proptest! {
    #[test]
    fn any_datagrams_leave_the_observer_consistent(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
    ) {
        let mut o = DtlsObserver::new();
        for (i, d) in datagrams.iter().enumerate() {
            let (src, dst) = if i % 2 == 0 { (addr(1), addr(2)) } else { (addr(2), addr(1)) };
            o.on_datagram(src, dst, d);
        }
        let stats = o.stats();
        prop_assert_eq!(stats.datagrams, datagrams.len() as u64);
        prop_assert!(stats.handshakes <= stats.datagrams);
        prop_assert_eq!(o.look_up(&KeyLog::default()), Lookup::Unchanged);
    }

    #[test]
    fn a_hello_cut_anywhere_into_fragments_is_read(cuts in proptest::collection::vec(0usize..44, 0..6)) {
        let body = client_hello_body([5; 32]);
        let mut points: Vec<usize> = cuts.into_iter().filter(|&c| c < body.len()).collect();
        points.extend([0, body.len()]);
        points.sort_unstable();
        points.dedup();
        let mut o = DtlsObserver::new();
        for w in points.windows(2).rev() {
            o.on_datagram(addr(1), addr(2), &record(1, body.len(), 0, w[0], &body[w[0]..w[1]]));
        }
        prop_assert_eq!(o.client_random(), Some(&[5u8; 32]));
    }
}
