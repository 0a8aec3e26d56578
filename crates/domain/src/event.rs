//! Events: what happened to an article, in the past tense.
//!
//! The type string (the variant name) and [`SCHEMA_VERSION`] are a persisted contract: an event
//! written today must be readable forever. Renaming a variant or changing a payload needs an
//! upcaster in [`EventData::from_stored`], which every read path goes through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{ArticleContent, ArticleId, CommentId, RevisionNumber, UserId};

/// The schema version written with every event of this code base.
pub const SCHEMA_VERSION: u32 = 1;

/// One event of an article's stream, with the time it happened and who caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the command that produced the event was accepted (the server clock).
    pub at: DateTime<Utc>,
    /// Who issued the command ([`UserId::SYSTEM`] for the scheduler).
    pub actor: UserId,
    /// What happened.
    pub data: EventData,
}

/// Why a scheduled publication was called off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelCause {
    /// A publisher cancelled it.
    Cancelled,
    /// The draft was revised (or an old revision restored), so the approval no longer holds.
    DraftRevised,
}

/// How a publication came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublishTrigger {
    /// A publisher published it now.
    Now,
    /// The scheduler published it when it fell due.
    Schedule,
}

/// The payload of an event. The variant name is the stored type string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all_fields = "camelCase")]
pub enum EventData {
    /// The article was created with its first revision.
    ArticleCreated {
        /// The article (and stream) id.
        article_id: ArticleId,
        /// Always revision 1.
        revision: RevisionNumber,
        /// The full content of revision 1.
        content: ArticleContent,
    },
    /// A new revision of the working copy was written.
    DraftRevised {
        /// The new revision's number.
        revision: RevisionNumber,
        /// Its full content.
        content: ArticleContent,
    },
    /// The current revision was submitted for review.
    SubmittedForReview {
        /// The revision submitted.
        revision: RevisionNumber,
    },
    /// The editor took the submission back.
    SubmissionWithdrawn {
        /// The revision that was under review.
        revision: RevisionNumber,
    },
    /// A reviewer was assigned.
    ReviewerAssigned {
        /// The reviewer.
        reviewer: UserId,
    },
    /// An assigned reviewer was taken off the article.
    ReviewerUnassigned {
        /// The reviewer.
        reviewer: UserId,
    },
    /// A review comment was attached to a revision.
    ReviewCommentAdded {
        /// The comment's id.
        comment_id: CommentId,
        /// The revision commented on.
        revision: RevisionNumber,
        /// The comment text.
        body: String,
    },
    /// A reviewer sent the revision back with a reason.
    ChangesRequested {
        /// The revision sent back.
        revision: RevisionNumber,
        /// Why.
        reason: String,
    },
    /// A reviewer approved exactly this revision.
    RevisionApproved {
        /// The revision approved.
        revision: RevisionNumber,
    },
    /// Publication was scheduled for a future time.
    PublicationScheduled {
        /// The revision to publish.
        revision: RevisionNumber,
        /// When.
        publish_at: DateTime<Utc>,
        /// The public correction note it will carry, if any.
        correction: Option<String>,
    },
    /// A scheduled publication was called off.
    ScheduleCancelled {
        /// The revision that was scheduled.
        revision: RevisionNumber,
        /// The time it was scheduled for.
        publish_at: DateTime<Utc>,
        /// Why.
        cause: CancelCause,
    },
    /// A scheduled publication fell due and could not happen. Recorded once per cause (the
    /// same refusal again is not recorded), so the log says why an article is overdue.
    PublicationBlocked {
        /// The revision that was scheduled.
        revision: RevisionNumber,
        /// The time it was scheduled for.
        publish_at: DateTime<Utc>,
        /// The stable error code of the refusal (`EMBARGOED`, `INVALID_TRANSITION`).
        code: String,
        /// The refusal's message.
        reason: String,
    },
    /// A revision went live.
    ArticlePublished {
        /// The revision now live.
        revision: RevisionNumber,
        /// The revision it replaced, if the article was live already.
        previous_live: Option<RevisionNumber>,
        /// The public correction note, if any.
        correction: Option<String>,
        /// Whether a publisher or the scheduler published it.
        trigger: PublishTrigger,
    },
    /// The live revision was taken down.
    ArticleUnpublished {
        /// The revision that was live.
        revision: RevisionNumber,
        /// Why.
        reason: String,
    },
    /// An embargo was set.
    EmbargoSet {
        /// Until when the article may not be published.
        until: DateTime<Utc>,
    },
    /// An admin lifted the embargo.
    EmbargoLifted {
        /// The embargo time that was lifted.
        until: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// The article was archived.
    ArticleArchived {},
    /// The article was brought back from the archive as a draft.
    ArticleRestored {},
    /// An old revision's content was restored as a new revision.
    RevisionRestored {
        /// The new revision's number.
        revision: RevisionNumber,
        /// The old revision whose content it carries.
        from: RevisionNumber,
        /// Its full content.
        content: ArticleContent,
    },
}

/// An event read back from storage that this code cannot understand.
#[derive(Debug, thiserror::Error)]
#[error("cannot read event {event_type} (schema version {schema_version}): {reason}")]
pub struct UpcastError {
    /// The stored type string.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// What went wrong.
    pub reason: String,
}

impl EventData {
    /// Every type string this code base writes.
    pub const TYPES: [&'static str; 19] = [
        "ArticleCreated",
        "DraftRevised",
        "SubmittedForReview",
        "SubmissionWithdrawn",
        "ReviewerAssigned",
        "ReviewerUnassigned",
        "ReviewCommentAdded",
        "ChangesRequested",
        "RevisionApproved",
        "PublicationScheduled",
        "ScheduleCancelled",
        "PublicationBlocked",
        "ArticlePublished",
        "ArticleUnpublished",
        "EmbargoSet",
        "EmbargoLifted",
        "ArticleArchived",
        "ArticleRestored",
        "RevisionRestored",
    ];

