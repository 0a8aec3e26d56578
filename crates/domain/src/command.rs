//! Commands: what a user (or the scheduler) asks to happen to an article.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{Actor, ArticleId, CommentId, ContentDraft, RevisionNumber, UserId, Version};

/// A command with everything [`crate::decide`] needs: the article, the version the caller
/// expects, who acts, and the time. The domain reads no clock and makes no ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The article the command is for.
    pub article_id: ArticleId,
    /// The stream version the caller last saw; any other current version is a conflict.
    pub expected_version: Version,
    /// Who issues the command.
    pub actor: Actor,
    /// The server's time when the command was received.
    pub now: DateTime<Utc>,
    /// What to do.
    pub action: Action,
}

/// The workflow commands of DESIGN.md §3, one per GraphQL mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "command",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Create the article with its first revision (EDITOR).
    CreateArticle {
        /// The first revision's content.
        content: ContentDraft,
    },
    /// Write a new revision of the working copy (EDITOR).
    ReviseDraft {
        /// The new revision's content.
        content: ContentDraft,
    },
    /// Submit the current revision for review (EDITOR).
    SubmitForReview,
    /// Take a submission back (EDITOR).
    WithdrawSubmission,
    /// Assign a reviewer (EDITOR or REVIEWER).
    AssignReviewer {
        /// The reviewer to assign.
        reviewer: UserId,
    },
    /// Take an assigned reviewer off the article (EDITOR or REVIEWER).
    UnassignReviewer {
        /// The reviewer to unassign.
        reviewer: UserId,
    },
    /// Attach a comment to a revision (REVIEWER or EDITOR).
    AddReviewComment {
        /// The new comment's id, made by the caller.
        comment_id: CommentId,
        /// The revision commented on.
        revision: RevisionNumber,
        /// The comment text.
        body: String,
    },
    /// Send the revision under review back (REVIEWER).
    RequestChanges {
        /// Why; required.
        reason: String,
    },
    /// Approve exactly this revision (REVIEWER, not an author).
    ApproveRevision {
        /// The revision approved; must be the current one.
        revision: RevisionNumber,
    },
    /// Publish the approved revision now (PUBLISHER).
    PublishNow {
        /// A public correction note, for a re-publication.
        correction: Option<String>,
    },
    /// Schedule the approved revision for publication (PUBLISHER).
    SchedulePublication {
        /// When to publish; must be in the future.
        publish_at: DateTime<Utc>,
        /// A public correction note, for a re-publication.
        correction: Option<String>,
    },
    /// Call off a scheduled publication (PUBLISHER).
    CancelSchedule,
    /// Publish a scheduled article that fell due (the system actor only). When it cannot go
    /// out (an embargo in force, a stale approval) the first attempt for each cause records
    /// a `PublicationBlocked` event instead; later attempts for the same cause are refused.
    PublishDue,
    /// Take the live revision down (PUBLISHER).
    UnpublishArticle {
        /// Why; required.
        reason: String,
    },
    /// Embargo the article until a time (EDITOR or PUBLISHER).
    SetEmbargo {
        /// Until when; must be in the future.
        until: DateTime<Utc>,
    },
    /// Lift the embargo (ADMIN).
    LiftEmbargo {
        /// Why; required.
        reason: String,
    },
    /// Archive the article (PUBLISHER or ADMIN), not while live.
    ArchiveArticle,
    /// Bring an archived article back as a draft (PUBLISHER or ADMIN).
    RestoreArticle,
    /// Make an old revision's content the new current revision (EDITOR).
    RestoreRevision {
        /// The old revision.
        revision: RevisionNumber,
    },
}

impl Action {
    /// The command's name as the API knows it (the mutation name).
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateArticle { .. } => "createArticle",
            Action::ReviseDraft { .. } => "reviseDraft",
            Action::SubmitForReview => "submitForReview",
            Action::WithdrawSubmission => "withdrawSubmission",
            Action::AssignReviewer { .. } => "assignReviewer",
            Action::UnassignReviewer { .. } => "unassignReviewer",
            Action::AddReviewComment { .. } => "addReviewComment",
            Action::RequestChanges { .. } => "requestChanges",
            Action::ApproveRevision { .. } => "approveRevision",
            Action::PublishNow { .. } => "publishArticle",
            Action::SchedulePublication { .. } => "schedulePublication",
            Action::CancelSchedule => "cancelSchedule",
            Action::PublishDue => "publishDue",
            Action::UnpublishArticle { .. } => "unpublishArticle",
            Action::SetEmbargo { .. } => "setEmbargo",
            Action::LiftEmbargo { .. } => "liftEmbargo",
            Action::ArchiveArticle => "archiveArticle",
            Action::RestoreArticle => "restoreArticle",
            Action::RestoreRevision { .. } => "restoreRevision",
        }
    }
}
