//! Throttling of failed console sign-ins, per user name and per client address.
//!
//! Each key counts failures in a fixed window that starts at its first failure. While a key has
//! `max_failures` in its window, sign-ins for it are refused with 429 and `Retry-After` (the
//! rest of the window) before any password is hashed, so guessing costs the guesser time and
//! the server nothing. A success clears the name's count. Memory is bounded: each table holds
//! at most `max_keys` entries; when full, expired windows are dropped, then the oldest entry.
//!
//! This is separate from the bearer-token throttle in `auth.rs`: a sign-in is keyed by a name
//! that may not exist and by the address, not by an authenticated user.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    /// Failures allowed per user name in a window.
    pub per_name: u32,
    /// Failures allowed per client address in a window.
    pub per_address: u32,
    /// How long a window lasts.
    pub window: Duration,
    /// Most keys remembered per table.
    pub max_keys: usize,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            per_name: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            max_keys: 10_000,
        }
    }
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, (u32, Instant)>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            entries: HashMap::new(),
        }
    }

    /// How long `key` must wait, if it is at `max` failures in a live window.
    fn wait(&self, key: &K, max: u32, window: Duration, now: Instant) -> Option<Duration> {
        let (count, since) = self.entries.get(key)?;
        let left = window.checked_sub(now.duration_since(*since))?;
        (*count >= max && !left.is_zero()).then_some(left)
    }

    fn fail(&mut self, key: K, window: Duration, max_keys: usize, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= max_keys {
            self.entries
                .retain(|_, (_, since)| now.duration_since(*since) < window);
            if self.entries.len() >= max_keys {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        let entry = self.entries.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

/// Failed sign-ins by user name and by client address.
#[derive(Debug)]
pub struct SignInThrottle {
    limits: SignInLimits,
    names: Mutex<Table<String>>,
    addresses: Mutex<Table<IpAddr>>,
}

/// Longest name key kept, in characters (the longest a user name can be), so a flood of huge
/// names cannot make the table large.
const NAME_KEY_MAX_CHARS: usize = 64;

/// The key of a user name: case-folded, so "Edith" and "edith" share a count, and cut to
/// [`NAME_KEY_MAX_CHARS`].
fn name_key(name: &str) -> String {
    name.trim()
        .chars()
        .take(NAME_KEY_MAX_CHARS)
        .collect::<String>()
        .to_lowercase()
}

impl SignInThrottle {
    /// A throttle with these limits.
    pub fn new(limits: SignInLimits) -> SignInThrottle {
        SignInThrottle {
            limits,
            names: Mutex::new(Table::new()),
            addresses: Mutex::new(Table::new()),
        }
    }

    /// `Err(wait)` when sign-ins for this name or from this address are refused for now.
    pub fn check(&self, name: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let l = self.limits;
        let by_name = self.names.lock().unwrap_or_else(|e| e.into_inner()).wait(
            &name_key(name),
            l.per_name,
            l.window,
            now,
        );
        let by_address = address.and_then(|a| {
            self.addresses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .wait(&a, l.per_address, l.window, now)
        });
        match by_name.max(by_address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, name: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let l = self.limits;
        self.names.lock().unwrap_or_else(|e| e.into_inner()).fail(
            name_key(name),
            l.window,
            l.max_keys,
            now,
        );
        if let Some(a) = address {
            self.addresses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fail(a, l.window, l.max_keys, now);
        }
    }

    /// Forgets the name's failures after a successful sign-in (the address keeps its count).
    pub fn succeeded(&self, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .remove(&name_key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_keys: usize) -> SignInLimits {
        SignInLimits {
            per_name: 3,
            per_address: 5,
            window: Duration::from_secs(60),
            max_keys,
        }
    }

    #[test]
    fn a_name_is_refused_after_its_failures_and_cleared_by_a_success() {
        let t = SignInThrottle::new(limits(100));
        for _ in 0..3 {
            assert!(t.check("Edith", None).is_ok());
            t.failed("Edith", None);
        }
        let wait = t.check("edith", None).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(t.check("rob", None).is_ok());
        t.succeeded("EDITH");
        assert!(t.check("edith", None).is_ok());
    }

    #[test]
    fn an_address_is_refused_whatever_names_it_tries() {
        let t = SignInThrottle::new(limits(100));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..5 {
            t.failed(&format!("user{i}"), Some(a));
        }
        assert!(t.check("someone-else", Some(a)).is_err());
        assert!(t
            .check("someone-else", Some("10.0.0.2".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let t = SignInThrottle::new(limits(50));
        for i in 0..1_000 {
            t.failed(&format!("n{i}"), None);
        }
        assert_eq!(t.names.lock().unwrap().entries.len(), 50);
        // The newest keys are the ones kept.
        assert!(t.names.lock().unwrap().entries.contains_key("n999"));
        // A huge name is kept as a short key.
        t.failed(&"x".repeat(100_000), None);
        assert!(t
            .names
            .lock()
            .unwrap()
            .entries
            .keys()
            .all(|k| k.len() <= 64));
    }
}
