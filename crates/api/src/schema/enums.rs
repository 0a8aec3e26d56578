//! The enums that several object and input types share, each mirroring a domain enum with
//! `#[graphql(remote = …)]`. A leaf.

use async_graphql::Enum;

/// The status of an article's working copy.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ArticleStatus", remote = "galley_domain::Status")]
pub enum GqlStatus {
    /// Being written.
    Draft,
    /// Submitted, waiting for a reviewer.
    InReview,
    /// Sent back by a reviewer.
    ChangesRequested,
    /// The current revision is approved and may be published.
    Approved,
    /// Approved and due to be published at `scheduledFor`.
    Scheduled,
    /// The current revision is live.
    Published,
    /// Was live and was taken down.
    Unpublished,
    /// Put away.
    Archived,
}

/// What a user may do. ADMIN may do everything.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role", remote = "galley_domain::Role")]
pub enum GqlRole {
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
