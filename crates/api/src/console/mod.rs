//! The newsroom console: sign-in, sign-out, the page shell and its assets, served by the
//! same router as the API.
//!
//! The console acts only through the public GraphQL API: its scripts (`assets/*.js`, plain
//! modules, no build step) call `/graphql` with the session cookie and the session's CSRF
//! token, and subscribe at `/graphql/ws`, so authorisation, validation and error codes are the
//! API's own. The server renders only two pages (with maud): the sign-in page, which on an
//! empty database says how to create the first user, and the shell a signed-in person gets.
//! Every asset is compiled into the binary (`include_str!`).
//!
//! Security: a strict Content-Security-Policy on every response (scripts and styles only from
//! this origin, nothing inline, no frames, forms only to this origin), `X-Frame-Options:
//! DENY`, `nosniff`, referrers only to this origin (so form posts keep their `Origin`); sign-in and sign-out are form posts whose `Origin` must be
//! this server; sign-out also carries the CSRF token; failed sign-ins are throttled
//! ([`crate::signin_throttle`]) and password hashing runs on at most
//! [`HASHING_AT_ONCE`] blocking threads at a time.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::session::{self, PASSWORD_MAX_BYTES};
use crate::AppState;

/// How many password hashes may be computed at once; more sign-ins wait (up to
/// [`HASHING_WAIT`]) instead of piling 19 MiB hashes onto the machine.
pub const HASHING_AT_ONCE: usize = 2;

/// Longest a sign-in waits for a hashing slot before it is refused with 503.
const HASHING_WAIT: Duration = Duration::from_secs(10);

/// Largest sign-in or sign-out form, in bytes.
const FORM_LIMIT: usize = 8 * 1024;

/// Longest user name looked up, in characters (the longest a user can have).
const NAME_MAX_CHARS: usize = 64;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// The console's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/console", get(shell))
        .route(
            "/console/sign-in",
            post(sign_in).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route(
            "/console/sign-out",
            post(sign_out).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/console/assets/{name}", get(asset))
}

/// Adds the security headers to every response of the router.
pub(crate) async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn html_response(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.into_string(),
    )
        .into_response()
}

fn redirect(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, to), (header::CACHE_CONTROL, "no-store")],
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light";
        title { (title) " · Galley" }
        link rel="stylesheet" href="/console/assets/console.css";
        link rel="icon" href="data:,";
    }
}

/// The sign-in page; `error` is shown as an alert, `no_users` adds the first-user notice.
fn sign_in_page(error: Option<&str>, no_users: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body class="signin-page" {
                main class="signin" {
                    h1 { "Galley" }
                    p class="tagline" { "The newsroom console" }
                    @if let Some(error) = error {
                        p class="error" role="alert" id="sign-in-error" { (error) }
                    }
                    @if no_users {
                        section class="notice" aria-labelledby="first-user" {
                            h2 id="first-user" { "No one can sign in yet" }
                            p { "This newsroom has no users. On the server's machine, add the first one and give them a password (read from standard input):" }
                            pre { code { "galley users add NAME --role admin\ngalley users passwd NAME" } }
                            p { "Then sign in here with that name and password." }
                        }
                    }
                    form method="post" action="/console/sign-in" class="stack" {
                        label for="name" { "User name" }
                        input id="name" name="name" autocomplete="username" required
                            maxlength=(NAME_MAX_CHARS) autocapitalize="none" spellcheck="false";
                        label for="password" { "Password" }
                        input id="password" name="password" type="password"
                            autocomplete="current-password" required maxlength=(PASSWORD_MAX_BYTES);
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// The page a signed-in person gets; the scripts fill `main`.
fn shell_page(csrf: &str, name: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head("Console"))
                meta name="galley-csrf" content=(csrf);
                script type="module" src="/console/assets/app.js" {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="#/desk" { "Galley" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="#/desk" { "Desk" } }
                            li { a href="#/write" id="nav-write" { "New article" } }
                            li { a href="#/search" { "Search" } }
                            li { a href="#/dashboard" { "Dashboard" } }
                        }
                    }
                    div class="who" {
                        span id="who" { (name) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                div id="live" class="live" role="status" aria-live="polite" {}
                main id="main" tabindex="-1" { p { "Loading…" } }
            }
        }
    }
}

/// `GET /`: the sign-in page, or the console for a signed-in person.
async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(secret) = session::session_secret(&headers) {
        if session::authenticate_session(state.store(), &secret)
            .await
            .is_ok()
        {
            return redirect("/console");
        }
    }
    let no_users = match state.store().has_users().await {
        Ok(any) => !any,
        Err(e) => {
            tracing::error!(error = %e, "cannot count users");
            false
        }
    };
    html_response(StatusCode::OK, sign_in_page(None, no_users))
}

