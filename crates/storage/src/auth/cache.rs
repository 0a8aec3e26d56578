//! The token cache: recent successful token lookups, emptied by every revocation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::UserRecord;

/// How long a successful token lookup is reused by default.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most cached lookups; a full cache is emptied (it refills with the tokens in use).
const TOKEN_CACHE_MAX: usize = 10_000;

/// The channel revocations notify on PostgreSQL.
pub(crate) const TOKENS_CHANNEL: &str = "galley_tokens";

/// Recent successful token lookups, by token hash.
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    state: Mutex<CacheState>,
    /// Bumped with every [`TokenCache::clear`], so that long-lived holders of a token (open
    /// WebSocket connections) check it again at once when a revocation may have happened.
    revocations: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct CacheState {
    entries: HashMap<String, (UserRecord, Instant)>,
    /// Bumped by every [`TokenCache::clear`], so that a lookup that raced a revocation does
    /// not put back what the revocation removed.
    generation: u64,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            state: Mutex::new(CacheState::default()),
            revocations: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached user, or the generation to hand to [`TokenCache::put`] after a lookup.
    pub(crate) fn get(&self, token_hash: &str) -> Result<UserRecord, u64> {
        let state = self.lock();
        match state.entries.get(token_hash) {
            Some((user, at)) if at.elapsed() < self.ttl => Ok(user.clone()),
            _ => Err(state.generation),
        }
    }

    pub(crate) fn put(&self, token_hash: &str, user: &UserRecord, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= TOKEN_CACHE_MAX {
            state.entries.clear();
        }
        state
            .entries
            .insert(token_hash.to_owned(), (user.clone(), Instant::now()));
    }

    /// Forgets every lookup (a token was revoked, or revocations may have been missed).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
        let generation = state.generation;
        drop(state);
        self.revocations.send_replace(generation);
    }

    /// How long a lookup is reused.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    pub(crate) fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }
}
