//! `Sensor::start` and its handle, without the binary: a resolved configuration in, a running
//! Manager API out, reloaded and shut down through the handle.

use earshot_sensor::config::{resolve, FileConfig, Overrides};
use earshot_sensor::{Sensor, StartError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One request on a new connection; the whole reply.
fn ask(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the Manager API");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    // The end of the request, as `echo listcalls | nc` sends it.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
}

fn config(text: &str) -> earshot_sensor::config::SensorConfig {
    let file: FileConfig = toml::from_str(text).expect("sensor keys");
    resolve(file, Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_answers_reloads_and_shuts_down() {
    let sensor = Sensor::start(config(
        "[capture]\nhep = \"127.0.0.1:0\"\n[manager]\nlisten = \"127.0.0.1:0\"",
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = sensor.local_addr;
    assert_ne!(addr.port(), 0, "the handle gives the bound port");
    let reply = tokio::task::spawn_blocking(move || ask(addr, "listcalls json\r\n\r\n"))
        .await
        .expect("join");
    assert!(reply.starts_with('['), "listcalls answered: {reply:?}");

    // A reload that sets a token applies to new connections.
    let with_token = config("[manager]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"");
    sensor.reload(&with_token).expect("reload accepted");
    let (refused, allowed) = tokio::task::spawn_blocking(move || {
        (
            ask(addr, "listcalls json\r\n\r\n"),
            ask(addr, "auth s3cret\nlistcalls json\r\n\r\n"),
        )
    })
    .await
    .expect("join");
    assert!(refused.contains("unauthorized"), "{refused:?}");
    assert!(allowed.starts_with('['), "{allowed:?}");

    let started = Instant::now();
    sensor.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// Bound beyond loopback with a token, a reload that drops the token is refused: a reload
/// cannot move the socket, so it would expose the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_would_expose_the_api_is_refused() {
    let sensor = Sensor::start(config(
        "[capture]\nhep = \"127.0.0.1:0\"\n[manager]\nlisten = \"0.0.0.0:0\"\ntoken = \"t\"",
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let no_token = config("[manager]\nlisten = \"127.0.0.1:0\"");
    let e = sensor
        .reload(&no_token)
        .expect_err("the bound address would have no token");
    assert!(e.to_string().contains("reload refused"), "{e}");
    sensor.shutdown().await;
}

#[tokio::test]
async fn no_source_is_refused_before_anything_starts() {
    let e = Sensor::start(config("[manager]\nlisten = \"127.0.0.1:0\""))
        .await
        .map(|_| ())
        .expect_err("nothing to capture");
    assert!(matches!(e, StartError::NoSource), "{e}");
    assert!(e.to_string().contains("give --interface IF"), "{e}");
}