/// `GET /console`: the shell, or back to sign-in.
async fn shell(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(secret) = session::session_secret(&headers) else {
        return redirect("/");
    };
    match session::authenticate_session(state.store(), &secret).await {
        Ok(principal) => html_response(
            StatusCode::OK,
            shell_page(&session::csrf_token(&secret), &principal.user.name),
        ),
        Err(_) => redirect("/"),
    }
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const WRONG: &str = "The user name or password is wrong.";

/// `POST /console/sign-in`: checks the password and starts a session.
async fn sign_in(State(state): State<AppState>, req: Request) -> Response {
    let page = |status, message: &str| html_response(status, sign_in_page(Some(message), false));
    if !session::same_origin(req.headers()) {
        return page(
            StatusCode::FORBIDDEN,
            "Sign in from the console's own page (the request came from another site).",
        );
    }
    let address = req.extensions().get::<crate::ClientAddr>().map(|c| c.0);
    let form = match Form::<SignInForm>::from_request(req, &state).await {
        Ok(Form(form)) => form,
        Err(e) => {
            return page(
                e.status(),
                "The sign-in form could not be read; send it again from this page.",
            )
        }
    };
    let name = form.name.trim().to_owned();
    let throttle = &state.inner.sign_in_throttle;
    let throttled = |wait: Duration| {
        metrics::counter!("galley_sign_in_total", "outcome" => "throttled").increment(1);
        let secs = wait.as_secs().max(1);
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins. Wait {} minute(s) and try again.",
                secs.div_ceil(60)
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    };
    if let Err(wait) = throttle.check(&name, address) {
        return throttled(wait);
    }
    let fail = || {
        throttle.failed(&name, address);
        metrics::counter!("galley_sign_in_total", "outcome" => "failed").increment(1);
        page(StatusCode::UNAUTHORIZED, WRONG)
    };
    if name.is_empty()
        || name.chars().count() > NAME_MAX_CHARS
        || form.password.is_empty()
        || form.password.len() > PASSWORD_MAX_BYTES
    {
        return fail();
    }
    let unavailable = || {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The console is busy; try again in a moment.",
        )
    };
    let Ok(Ok(permit)) =
        tokio::time::timeout(HASHING_WAIT, state.inner.hashing.clone().acquire_owned()).await
    else {
        return unavailable();
    };
    // Checked again now that it is this sign-in's turn: a burst sent at once passed the first
    // check together, and the failures of those ahead of it count.
    if let Err(wait) = throttle.check(&name, address) {
        drop(permit);
        return throttled(wait);
    }
    let credentials = match state.store().credentials(&name).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read credentials");
            return unavailable();
        }
    };
    let (user, stored) = match credentials {
        Some(c) => (Some(c.user), c.password_hash),
        None => (None, None),
    };
    let password = form.password;
    let verified =
        tokio::task::spawn_blocking(move || session::verify_password(&password, stored.as_deref()))
            .await
            .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        // The failure is counted before the slot is given up, so the next one in line sees it.
        let response = fail();
        drop(permit);
        return response;
    };
    drop(permit);
    throttle.succeeded(&name);
    let secret = session::generate_session_secret();
    let now = Utc::now();
    let ttl = state.limits().session_ttl;
    let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    if let Err(e) = state
        .store()
        .create_session(&session::hash_session(&secret), user.id, now, expires)
        .await
    {
        tracing::error!(error = %e, "cannot create a session");
        return unavailable();
    }
    metrics::counter!("galley_sign_in_total", "outcome" => "ok").increment(1);
    tracing::info!(user = %user.name, "signed in to the console");
    let mut response = redirect("/console");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::session_cookie(&secret, ttl, state.limits().secure_cookies),
    );
    response
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`: ends the session and clears the cookie.
async fn sign_out(State(state): State<AppState>, req: Request) -> Response {
    if !session::same_origin(req.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "sign out from the console's own page\n",
        )
            .into_response();
    }
    let secret = session::session_secret(req.headers());
    let form = match Form::<SignOutForm>::from_request(req, &state).await {
        Ok(Form(form)) => form,
        Err(e) => return (e.status(), "the sign-out form could not be read\n").into_response(),
    };
    if let Some(secret) = secret {
        if form.csrf != session::csrf_token(&secret) {
            return (
                StatusCode::FORBIDDEN,
                "the sign-out form does not carry this session's CSRF token\n",
            )
                .into_response();
        }
        if let Err(e) = state
            .store()
            .revoke_session(&session::hash_session(&secret), Utc::now())
            .await
        {
            tracing::error!(error = %e, "cannot end a session");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment\n").into_response();
        }
    }
    let mut response = redirect("/");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::cleared_cookie(state.limits().secure_cookies),
    );
    response
}

/// The console's files, compiled in.
fn asset_file(name: &str) -> Option<(&'static str, &'static str)> {
    const JS: &str = "text/javascript; charset=utf-8";
    Some(match name {
        "app.js" => (JS, include_str!("assets/app.js")),
        "gql.js" => (JS, include_str!("assets/gql.js")),
        "views.js" => (JS, include_str!("assets/views.js")),
        "charts.js" => (JS, include_str!("assets/charts.js")),
        "console.css" => (
            "text/css; charset=utf-8",
            include_str!("assets/console.css"),
        ),
        _ => return None,
    })
}

/// `GET /console/assets/{name}`.
async fn asset(Path(name): Path<String>) -> Response {
    match asset_file(&name) {
        Some((kind, body)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_page_escapes_and_tells_how_to_start() {
        let page = sign_in_page(Some("<b>x</b>"), true).into_string();
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(page.contains("galley users passwd NAME"));
        assert!(!page.contains("<script"));
        assert!(!sign_in_page(None, false)
            .into_string()
            .contains("No one can sign in yet"));
    }

    #[test]
    fn every_asset_the_shell_names_is_compiled_in() {
        for name in ["app.js", "gql.js", "views.js", "charts.js", "console.css"] {
            assert!(asset_file(name).is_some(), "{name}");
        }
        assert!(asset_file("../Cargo.toml").is_none());
    }
}
