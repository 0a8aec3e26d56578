//! Passwords and browser sessions for the console.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, one
//! lane) into a PHC string with a random salt. A session is a random secret (`glls_` + 32
//! bytes in hex) that lives only in the browser's `galley_session` cookie, which is
//! `HttpOnly` (page scripts cannot read it), `SameSite=Strict` (no other site's page sends
//! it) and `Path=/`; the store keeps its SHA-256 hash, an expiry and a revocation time.
//!
//! A request authenticated by the cookie must also carry `X-CSRF-Token`, a value derived
//! from the session secret (SHA-256 of a fixed label and the secret) that the console page is
//! given in a `<meta>` element. Another site can neither read it nor compute it, so even a
//! browser that ignored SameSite could not be made to act. API tokens (`Authorization:
//! Bearer`) are unchanged and need no CSRF token: a browser never adds them by itself.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap, HeaderValue};
use chrono::Utc;
use galley_storage::Store;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorCode};

/// The session cookie's name.
pub const COOKIE: &str = "galley_session";

/// The header a cookie-authenticated request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The prefix of session secrets, so a leaked one is recognisable.
pub const SESSION_PREFIX: &str = "glls_";

/// Shortest password `galley users passwd` accepts, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;

/// Longest password accepted anywhere, in bytes: checked before hashing, so a huge password
/// costs nothing.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// The rules a new password must meet.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::validation(
            "password",
            format!("must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::validation(
            "password",
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A PHC string no password matches, verified when the user is unknown or has no password so
/// that a wrong name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no password is this one", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Whether `password` matches the stored PHC string (`None`: no password set, which matches
/// nothing but costs the same). CPU-heavy: call it on a blocking thread.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// A new session secret.
pub fn generate_session_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SESSION_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a session secret.
pub fn hash_session(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session.
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"galley-csrf-v1:");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Compares two strings in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session secret in the request's cookies, if any (well-formed ones only).
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| {
            v.len() == SESSION_PREFIX.len() + 64
                && v.starts_with(SESSION_PREFIX)
                && v[SESSION_PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
        })
}

/// Resolves a session secret to its user, or UNAUTHENTICATED when it is unknown, revoked or
/// expired.
pub async fn authenticate_session(store: &Store, secret: &str) -> Result<Principal, ApiError> {
    match store
        .user_by_session_hash(&hash_session(secret), Utc::now())
        .await?
    {
        Some(user) => Ok(Principal { user }),
        None => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the session has ended; sign in again",
        )),
    }
}

/// Authenticates a request by its session cookie and checks its CSRF header. `Ok(None)` when
/// the request carries no session cookie.
pub async fn authenticate_request(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !same(sent, &csrf_token(&secret)) {
        return Err(ApiError::forbidden(
            "a request signed in by the session cookie must carry its X-CSRF-Token",
        ));
    }
    authenticate_session(store, &secret).await.map(Some)
}

/// Whether the request's `Origin` is this server (scheme-less comparison with `Host`): the
/// check for state-changing form posts and for WebSocket upgrades that use the cookie.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// The `Set-Cookie` value that stores a session for `max_age`.
pub fn session_cookie(secret: &str, max_age: std::time::Duration, secure: bool) -> HeaderValue {
    let cookie = cookie::Cookie::build((COOKIE, secret.to_owned()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn cleared_cookie(secure: bool) -> HeaderValue {
    session_cookie("", std::time::Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("correct horsf", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn short_and_huge_passwords_are_refused_before_hashing() {
        assert!(hash_password("short").is_err());
        assert!(hash_password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let v = session_cookie("glls_x", std::time::Duration::from_secs(60), false);
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite=Strict") && v.contains("Path=/"));
        assert!(!v.contains("Secure"));
        let secret = generate_session_secret();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={secret}")).unwrap(),
        );
        assert_eq!(session_secret(&headers).as_deref(), Some(secret.as_str()));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}=glls_nothex")).unwrap(),
        );
        assert_eq!(session_secret(&headers), None);
    }

    #[test]
    fn origin_must_name_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
    }
}
