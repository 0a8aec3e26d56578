//! Authentication: opaque bearer tokens, stored as SHA-256 hashes, and the caller they name.

use std::collections::HashMap;
use std::net::IpAddr;
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

/// Failed authentications per client address: a token bucket of `burst` failures, refilled
/// at `per_minute`. Only failures take from it, and it is consulted only after a lookup
/// failed, so a valid token is never slowed, even from an address that is throttled: the
/// throttle changes a failure's answer from 401 to 429 with Retry-After, which is what a
/// credential-guessing client must respect. IPv6 addresses count by /64, the block a single
/// host is usually given. At most `max_addresses` are remembered; when that many are fresh,
/// further addresses share one bucket, so memory stays bounded whatever the spread of
/// addresses.
#[derive(Debug)]
pub struct FailureThrottle {
    burst: f64,
    per_second: f64,
    max_addresses: usize,
    /// Remaining failures and the time of the last refill, per address (`None`: the shared
    /// bucket of addresses beyond `max_addresses`).
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

impl FailureThrottle {
    /// A throttle; `burst == 0` or `per_minute == 0` turns it off.
    pub fn new(burst: u32, per_minute: u32, max_addresses: usize) -> FailureThrottle {
        FailureThrottle {
            burst: if per_minute == 0 {
                0.0
            } else {
                f64::from(burst)
            },
            per_second: f64::from(per_minute) / 60.0,
            max_addresses: max_addresses.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn key(addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
            v4 => v4,
        }
    }

    fn refilled(&self, (tokens, last): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst)
    }

    fn wait(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.per_second).max(0.001))
    }

    /// `Err` with how long to wait when `addr` has no failures left (nothing is taken).
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        if self.burst <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key = Some(Self::key(addr));
        let bucket = buckets.get(&key).or_else(|| {
            (buckets.len() >= self.max_addresses)
                .then(|| buckets.get(&None))
                .flatten()
        });
        match bucket {
            Some(&bucket) if self.refilled(bucket, now) < 1.0 => {
                Err(self.wait(self.refilled(bucket, now)))
            }
            _ => Ok(()),
        }
    }

    /// Records a failed authentication from `addr`; `Err` with how long to wait when its
    /// budget was already spent.
    pub fn failed(&self, addr: IpAddr) -> Result<(), Duration> {
        if self.burst <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = Some(Self::key(addr));
        if !buckets.contains_key(&key) && buckets.len() >= self.max_addresses {
            // Forget addresses whose budget is whole again; if none is, share a bucket.
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            if buckets.len() >= self.max_addresses {
                key = None;
            }
        }
        let bucket = buckets.entry(key).or_insert((self.burst, now));
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(self.wait(tokens))
        }
    }

    /// How many addresses are remembered (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
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
    fn failures_are_throttled_per_address_and_memory_stays_bounded() {
        let throttle = FailureThrottle::new(2, 1, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(throttle.failed(a).is_ok());
        assert!(throttle.failed(a).is_ok());
        assert!(throttle.check(a).is_err());
        let wait = throttle.failed(a).unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        // Another address has its own budget; one /64 is one address.
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(throttle.failed(b).is_ok());
        assert!(throttle.failed(b2).is_ok());
        assert!(throttle.failed(b).is_err());
        // Past the cap, new addresses share one bucket instead of growing the map.
        for i in 0..100u8 {
            let _ = throttle.failed(IpAddr::from([198, 51, 100, i]));
        }
        assert!(
            throttle.tracked() <= 4,
            "three addresses and the shared bucket"
        );
        assert!(throttle.check(IpAddr::from([198, 51, 100, 200])).is_err());
    }

    #[test]
    fn the_limiter_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(1, 3);
        let user = UserId::SYSTEM;
        assert!((0..3).all(|_| limiter.check(user).is_ok()));
        assert!(limiter.check(user).is_err());
    }
}
