//! The article aggregate: its state, and how each event changes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventData};
pub use crate::kinds::Status;
use crate::values::{ArticleContent, ArticleId, RevisionNumber, UserId, Version};

/// An approval: who approved which revision, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The revision approved. The approval is stale once a later revision exists.
    pub revision: RevisionNumber,
    /// The reviewer.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
}

/// The state of one article, folded from its events by [`evolve`]. `Article::default()` is an
/// article that does not exist yet (version 0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Article {
    /// The id, once created.
    pub id: Option<ArticleId>,
    /// The number of events in the stream.
    pub version: Version,
    /// The status of the working copy.
    pub status: Status,
    /// The content of every revision, oldest first; revision N is at index N-1. Kept whole
    /// because restoring revision N needs its content and history is never rewritten.
    pub revisions: Vec<ArticleContent>,
    /// The revision readers see, if any.
    pub live_revision: Option<RevisionNumber>,
    /// The latest approval, current or stale.
    pub approval: Option<Approval>,
    /// The publication may not happen before this time, unless lifted.
    pub embargo_until: Option<DateTime<Utc>>,
    /// When the scheduler will publish, while SCHEDULED.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The correction note the scheduled publication will carry.
    pub scheduled_correction: Option<String>,
    /// Why the due scheduled publication could not happen ("CODE: message"), from the last
    /// `PublicationBlocked`; cleared when the article leaves SCHEDULED or is rescheduled.
    #[serde(default)]
    pub schedule_blocked: Option<String>,
    /// Users who created or revised the article, in order of first contribution.
    pub authors: Vec<UserId>,
    /// Reviewers assigned, in order of assignment.
    pub reviewers: Vec<UserId>,
    /// When the article was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was first submitted for review.
    pub first_submitted_at: Option<DateTime<Utc>>,
    /// When it was last submitted for review.
    pub submitted_at: Option<DateTime<Utc>>,
    /// When it first went live.
    pub first_published_at: Option<DateTime<Utc>>,
    /// When it last went live.
    pub last_published_at: Option<DateTime<Utc>>,
    /// When the last event happened.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Article {
    /// Folds a whole stream into the article it describes.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Article {
        events.into_iter().fold(Article::default(), evolve)
    }

    /// Whether the article has been created.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The number of the current working revision (0 before creation).
    pub fn revision(&self) -> RevisionNumber {
        RevisionNumber(u32::try_from(self.revisions.len()).unwrap_or(u32::MAX))
    }

    /// The content of the current working revision.
    pub fn content(&self) -> Option<&ArticleContent> {
        self.revisions.last()
    }

    /// The content of revision `n`, if it exists.
    pub fn revision_content(&self, n: RevisionNumber) -> Option<&ArticleContent> {
        (n.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.revisions.get(i))
    }

    /// Whether the current revision carries an approval that is not stale.
    pub fn is_current_revision_approved(&self) -> bool {
        self.approval
            .as_ref()
            .is_some_and(|a| a.revision == self.revision())
    }

    /// Whether a revision is live while a newer working revision exists.
    pub fn has_unpublished_changes(&self) -> bool {
        self.live_revision
            .is_some_and(|live| live != self.revision())
    }

    fn add_author(&mut self, user: UserId) {
        if !user.is_system() && !self.authors.contains(&user) {
            self.authors.push(user);
        }
    }
}

/// Applies one event to the article. It never fails and holds no rule: every rule lives in
/// [`crate::decide`], which only produces events this function can apply.
pub fn evolve(mut article: Article, event: &Event) -> Article {
    article.version = article.version.next();
    article.updated_at = Some(event.at);
    match &event.data {
        EventData::ArticleCreated {
            article_id,
            content,
            ..
        } => {
            article.id = Some(*article_id);
            article.status = Status::Draft;
            article.revisions = vec![content.clone()];
            article.created_at = Some(event.at);
            article.add_author(event.actor);
        }
        EventData::DraftRevised { content, .. } | EventData::RevisionRestored { content, .. } => {
            article.revisions.push(content.clone());
            article.status = Status::Draft;
            article.scheduled_for = None;
            article.scheduled_correction = None;
            article.add_author(event.actor);
        }
        EventData::SubmittedForReview { .. } => {
            article.status = Status::InReview;
            // A submission asks for a fresh review, even of a revision approved before (an
            // unpublished article going back to review).
            article.approval = None;
            article.first_submitted_at.get_or_insert(event.at);
            article.submitted_at = Some(event.at);
        }
        EventData::SubmissionWithdrawn { .. } => article.status = Status::Draft,
        EventData::ReviewerAssigned { reviewer } => {
            if !article.reviewers.contains(reviewer) {
                article.reviewers.push(*reviewer);
            }
        }
        EventData::ReviewerUnassigned { reviewer } => {
            article.reviewers.retain(|r| r != reviewer);
        }
        EventData::PublicationBlocked { code, reason, .. } => {
            article.schedule_blocked = Some(blocked_note(code, reason));
        }
        EventData::ReviewCommentAdded { .. } => {}
        EventData::ChangesRequested { .. } => article.status = Status::ChangesRequested,
        EventData::RevisionApproved { revision } => {
            article.status = Status::Approved;
            article.approval = Some(Approval {
                revision: *revision,
                by: event.actor,
                at: event.at,
            });
        }
        EventData::PublicationScheduled {
            publish_at,
            correction,
            ..
        } => {
            article.status = Status::Scheduled;
            article.scheduled_for = Some(*publish_at);
            article.scheduled_correction = correction.clone();
            article.schedule_blocked = None;
        }
        EventData::ScheduleCancelled { .. } => {
            article.status = Status::Approved;
            article.scheduled_for = None;
            article.scheduled_correction = None;
        }
        EventData::ArticlePublished { revision, .. } => {
            article.status = Status::Published;
            article.live_revision = Some(*revision);
            article.scheduled_for = None;
            article.scheduled_correction = None;
            article.first_published_at.get_or_insert(event.at);
            article.last_published_at = Some(event.at);
        }
        EventData::ArticleUnpublished { .. } => {
            article.live_revision = None;
            if article.status == Status::Published {
                article.status = Status::Unpublished;
            }
        }
        EventData::EmbargoSet { until } => article.embargo_until = Some(*until),
        EventData::EmbargoLifted { .. } => article.embargo_until = None,
        EventData::ArticleArchived {} => article.status = Status::Archived,
        EventData::ArticleRestored {} => {
            article.status = Status::Draft;
            article.approval = None;
        }
    }
    // The note explains an overdue schedule; it ends with the schedule.
    if article.status != Status::Scheduled {
        article.schedule_blocked = None;
    }
    article
}

/// How a blocked publication's cause is shown: the error code, then its message.
pub fn blocked_note(code: &str, reason: &str) -> String {
    format!("{code}: {reason}")
}
