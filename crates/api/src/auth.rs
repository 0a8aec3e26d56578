//! Authentication: opaque bearer tokens, stored as SHA-256 hashes, and the caller they name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use galley_domain::{Actor, Role, UserId};
use galley_storage::{Store, UserRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

/// The prefix of every token, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "glly_";

/// A new random token: the prefix and 32 random bytes in hex. It is shown once; only its hash
/// is stored.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token: SHA-256, lowercase hex. A fast hash is right here because the
/// token carries 256 bits of randomness; there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The authenticated caller of a request or WebSocket connection.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user, as stored.
    pub user: UserRecord,
}

impl Principal {
    /// The actor the domain sees.
    pub fn actor(&self) -> Actor {
        Actor::user(self.user.id, self.user.roles.iter().copied())
    }

    /// The user's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }

    /// Whether the user holds `role` (ADMIN holds every role).
    pub fn has(&self, role: Role) -> bool {
        self.actor().has(role)
    }

    /// Fails with FORBIDDEN unless the user holds `role`.
    pub fn require(&self, role: Role, what: &str) -> Result<(), ApiError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} requires the role {role}"
            )))
        }
    }
}

/// Resolves a token to its user, or UNAUTHENTICATED.
pub async fn authenticate(store: &Store, token: Option<&str>) -> Result<Principal, ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "authentication required: send Authorization: Bearer <token>",
        ));
    };
    match store.user_by_token_hash(&hash_token(token)).await? {
        Some(user) => Ok(Principal { user }),
        None => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the token is unknown or revoked",
        )),
    }
}

/// A token bucket per user: `burst` requests at once, refilled at `per_second`. The key is the
/// authenticated user, which is only known after the token lookup, so this sits inside the
/// handler rather than in a tower layer keyed on the connection.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// Remaining tokens and the time of the last refill, per user.
    buckets: Mutex<HashMap<UserId, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter; `per_second == 0` disables it.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the user's bucket; `Err` holds how long to wait.
    pub fn check(&self, user: UserId) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget idle users rather than grow without bound; a forgotten user starts full.
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, last) = buckets.entry(user).or_insert((self.burst, now));
        let refilled =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / self.per_second))
        }
    }
}

/// The RATE_LIMITED error.
pub fn rate_limited(retry_after: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "too many requests; retry after {} ms",
            retry_after.as_millis().max(1)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_random_hex_and_hashes_to_sha256_hex() {
        let token = generate_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(token, generate_token());
        assert_eq!(hash_token(&token).len(), 64);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn the_limiter_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(1, 3);
        let user = UserId::SYSTEM;
        assert!((0..3).all(|_| limiter.check(user).is_ok()));
        assert!(limiter.check(user).is_err());
    }
}
