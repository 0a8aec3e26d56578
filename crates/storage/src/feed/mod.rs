//! The live feed: the doorbell ([`bell`]), the PostgreSQL listener that rings it for other
//! processes' appends ([`listener`]), and the subscriptions, which share one log read per
//! commit ([`shared`]).
//!
//! Appends on this process ring the doorbell after commit. On PostgreSQL, a listener task per
//! store hears the channels it is given (`NOTIFY galley_events`, sent by appends of any process
//! at their commit, and the token revocations' channel) and hands each notification, and every
//! moment when notifications may have been missed (a reconnection), to a [`Listener`]: the
//! store, which rings the doorbell and empties its token cache. The feed knows nothing of what
//! the store does with them.

pub(crate) mod bell;
pub(crate) mod listener;
pub(crate) mod shared;

pub(crate) use listener::{listen_postgres, Listener};
pub(crate) use shared::{Feed, TAIL_EVENTS};
