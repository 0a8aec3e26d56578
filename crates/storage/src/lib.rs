//! Galley's storage: the append-only event log that is the source of truth, the projections
//! the API reads, and the live feed, on SQLite (embedded default) and PostgreSQL.

mod error;
mod model;
mod store;

pub use error::StoreError;
pub use model::*;
pub use store::*;
