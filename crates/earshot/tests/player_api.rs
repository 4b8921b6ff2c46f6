//! `earshot player`'s HTTP API, in process (the axum Router with `oneshot`, or served on a free
//! port for WebSockets), against a real `earshot sensor` replaying `call.pcap` where a sensor
//! is needed; and the `sensors` / `users` / `audit` commands of the real binary.

#[path = "common/router.rs"]
mod router;
#[path = "common/sensor.rs"]
mod sensor;

use router::Reply;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use earshot_player::{auth, AppState, AuditRow, Config, Db, Role, Sensor, SensorKind};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
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
        sensor_ca: None,
        tls: None,
        proxy_auth: None,
        metrics_token: None,
        limits: Default::default(),
        embed: Default::default(),
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
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(c) = &auth.cookie {
        headers.push(("cookie", c));
    }
    if let Some(t) = &auth.csrf {
        headers.push(("x-csrf-token", t));
    }
    headers.extend_from_slice(extra);
    router::send(app, method, uri, &headers, body).await
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
        "/api/calls/stream",
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
        ("/embed-example.html", "text/html"),
        ("/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
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
            app.into_make_service_with_connect_info::<earshot_player::https::PeerAddr>(),
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
    lists_and_relays_a_live_call_on(&sqlite_url("player-e2e")).await;
}

/// The same over PostgreSQL: the registry, the sessions and the audit trail in a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_relays_a_live_call_on_postgres() {
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    lists_and_relays_a_live_call_on(&db.url).await;
    db.drop().await;
}

async fn lists_and_relays_a_live_call_on(db_url: &str) {
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
    let (app, state) = player(db_url, Some(default.clone())).await;
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

    // A viewer's WebSocket is accepted only to be told why it may not listen, and not to retry.
    let viewer = login(&app, "viewer").await;
    let mut ws = ws_connect(addr, &format!("callref={callref}"), &viewer).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected the refusal as a message");
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("does not allow"),
        "{v}"
    );
    assert_eq!(v["retry"], false, "{v}");

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
    let deadline = Instant::now() + Duration::from_secs(20);
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
            // The refused attempt on an unknown call earlier in this test has a row too.
            .find(|r| {
                r.stopped.is_some()
                    && r.id_sensor == Some(1)
                    && r.outcome.as_deref() == Some("listened")
            })
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

/// `--manager` naming a sensor that is also in the registry must not list its calls twice; the
/// same address with other credentials is another entry and stays.
#[tokio::test]
async fn the_default_sensor_is_not_listed_twice() {
    let default = Sensor {
        id_sensor: 0,
        name: "default".into(),
        host: "127.0.0.1".into(),
        port: 5029,
        token: Some("t".into()),
        tls: false,
        kind: SensorKind::Earshot,
    };
    let (_, state) = player(&sqlite_url("player-dedupe"), Some(default.clone())).await;
    let same = Sensor {
        id_sensor: 3,
        name: "pbx".into(),
        ..default.clone()
    };
    state.db.add_sensor(&same).await.unwrap();
    let listed = || async {
        let all = state.all_sensors().await.unwrap();
        all.iter().map(|s| s.id_sensor).collect::<Vec<i64>>()
    };
    assert_eq!(listed().await, vec![3]);
    state.db.remove_sensor(3).await.unwrap();
    let other_token = Sensor {
        token: Some("other".into()),
        ..same
    };
    state.db.add_sensor(&other_token).await.unwrap();
    assert_eq!(listed().await, vec![0, 3]);
}

#[tokio::test]
async fn registry_and_audit_on_sqlite() {
    registry_and_audit(&sqlite_url("player-registry")).await;
}

#[tokio::test]
async fn registry_and_audit_on_postgres() {
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    registry_and_audit(&db.url).await;
    // A second player instance sharing the database sees what the first wrote.
    let other = Db::open(&db.url).await.expect("second connection");
    assert!(!other.audit(10).await.unwrap().is_empty());
    db.drop().await;
}

/// A database of its own on the PostgreSQL server named by `EARSHOT_TEST_POSTGRES_URL` (a role
/// that may create databases; `.ci/run` starts one), so tests and reruns never share state.
/// Without the variable the test is skipped, except under `CI=true`, where it fails.
struct FreshPostgres {
    admin: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    async fn create() -> Option<FreshPostgres> {
        let Ok(admin) = std::env::var("EARSHOT_TEST_POSTGRES_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("EARSHOT_TEST_POSTGRES_URL is not set: CI must test PostgreSQL (.ci/run sets it)");
            }
            eprintln!("skipping: EARSHOT_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!(
            "earshot_test_{}",
            earshot_player::db::random_id() % 1_000_000_000
        );
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin)
            .await
            .expect("connect to EARSHOT_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;
        let (base, _) = admin
            .rsplit_once('/')
            .expect("EARSHOT_TEST_POSTGRES_URL ends in /DATABASE");
        let url = format!("{base}/{name}");
        Some(FreshPostgres { admin, name, url })
    }

    async fn drop(self) {
        if let Ok(pool) = sqlx::AnyPool::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&pool)
            .await;
        }
    }
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

/// A sensor registered with `tls`: refused with a clear error while the player trusts no CA,
/// listed and streamed once it trusts the sensor's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_over_tls() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let scratch = sensor::scratch("player-tls-sensor");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let (cert_pem, key_pem) = (scratch.join("cert.pem"), scratch.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let pcap = dir.join("call.pcap");
    let s = sensor::Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        "--loop",
        "--tls-cert",
        cert_pem.to_str().unwrap(),
        "--tls-key",
        key_pem.to_str().unwrap(),
    ]);
    let (app, state) = player(&sqlite_url("player-tls-sensor-db"), None).await;
    state
        .db
        .add_sensor(&Sensor {
            id_sensor: 4,
            name: "secure".into(),
            host: "localhost".into(),
            port: s.addr.port(),
            token: None,
            tls: true,
            kind: SensorKind::Earshot,
        })
        .await
        .unwrap();
    let viewer = login(&app, "listener").await;

    earshot_player::manager::trust_sensors(None);
    let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
    let errors = r.json["errors"].to_string();
    assert!(
        errors.contains("trusts no certificate for sensors"),
        "{}",
        r.json
    );

    let trust = earshot_tls::client_config(&cert_pem).expect("client config");
    earshot_player::manager::trust_sensors(Some(trust));
    let deadline = Instant::now() + Duration::from_secs(20);
    let callref = loop {
        let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
        let first = r.json["calls"].as_array().and_then(|c| c.first().cloned());
        if let Some(c) = first {
            assert_eq!(r.json["errors"], json!([]), "{}", r.json);
            break c["callreference"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no call over TLS: {}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let addr = serve(app.clone()).await;
    let mut ws = ws_connect(addr, &format!("sensor_id=4&callref={callref}"), &viewer).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected the header");
    };
    assert!(t.contains("\"header\""), "{t}");
    let audio = loop {
        match next_msg(&mut ws).await {
            Some(Message::Binary(b)) if b.first() == Some(&1) => break b,
            Some(_) => continue,
            None => panic!("the TLS stream ended without audio"),
        }
    };
    assert!(audio.len() > 22, "an audio frame over TLS");
    earshot_player::manager::trust_sensors(None);
}

/// One HTTP/1.1 request to a served player; returns (status line + headers, body).
async fn raw_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP reply");
    (head.to_string(), body.to_string())
}

