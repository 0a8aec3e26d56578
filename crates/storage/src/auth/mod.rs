//! Who may act: users (the projection of their own append-only log, [`changes`]), their API
//! tokens ([`users`]) with the cache of recent lookups ([`cache`]), and the console's
//! password sign-in sessions ([`sessions`]). Tokens and sessions are operational data, never
//! exported nor rebuilt.

pub(crate) mod cache;
pub(crate) mod changes;
pub(crate) mod rows;
pub(crate) mod sessions;
pub(crate) mod users;
