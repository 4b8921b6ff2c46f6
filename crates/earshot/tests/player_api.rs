//! `earshot player`'s HTTP API, in process (the axum Router with `oneshot`, or served on a free
//! port for WebSockets), against a real `earshot sensor` replaying `call.pcap` where a sensor
//! is needed; and the `sensors` / `users` / `audit` commands of the real binary.

#[path = "common/sensor.rs"]
mod sensor;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use earshot_player::{auth, AppState, AuditRow, Config, Db, Role, Sensor, SensorKind};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse";

fn sqlite_url(name: &str) -> String {
    let dir = sensor::scratch(name);
    format!("sqlite://{}?mode=rwc", dir.join("player.db").display())
}

fn config(db_url: &str, default_sensor: Option<Sensor>) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        database_url: db_url.into(),
        default_sensor,
        secure_cookie: false,
        metrics_token: None,
    }
}

/// A player with users `viewer`, `listener` and `admin` (password [`PASSWORD`]).
async fn player(db_url: &str, default_sensor: Option<Sensor>) -> (Router, Arc<AppState>) {
    let db = Db::open(db_url).await.expect("open database");
    let hash = auth::hash_password(PASSWORD).expect("hash");
    for (name, role) in [
        ("viewer", Role::Viewer),
        ("listener", Role::Listener),
        ("admin", Role::Admin),
    ] {
        db.add_user(name, &hash, role).await.expect("add user");
    }
    let state = AppState::new(config(db_url, default_sensor), db);
    (earshot_player::router(state.clone()), state)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

#[derive(Clone, Default)]
struct Auth {
    cookie: Option<String>,
    csrf: Option<String>,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    auth: &Auth,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(c) = &auth.cookie {
        b = b.header("cookie", c);
    }
    if let Some(t) = &auth.csrf {
        b = b.header("x-csrf-token", t);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request");
    let resp = app.clone().oneshot(req).await.expect("router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
    }
}

async fn login(app: &Router, name: &str) -> Auth {
    let r = call(
        app,
        "POST",
        "/api/login",
        &Auth::default(),
        &[],
        Some(json!({"name": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    Auth {
        cookie: Some(cookie),
        csrf: r.json["csrf"].as_str().map(str::to_string),
    }
}

fn error_of(r: &Reply) -> String {
    r.json["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn login_logout_and_refusals() {
    let (app, _) = player(&sqlite_url("player-login"), None).await;

    let r = call(&app, "GET", "/api/me", &Auth::default(), &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&r).contains("log in"), "{}", r.json);
    for uri in [
        "/api/calls",
        "/api/sensors",
        "/api/audit",
        "/api/listen?callref=1",
    ] {
        let r = call(&app, "GET", uri, &Auth::default(), &[], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }

    let wrong = call(
        &app,
        "POST",
        "/api/login",
        &Auth::default(),
        &[],
        Some(json!({"name": "admin", "password": "nope"})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&wrong), "wrong user name or password");
    let nobody = call(
        &app,
        "POST",
        "/api/login",
        &Auth::default(),
        &[],
        Some(json!({"name": "nobody", "password": PASSWORD})),
    )
    .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);

    let a = login(&app, "viewer").await;
    let me = call(&app, "GET", "/api/me", &a, &[], None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["name"], "viewer");
    assert_eq!(me.json["role"], "viewer");

    // Logout is state-changing: without the CSRF header it is refused.
    let no_csrf = Auth {
        csrf: None,
        ..a.clone()
    };
    let r = call(&app, "POST", "/api/logout", &no_csrf, &[], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(error_of(&r).contains("X-CSRF-Token"), "{}", r.json);
    let r = call(&app, "POST", "/api/logout", &a, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&app, "GET", "/api/me", &a, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_csrf_origin_and_registry() {
    let (app, _) = player(&sqlite_url("player-roles"), None).await;
    let viewer = login(&app, "viewer").await;
    let listener = login(&app, "listener").await;
    let admin = login(&app, "admin").await;

    // A viewer may not listen.
    let r = call(&app, "GET", "/api/listen?callref=abc", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(error_of(&r).contains("listener"), "{}", r.json);

    // A foreign page may not open a listening session with the user's cookie.
    let r = call(
        &app,
        "GET",
        "/api/listen?callref=abc",
        &listener,
        &[
            ("host", "player.example:8080"),
            ("origin", "http://evil.example"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(error_of(&r).contains("origin"), "{}", r.json);

    // A sensor that is not in the registry is refused, clearly.
    let r = call(
        &app,
        "GET",
        "/api/listen?sensor_id=99&callref=abc",
        &listener,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        error_of(&r).contains("sensor 99 is not registered"),
        "{}",
        r.json
    );
    // Nor is a callref that is not one (it would end up on the sensor's command line).
    let r = call(
        &app,
        "GET",
        "/api/listen?callref=abc%0Alistcalls",
        &listener,
        &[],
        None,
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.json);

    let new_sensor = json!({"id_sensor": 5, "name": "pbx", "host": "127.0.0.1", "port": 1, "token": "t0p", "kind": "voipmonitor"});
    // Only admins manage sensors, and only with the CSRF header.
    let r = call(
        &app,
        "POST",
        "/api/sensors",
        &listener,
        &[],
        Some(new_sensor.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let no_csrf = Auth {
        csrf: None,
        ..admin.clone()
    };
    let r = call(
        &app,
        "POST",
        "/api/sensors",
        &no_csrf,
        &[],
        Some(new_sensor.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        "POST",
        "/api/sensors",
        &admin,
        &[],
        Some(new_sensor.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let r = call(&app, "POST", "/api/sensors", &admin, &[], Some(new_sensor)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = call(&app, "GET", "/api/sensors", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json,
        json!([{"id_sensor": 5, "name": "pbx", "kind": "voipmonitor", "online": false}])
    );
    assert!(
        !r.json.to_string().contains("t0p"),
        "tokens never leave the backend"
    );

    // A sensor that does not answer shows up in errors, not as a hang.
    let started = Instant::now();
    let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["calls"], json!([]));
    assert_eq!(r.json["errors"][0]["sensor_id"], 5);
    assert!(started.elapsed() < Duration::from_secs(10));

    let r = call(&app, "DELETE", "/api/sensors/5", &admin, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&app, "DELETE", "/api/sensors/5", &admin, &[], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The audit log is for admins.
    let r = call(&app, "GET", "/api/audit", &listener, &[], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&app, "GET", "/api/audit", &admin, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn static_files_are_served() {
    let (app, _) = player(&sqlite_url("player-static"), None).await;
    for (uri, ty) in [
        ("/", "text/html"),
        ("/api/chunkplayer/index.html", "text/html"),
        ("/app.js", "text/javascript"),
        ("/player-worklet.js", "text/javascript"),
        ("/earshot-player.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let r = call(&app, "GET", uri, &Auth::default(), &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let got = r.headers["content-type"].to_str().unwrap();
        assert!(got.starts_with(ty), "{uri}: {got}");
    }
    let r = call(&app, "GET", "/nope", &Auth::default(), &[], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!error_of(&r).is_empty());
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(addr: SocketAddr, query: &str, auth: &Auth) -> Ws {
    let mut req = format!("ws://{addr}/api/listen?{query}")
        .into_client_request()
        .expect("ws request");
    let cookie = auth.cookie.clone().expect("logged in");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    req.headers_mut()
        .insert("origin", format!("http://{addr}").parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket upgrade");
    ws
}

async fn next_msg(ws: &mut Ws) -> Option<Message> {
    match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        Ok(_) => None,
        Err(_) => panic!("no WebSocket message within 20 s"),
    }
}

/// The calls, the relayed stream, the audit trail, a wrong token, over a real sensor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_relays_a_live_call() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    let s = sensor::Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        "--loop",
        "--sensor-id",
        "1",
        "--token",
        "s3cret",
    ]);
    let default = Sensor {
        id_sensor: 1,
        name: "default".into(),
        host: s.addr.ip().to_string(),
        port: s.addr.port(),
        token: Some("s3cret".into()),
        tls: false,
        kind: SensorKind::Earshot,
    };
    let (app, state) = player(&sqlite_url("player-e2e"), Some(default.clone())).await;
    // The same sensor under another id, with a wrong token.
    state
        .db
        .add_sensor(&Sensor {
            id_sensor: 7,
            name: "wrong-token".into(),
            token: Some("wrong".into()),
            ..default.clone()
        })
        .await
        .unwrap();
    let listener = login(&app, "listener").await;

    // The call appears in /api/calls; the wrong-token sensor in errors.
    let deadline = Instant::now() + Duration::from_secs(20);
    let call_row = loop {
        let r = call(&app, "GET", "/api/calls", &listener, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let errors = r.json["errors"].as_array().unwrap().clone();
        assert!(
            errors.iter().any(|e| e["sensor_id"] == 7
                && e["error"]
                    .as_str()
                    .unwrap()
                    .contains("the sensor refused the player's token")),
            "{}",
            r.json
        );
        let calls = r.json["calls"].as_array().unwrap().clone();
        if let Some(c) = calls
            .into_iter()
            .find(|c| c["codecs"].as_array().is_some_and(|v| !v.is_empty()))
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no call listed: {}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(call_row["sensor_id"], 1);
    assert_eq!(call_row["caller"], "sipp");
    assert_eq!(call_row["called"], "service");
    let callref = call_row["callreference"].as_str().unwrap().to_string();

    let addr = serve(app.clone()).await;

    // A wrong token: a clear error as a text message, then close.
    let mut ws = ws_connect(addr, &format!("sensor_id=7&callref={callref}"), &listener).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected an error message");
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("the sensor refused the player's token"),
        "{v}"
    );

    // An unknown call: also an error message.
    let mut ws = ws_connect(addr, "callref=0x1234", &listener).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected an error message");
    };
    assert!(t.contains("call not found"), "{t}");

    // Listen/readaudio first: a `stream` subscriber currently makes a `--pcap` replay run
    // ahead to the end of the call (sensor behaviour, reported), which would end the call.
    // The same sensor as a VoIPmonitor one: polled with listen/readaudio, its audio wrapped
    // in the same frames (8 kHz mono), so the page cannot tell the difference.
    state
        .db
        .add_sensor(&Sensor {
            id_sensor: 8,
            name: "as-voipmonitor".into(),
            kind: SensorKind::Voipmonitor,
            ..default.clone()
        })
        .await
        .unwrap();
    let mut ws = ws_connect(addr, &format!("sensor_id=8&callref={callref}"), &listener).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected the header first");
    };
    let h: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (
            h["type"].as_str(),
            h["rate"].as_u64(),
            h["channels"].as_u64()
        ),
        (Some("header"), Some(8000), Some(1)),
        "{h}"
    );
    assert_eq!(h["caller"], "sipp", "{h}");
    for want in 0..3u32 {
        let Some(Message::Binary(b)) = next_msg(&mut ws).await else {
            panic!("expected binary frames");
        };
        assert_eq!(b[0], earshot_manager::stream_proto::KIND_AUDIO);
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(b.len(), 5 + len);
        assert_eq!(u32::from_be_bytes([b[5], b[6], b[7], b[8]]), want, "seq");
        assert_eq!(
            u32::from_be_bytes([b[17], b[18], b[19], b[20]]),
            8000,
            "rate"
        );
        assert_eq!(b[21], 1, "channels");
        assert!(len > 17 && (len - 17) % 2 == 0);
    }
    ws.close(None).await.unwrap();
    // Its audit row is closed once the player has sent `listen_stop`; wait for that, so the
    // next listener does not race with it on the sensor.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state
        .db
        .audit(10)
        .await
        .unwrap()
        .iter()
        .any(|r| r.id_sensor == Some(8) && r.stopped.is_some())
    {
        assert!(Instant::now() < deadline, "the polling session did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The WAV chunk endpoint (listen/readaudio): a WAV header and 8 kHz mono.
    let q = format!("/api/chunk?callref={callref}&listen_id=test1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let req = Request::builder()
            .uri(&q)
            .header("cookie", listener.cookie.clone().unwrap())
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "audio/wav");
        let wav = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        let r = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
        assert_eq!((r.spec().sample_rate, r.spec().channels), (8000, 1));
        if r.len() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no audio from /api/chunk");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The real thing: header first, then frames exactly as the stream protocol frames them.
    let mut ws = ws_connect(
        addr,
        &format!("callref={callref}&rate=16000&channels=2&from=start"),
        &listener,
    )
    .await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected the header first");
    };
    let h: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(h["type"], "header");
    assert_eq!(h["rate"], 16000);
    assert_eq!(h["channels"], 2);
    assert_eq!(h["caller"], "sipp");
    let mut audio = 0;
    let mut seq = Vec::new();
    while audio < 10 {
        let Some(Message::Binary(b)) = next_msg(&mut ws).await else {
            panic!("expected binary frames");
        };
        assert!(b.len() >= 5);
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(b.len(), 5 + len, "one WebSocket message per stream frame");
        let mut decoder = earshot_manager::stream_proto::StreamDecoder::new();
        decoder.push(b"{\"version\":1,\"callreference\":\"1\",\"callid\":\"\",\"caller\":\"\",\"called\":\"\",\"format\":\"s16le\",\"rate\":16000,\"channels\":2,\"from\":\"start\"}\n");
        decoder.push(&b);
        decoder.next_item().unwrap();
        if b[0] == earshot_manager::stream_proto::KIND_AUDIO {
            let Some(earshot_manager::stream_proto::StreamItem::Frame(
                earshot_manager::stream_proto::Frame::Audio(a),
            )) = decoder.next_item().unwrap()
            else {
                panic!("audio frame decodes");
            };
            assert_eq!((a.rate, a.channels), (16000, 2));
            seq.push(a.seq);
            audio += 1;
        }
    }
    assert_eq!(seq, (0..10).collect::<Vec<u32>>());
    ws.close(None).await.unwrap();

    // The audit row: who, which call, started, and stopped once the socket closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows = state.db.audit(10).await.unwrap();
        if let Some(r) = rows
            .iter()
            .find(|r| r.stopped.is_some() && r.id_sensor == Some(1))
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no finished audit row: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.user_name, "listener");
    assert_eq!(row.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.id_sensor, Some(1));
    assert_eq!(row.caller.as_deref(), Some("sipp"));
    assert_eq!(row.called.as_deref(), Some("service"));
    assert_eq!(row.callreference, callref);
    assert!(row.stopped.unwrap() >= row.started);
}

/// Registry and audit on one database; run on SQLite always, and on PostgreSQL when
/// `EARSHOT_TEST_POSTGRES_URL` names one.
async fn registry_and_audit(url: &str) {
    let db = Db::open(url).await.expect("open database");
    let id = (earshot_player::db::random_id() % 1_000_000) + 1000;
    let s = Sensor {
        id_sensor: id,
        name: "pbx".into(),
        host: "127.0.0.1".into(),
        port: 5029,
        token: None,
        tls: false,
        kind: SensorKind::Voipmonitor,
    };
    db.add_sensor(&s).await.unwrap();
    assert_eq!(db.sensor(id).await.unwrap(), Some(s.clone()));
    assert!(db.add_sensor(&s).await.is_err(), "duplicate id refused");
    assert!(db.remove_sensor(id).await.unwrap());
    assert_eq!(db.sensor(id).await.unwrap(), None);

    let user = format!("u{id}");
    db.add_user(&user, "hash", Role::Listener).await.unwrap();
    assert_eq!(db.user(&user).await.unwrap().unwrap().role, Role::Listener);
    assert!(db.remove_user(&user).await.unwrap());

    let row = AuditRow {
        user_name: user.clone(),
        source_ip: Some("192.0.2.1".into()),
        id_sensor: Some(id),
        callreference: "abc".into(),
        callid: Some("x@y".into()),
        caller: Some("a".into()),
        called: None,
        started: 4_000_000_000,
        ..AuditRow::default()
    };
    let aid = db.audit_start(&row).await.unwrap();
    db.audit_stop(aid, 4_000_000_005).await.unwrap();
    let got = db.audit(5).await.unwrap();
    let got = got.iter().find(|r| r.id == aid).expect("audit row");
    assert_eq!(
        got,
        &AuditRow {
            id: aid,
            stopped: Some(4_000_000_005),
            ..row
        }
    );
}

#[tokio::test]
async fn registry_and_audit_on_sqlite() {
    registry_and_audit(&sqlite_url("player-registry")).await;
}

#[tokio::test]
async fn registry_and_audit_on_postgres() {
    let Ok(url) = std::env::var("EARSHOT_TEST_POSTGRES_URL") else {
        eprintln!("skipping: EARSHOT_TEST_POSTGRES_URL is not set");
        return;
    };
    registry_and_audit(&url).await;
}

fn run(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = sensor::earshot()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run earshot");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sensors_users_audit_commands() {
    let url = sqlite_url("player-cli");
    let db = ["--database", url.as_str()];
    let with = |a: &[&'static str]| -> Vec<String> {
        a.iter()
            .map(|s| s.to_string())
            .chain(db.iter().map(|s| s.to_string()))
            .collect()
    };
    let go = |a: &[&'static str], stdin: Option<&str>| {
        let v = with(a);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        run(&refs, stdin)
    };

    let (ok, out, err) = go(
        &[
            "sensors",
            "add",
            "--id",
            "3",
            "--name",
            "pbx3",
            "--host",
            "10.1.2.3",
            "--port",
            "5029",
            "--token",
            "sekrit",
            "--kind",
            "voipmonitor",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("sensor 3 added"));
    let (ok, out, _) = go(&["sensors", "list"], None);
    assert!(ok);
    assert!(
        out.contains("pbx3") && out.contains("10.1.2.3:5029") && out.contains("voipmonitor"),
        "{out}"
    );
    assert!(!out.contains("sekrit"), "tokens are not printed");
    let (ok, _, err) = go(
        &["sensors", "add", "--id", "3", "--name", "x", "--host", "h"],
        None,
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, _) = go(&["sensors", "remove", "--id", "3"], None);
    assert!(ok);
    let (ok, _, err) = go(&["sensors", "remove", "--id", "3"], None);
    assert!(!ok && err.contains("not registered"), "{err}");

    let (ok, out, err) = go(
        &[
            "users",
            "add",
            "carol",
            "--role",
            "listener",
            "--password-stdin",
        ],
        Some("pw1\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("carol"));
    let (ok, out, _) = go(&["users", "list"], None);
    assert!(
        ok && out.contains("carol") && out.contains("listener"),
        "{out}"
    );
    let (ok, _, err) = go(
        &["users", "passwd", "carol", "--password-stdin"],
        Some("pw2\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = go(&["users", "add", "dave", "--role", "admin"], None);
    assert!(
        !ok && err.contains("--password-stdin"),
        "no terminal: {err}"
    );

    // The new password works, through the library on the same database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = Db::open(&url).await.unwrap();
        let u = d.user("carol").await.unwrap().unwrap();
        assert!(auth::verify_password("pw2", &u.password_hash));
        assert!(!auth::verify_password("pw1", &u.password_hash));
        d.audit_start(&AuditRow {
            user_name: "carol".into(),
            callreference: "4a3f7b2c1d".into(),
            started: 1_790_000_000,
            ..AuditRow::default()
        })
        .await
        .unwrap();
    });
    let (ok, out, _) = go(&["audit", "--limit", "5"], None);
    assert!(
        ok && out.contains("carol") && out.contains("4a3f7b2c1d"),
        "{out}"
    );
    let (ok, _, _) = go(&["users", "remove", "carol"], None);
    assert!(ok);
    let (ok, out, _) = go(&["users", "list"], None);
    assert!(ok && !out.contains("carol"));
}