/// Single sign-on through a reverse proxy: its header names the user, but only from a trusted
/// address, only for users the player knows, and the audit records the forwarded client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_user() {
    let url = sqlite_url("player-proxy");
    let (_, state) = player(&url, None).await;
    let mut cfg = config(&url, None);
    cfg.proxy_auth = Some(earshot_player::config::ProxyAuth {
        header: "X-Remote-User".into(),
        trusted: vec!["127.0.0.1/32".parse().unwrap()],
    });
    let app = earshot_player::router(AppState::new(cfg, state.db.clone()));
    let addr = serve(app).await;

    let (head, body) = raw_get(addr, "/api/me", &[("X-Remote-User", "listener")]).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: earshot_session="),
        "{head}"
    );
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["name"], "listener");
    assert_eq!(me["role"], "listener");

    let (head, body) = raw_get(addr, "/api/me", &[("X-Remote-User", "mallory")]).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(body.contains("no such user"), "{body}");
    let (head, _) = raw_get(addr, "/api/me", &[]).await;
    assert!(
        head.starts_with("HTTP/1.1 401"),
        "without the header: {head}"
    );

    // The same header from an address that is not a trusted proxy counts for nothing.
    let mut cfg = config(&url, None);
    cfg.proxy_auth = Some(earshot_player::config::ProxyAuth {
        header: "X-Remote-User".into(),
        trusted: vec!["192.0.2.0/24".parse().unwrap()],
    });
    let addr = serve(earshot_player::router(AppState::new(cfg, state.db.clone()))).await;
    let (head, _) = raw_get(addr, "/api/me", &[("X-Remote-User", "admin")]).await;
    assert!(head.starts_with("HTTP/1.1 401"), "untrusted proxy: {head}");
}

/// `earshot player --tls-cert/--tls-key` serves HTTPS, with Secure session cookies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_serves_https() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = sensor::scratch("player-https");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("p.db").display());
    let (ok, _, err) = run(
        &[
            "users",
            "add",
            "alice",
            "--role",
            "viewer",
            "--password-stdin",
            "--database",
            &db,
        ],
        Some("pa55word-alice\n"),
    );
    assert!(ok, "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = sensor::earshot()
        .args([
            "player",
            "--listen",
            &listen,
            "--database",
            &db,
            "--tls-cert",
        ])
        .arg(&cert_pem)
        .arg("--tls-key")
        .arg(&key_pem)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start player");
    let config = earshot_tls::client_config(&cert_pem).expect("client config");
    let connector = tokio_rustls::TlsConnector::from(config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let login = r#"{"name":"alice","password":"pa55word-alice"}"#;
    let reply = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(&listen).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            let req = format!(
                "POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
                login.len()
            );
            tls.write_all(req.as_bytes()).await?;
            let mut raw = Vec::new();
            let _ = tls.read_to_end(&mut raw).await;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
        };
        match attempt.await {
            Ok(r) if !r.is_empty() => break r,
            _ if Instant::now() > deadline => panic!("no HTTPS answer from the player"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let cookie = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        cookie.contains("; Secure"),
        "HTTPS cookies are Secure: {cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

/// A stand-in VoIPmonitor sensor: answers each command with the bytes the real one sent
/// (`../shared/voipmonitor/*.bin`), one command per connection, and records the commands.
async fn voipmonitor_stand_in(
    dir: std::path::PathBuf,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut reads = 0;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let file = match line.split(' ').next().unwrap_or("") {
                "listcalls" if line.contains('{') => "listcalls_limit10.bin".to_string(),
                "listcalls" => "listcalls.bin".to_string(),
                "listen" => "listen.bin".to_string(),
                "listen_stop" => "listen_stop.bin".to_string(),
                "getversion" => "getversion.bin".to_string(),
                "readaudio" => {
                    reads += 1;
                    let f = format!("readaudio_{:02}.bin", reads - 1);
                    if dir.join(&f).exists() {
                        f
                    } else {
                        "readaudio_after_stop.bin".to_string()
                    }
                }
                _ => "bogus_command.bin".to_string(),
            };
            log.lock().unwrap().push(line);
            let reply = std::fs::read(dir.join(&file)).expect("recorded reply");
            let _ = sock.write_all(&reply).await;
            let _ = sock.shutdown().await;
        }
    });
    (addr, seen)
}

