//! Who may feed the sensor over HEP: `--hep-allow` (source ranges) and `--hep-auth-key` (HEP3's
//! auth key chunk). Refused datagrams never reach the call table and are counted by reason.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
    c.extend_from_slice(val);
    c
}

fn invite(call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}\r\n\
         From: <sip:alice@192.0.2.10>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A HEP3 datagram carrying `payload`, with an auth key chunk (type 14) when `key` is given.
fn hep3(payload: &[u8], key: Option<&str>) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let mut body = Vec::new();
    body.extend(chunk(1, &[2]));
    body.extend(chunk(2, &[17]));
    body.extend(chunk(3, &[192, 0, 2, 10]));
    body.extend(chunk(4, &[192, 0, 2, 20]));
    body.extend(chunk(7, &5060u16.to_be_bytes()));
    body.extend(chunk(8, &5060u16.to_be_bytes()));
    body.extend(chunk(9, &now.to_be_bytes()));
    body.extend(chunk(10, &0u32.to_be_bytes()));
    body.extend(chunk(11, &[1]));
    body.extend(chunk(12, &2001u32.to_be_bytes()));
    if let Some(k) = key {
        body.extend(chunk(14, k.as_bytes()));
    }
    body.extend(chunk(15, payload));
    let mut h = b"HEP3".to_vec();
    h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    h.extend(body);
    h
}

/// HEP v2 (no room for a key): IPv4/UDP header, time header, payload.
fn hep2(payload: &[u8]) -> Vec<u8> {
    let mut h = vec![2, 28, 2, 17];
    h.extend_from_slice(&5060u16.to_be_bytes());
    h.extend_from_slice(&5060u16.to_be_bytes());
    h.extend_from_slice(&[192, 0, 2, 10, 192, 0, 2, 20]);
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&[1, 0, 0, 0]);
    h.extend_from_slice(payload);
    h
}

fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// The text of one scrape of the sensor's `/metrics`.
fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the scrape");
    out
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the scrape satisfies `done`; returns it.
fn scrape_until(port: u16, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::panic::catch_unwind(|| scrape(port)) {
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{what} within 20 s:\n{text}");
        } else {
            assert!(Instant::now() < deadline, "no /metrics on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn call_ids(s: &Sensor) -> String {
    String::from_utf8_lossy(&s.cmd("listcalls json")).into_owned()
}

const REFUSED: &str = "earshot_sensor_hep_refused_total";

#[test]
fn hep_from_outside_the_allow_list_is_refused_and_counted() {
    let hep = free_udp();
    let metrics = free_tcp_port();
    let s = Sensor::start(&[
        "--hep",
        &hep.to_string(),
        "--hep-allow",
        "10.0.0.0/8",
        "--metrics",
        &metrics.to_string(),
    ]);
    let out = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5 {
        out.send_to(&hep3(&invite(&format!("refused-{i}")), None), hep)
            .unwrap();
    }
    let text = scrape_until(metrics, "5 refusals", |t| {
        sample(t, &format!("{REFUSED}{{reason=\"address\"}}")) >= 5.0
    });
    assert_eq!(sample(&text, "earshot_sensor_frames_total"), 0.0, "{text}");
    assert!(!call_ids(&s).contains("refused-"), "{}", call_ids(&s));
}

#[test]
fn hep_needs_the_auth_key_when_one_is_set() {
    let hep = free_udp();
    let metrics = free_tcp_port();
    let s = Sensor::start(&[
        "--hep",
        &hep.to_string(),
        "--hep-auth-key",
        "  hep-s3cret ",
        "--metrics",
        &metrics.to_string(),
    ]);
    let out = UdpSocket::bind("127.0.0.1:0").unwrap();
    out.send_to(&hep3(&invite("no-key"), None), hep).unwrap();
    out.send_to(&hep3(&invite("wrong-key"), Some("hep-s3cre")), hep)
        .unwrap();
    out.send_to(&hep2(&invite("hep-v2")), hep).unwrap();
    out.send_to(&hep3(&invite("right-key"), Some("hep-s3cret")), hep)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !call_ids(&s).contains("right-key") {
        assert!(
            Instant::now() < deadline,
            "the keyed datagram was not taken:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = scrape_until(metrics, "3 refusals", |t| {
        sample(t, &format!("{REFUSED}{{reason=\"auth_key\"}}")) >= 3.0
    });
    assert_eq!(
        sample(&text, &format!("{REFUSED}{{reason=\"auth_key\"}}")),
        3.0
    );
    let listed = call_ids(&s);
    for refused in ["no-key", "wrong-key", "hep-v2"] {
        assert!(!listed.contains(refused), "{refused} was taken: {listed}");
    }
}
