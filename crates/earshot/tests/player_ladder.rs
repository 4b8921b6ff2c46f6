//! `/api/ladder`: a call's SIP ladder from a sensor's `active_call_info`, with listening's
//! rules (a listener's role, an audit row per look) and bounds against a hostile or broken
//! sensor (at most 500 arrows of 16 KiB text, a reply of at most 4 MiB read); and
//! `/api/calls/quality`, which asks the sensor the same `active_call_info` and refuses what is
//! not a call reference by the same rule as the ladder and listening.

#[path = "common/router.rs"]
mod router;
#[path = "common/sensor.rs"]
mod sensor;

use axum::http::StatusCode;
use axum::Router;
use earshot_player::{auth, AppState, Config, Db, Role, Sensor, SensorKind};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "correct horse";

/// A stand-in sensor answering every request with `reply`, and keeping the requests' lines.
async fn stand_in(reply: Vec<u8>) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // The player half-closes after its request.
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            log.lock()
                .expect("log")
                .push(String::from_utf8_lossy(&req).trim().to_string());
            let _ = sock.write_all(&reply).await;
            let _ = sock.shutdown().await;
        }
    });
    (addr, seen)
}

async fn player(name: &str, sensor: SocketAddr) -> (Router, Arc<AppState>) {
    let dir = sensor::scratch(name);
    let url = format!("sqlite://{}?mode=rwc", dir.join("player.db").display());
    let db = Db::open(&url).await.expect("open database");
    let hash = auth::hash_password(PASSWORD).expect("hash");
    for (name, role) in [("viewer", Role::Viewer), ("listener", Role::Listener)] {
        db.add_user(name, &hash, role).await.expect("add user");
    }
    let config = Config {
        listen: "127.0.0.1:0".into(),
        database_url: url,
        default_sensor: Some(Sensor {
            id_sensor: 1,
            name: "edge".into(),
            host: sensor.ip().to_string(),
            port: sensor.port(),
            token: None,
            tls: false,
            kind: SensorKind::Earshot,
        }),
        secure_cookie: false,
        sensor_ca: None,
        tls: None,
        proxy_auth: None,
        metrics_token: None,
        limits: Default::default(),
        embed: Default::default(),
    };
    let state = AppState::new(config, db);
    (earshot_player::router(state.clone()), state)
}