/// The player against a stand-in answering exactly like the recorded VoIPmonitor sensor: the
/// call list comes from its `listcalls`, and listening polls `listen`/`readaudio`/`listen_stop`
/// and relays exactly the PCM the sensor returned, ending when the sensor says the worker is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_voipmonitor_sensor() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let (vm, seen) = voipmonitor_stand_in(dir.clone()).await;
    let (app, state) = player(&sqlite_url("player-vm-stand-in"), None).await;
    register(&state, 9, "legacy", vm, SensorKind::Voipmonitor).await;
    let listener = login(&app, "listener").await;

    // What the recording lists, read from the recording itself.
    let recorded: Value =
        serde_json::from_slice(&std::fs::read(dir.join("listcalls_limit10.bin")).unwrap()).unwrap();
    let names = recorded[0].as_array().unwrap();
    let col = |n: &str| names.iter().position(|v| v == n).unwrap();
    let row = &recorded[2];
    let r = call(&app, "GET", "/api/calls", &listener, &[], None).await;
    assert_eq!(r.json["errors"], json!([]), "{}", r.json);
    let calls = r.json["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{}", r.json);
    let c = &calls[0];
    assert_eq!(c["sensor_id"], 9);
    assert_eq!(c["callreference"], row[col("callreference")]);
    assert_eq!(c["callid"], row[col("callid")]);
    assert_eq!(c["caller"], row[col("caller")]);
    assert_eq!(c["called"], row[col("called")]);
    let callref = c["callreference"].as_str().unwrap().to_string();

    let addr = serve(app.clone()).await;
    let mut ws = ws_connect(addr, &format!("sensor_id=9&callref={callref}"), &listener).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected the header first");
    };
    let h: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (h["rate"].as_u64(), h["channels"].as_u64()),
        (Some(8000), Some(1)),
        "{h}"
    );
    assert_eq!(h["caller"], row[col("caller")]);
    let mut pcm = Vec::new();
    let end = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let Ok(Some(Ok(Message::Binary(b)))) = msg else {
            panic!("the relay stopped before its end frame: {msg:?}");
        };
        match b[0] {
            earshot_manager::stream_proto::KIND_AUDIO => pcm.extend_from_slice(&b[22..]),
            earshot_manager::stream_proto::KIND_END => {
                break String::from_utf8_lossy(&b[5..]).into_owned()
            }
            _ => {}
        }
    };
    assert!(end.contains("call_ended"), "{end}");
    let mut want = Vec::new();
    for i in 1.. {
        let Ok(b) = std::fs::read(dir.join(format!("readaudio_{i:02}.bin"))) else {
            break;
        };
        want.extend_from_slice(&b);
    }
    assert_eq!(
        pcm.len(),
        want.len(),
        "every recorded byte relayed, nothing more"
    );
    assert!(pcm == want, "the PCM is relayed unchanged");

    // The polling dialogue the sensor saw: listen, readaudio with the same id, listen_stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("listen_stop "))
    {
        assert!(
            Instant::now() < deadline,
            "no listen_stop: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let listen = seen
        .iter()
        .find(|l| l.starts_with("listen "))
        .expect("listen sent");
    let id = listen.split(' ').nth(2).expect("listen id");
    assert!(
        seen.iter()
            .filter(|l| l.starts_with("readaudio "))
            .all(|l| l == &format!("readaudio {callref} {id}")),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().find(|l| l.starts_with("listen_stop ")),
        Some(&format!("listen_stop {callref} {id}"))
    );
}

/// A second user polling /api/chunk with the default listen id used to get audio and no audit
/// row, and chunk rows never got a stop time. Now each user has a session (and a row) of their
/// own, closed once nobody polls it for `[listening] chunk_idle_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_sessions_are_audited_per_user_and_closed_when_idle() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let (vm, seen) = voipmonitor_stand_in(dir).await;
    let db_url = sqlite_url("player-chunk-audit");
    let db = Db::open(&db_url).await.unwrap();
    let hash = auth::hash_password(PASSWORD).unwrap();
    db.add_user("listener", &hash, Role::Listener)
        .await
        .unwrap();
    db.add_user("admin", &hash, Role::Admin).await.unwrap();
    let mut cfg = config(&db_url, None);
    cfg.limits.chunk_idle = Duration::from_secs(1);
    let state = AppState::new(cfg, db);
    let app = earshot_player::router(state.clone());
    register(&state, 9, "legacy", vm, SensorKind::Voipmonitor).await;
    let q = "/api/chunk?sensor_id=9&callref=0x1a2b";
    for user in ["listener", "admin"] {
        let who = login(&app, user).await;
        for _ in 0..2 {
            let r = call(&app, "GET", q, &who, &[], None).await;
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                "{}",
                r.status
            );
        }
    }
    let rows = state.db.audit(50).await.unwrap();
    for user in ["listener", "admin"] {
        let mine: Vec<_> = rows.iter().filter(|r| r.user_name == user).collect();
        assert_eq!(mine.len(), 1, "{user}: {rows:?}");
        assert_eq!(mine[0].via.as_deref(), Some("chunk"));
        assert_eq!(mine[0].outcome.as_deref(), Some("listened"));
    }
    // Each user under an id of their own on the sensor.
    let ids: std::collections::HashSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("listen "))
        .filter_map(|l| l.split(' ').nth(2).map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    state.sweep_chunks().await;
    let rows = state.db.audit(50).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.stopped.is_some_and(|s| s >= r.started)),
        "{rows:?}"
    );
}

/// SIGHUP's effect inside the player: a replaced configuration changes the default sensor and
/// its token for the next requests, while the listen address and database stay as started.
#[tokio::test]
async fn replaced_config_changes_the_default_sensor() {
    let sensor_at = |port: u16, token: &str| Sensor {
        id_sensor: 0,
        name: "default".into(),
        host: "127.0.0.1".into(),
        port,
        token: Some(token.into()),
        tls: false,
        kind: SensorKind::Earshot,
    };
    let url = sqlite_url("player-reload");
    let (_app, state) = player(&url, Some(sensor_at(5029, "old"))).await;
    let mut next = config(
        "sqlite://elsewhere.db?mode=rwc",
        Some(sensor_at(6029, "new")),
    );
    next.listen = "127.0.0.1:9999".into();
    state.replace_config(next);
    let s = state.sensor(None).await.expect("a default sensor");
    assert_eq!((s.port, s.token.as_deref()), (6029, Some("new")));
    let c = state.config();
    assert_eq!(
        (c.listen.as_str(), c.database_url.as_str()),
        ("127.0.0.1:0", url.as_str())
    );
    state.replace_config(config(&url, None));
    assert!(
        state.sensor(None).await.is_err(),
        "the default sensor was removed"
    );
}

/// The call list shows an earshot sensor's call state (not one guessed from the last response
/// code: an ended call is "ended" while it lingers), its hold, and the codecs in use now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_list_shows_state_hold_and_current_codecs() {
    let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/dialog/hold_reinvite.pcap");
    let s = sensor::Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let default = sensor_at(1, "default", s.addr, SensorKind::Earshot);
    let (app, _state) = player(&sqlite_url("dialog-state"), Some(default)).await;
    let viewer = login(&app, "viewer").await;
    let mut seen: Vec<(Value, Value, Value)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if let Some(c) = r.json["calls"].as_array().and_then(|c| c.first()) {
            let obs = (
                c["state"].clone(),
                c["on_hold"].clone(),
                c["codecs"].clone(),
            );
            if seen.last() != Some(&obs) {
                seen.push(obs);
            }
            if c["state"] == "ended" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the call never ended: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = (json!("answered"), json!(true), json!(["PCMU", "PCMU"]));
    assert!(seen.contains(&held), "{seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(
        last,
        &(json!("ended"), json!(false), json!(["G722", "G722"]))
    );
}

/// /api/calls passes an earshot sensor's unknown quality through as null, with the reason and
/// each party's codec, for an EVS call (tests/captures/listening/evs_call.pcap): before, it
/// showed MOS 4.4 for a codec the sensor cannot decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_list_shows_unknown_quality_as_null_with_its_reason() {
    let pcap = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/listening/evs_call.pcap");
    let s = sensor::Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let default = sensor_at(1, "default", s.addr, SensorKind::Earshot);
    let (app, _state) = player(&sqlite_url("quality-unknown"), Some(default)).await;
    let viewer = login(&app, "viewer").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let first = r.json["calls"].as_array().and_then(|c| c.first()).cloned();
        if let Some(c) = first.filter(|c| c["codec_caller"] == "EVS" && c["codec_called"] == "EVS")
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no EVS call listed: {}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for side in ["caller", "called"] {
        assert_eq!(c[format!("mos_{side}")], Value::Null, "{c}");
        assert_eq!(c[format!("quality_unknown_{side}")], "undecodable", "{c}");
        assert!(
            c[format!("jitter_{side}")].is_number(),
            "jitter is measured: {c}"
        );
    }
}

