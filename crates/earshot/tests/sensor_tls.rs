//! The Manager API over TLS: `earshot sensor --tls-cert/--tls-key` and the command-line clients
//! with `--tls-ca`; a plain-text client gets no answer.

#[path = "common/sensor.rs"]
mod sensor;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn manager_api_over_tls_lists_calls_and_refuses_plain_text() {
    let Some(vm) = sensor::shared("voipmonitor") else {
        return;
    };
    let dir = sensor::scratch("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _sensor = Kill(
        sensor::earshot()
            .args(["sensor", "--speed", "4", "--manager", &addr, "--pcap"])
            .arg(vm.join("call.pcap"))
            .arg("--tls-cert")
            .arg(&cert_pem)
            .arg("--tls-key")
            .arg(&key_pem)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sensor"),
    );
    // Over TLS, `earshot calls` lists the call once the replay has reached it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = sensor::earshot()
            .args(["calls", "--manager", &addr, "--tls-ca"])
            .arg(&cert_pem)
            .output()
            .expect("run earshot calls");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.contains("sipp") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no call over TLS: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Without the CA, the client refuses the unknown certificate.
    let out = sensor::earshot()
        .args(["calls", "--manager", &addr, "--tls-ca"])
        .arg(vm.join("README.md"))
        .output()
        .expect("run earshot calls");
    assert!(!out.status.success());
    // A plain-text request gets no plain-text answer.
    let mut plain = TcpStream::connect(&addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"getversion\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(
        !reply.starts_with(env!("CARGO_PKG_VERSION").as_bytes()),
        "plain text answered: {reply:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