async fn login(app: &Router, name: &str) -> String {
    let body = json!({"name": name, "password": PASSWORD});
    let r = router::send(app, "POST", "/api/login", &[], Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let set = r.headers["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    set.split(';').next().expect("cookie").to_string()
}

async fn get(app: &Router, uri: &str, cookie: &str) -> router::Reply {
    router::send(app, "GET", uri, &[("cookie", cookie)], None).await
}

fn message(ms: i64, src: &str, dst: &str, data: &str) -> Value {
    json!({"time": 1_700_000_000_000_000i64 + ms * 1000, "src": src, "dst": dst, "data": data, "truncated": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_gets_the_ladder_and_the_look_is_audited() {
    let (a, b) = ("10.0.0.1:5060", "10.0.0.2:5060");
    let info = json!({
        "call": {"callid": "c1@x", "caller": "alice", "called": "bob"},
        "sip_packets": [
            message(0, a, b, "INVITE sip:bob@x SIP/2.0\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"),
            message(40, b, a, "SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n"),
            message(900, b, a, "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n<script>alert(1)</script>"),
        ],
        "rtp_streams": [],
    });
    let (addr, seen) = stand_in(info.to_string().into_bytes()).await;
    let (app, state) = player("ladder-ok", addr).await;
    let listener = login(&app, "listener").await;

    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1a2b", &listener).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["columns"], json!([a, b]));
    let labels: Vec<&str> = r.json["arrows"]
        .as_array()
        .expect("arrows")
        .iter()
        .map(|x| x["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["INVITE (SDP)", "180 Ringing", "200 OK"]);
    assert_eq!(r.json["arrows"][2]["from"], 1);
    assert_eq!(r.json["arrows"][2]["offset_ms"], 900.0);
    // The text is data for the page to set as text, passed on as the sensor kept it.
    assert!(r.json["arrows"][2]["text"]
        .as_str()
        .expect("text")
        .ends_with("<script>alert(1)</script>"));
    assert_eq!(r.json["callid"], "c1@x");
    assert_eq!(r.json["left_out"], 0);
    assert_eq!(
        seen.lock().expect("log").as_slice(),
        ["active_call_info 0x1a2b"]
    );

    let audit = state.db.audit(10).await.expect("audit");
    let row = audit.iter().find(|r| r.via.as_deref() == Some("ladder"));
    let row = row.expect("an audit row for the look");
    assert_eq!(row.user_name, "listener");
    assert_eq!(row.outcome.as_deref(), Some("viewed"));
    assert_eq!(row.callid.as_deref(), Some("c1@x"));
    assert_eq!(row.caller.as_deref(), Some("alice"));

    // A viewer is refused (and that is audited too); a reference that is not one is refused
    // before any sensor hears of it.
    let viewer = login(&app, "viewer").await;
    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1a2b", &viewer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let audit = state.db.audit(10).await.expect("audit");
    assert!(audit.iter().any(|r| r.user_name == "viewer"
        && r.via.as_deref() == Some("ladder")
        && r.outcome.as_deref() == Some("refused")));
    let r = get(
        &app,
        "/api/ladder?sensor_id=1&callref=1%0Alistcalls",
        &listener,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1a2b", "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.json);
    assert_eq!(
        seen.lock().expect("log").len(),
        1,
        "only the listener's look asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_sensor_gets_a_bounded_ladder() {
    let (a, b) = ("10.0.0.1:5060", "10.0.0.2:5060");
    let huge = format!("MESSAGE sip:x SIP/2.0\r\n\r\n{}", "x".repeat(100_000));
    let mut packets: Vec<Value> = (0..2000)
        .map(|i| message(i, a, b, "OPTIONS sip:x SIP/2.0\r\n\r\n"))
        .collect();
    packets[0] = message(0, a, b, &huge);
    let info = json!({"call": {}, "sip_packets": packets});
    let (addr, _) = stand_in(info.to_string().into_bytes()).await;
    let (app, _) = player("ladder-hostile", addr).await;
    let listener = login(&app, "listener").await;
    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1", &listener).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let arrows = r.json["arrows"].as_array().expect("arrows");
    assert_eq!(arrows.len(), 500);
    assert_eq!(r.json["left_out"], 1500);
    assert_eq!(arrows[0]["text"].as_str().expect("text").len(), 16 << 10);
    assert_eq!(arrows[0]["truncated"], true);

    // More than 4 MiB is not read into memory: the sensor is in error, not the player.
    let (addr, _) = stand_in(vec![b'['; 5 << 20]).await;
    let (app, _) = player("ladder-too-big", addr).await;
    let listener = login(&app, "listener").await;
    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1", &listener).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.json);

    // A sensor that does not know the call says so; the page is told so.
    let (addr, _) = stand_in(b"call not found".to_vec()).await;
    let (app, _) = player("ladder-gone", addr).await;
    let listener = login(&app, "listener").await;
    let r = get(&app, "/api/ladder?sensor_id=1&callref=0x1", &listener).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quality_chart_asks_only_for_call_references() {
    let info = json!({"call": {"callid": "c1@x"}, "quality": [{"party": "caller", "points": []}]});
    let (addr, seen) = stand_in(info.to_string().into_bytes()).await;
    let (app, _) = player("quality-refs", addr).await;
    let viewer = login(&app, "viewer").await;
    for (uri, says) in [
        ("/api/calls/quality?sensor_id=1", "callref is missing"),
        (
            "/api/calls/quality?sensor_id=1&callref=1%0Alistcalls",
            "is not a call reference",
        ),
    ] {
        let r = get(&app, uri, &viewer).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.json);
        assert!(r.json.to_string().contains(says), "{uri}: {}", r.json);
    }
    assert!(seen.lock().expect("log").is_empty(), "the sensor was asked");
    let r = get(
        &app,
        "/api/calls/quality?sensor_id=1&callref=0x1a2b",
        &viewer,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["quality"], info["quality"]);
    assert_eq!(seen.lock().expect("log").len(), 1);
}
