//! `earshot demo --embed-example`: a second tiny web server, on another port (so another
//! origin), playing the part of a dashboard that embeds live listening (docs/api.md). Its
//! "backend" talks to the player over HTTP with an API key, as a real one would: it lists the
//! calls and mints a listen token per click; its page embeds `<earshot-player token=…>`.

use anyhow::{bail, Context, Result};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name of the API key the example's backend uses.
pub const KEY_NAME: &str = "embed-example";

struct Dashboard {
    player: SocketAddr,
    key: String,
    /// This server's own origin, bound into every token.
    origin: String,
}

/// Serves the example dashboard on `listener` until the process ends.
pub fn spawn(listener: tokio::net::TcpListener, player: SocketAddr, key: String) -> Result<String> {
    let origin = format!("http://{}", listener.local_addr()?);
    let state = Arc::new(Dashboard {
        player,
        key,
        origin: origin.clone(),
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/calls", get(calls))
        .route("/token", get(token))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("earshot demo: the embedding example stopped: {e}");
        }
    });
    Ok(origin)
}

/// One request to the player's /api/v1 with the key, as the dashboard's backend sends it:
/// HTTP/1.1, one connection per request (the example needs no client library).
async fn player_api(
    d: &Dashboard,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String)> {
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(d.player),
    )
    .await
    .context("the player did not accept a connection in time")??;
    let body = body.unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.player,
        d.key,
        body.len()
    );
    conn.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .context("the player did not answer in time")??;
    let text = String::from_utf8_lossy(&answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("the player's answer has no header end");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the player's answer has no status")?;
    Ok((status, body.to_string()))
}

fn json_reply(r: Result<(u16, String)>) -> Response {
    match r {
        Ok((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("{{\"error\":{:?}}}", format!("{e:#}")),
        )
            .into_response(),
    }
}

async fn calls(State(d): State<Arc<Dashboard>>) -> Response {
    json_reply(player_api(&d, "GET", "/api/v1/calls?limit=20", None).await)
}

#[derive(Deserialize)]
struct TokenQuery {
    sensor_id: i64,
    callref: String,
}

async fn token(State(d): State<Arc<Dashboard>>, Query(q): Query<TokenQuery>) -> Response {
    let body = serde_json::json!({
        "sensor_id": q.sensor_id, "callref": q.callref,
        "user": "Ann Agent (embedding example)", "origin": d.origin,
    });
    json_reply(player_api(&d, "POST", "/api/v1/listen-tokens", Some(body.to_string())).await)
}

async fn page(State(d): State<Arc<Dashboard>>) -> Html<String> {
    Html(PAGE.replace("PLAYER_ORIGIN", &format!("http://{}", d.player)))
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme support dashboard (earshot embedding example)</title>
<script type="module" src="PLAYER_ORIGIN/earshot-player.js"></script>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
li{margin:.3rem 0}button{margin-left:.5rem}</style></head>
<body>
<h1>Acme support dashboard</h1>
<p>This page is on another origin than the player. Its server holds an API key and mints a
listen token for each click; the page embeds <code>&lt;earshot-player token=…&gt;</code>.</p>
<ul id="calls"><li>loading calls…</li></ul>
<earshot-player id="live" src-origin="PLAYER_ORIGIN"></earshot-player>
<script type="module">
  const list = document.getElementById("calls");
  const el = document.getElementById("live");
  async function refresh() {
    const r = await fetch("/calls");
    const body = await r.json();
    if (!r.ok) { list.textContent = body.error; return; }
    list.replaceChildren(...body.calls.map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.caller} → ${c.called} (${(c.codecs || []).join(", ")})`;
      const b = document.createElement("button");
      b.textContent = "listen";
      b.onclick = async () => {
        const t = await fetch(`/token?sensor_id=${c.sensor_id}&callref=${encodeURIComponent(c.callreference)}`);
        const minted = await t.json();
        if (!t.ok) { alert(minted.error); return; }
        el.setAttribute("token", minted.token);
        el.play();
      };
      li.append(b);
      return li;
    }));
  }
  refresh();
  setInterval(refresh, 5000);
</script>
</body></html>
"#;