/// Pages asking for the call list at once, `pages` of them, each `rounds` times.
async fn pages_asking(app: &Router, auth: &Auth, pages: usize, rounds: usize) -> Vec<Reply> {
    let asks = (0..pages).map(|_| async {
        let mut replies = Vec::new();
        for _ in 0..rounds {
            replies.push(call(app, "GET", "/api/calls", auth, &[], None).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replies
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Twenty pages polling ten times a second cost a VoIPmonitor sensor one `listcalls` a
/// second, not one per page request (issue 14: the sensor formatted its table per request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pages_poll_a_voipmonitor_sensor_once_a_second() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let (vm, seen) = voipmonitor_stand_in(dir).await;
    let (app, state) = player(&sqlite_url("player-vm-single-flight"), None).await;
    register(&state, 9, "legacy", vm, SensorKind::Voipmonitor).await;
    let viewer = login(&app, "viewer").await;
    let started = Instant::now();
    let replies = pages_asking(&app, &viewer, 20, 20).await;
    let seconds = started.elapsed().as_secs_f64();
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json["calls"].as_array().map(Vec::len),
            Some(1),
            "{}",
            r.json
        );
        assert_eq!(r.json["total"], 1);
    }
    let polls = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("listcalls"))
        .count();
    assert!(
        polls as f64 <= seconds + 2.0,
        "{polls} listcalls in {seconds:.1} s for {} page requests",
        replies.len()
    );
}

/// A stand-in earshot sensor for the `calls` subscription: each `calls` connection gets the
/// lines sent on `lines` (a new receiver per connection); other commands are recorded only.
async fn calls_stand_in() -> (
    SocketAddr,
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::sync::broadcast::Sender<String>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, _) = tokio::sync::broadcast::channel::<String>(64);
    let (log, lines) = (seen.clone(), tx.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut rx = lines.subscribe();
            let log = log.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let command = String::from_utf8_lossy(&req).trim().to_string();
                log.lock().unwrap().push(command.clone());
                if command != "calls" {
                    return;
                }
                // "close" ends the connection, as a restarting sensor would.
                while let Ok(line) = rx.recv().await {
                    if line == "close" || sock.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen, tx)
}

fn feed_call(event: &str, r: &str, state: &str) -> String {
    let call = json!({"callreference": r, "callid": format!("{r}@example.com"), "caller": "1001",
        "called": "2002", "callstate": state, "caller_quality_unknown": null,
        "callercodec_name": "PCMA"});
    format!("{}\n", json!({"event": event, "call": call}))
}

/// An earshot sensor is followed through one `calls` subscription shared by every page: the
/// pages see its events, never cause a `listcalls`, see the sensor as down when it goes, and
/// get its calls back when the player has reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_share_one_calls_subscription_per_sensor() {
    let (addr, seen, lines) = calls_stand_in().await;
    let (app, state) = player(&sqlite_url("player-calls-feed"), None).await;
    register(&state, 4, "edge", addr, SensorKind::Earshot).await;
    let viewer = login(&app, "viewer").await;
    // The snapshot goes out as soon as the player subscribes.
    let feed = tokio::spawn({
        let lines = lines.clone();
        async move {
            while lines.receiver_count() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = lines.send(feed_call("snapshot", "0x10", "answered"));
            let _ = lines.send(feed_call("snapshot", "0x11", "ringing"));
            let _ = lines.send("{\"event\":\"synced\"}\n".into());
        }
    });
    let replies = pages_asking(&app, &viewer, 10, 5).await;
    feed.await.unwrap();
    for r in &replies {
        assert_eq!(r.json["errors"], json!([]), "{}", r.json);
        assert_eq!(r.json["total"], 2, "{}", r.json);
    }
    let commands = seen.lock().unwrap().clone();
    assert_eq!(commands, ["calls"], "one subscription, no listcalls");

    // A filtered page of the directory.
    let r = call(&app, "GET", "/api/calls?q=0X11&limit=5", &viewer, &[], None).await;
    assert_eq!(r.json["total"], 1, "{}", r.json);
    assert_eq!(r.json["calls"][0]["state"], "ringing");

    // Events reach the pages.
    let _ = lines.send(
        "{\"event\":\"changed\",\"callref\":\"0x11\",\"fields\":{\"callstate\":\"answered\"}}\n"
            .into(),
    );
    let _ = lines.send("{\"event\":\"ended\",\"callref\":\"0x10\"}\n".into());
    let until = |want: fn(&Value) -> bool| {
        let (app, viewer) = (app.clone(), viewer.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let r = call(&app, "GET", "/api/calls", &viewer, &[], None).await;
                if want(&r.json) {
                    return r.json;
                }
                assert!(Instant::now() < deadline, "never: {}", r.json);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let j = until(|j| j["total"] == 1 && j["calls"][0]["state"] == "answered").await;
    assert_eq!(j["calls"][0]["callreference"], "0x11");

    // The sensor goes away: shown as such, and the player comes back by itself.
    let _ = lines.send("close".into());
    until(|j| j["errors"][0]["sensor_id"] == 4 && j["total"] == 0).await;
    while seen.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = lines.send(feed_call("snapshot", "0x12", "answered"));
    let _ = lines.send("{\"event\":\"synced\"}\n".into());
    let j = until(|j| j["errors"] == json!([]) && j["total"] == 1).await;
    assert_eq!(j["calls"][0]["callreference"], "0x12");
}

/// Reads `window` events from `/api/calls/stream` (HTTP/1.0, so the body is not chunked).
struct SseReader {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
}

impl SseReader {
    async fn open(addr: SocketAddr, query: &str, auth: &Auth) -> SseReader {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET /api/calls/stream?{query} HTTP/1.0\r\nHost: {addr}\r\nCookie: {}\r\n\r\n",
            auth.cookie.as_deref().unwrap_or("")
        );
        sock.write_all(req.as_bytes()).await.expect("request");
        let mut lines = tokio::io::BufReader::new(sock).lines();
        let status = lines.next_line().await.expect("read").expect("status line");
        assert!(status.contains(" 200 "), "{status}");
        SseReader { lines }
    }

    /// The next event's data, within 20 s.
    async fn next(&mut self) -> Value {
        let read = async {
            loop {
                let line = self.lines.next_line().await.expect("read").expect("open");
                if let Some(data) = line.strip_prefix("data: ") {
                    return serde_json::from_str::<Value>(data).expect("JSON data");
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("an event in time")
    }
}

/// A page's stream carries its window and then only what changed in it: a change outside the
/// window sends nothing, a call ending pulls the next one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_stream_sends_its_window_then_only_changes() {
    let (addr, _seen, lines) = calls_stand_in().await;
    let (app, state) = player(&sqlite_url("player-calls-stream"), None).await;
    register(&state, 4, "edge", addr, SensorKind::Earshot).await;
    let viewer = login(&app, "viewer").await;
    let web = serve(app.clone()).await;
    let feed = tokio::spawn({
        let lines = lines.clone();
        async move {
            while lines.receiver_count() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for r in ["0x10", "0x11", "0x12"] {
                let _ = lines.send(feed_call("snapshot", r, "answered"));
            }
            let _ = lines.send("{\"event\":\"synced\"}\n".into());
        }
    });
    let mut page = SseReader::open(web, "limit=2", &viewer).await;
    feed.await.unwrap();
    let first = page.next().await;
    assert_eq!(first["total"], 3, "{first}");
    assert_eq!(first["order"], json!(["4:10", "4:11"]));
    assert_eq!(first["upsert"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["upsert"][0]["caller"], "1001");
    assert_eq!(first["remove"], json!([]));

    // Outside the window, then inside: the event has the visible change only.
    let changed = |r: &str, secs: u32| {
        format!(
            "{{\"event\":\"changed\",\"callref\":\"{r}\",\"fields\":{{\"duration\":{secs}}}}}\n"
        )
    };
    let _ = lines.send(changed("0x12", 9));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _ = lines.send(changed("0x11", 7));
    let second = page.next().await;
    let upsert = second["upsert"].as_array().expect("upsert");
    assert_eq!(upsert.len(), 1, "{second}");
    assert_eq!(
        (&upsert[0]["key"], &upsert[0]["duration"]),
        (&json!("4:11"), &json!(7))
    );

    // A visible call ends: it leaves, the next one comes in.
    let _ = lines.send("{\"event\":\"ended\",\"callref\":\"0x10\"}\n".into());
    let third = page.next().await;
    assert_eq!(third["total"], 2, "{third}");
    assert_eq!(third["order"], json!(["4:11", "4:12"]));
    assert_eq!(third["remove"], json!(["4:10"]));
    let upsert = third["upsert"].as_array().expect("upsert");
    assert_eq!(upsert.len(), 1);
    assert_eq!(
        (&upsert[0]["key"], &upsert[0]["duration"]),
        (&json!("4:12"), &json!(9))
    );
}

/// Registers a sensor at `addr` (no token, no TLS).
/// A sensor entry for `addr`, without token or TLS.
fn sensor_at(id: i64, name: &str, addr: SocketAddr, kind: SensorKind) -> Sensor {
    Sensor {
        id_sensor: id,
        name: name.into(),
        host: addr.ip().to_string(),
        port: addr.port(),
        token: None,
        tls: false,
        kind,
    }
}

async fn register(state: &AppState, id: i64, name: &str, addr: SocketAddr, kind: SensorKind) {
    state
        .db
        .add_sensor(&sensor_at(id, name, addr, kind))
        .await
        .expect("register the sensor");
}

/// Two players on one PostgreSQL are one service: a sensor registered through either is
/// listed by both, a login on one is valid on the other, and what one audits the other's
/// admins read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_share_one_postgres() {
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    let (app_a, _) = player(&db.url, None).await;
    let state_b = AppState::new(
        config(&db.url, None),
        Db::open(&db.url)
            .await
            .expect("the second player opens the same database"),
    );
    let app_b = earshot_player::router(state_b.clone());

    // One sensor registered through each player.
    let (s1, _, lines1) = calls_stand_in().await;
    let (s2, _, lines2) = calls_stand_in().await;
    let admin_a = login(&app_a, "admin").await;
    let admin_b = login(&app_b, "admin").await;
    for (app, admin, id, addr) in [(&app_a, &admin_a, 1, s1), (&app_b, &admin_b, 2, s2)] {
        let body = json!({"id_sensor": id, "name": format!("edge{id}"), "host": addr.ip().to_string(),
            "port": addr.port(), "kind": "earshot"});
        let r = call(app, "POST", "/api/sensors", admin, &[], Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    }
    for (lines, r) in [(lines1, "0x10"), (lines2, "0x20")] {
        tokio::spawn(async move {
            // Each player subscribes once; both get the same snapshot.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut sent = 0;
            while sent < 2 && Instant::now() < deadline {
                if lines.receiver_count() > sent {
                    sent = lines.receiver_count();
                    let _ = lines.send(feed_call("snapshot", r, "answered"));
                    let _ = lines.send("{\"event\":\"synced\"}\n".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    // A viewer logs in on A and is known to B.
    let viewer = login(&app_a, "viewer").await;
    let r = call(&app_b, "GET", "/api/me", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["name"], "viewer");
    for app in [&app_a, &app_b] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = call(app, "GET", "/api/calls", &viewer, &[], None).await;
            let refs: HashSet<String> = r.json["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["callreference"].as_str().map(str::to_string))
                .collect();
            if refs == HashSet::from(["0x10".to_string(), "0x20".to_string()]) {
                break;
            }
            assert!(Instant::now() < deadline, "both sensors' calls: {}", r.json);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A refused listening attempt on B is in the audit log A's admin reads.
    let web_b = serve(app_b.clone()).await;
    let mut ws = ws_connect(web_b, "sensor_id=2&callref=0x20", &viewer).await;
    let Some(Message::Text(t)) = next_msg(&mut ws).await else {
        panic!("expected an error message");
    };
    assert!(t.contains("error"), "{t}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&app_a, "GET", "/api/audit", &admin_a, &[], None).await;
        let found = r.json.as_array().into_iter().flatten().any(|a| {
            a["user_name"] == "viewer" && a["callreference"] == "0x20" && a["outcome"] == "refused"
        });
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "audit on A: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Logging out on B ends the session on A too.
    let r = call(&app_b, "POST", "/api/logout", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = call(&app_a, "GET", "/api/me", &viewer, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    drop((app_a, app_b, state_b));
    db.drop().await;
}

/// Twelve browsers listening to one call from now, half in PCM and half in Opus: the player
/// opens one sensor stream per format and hands each browser the same frames, so the sensor
/// sees two listeners, not twelve (it refuses a ninth listener of a call from one client, and
/// the player is one client: before the streams were shared, the ninth browser was refused).
/// When they leave, the sensor streams close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_listening_to_one_call_share_one_sensor_stream_per_format() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    let s = sensor::Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1", "--loop"]);
    let default = sensor_at(1, "default", s.addr, SensorKind::Earshot);
    let db_url = sqlite_url("player-shared-streams");
    let db = Db::open(&db_url).await.expect("open database");
    let hash = auth::hash_password(PASSWORD).expect("hash");
    db.add_user("listener", &hash, Role::Listener)
        .await
        .expect("add user");
    let mut cfg = config(&db_url, Some(default));
    cfg.limits.max_per_user_per_call = 20;
    let state = AppState::new(cfg, db);
    let app = earshot_player::router(state.clone());
    let listener = login(&app, "listener").await;
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let callref = row[0].as_str().unwrap().to_string();
    let addr = serve(app.clone()).await;

    let mut sockets = Vec::new();
    for i in 0..12 {
        let format = if i % 2 == 0 { "s16le" } else { "opus" };
        let q = format!("callref={callref}&rate=16000&channels=2&from=now&format={format}");
        let mut ws = ws_connect(addr, &q, &listener).await;
        let Some(Message::Text(t)) = next_msg(&mut ws).await else {
            panic!("browser {i}: no first message");
        };
        let h: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(h["type"], "header", "browser {i} was refused: {h}");
        assert_eq!(h["format"], format, "{h}");
        sockets.push((format, ws));
    }
    for (i, (format, ws)) in sockets.iter_mut().enumerate() {
        let want = if *format == "opus" {
            earshot_manager::stream_proto::KIND_OPUS
        } else {
            earshot_manager::stream_proto::KIND_AUDIO
        };
        let mut last: Option<u32> = None;
        let mut frames = 0;
        while frames < 10 {
            match next_msg(ws).await {
                Some(Message::Binary(b)) if b[0] == want => {
                    let seq = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
                    if let Some(prev) = last {
                        assert_eq!(seq, prev + 1, "browser {i}: consecutive frames");
                    }
                    last = Some(seq);
                    frames += 1;
                }
                Some(Message::Binary(b)) => assert!(
                    matches!(b[0], 2 | 3),
                    "browser {i} ({format}): frame kind {}",
                    b[0]
                ),
                Some(Message::Text(t)) => panic!("browser {i}: {t}"),
                Some(_) => {}
                None => panic!("browser {i}: the stream ended"),
            }
        }
    }
    assert_eq!(state.relays.open_now(), 2, "one sensor stream per format");
    assert_eq!(s.stat()["listeners"], 2, "the sensor feeds two listeners");
    for (_, mut ws) in sockets {
        ws.close(None).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while state.relays.open_now() > 0 || s.stat()["listeners"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the sensor streams stay open: {} in the player, {} in the sensor",
            state.relays.open_now(),
            s.stat()["listeners"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- embedding (issue 17): API keys, /api/v1, listen tokens, origins ----

/// A player whose configuration is `config(db_url, default_sensor)` changed by `edit`.
async fn player_with(
    db_url: &str,
    default_sensor: Option<Sensor>,
    edit: impl FnOnce(&mut Config),
) -> (Router, Arc<AppState>) {
    let (_, state) = player(db_url, default_sensor.clone()).await;
    let mut c = config(db_url, default_sensor);
    edit(&mut c);
    state.replace_config(c);
    (earshot_player::router(state.clone()), state)
}

/// A second player on the same database (its users already exist).
async fn another_player(db_url: &str) -> (Router, Arc<AppState>) {
    let db = Db::open(db_url)
        .await
        .expect("the second player opens the database");
    let state = AppState::new(config(db_url, None), db);
    (earshot_player::router(state.clone()), state)
}

/// A new API key in `db`, returned as the backend would hold it.
async fn api_key(db: &Db, name: &str, role: Role, sensors: Option<Vec<i64>>) -> String {
    let key = earshot_player::tokens::new_key().expect("random key");
    db.add_api_key(name, &auth::token_hash(&key), role, sensors, None)
        .await
        .expect("add the key");
    key
}

async fn with_key(app: &Router, method: &str, uri: &str, key: &str, body: Option<Value>) -> Reply {
    let bearer = format!("Bearer {key}");
    router::send(app, method, uri, &[("authorization", &bearer)], body).await
}

/// Sends a `calls` snapshot of one call (then `synced`) to every player that subscribes, for
/// a while.
fn feed_snapshot(lines: tokio::sync::broadcast::Sender<String>, r: &'static str) {
    tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sent = 0;
        while Instant::now() < deadline {
            if lines.receiver_count() > sent {
                sent = lines.receiver_count();
                let _ = lines.send(feed_call("snapshot", r, "answered"));
                let _ = lines.send("{\"event\":\"synced\"}\n".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Keys are checked on every request, against the database: an unknown, expired or revoked
/// key is refused (revoked through one player, refused by another at once); a key limited to
/// some sensors sees and mints for those only; a viewer key may list but not mint; the rate
/// per key is enforced with 429 and Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_checked_on_every_request() {
    let url = sqlite_url("player-api-keys");
    let (app, state) = player(&url, None).await;
    let (app_b, _state_b) = another_player(&url).await;
    let (s1, _, lines1) = calls_stand_in().await;
    let (s2, _, lines2) = calls_stand_in().await;
    register(&state, 1, "edge1", s1, SensorKind::Earshot).await;
    register(&state, 2, "edge2", s2, SensorKind::Earshot).await;
    feed_snapshot(lines1, "0x10");
    feed_snapshot(lines2, "0x20");
    let all = api_key(&state.db, "all", Role::Listener, None).await;
    let one = api_key(&state.db, "one", Role::Listener, Some(vec![1])).await;
    let viewer = api_key(&state.db, "viewer", Role::Viewer, None).await;

    // No key, not a key, an unknown key.
    let r = router::send(&app, "GET", "/api/v1/calls", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        error_of(&r).contains("Authorization: Bearer esk_"),
        "{}",
        r.json
    );
    let r = with_key(&app, "GET", "/api/v1/calls", "s3cret", None).await;
    assert!(error_of(&r).contains("start with esk_"), "{}", r.json);
    let r = with_key(
        &app,
        "GET",
        "/api/v1/calls",
        &format!("esk_{}", "0".repeat(64)),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&r).contains("not known"), "{}", r.json);

    // Every sensor's calls, paged.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = with_key(&app, "GET", "/api/v1/calls", &all, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if r.json["total"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "both calls: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = with_key(&app, "GET", "/api/v1/calls?limit=1&offset=1", &all, None).await;
    assert_eq!(
        r.json["calls"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.json
    );
    assert_eq!(
        (r.json["total"].clone(), r.json["offset"].clone()),
        (json!(2), json!(1))
    );
    let r = with_key(&app, "GET", "/api/v1/calls?limit=0", &all, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = with_key(&app, "GET", "/api/v1/calls/1/0x10", &all, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["callreference"], "0x10");
    let r = with_key(&app, "GET", "/api/v1/calls/1/0x99", &all, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(error_of(&r).contains("may have ended"), "{}", r.json);

    // A key limited to sensor 1 sees its calls only and cannot reach sensor 2.
    let r = with_key(&app, "GET", "/api/v1/calls", &one, None).await;
    let sensors: HashSet<i64> = r.json["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["sensor_id"].as_i64())
        .collect();
    assert_eq!(sensors, HashSet::from([1]), "{}", r.json);
    assert_eq!(r.json["total"], 1);
    for uri in ["/api/v1/calls?sensor_id=2", "/api/v1/calls/2/0x20"] {
        let r = with_key(&app, "GET", uri, &one, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(error_of(&r).contains("limited to sensors 1"), "{}", r.json);
    }
    let mint = |sensor: i64, r: &str| json!({"sensor_id": sensor, "callref": r, "user": "Ann"});
    let r = with_key(
        &app,
        "POST",
        "/api/v1/listen-tokens",
        &one,
        Some(mint(2, "0x20")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let r = with_key(
        &app,
        "POST",
        "/api/v1/listen-tokens",
        &one,
        Some(mint(1, "0x10")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert!(r.json["token"].as_str().unwrap().starts_with("elt1."));
    assert_eq!(r.json["expires_in"], 60);

    // A viewer key lists, but may not mint.
    let r = with_key(&app, "GET", "/api/v1/calls", &viewer, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = with_key(
        &app,
        "POST",
        "/api/v1/listen-tokens",
        &viewer,
        Some(mint(1, "0x10")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(error_of(&r).contains("--role listener"), "{}", r.json);

    // Revoked on A: refused by B at the very next request.
    let r = with_key(&app_b, "GET", "/api/v1/calls/1/0x10", &all, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert!(state.db.revoke_api_key("all").await.unwrap());
    let r = with_key(&app_b, "GET", "/api/v1/calls/1/0x10", &all, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.json);
    assert!(error_of(&r).contains("revoked"), "{}", r.json);

    // An expired key.
    let old = earshot_player::tokens::new_key().unwrap();
    let past = earshot_player::db::now_secs() - 1;
    state
        .db
        .add_api_key(
            "old",
            &auth::token_hash(&old),
            Role::Listener,
            None,
            Some(past),
        )
        .await
        .unwrap();
    let r = with_key(&app, "GET", "/api/v1/calls", &old, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&r).contains("expired"), "{}", r.json);

    // The rate per key.
    let (limited, limited_state) = player_with(&sqlite_url("player-api-rate"), None, |c| {
        c.embed.requests_per_minute = 3;
    })
    .await;
    let busy = api_key(&limited_state.db, "busy", Role::Viewer, None).await;
    let calm = api_key(&limited_state.db, "calm", Role::Viewer, None).await;
    for _ in 0..3 {
        let r = with_key(&limited, "GET", "/api/v1/calls", &busy, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    }
    let r = with_key(&limited, "GET", "/api/v1/calls", &busy, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(error_of(&r).contains("requests_per_minute"), "{}", r.json);
    // Another key has its own count.
    let r = with_key(&limited, "GET", "/api/v1/calls", &calm, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

/// CORS, the WebSocket origin and frame-ancestors follow `[embed] allowed_origins`; nothing is
/// allowed by default. The API describes itself.
#[tokio::test]
async fn embed_origins_cors_frame_ancestors_and_openapi() {
    let dash = "http://dash.example:3000";
    let (closed, _) = player(&sqlite_url("player-embed-closed"), None).await;
    let (open, _) = player_with(&sqlite_url("player-embed-open"), None, |c| {
        c.embed.allowed_origins = vec![dash.into()];
    })
    .await;
    let preflight = [
        ("origin", dash),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type",
        ),
    ];
    let acao = |r: &Reply| {
        r.headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let csp = |r: &Reply| {
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string()
    };

    let r = router::send(
        &closed,
        "OPTIONS",
        "/api/v1/listen-tokens",
        &preflight,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(acao(&r), None);
    assert!(error_of(&r).contains("allowed_origins"), "{}", r.json);
    let r = router::send(
        &closed,
        "GET",
        "/earshot-player.js",
        &[("origin", dash)],
        None,
    )
    .await;
    assert_eq!(acao(&r), None);
    let r = router::send(&closed, "GET", "/", &[], None).await;
    assert!(csp(&r).ends_with("frame-ancestors 'self'"), "{}", csp(&r));

    let r = router::send(&open, "OPTIONS", "/api/v1/listen-tokens", &preflight, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(acao(&r).as_deref(), Some(dash));
    let methods = r.headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    for path in [
        "/earshot-player.js",
        "/player-worklet.js",
        "/api/v1/openapi.json",
    ] {
        let r = router::send(&open, "GET", path, &[("origin", dash)], None).await;
        assert_eq!(acao(&r).as_deref(), Some(dash), "{path}");
        let r = router::send(
            &open,
            "GET",
            path,
            &[("origin", "http://evil.example")],
            None,
        )
        .await;
        assert_eq!(acao(&r), None, "{path}");
    }
    // Never for what the session cookie opens.
    let r = router::send(&open, "GET", "/api/calls", &[("origin", dash)], None).await;
    assert_eq!(acao(&r), None);
    let r = router::send(&open, "GET", "/", &[], None).await;
    assert!(
        csp(&r).ends_with(&format!("frame-ancestors 'self' {dash}")),
        "{}",
        csp(&r)
    );

    let r = router::send(&open, "GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["openapi"], "3.1.0");
    for path in [
        "/api/v1/calls",
        "/api/v1/calls/{sensor}/{callref}",
        "/api/v1/listen-tokens",
    ] {
        assert!(r.json["paths"][path].is_object(), "{path} is described");
    }

    // Origins are checked when the configuration is read.
    for bad in [
        "dash.example",
        "https://dash.example/",
        "https://*.example",
        "ftp://x",
    ] {
        assert!(earshot_player::config::parse_origin(bad).is_err(), "{bad}");
    }
    assert_eq!(
        earshot_player::config::parse_origin("https://Dash.Example:8443").unwrap(),
        "https://dash.example:8443"
    );
}

async fn ws_token(addr: SocketAddr, query: &str, origin: Option<&str>) -> Ws {
    let mut req = format!("ws://{addr}/api/listen?{query}")
        .into_client_request()
        .expect("ws request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("header"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket upgrade");
    ws
}

/// The first message of a token's WebSocket: the error it was refused with, or `None` when
/// the session started (a header came, then audio).
async fn token_refusal(ws: &mut Ws) -> Option<String> {
    let Some(Message::Text(t)) = next_msg(ws).await else {
        panic!("expected a text message first");
    };
    let v: Value = serde_json::from_str(&t).expect("JSON");
    match v["type"].as_str() {
        Some("error") => {
            assert_eq!(v["retry"], false, "{v}");
            Some(v["error"].as_str().unwrap_or_default().to_string())
        }
        Some("header") => None,
        _ => panic!("unexpected first message {v}"),
    }
}

/// A listen token plays its one call once, from an allowed origin (its own, when it names
/// one), before it expires; it is refused for another call, from another origin, forged,
/// expired, reused after its session ended, and once its key is revoked. The audit names the
/// key, the end user and the client's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_tokens_play_one_call_once() {
    listen_tokens_play_one_call_once_on(&sqlite_url("player-tokens")).await;
}

/// The same on PostgreSQL: the signing secret and the used tokens shared by two players.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_tokens_play_one_call_once_on_postgres() {
    let Some(db) = FreshPostgres::create().await else {
        return;
    };
    listen_tokens_play_one_call_once_on(&db.url).await;
    db.drop().await;
}

async fn listen_tokens_play_one_call_once_on(db_url: &str) {
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
    ]);
    let default = sensor_at(1, "default", s.addr, SensorKind::Earshot);
    let dash = "http://dash.example:3000";
    let (app, state) = player_with(db_url, Some(default), |c| {
        c.embed.allowed_origins = vec![dash.into()];
    })
    .await;
    let key = api_key(&state.db, "helpdesk", Role::Listener, None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let callref = loop {
        let r = with_key(&app, "GET", "/api/v1/calls", &key, None).await;
        if let Some(c) = r.json["calls"].as_array().and_then(|c| c.first()) {
            break c["callreference"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no call listed: {}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mint = |origin: Option<&str>| {
        let mut body = json!({"sensor_id": 1, "callref": callref, "user": "Ann Agent"});
        if let Some(o) = origin {
            body["origin"] = o.into();
        }
        let (app, key) = (app.clone(), key.clone());
        async move {
            let r = with_key(&app, "POST", "/api/v1/listen-tokens", &key, Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
            r.json["token"].as_str().unwrap().to_string()
        }
    };
    // An origin the player does not allow cannot be bound into a token.
    let body =
        json!({"sensor_id": 1, "callref": callref, "user": "Ann", "origin": "http://evil.example"});
    let r = with_key(&app, "POST", "/api/v1/listen-tokens", &key, Some(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&r).contains("allowed_origins"), "{}", r.json);

    let addr = serve(app.clone()).await;
    let token = mint(Some(dash)).await;
    let q = |t: &str| format!("token={t}&rate=8000&channels=2");

    // Refusals that do not use the token up.
    let mut ws = ws_token(addr, &q(&token), Some("http://evil.example")).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("allowed_origins"), "{e}");
    let mut ws = ws_token(addr, &format!("{}&callref=0x1234", q(&token)), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("is for call"), "{e}");
    let mut ws = ws_token(addr, &q(&token), None).await;
    let e = token_refusal(&mut ws)
        .await
        .expect("refused without the token's origin");
    assert!(
        e.contains(&format!("only be used from pages of {dash}")),
        "{e}"
    );
    let forged = format!("{}0", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{}1", &token[..token.len() - 1])
    } else {
        forged
    };
    let mut ws = ws_token(addr, &q(&forged), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("signature"), "{e}");

    // The session: a header, then audio.
    let mut ws = ws_token(addr, &q(&token), Some(dash)).await;
    assert_eq!(token_refusal(&mut ws).await, None);
    let mut audio = 0;
    while audio < 5 {
        match next_msg(&mut ws).await {
            Some(Message::Binary(b)) if b.first() == Some(&1) => audio += 1,
            Some(_) => {}
            None => panic!("the stream ended before 5 audio frames"),
        }
    }
    ws.close(None).await.unwrap();
    drop(ws);

    // Used: refused afterwards, on this player and on another sharing the database.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ws = ws_token(addr, &q(&token), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("used already"), "{e}");
    let (app_b, state_b) = another_player(&state.config().database_url).await;
    let mut c = config(
        &state.config().database_url,
        state.config().default_sensor.clone(),
    );
    c.embed.allowed_origins = vec![dash.into()];
    state_b.replace_config(c);
    let addr_b = serve(app_b).await;
    let mut ws = ws_token(addr_b, &q(&token), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused on B");
    assert!(e.contains("used already"), "{e}");
    // A token minted on A is good on B (one secret in the database).
    let fresh = mint(None).await;
    let mut ws = ws_token(addr_b, &q(&fresh), Some(dash)).await;
    assert_eq!(token_refusal(&mut ws).await, None, "A's token on B");
    drop(ws);

    // Expired: signed with the database's secret, but its time is over.
    let secret = state
        .db
        .shared_secret(earshot_player::tokens::SECRET_NAME)
        .await
        .unwrap();
    let key_row = state.db.api_key_named("helpdesk").await.unwrap().unwrap();
    let expired = earshot_player::tokens::sign(
        &earshot_player::tokens::ListenGrant {
            key_id: key_row.id,
            key_name: key_row.name.clone(),
            sensor_id: 1,
            callref: callref.clone(),
            from: "now".into(),
            user: "Ann Agent".into(),
            origin: None,
            expires: earshot_player::db::now_secs() - 1,
            nonce: "00ff".into(),
        },
        secret.as_bytes(),
    );
    let mut ws = ws_token(addr, &q(&expired), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("expired"), "{e}");

    // A revoked key's tokens die with it.
    let orphan = mint(None).await;
    assert!(state.db.revoke_api_key("helpdesk").await.unwrap());
    let mut ws = ws_token(addr, &q(&orphan), Some(dash)).await;
    let e = token_refusal(&mut ws).await.expect("refused");
    assert!(e.contains("revoked"), "{e}");

    // The audit: the session, named by key and end user, from the client's address; and the
    // refusals of signed tokens.
    let rows = state.db.audit(50).await.unwrap();
    let listened = rows
        .iter()
        .find(|r| r.outcome.as_deref() == Some("listened"))
        .expect("the session's row");
    assert_eq!(listened.api_key.as_deref(), Some("helpdesk"));
    assert_eq!(listened.end_user.as_deref(), Some("Ann Agent"));
    assert_eq!(listened.user_name, "Ann Agent");
    assert_eq!(listened.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(listened.callreference, callref);
    assert!(rows.iter().any(|r| r.outcome.as_deref() == Some("refused")
        && r.reason
            .as_deref()
            .is_some_and(|w| w.contains("used already"))
        && r.api_key.as_deref() == Some("helpdesk")));
}

/// `earshot keys`: a key is printed once (stdout, alone, so a script can capture it), works
/// on the API, is listed without itself, and is refused once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_commands() {
    let url = sqlite_url("player-keys-cli");
    let go = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend(["--database", url.as_str()]);
        run(&v, None)
    };
    let (ok, key, err) = go(&[
        "keys",
        "add",
        "helpdesk",
        "--role",
        "listener",
        "--sensors",
        "1,2",
        "--expires",
        "90d",
    ]);
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    assert!(key.starts_with("esk_") && key.len() == 68, "{key}");
    assert!(err.contains("not shown again"), "{err}");
    let (ok, _, err) = go(&["keys", "add", "helpdesk", "--role", "viewer"]);
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = go(&["keys", "add", "x", "--role", "viewer", "--expires", "soon"]);
    assert!(!ok && err.contains("90d"), "{err}");
    let (ok, list, _) = go(&["keys", "list"]);
    assert!(
        ok && list.contains("helpdesk") && list.contains("1,2"),
        "{list}"
    );
    assert!(
        !list.contains(&key[4..20]),
        "the key itself is never listed: {list}"
    );

    let (app, _) = another_player(&url).await;
    let r = with_key(&app, "GET", "/api/v1/calls?sensor_id=1", &key, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let (ok, out, err) = go(&["keys", "revoke", "helpdesk"]);
    assert!(ok && out.contains("revoked"), "{err}");
    let r = with_key(&app, "GET", "/api/v1/calls?sensor_id=1", &key, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (ok, _, err) = go(&["keys", "revoke", "helpdesk"]);
    assert!(!ok && err.contains("earshot keys list"), "{err}");
}

/// The admin page's keys: an admin creates one (shown once), lists it (never the key itself)
/// and revokes it; the key works on /api/v1 until then. Others may not touch keys.
#[tokio::test]
async fn admins_manage_api_keys_from_the_page() {
    let (app, _) = player(&sqlite_url("player-keys-page"), None).await;
    let admin = login(&app, "admin").await;
    let listener = login(&app, "listener").await;
    let body = json!({"name": "crm", "role": "listener", "sensors": [1, 2], "expires_days": 30});
    let r = call(
        &app,
        "POST",
        "/api/keys",
        &listener,
        &[],
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&app, "GET", "/api/keys", &listener, &[], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let no_csrf = Auth {
        csrf: None,
        ..admin.clone()
    };
    let r = call(&app, "POST", "/api/keys", &no_csrf, &[], Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = call(&app, "POST", "/api/keys", &admin, &[], Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let key = r.json["key"].as_str().unwrap().to_string();
    assert_eq!(r.json["sensors"], json!([1, 2]));
    let r = call(&app, "POST", "/api/keys", &admin, &[], Some(body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    let r = call(&app, "GET", "/api/keys", &admin, &[], None).await;
    assert_eq!(r.json[0]["name"], "crm");
    assert!(
        !r.json.to_string().contains(&key[4..]),
        "the key is never listed"
    );
    let r = with_key(&app, "GET", "/api/v1/calls?sensor_id=2", &key, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let r = call(&app, "DELETE", "/api/keys/crm", &admin, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let r = with_key(&app, "GET", "/api/v1/calls?sensor_id=2", &key, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&app, "DELETE", "/api/keys/crm", &admin, &[], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
