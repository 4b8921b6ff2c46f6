//! Silent clients cannot hold the Manager API's door shut: 2,100 connections that never send a
//! byte (more than the default `max_connections` of 2,048) while a normal client, plain or over
//! TLS, is still answered within a second; the silent ones are closed within a few seconds, and
//! a TLS port never answers in plain text.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::{try_request, Sensor};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// More than the default `max_connections`, so on a server that let unauthenticated clients take
/// every slot the normal client would be turned away.
const IDLE: usize = 2100;

fn version() -> Vec<u8> {
    env!("CARGO_PKG_VERSION").as_bytes().to_vec()
}

fn capture() -> Option<String> {
    let dir = sensor::shared("voipmonitor")?;
    Some(dir.join("call.pcap").to_string_lossy().into_owned())
}

/// Raises this process's descriptor limit (the sensor we spawn inherits it): the test holds
/// 2,100 sockets, the sensor as many at the moment they arrive.
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `n` connections that send nothing.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect()
}

/// Every idle connection must have been closed by the sensor by `deadline`; returns what they
/// were sent (plain bytes as received, before any close).
fn closed_by(conns: &mut [TcpStream], deadline: Instant) -> Vec<Vec<u8>> {
    let mut received = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        c.set_read_timeout(Some(left)).unwrap();
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
            Err(e) => panic!(
                "idle connection {i} was still open when it should have been closed ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
        received.push(got);
    }
    received
}

#[test]
fn silent_connections_do_not_lock_out_a_client() {
    let Some(pcap) = capture() else { return };
    raise_fd_limit(16_384);
    let s = Sensor::start(&["--pcap", &pcap, "--speed", "4"]);
    let mut idle = open_idle(s.addr, IDLE);
    let opened = Instant::now();
    // Let the sensor take them all from its accept queue.
    std::thread::sleep(Duration::from_millis(500));

    let t = Instant::now();
    let reply = try_request(s.addr, b"getversion\r\n\r\n", Duration::from_secs(10));
    let took = t.elapsed();
    assert_eq!(
        reply.as_deref().map_err(|e| e.to_string()),
        Ok(&version()[..]),
        "a normal client behind {IDLE} silent ones"
    );
    assert!(took < Duration::from_secs(1), "answered after {took:?}");

    // Silent connections are not held for long: each is closed (pushed out by a newer arrival,
    // or at the request deadline) well before the 10 s a slow request may take overall.
    let sent = closed_by(&mut idle, opened + Duration::from_secs(8));
    let told = sent.iter().filter(|r| !r.is_empty()).count();
    eprintln!("{IDLE} silent connections closed, {told} with a reply");
    for r in &sent {
        assert!(
            r.is_empty()
                || r == b"error: too many connections\n"
                || r == b"error: request timed out\n",
            "a silent client got {:?}",
            String::from_utf8_lossy(r)
        );
    }
    drop(idle);
    assert_eq!(
        try_request(s.addr, b"getversion\r\n\r\n", Duration::from_secs(10)).ok(),
        Some(version())
    );
    let mut s = s;
    assert!(s.alive());
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request over TLS, reply read to the server's close.
fn tls_request(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    bytes: &[u8],
) -> std::io::Result<Vec<u8>> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .map_err(std::io::Error::other)?
        .to_owned();
    let conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(bytes)?;
    tls.flush()?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out)?;
    Ok(out)
}

fn tls_sensor(dir: &Path, pcap: &str) -> (Kill, SocketAddr, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let client = earshot_tls::client_config(&cert_pem).expect("client config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Kill(
        sensor::earshot()
            .args(["sensor", "--speed", "4", "--pcap", pcap])
            .arg("--manager")
            .arg(addr.to_string())
            .arg("--tls-cert")
            .arg(&cert_pem)
            .arg("--tls-key")
            .arg(&key_pem)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sensor"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while tls_request(addr, &client, b"getversion\r\n\r\n").ok() != Some(version()) {
        assert!(Instant::now() < deadline, "the TLS sensor never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, addr, client)
}

#[test]
fn silent_connections_do_not_lock_out_a_tls_client_and_get_no_plain_text() {
    let Some(pcap) = capture() else { return };
    raise_fd_limit(16_384);
    let dir = sensor::scratch("slots-tls");
    let (_sensor, addr, client) = tls_sensor(&dir, &pcap);
    let mut idle = open_idle(addr, IDLE);
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    let t = Instant::now();
    let reply = tls_request(addr, &client, b"getversion\r\n\r\n");
    let took = t.elapsed();
    assert_eq!(
        reply.as_deref().map_err(|e| e.to_string()),
        Ok(&version()[..]),
        "a TLS client behind {IDLE} silent ones"
    );
    assert!(took < Duration::from_secs(1), "answered after {took:?}");

    // Nothing a TLS port sends may be plain text: a refused or pushed-out connection that never
    // started TLS is just closed.
    let sent = closed_by(&mut idle, opened + Duration::from_secs(8));
    for r in &sent {
        assert!(
            r.is_empty(),
            "a TLS port sent plain text to a silent client: {:?}",
            String::from_utf8_lossy(r)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
