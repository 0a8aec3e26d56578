//! The pure domain model of Galley: the article aggregate, its commands and events, and every
//! rule of the editorial workflow.
//!
//! [`decide`] takes an article and a command and returns the events to append or a
//! [`DomainError`]; [`evolve`] folds one event into an article and never fails. Invariants:
//! this crate does no IO, reads no clock and makes no ids — time, ids and the acting user
//! arrive inside the [`Command`]. Event type strings and schema versions are a persisted
//! contract (see [`event`]).

mod article;
mod command;
mod decide;
mod error;
pub mod event;
mod kinds;
#[cfg(feature = "testing")]
pub mod testing;
mod values;

pub use article::{blocked_note, evolve, Approval, Article, Status};
pub use command::{Action, Command};
pub use decide::{decide, precheck, required_roles};
pub use error::DomainError;
pub use event::{CancelCause, Event, EventData, PublishTrigger, UpcastError, SCHEMA_VERSION};
pub use values::{
    limits, Actor, ArticleContent, ArticleId, Category, CommentId, ContentDraft, Language,
    RevisionNumber, Role, Slug, Tag, UserId, Version,
};
