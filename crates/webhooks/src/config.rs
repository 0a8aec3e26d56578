//! What the operator decides about webhooks (`galley serve --webhook-…`, `GALLEY_WEBHOOK_…`).

use std::time::Duration;

use crate::guard::AddressPolicy;

/// The operator's webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Whether this process dispatches (every replica may; on PostgreSQL the leases make
    /// sure one dispatches each endpoint).
    pub dispatch: bool,
    /// Whether `http://` urls are accepted (for receivers on a trusted network or in tests);
    /// otherwise only `https://`.
    pub allow_http: bool,
    /// Which addresses deliveries may reach besides public ones.
    pub addresses: AddressPolicy,
    /// Longest wait for a receiver's connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest an attempt may take, from sending the request to the end of the (capped)
    /// answer.
    pub timeout: Duration,
    /// The first retry waits up to this long; each next one up to twice as long as the one
    /// before (full jitter: a uniformly random time from zero to that bound).
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_cap: Duration,
    /// An endpoint whose deliveries have failed for this long, without a success in between,
    /// is DISABLED until an admin resumes it.
    pub disable_after: Duration,
    /// How often a process looks for endpoints no process dispatches (the longest a dead
    /// replica's endpoints wait to be taken over), and how often a waiting dispatcher reads
    /// its endpoint again to notice another replica's admin changes.
    pub scan_interval: Duration,
}

impl Default for WebhookConfig {
    /// https only, public addresses only, a 5 s connect and 10 s total timeout, retries from
    /// 1 s up to 10 minutes apart, disabled after 3 days of failures, a 2 s scan.
    fn default() -> Self {
        WebhookConfig {
            dispatch: true,
            allow_http: false,
            addresses: AddressPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(600),
            disable_after: Duration::from_secs(3 * 24 * 60 * 60),
            scan_interval: Duration::from_secs(2),
        }
    }
}
