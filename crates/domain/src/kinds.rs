//! The plain kinds the rest of the crate names: a stream's version, a user's role and an
//! article's status. This module imports nothing of the crate, so errors (which name them) and
//! values (which validate with errors) both sit above it without a cycle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version of an article's event stream: the number of events it holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The version of a stream that does not exist yet.
    pub const NONE: Version = Version(0);

    /// The version after one more event.
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do. A user may hold several roles; ADMIN may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Reads articles, history and dashboards.
    Viewer,
    /// Creates, revises, submits and withdraws drafts.
    Editor,
    /// Comments on, approves or sends back submitted drafts.
    Reviewer,
    /// Publishes, schedules, unpublishes, archives and restores.
    Publisher,
    /// Everything, including users and embargo lifts.
    Admin,
}

impl Role {
    /// Every role, in order of increasing power.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Editor,
        Role::Reviewer,
        Role::Publisher,
        Role::Admin,
    ];

    /// The stable name of the role, as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "VIEWER",
            Role::Editor => "EDITOR",
            Role::Reviewer => "REVIEWER",
            Role::Publisher => "PUBLISHER",
            Role::Admin => "ADMIN",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of an article's working copy.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Being written.
    #[default]
    Draft,
    /// Submitted, waiting for a reviewer.
    InReview,
    /// Sent back by a reviewer.
    ChangesRequested,
    /// The current revision is approved and may be published.
    Approved,
    /// Approved and due to be published at `scheduled_for`.
    Scheduled,
    /// The current revision is live.
    Published,
    /// Was live and was taken down.
    Unpublished,
    /// Put away; restore brings it back as a draft.
    Archived,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 8] = [
        Status::Draft,
        Status::InReview,
        Status::ChangesRequested,
        Status::Approved,
        Status::Scheduled,
        Status::Published,
        Status::Unpublished,
        Status::Archived,
    ];

    /// The stable name of the status, as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Draft => "DRAFT",
            Status::InReview => "IN_REVIEW",
            Status::ChangesRequested => "CHANGES_REQUESTED",
            Status::Approved => "APPROVED",
            Status::Scheduled => "SCHEDULED",
            Status::Published => "PUBLISHED",
            Status::Unpublished => "UNPUBLISHED",
            Status::Archived => "ARCHIVED",
        }
    }

    /// Parses a stored status name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