    /// The stable type string stored with the event.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventData::ArticleCreated { .. } => "ArticleCreated",
            EventData::DraftRevised { .. } => "DraftRevised",
            EventData::SubmittedForReview { .. } => "SubmittedForReview",
            EventData::SubmissionWithdrawn { .. } => "SubmissionWithdrawn",
            EventData::ReviewerAssigned { .. } => "ReviewerAssigned",
            EventData::ReviewerUnassigned { .. } => "ReviewerUnassigned",
            EventData::ReviewCommentAdded { .. } => "ReviewCommentAdded",
            EventData::ChangesRequested { .. } => "ChangesRequested",
            EventData::RevisionApproved { .. } => "RevisionApproved",
            EventData::PublicationScheduled { .. } => "PublicationScheduled",
            EventData::ScheduleCancelled { .. } => "ScheduleCancelled",
            EventData::PublicationBlocked { .. } => "PublicationBlocked",
            EventData::ArticlePublished { .. } => "ArticlePublished",
            EventData::ArticleUnpublished { .. } => "ArticleUnpublished",
            EventData::EmbargoSet { .. } => "EmbargoSet",
            EventData::EmbargoLifted { .. } => "EmbargoLifted",
            EventData::ArticleArchived { .. } => "ArticleArchived",
            EventData::ArticleRestored { .. } => "ArticleRestored",
            EventData::RevisionRestored { .. } => "RevisionRestored",
        }
    }

    /// The payload as stored (the JSON object without the type tag).
    pub fn payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map
                .remove("payload")
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            // Serialising plain data with string keys cannot fail; an empty object keeps the
            // function total.
            _ => serde_json::Value::Object(Default::default()),
        }
    }

    /// Reads a stored event, upcasting older schema versions. This is the only way events
    /// are read back, so an upcaster added here applies to every read path.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<EventData, UpcastError> {
        let fail = |reason: String| UpcastError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        if schema_version == 0 || schema_version > SCHEMA_VERSION {
            return Err(fail(format!(
                "unsupported schema version (this build reads 1 to {SCHEMA_VERSION})"
            )));
        }
        serde_json::from_value(serde_json::json!({ "type": event_type, "payload": payload }))
            .map_err(|e| fail(e.to_string()))
    }
}
