//! Logging in and out, the current user, and who a request comes from.

use super::*;

/// Who is logged in, with the session's CSRF token (for state-changing requests).
#[derive(Serialize)]
struct Me<'a> {
    name: &'a str,
    role: Role,
    csrf: &'a str,
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

#[derive(Deserialize)]
struct LoginBody {
    name: String,
    password: String,
}

async fn login(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(peer): ClientIp,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|_| ApiError::BadRequest("send JSON {\"name\": …, \"password\": …}".into()))?;
    // Names never have surrounding spaces (the CLI and the proxy header trim them too);
    // passwords are taken exactly as typed.
    let name = body.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || body.password.len() > MAX_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "the user name must be 1-{MAX_NAME} bytes and the password at most {MAX_PASSWORD}"
        )));
    }
    let address = source_ip(&st, peer, &headers);
    st.login_allowed(name, address.as_deref())?;
    let user = st.db.user(name).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| auth::DUMMY_HASH.to_string());
    // argon2 takes 19 MiB and tens of milliseconds of CPU: only on the pool's few threads.
    let slot = st.hashes.slot(HASH_WAIT).await.map_err(|_| {
        bump(&st.metrics.login_busy);
        ApiError::Unavailable {
            message: "the player is busy checking other logins: try again in a few seconds".into(),
            retry_after: 2,
        }
    })?;
    // Again: failures may have locked this user out while the login waited for a thread.
    st.login_allowed(name, address.as_deref())?;
    let ok = slot.verify(body.password, hash).await.unwrap_or(false);
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            bump(&st.metrics.login_failures);
            lock(&st.limiter).failed(name, address.as_deref(), std::time::Instant::now());
            return Err(ApiError::Unauthorized("wrong user name or password".into()));
        }
    };
    lock(&st.limiter).succeeded(name);
    bump(&st.metrics.logins);
    start_session(&st, &user).await
}

impl AppState {
    /// Refuses a login for a name or address that failed too often lately (HTTP 429).
    fn login_allowed(&self, name: &str, address: Option<&str>) -> Result<(), ApiError> {
        let checked = lock(&self.limiter).check(name, address, std::time::Instant::now());
        checked.map_err(|locked| {
            bump(&self.metrics.login_locked);
            let secs = retry_seconds(locked.retry_after);
            ApiError::TooMany {
                message: format!(
                    "too many failed logins for this user or from this address: try again in {secs} s"
                ),
                retry_after: secs,
            }
        })
    }
}

/// A new session for `user`: the cookie, and the CSRF token in the body.
async fn start_session(st: &AppState, user: &crate::db::User) -> Result<Response, ApiError> {
    let (token, csrf) = auth::new_tokens().map_err(|e| ApiError::Internal(e.to_string()))?;
    st.db
        .create_session(
            &auth::token_hash(&token),
            user.id,
            &csrf,
            now_secs() + SESSION_SECONDS,
        )
        .await?;
    let secure = if st.config().secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    );
    let mut resp = Json(Me {
        name: &user.name,
        role: user.role,
        csrf: &csrf,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

async fn logout(
    State(st): State<Arc<AppState>>,
    ViewerWrite { hash, .. }: ViewerWrite,
) -> Result<Response, ApiError> {
    st.db.end_session(&hash).await?;
    let mut resp = Json(Done { ok: true }).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("earshot_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// Who is logged in. Behind a trusted reverse proxy that names the user, this is also where
/// the session starts: the page asks here first, so single sign-on needs no login form.
async fn me(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(peer): ClientIp,
) -> Result<Response, ApiError> {
    let current = require(&st, &headers, Role::Viewer, false).await;
    let Some(name) = proxy_user(&st, peer.as_deref(), &headers) else {
        let (s, _) = current?;
        return Ok(Json(Me {
            name: &s.user_name,
            role: s.role,
            csrf: &s.csrf,
        })
        .into_response());
    };
    match current {
        Ok((s, _)) if s.user_name == name => Ok(Json(Me {
            name: &s.user_name,
            role: s.role,
            csrf: &s.csrf,
        })
        .into_response()),
        other => {
            // The proxy now names someone else (or nobody was logged in): its word wins.
            if let Ok((_, hash)) = other {
                st.db.end_session(&hash).await?;
            }
            let user = st.db.user(&name).await?.ok_or_else(|| {
                ApiError::Forbidden(format!(
                    "the proxy says you are {name:?}, but the player has no such user: an admin adds it with `earshot users add {name} --role viewer`"
                ))
            })?;
            tracing::info!("session for {name} from the reverse proxy's header");
            start_session(&st, &user).await
        }
    }
}

/// The user named by a trusted reverse proxy's header, if this request came from one.
fn proxy_user(st: &AppState, peer: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let config = st.config();
    let proxy = config.proxy_auth.as_ref()?;
    if !from_trusted_proxy(proxy, peer) {
        return None;
    }
    let name = headers.get(proxy.header.as_str())?.to_str().ok()?.trim();
    (!name.is_empty() && name.len() <= 255).then(|| name.to_string())
}

/// Takes the proxy settings from the caller, so that a reload between two reads cannot make
/// one request trust the header under one configuration and the address under another.
fn from_trusted_proxy(proxy: &ProxyAuth, peer: Option<&str>) -> bool {
    let Some(ip) = peer.and_then(|p| p.parse::<std::net::IpAddr>().ok()) else {
        return false;
    };
    proxy.trusted.iter().any(|net| net.contains(&ip))
}

/// The address the audit records: behind a trusted proxy, the client its `X-Forwarded-For`
/// names (the last hop, the one the proxy itself added); otherwise the connection's peer.
pub(super) fn source_ip(
    st: &AppState,
    peer: Option<String>,
    headers: &HeaderMap,
) -> Option<String> {
    let config = st.config();
    let trusted = config
        .proxy_auth
        .as_ref()
        .is_some_and(|proxy| from_trusted_proxy(proxy, peer.as_deref()));
    if trusted {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| v.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string);
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}
