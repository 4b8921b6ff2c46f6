//! The browser page, embedded in the binary so `earshot player` is one file to deploy.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const LEGS_JS: &str = include_str!("../web/legs.js");
const WORKLET_JS: &str = include_str!("../web/player-worklet.js");
const PLAYER_JS: &str = include_str!("../web/earshot-player.js");
const LADDER_JS: &str = include_str!("../web/ladder.js");
const STYLE: &str = include_str!("../web/style.css");
const EMBED_EXAMPLE: &str = include_str!("../web/embed-example.html");
const EMBED_EXAMPLE_JS: &str = include_str!("../web/embed-example.js");
const FAVICON: &str = include_str!("../web/favicon.svg");
const QUALITY_CHART_JS: &str = include_str!("../web/quality-chart.js");

const JS: &str = "text/javascript; charset=utf-8";

pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX)
}
pub async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], APP_JS)
}
/// Both legs of a call in the list (web/legs.js).
pub async fn legs_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], LEGS_JS)
}
pub async fn quality_chart_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], QUALITY_CHART_JS)
}
pub async fn worklet_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], WORKLET_JS)
}
pub async fn player_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], PLAYER_JS)
}
pub async fn ladder_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], LADDER_JS)
}
pub async fn style_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}
/// The embedding example, served so a developer can try `<earshot-player>` at once.
pub async fn embed_example() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        EMBED_EXAMPLE,
    )
}
pub async fn embed_example_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JS)], EMBED_EXAMPLE_JS)
}
/// The tab's icon (also at /favicon.ico, which browsers ask for on pages without a link).
pub async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        FAVICON,
    )
}
