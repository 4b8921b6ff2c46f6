//! The call list: `/api/calls` and the pages' `/api/calls/stream`, from the call directory.

use super::*;
use crate::directory::{Window, WindowQuery};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/calls", get(calls))
        .route("/api/calls/stream", get(calls_stream))
}

#[derive(Deserialize)]
pub struct CallsQuery {
    /// Only calls whose numbers, Call-ID, reference, state or codecs contain this
    /// (case-insensitive).
    q: Option<String>,
    /// The first call to return, of those that pass `q` (default 0).
    offset: Option<usize>,
    /// At most this many calls (default: all).
    limit: Option<usize>,
}

impl CallsQuery {
    /// What the directory is asked for: the filter in lower case, `limit` rows by default.
    fn window(&self, default_limit: usize) -> WindowQuery {
        WindowQuery {
            q: self.q.as_deref().unwrap_or("").trim().to_ascii_lowercase(),
            offset: self.offset.unwrap_or(0),
            limit: self.limit.unwrap_or(default_limit),
        }
    }
}

#[derive(Serialize)]
struct SensorErrorView {
    sensor_id: i64,
    error: String,
}

/// The sensors a window could not list, with what this user may be told of why.
fn error_views(win: &Window, admin: bool) -> Vec<SensorErrorView> {
    win.errors
        .iter()
        .map(|(sensor_id, e)| SensorErrorView {
            sensor_id: *sensor_id,
            error: sensor_message(e, admin),
        })
        .collect()
}

#[derive(Serialize)]
struct CallsReply {
    calls: Vec<CallView>,
    /// Calls that pass `q`, before `offset` and `limit`.
    total: usize,
    errors: Vec<SensorErrorView>,
}

async fn calls(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
    Query(q): Query<CallsQuery>,
) -> Result<Json<CallsReply>, ApiError> {
    let admin = session.role >= Role::Admin;
    bump(&st.metrics.call_list_requests);
    let sensors = st.listed_sensors().await?;
    // From the directory: no sensor is asked anything for this page. A sensor whose feed has
    // just started (or is reconnecting) is waited for, within the same limit a direct request
    // had; one dead sensor does not hold up the others' calls.
    let win = st
        .directory
        .window(&sensors, &q.window(usize::MAX), LIST_TIMEOUT)
        .await;
    let total = win.total;
    let calls = win.rows.iter().map(|r| (*r.call).clone()).collect();
    for _ in &win.errors {
        bump(&st.metrics.sensor_errors);
    }
    let errors = error_views(&win, admin);
    Ok(Json(CallsReply {
        calls,
        total,
        errors,
    }))
}

/// Rows a page may ask for at once on the stream (a screen or two of a virtual list).
const MAX_WINDOW: usize = 1_000;
/// How often a page's window is looked at: a change reaches the page within this (plus the
/// sensor's own once-a-second rate limit on numbers).
const STREAM_EVERY: Duration = Duration::from_millis(500);
/// How often a stream checks that its session is still valid (logout, expiry, a removed user).
const STREAM_SESSION_CHECK: Duration = Duration::from_secs(10);

/// `GET /api/calls/stream?q=&offset=&limit=`: Server-Sent Events, one `window` event when the
/// page's window changed: the rows' keys in order (`order`), the rows that are new or changed
/// since the last event (`upsert`, each call with its `key`), the keys that left (`remove`),
/// `total` (calls passing `q`) and `errors`. The first event has every row. A page changes
/// what it shows (scrolling, the filter) by opening a new stream.
async fn calls_stream(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Result<Response, ApiError> {
    bump(&st.metrics.call_list_requests);
    let mut query = q.window(100);
    query.limit = query.limit.min(MAX_WINDOW);
    let page = PageStream {
        st,
        headers,
        admin: session.role >= Role::Admin,
        query,
        sent: HashMap::new(),
        last: None,
        last_head: None,
        checked: std::time::Instant::now(),
        first: true,
    };
    let events = futures_util::stream::unfold(page, |mut page| async move {
        let event = page.next().await?;
        Some((Ok::<_, Infallible>(event), page))
    });
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// One page's stream: what it was sent, to send only what changed.
struct PageStream {
    st: Arc<AppState>,
    headers: HeaderMap,
    admin: bool,
    query: WindowQuery,
    /// Key → rev of every row the page holds.
    sent: HashMap<String, u64>,
    last: Option<Arc<Window>>,
    /// The order, total and errors last sent: a window that differs only in rows the page
    /// already has is not sent again.
    last_head: Option<Value>,
    checked: std::time::Instant,
    first: bool,
}

#[derive(Serialize)]
struct WindowRow<'a> {
    key: &'a str,
    #[serde(flatten)]
    call: &'a CallView,
}

impl PageStream {
    /// The next event; `None` ends the stream (the session is gone).
    async fn next(&mut self) -> Option<axum::response::sse::Event> {
        loop {
            if !self.first {
                tokio::time::sleep(STREAM_EVERY).await;
            }
            self.first = false;
            if self.checked.elapsed() >= STREAM_SESSION_CHECK {
                self.checked = std::time::Instant::now();
                require(&self.st, &self.headers, Role::Viewer, false)
                    .await
                    .ok()?;
            }
            let sensors = self.st.listed_sensors().await.ok()?;
            let win = self
                .st
                .directory
                .window(&sensors, &self.query, LIST_TIMEOUT)
                .await;
            if self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &win)) {
                continue;
            }
            if let Some(event) = self.diff(&win) {
                self.last = Some(win);
                return Some(event);
            }
            self.last = Some(win);
        }
    }

    /// The event for `win` against what the page holds, or `None` when it would say nothing.
    fn diff(&mut self, win: &Window) -> Option<axum::response::sse::Event> {
        let order: Vec<&str> = win.rows.iter().map(|r| r.key.as_str()).collect();
        let errors = error_views(win, self.admin);
        let head = WindowHead {
            total: win.total,
            offset: self.query.offset,
            order,
            errors,
        };
        let head_json = serde_json::to_value(&head).unwrap_or_default();
        let upsert: Vec<WindowRow> = win
            .rows
            .iter()
            .filter(|r| self.sent.get(&r.key) != Some(&r.rev))
            .map(|r| WindowRow {
                key: &r.key,
                call: &r.call,
            })
            .collect();
        let keep: HashSet<&str> = head.order.iter().copied().collect();
        let remove: Vec<String> = self
            .sent
            .keys()
            .filter(|k| !keep.contains(k.as_str()))
            .cloned()
            .collect();
        if upsert.is_empty() && remove.is_empty() && self.last_head.as_ref() == Some(&head_json) {
            return None;
        }
        let data = serde_json::to_string(&WindowEvent {
            head: &head,
            upsert: &upsert,
            remove: &remove,
        })
        .unwrap_or_default();
        for k in &remove {
            self.sent.remove(k);
        }
        for r in &win.rows {
            self.sent.insert(r.key.clone(), r.rev);
        }
        self.last_head = Some(head_json);
        Some(
            axum::response::sse::Event::default()
                .event("window")
                .data(data),
        )
    }
}

/// What a `window` event says besides the rows: compared with the last one sent, so that a
/// window whose rows the page already has is not sent again.
#[derive(Serialize)]
struct WindowHead<'a> {
    total: usize,
    offset: usize,
    order: Vec<&'a str>,
    errors: Vec<SensorErrorView>,
}

/// A `window` event's data.
#[derive(Serialize)]
struct WindowEvent<'a> {
    #[serde(flatten)]
    head: &'a WindowHead<'a>,
    upsert: &'a [WindowRow<'a>],
    remove: &'a [String],
}
