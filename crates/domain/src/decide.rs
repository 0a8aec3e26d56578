//! Every rule of the editorial workflow (DESIGN.md §3) lives in [`decide`].

use crate::article::{blocked_note, Article, Status};
use crate::command::{Action, Command};
use crate::error::DomainError;
use crate::event::{CancelCause, Event, EventData, PublishTrigger};
use crate::values::{check_sizes, limits, Actor, ArticleContent, RevisionNumber, Role, Version};

/// Decides what a command does to an article: the events to append, or why not.
///
/// Checks run in a fixed order so that callers can rely on the error they get: the actor's
/// roles (FORBIDDEN), the article's existence (NOT_FOUND), the expected version (CONFLICT), the
/// status (INVALID_TRANSITION), then the command's fields and the remaining rules.
pub fn decide(article: &Article, command: Command) -> Result<Vec<Event>, DomainError> {
    let Command {
        article_id,
        expected_version,
        actor,
        now,
        action,
    } = command;
    let name = action.name();

    check_roles(&actor, &action)?;

    // Existence and version.
    let creating = matches!(action, Action::CreateArticle { .. });
    if !creating && !article.exists() {
        return Err(DomainError::NotFound);
    }
    if article.version != expected_version {
        return Err(DomainError::Conflict {
            expected: expected_version,
            current: article.version,
        });
    }
    if creating && article.exists() {
        // A create names the current version of an article that exists: still a conflict, since
        // a create always expects an empty stream and must never overwrite an article.
        return Err(DomainError::Conflict {
            expected: Version::NONE,
            current: article.version,
        });
    }

    let status = article.status;
    let refuse = |detail: Option<&str>| DomainError::InvalidTransition {
        command: name,
        status,
        detail: detail.map(str::to_owned),
    };
    let event = |data: EventData| Event {
        at: now,
        actor: actor.user,
        data,
    };
    let current = article.revision();

    let data = match action {
        Action::CreateArticle { content } => {
            let content = ArticleContent::new(content)?;
            vec![EventData::ArticleCreated {
                article_id,
                revision: RevisionNumber::FIRST,
                content,
            }]
        }
        Action::ReviseDraft { content } => {
            let mut events = revise_preamble(article, name)?;
            let slug_given = content
                .slug
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty());
            let mut content = ArticleContent::new(content)?;
            // Once an article has been live its URL is public: a revision that names no slug
            // keeps the current one instead of deriving a new one from an edited headline.
            if !slug_given && article.first_published_at.is_some() {
                if let Some(slug) = article.content().and_then(|c| c.slug.clone()) {
                    content.slug = Some(slug);
                }
            }
            events.push(EventData::DraftRevised {
                revision: current.next(),
                content,
            });
            events
        }
        Action::RestoreRevision { revision } => {
            let mut events = revise_preamble(article, name)?;
            if revision >= current {
                return Err(DomainError::validation(
                    "revision",
                    format!("must name an earlier revision than the current revision {current}"),
                ));
            }
            let content = article
                .revision_content(revision)
                .cloned()
                .ok_or_else(|| DomainError::validation("revision", "does not exist"))?;
            events.push(EventData::RevisionRestored {
                revision: current.next(),
                from: revision,
                content,
            });
            events
        }
        Action::SubmitForReview => {
            if !rules::may_submit(status) {
                return Err(refuse(None));
            }
            if let Some(content) = article.content() {
                content.check_submittable()?;
            }
            vec![EventData::SubmittedForReview { revision: current }]
        }
        Action::WithdrawSubmission => {
            if !rules::under_review(status) {
                return Err(refuse(None));
            }
            vec![EventData::SubmissionWithdrawn { revision: current }]
        }
        Action::AssignReviewer { reviewer } => {
            if !rules::may_change_reviewers(status) {
                return Err(refuse(None));
            }
            if reviewer.is_system() {
                return Err(DomainError::validation(
                    "reviewer",
                    "must be a user, not the system",
                ));
            }
            if article.reviewers.contains(&reviewer) {
                return Err(DomainError::validation(
                    "reviewer",
                    "is already assigned to this article",
                ));
            }
            if article.authors.contains(&reviewer) {
                return Err(DomainError::SelfApproval);
            }
            vec![EventData::ReviewerAssigned { reviewer }]
        }
        Action::UnassignReviewer { reviewer } => {
            if !rules::may_change_reviewers(status) {
                return Err(refuse(None));
            }
            if !article.reviewers.contains(&reviewer) {
                return Err(DomainError::validation(
                    "reviewer",
                    "is not assigned to this article",
                ));
            }
            vec![EventData::ReviewerUnassigned { reviewer }]
        }
        Action::AddReviewComment {
            comment_id,
            revision,
            body,
        } => {
            if !rules::open(status) {
                return Err(refuse(None));
            }
            if revision.0 == 0 || revision > current {
                return Err(DomainError::validation(
                    "revision",
                    format!("must name an existing revision (1 to {current})"),
                ));
            }
            let body = required_text("body", &body, limits::COMMENT_MAX_CHARS)?;
            vec![EventData::ReviewCommentAdded {
                comment_id,
                revision,
                body,
            }]
        }
        Action::RequestChanges { reason } => {
            if !rules::under_review(status) {
                return Err(refuse(None));
            }
            let reason = required_text("reason", &reason, limits::REASON_MAX_CHARS)?;
            vec![EventData::ChangesRequested {
                revision: current,
                reason,
            }]
        }
        Action::ApproveRevision { revision } => {
            if !rules::under_review(status) {
                return Err(refuse(None));
            }
            if revision != current {
                return Err(DomainError::validation(
                    "revision",
                    format!("{revision} is not the revision under review ({current})"),
                ));
            }
            if article.authors.contains(&actor.user) {
                return Err(DomainError::SelfApproval);
            }
            vec![EventData::RevisionApproved { revision }]
        }
        Action::PublishNow { correction } => {
            if !rules::may_publish_now(status) {
                return Err(refuse(None));
            }
            if !article.is_current_revision_approved() {
                return Err(refuse(Some("the current revision is not approved")));
            }
            check_embargo(article, now)?;
            let correction = correction_note(article, correction)?;
            vec![EventData::ArticlePublished {
                revision: current,
                previous_live: article.live_revision,
                correction,
                trigger: PublishTrigger::Now,
            }]
        }
        Action::SchedulePublication {
            publish_at,
            correction,
        } => {
            if !rules::may_schedule(status) {
                return Err(refuse(None));
            }
            if !article.is_current_revision_approved() {
                return Err(refuse(Some("the current revision is not approved")));
            }
            if publish_at <= now {
                return Err(DomainError::validation(
                    "publishAt",
                    "must be in the future",
                ));
            }
            check_embargo(article, publish_at)?;
            let correction = correction_note(article, correction)?;
            vec![EventData::PublicationScheduled {
                revision: current,
                publish_at,
                correction,
            }]
        }
        Action::CancelSchedule => match article.scheduled_for {
            Some(publish_at) if rules::scheduled(status) => vec![EventData::ScheduleCancelled {
                revision: current,
                publish_at,
                cause: CancelCause::Cancelled,
            }],
            _ => return Err(refuse(None)),
        },
        Action::PublishDue => {
            let Some(due) = article.scheduled_for.filter(|_| rules::scheduled(status)) else {
                return Err(refuse(None));
            };
            if due > now {
                return Err(refuse(Some(&format!("it is not due until {due}"))));
            }
            let blocked = if !article.is_current_revision_approved() {
                Err(refuse(Some(
                    "the approval of the current revision is stale",
                )))
            } else {
                check_embargo(article, now)
            };
            match blocked {
                Ok(()) => vec![EventData::ArticlePublished {
                    revision: current,
                    previous_live: article.live_revision,
                    correction: article.scheduled_correction.clone(),
                    trigger: PublishTrigger::Schedule,
                }],
                // The same cause again: recorded already, so refused (nothing is written).
                Err(e)
                    if article.schedule_blocked.as_deref()
                        == Some(blocked_note(e.code(), &e.to_string()).as_str()) =>
                {
                    return Err(e)
                }
                Err(e) => vec![EventData::PublicationBlocked {
                    revision: current,
                    publish_at: due,
                    code: e.code().to_owned(),
                    reason: e.to_string(),
                }],
            }
        }
        Action::UnpublishArticle { reason } => {
            let Some(live) = article.live_revision else {
                return Err(refuse(Some("no revision is live")));
            };
            let reason = required_text("reason", &reason, limits::REASON_MAX_CHARS)?;
            vec![EventData::ArticleUnpublished {
                revision: live,
                reason,
            }]
        }
        Action::SetEmbargo { until } => {
            if !rules::open(status) {
                return Err(refuse(None));
            }
            if article.live_revision.is_some() {
                return Err(refuse(Some("a live article cannot be embargoed")));
            }
            if until <= now {
                return Err(DomainError::validation("until", "must be in the future"));
            }
            vec![EventData::EmbargoSet { until }]
        }
        Action::LiftEmbargo { reason } => {
            let Some(until) = article.embargo_until else {
                return Err(refuse(Some("there is no embargo to lift")));
            };
            let reason = required_text("reason", &reason, limits::REASON_MAX_CHARS)?;
            vec![EventData::EmbargoLifted { until, reason }]
        }
        Action::ArchiveArticle => {
            if !rules::may_archive(status) {
                return Err(refuse(None));
            }
            if article.live_revision.is_some() {
                return Err(refuse(Some("unpublish it first")));
            }
            vec![EventData::ArticleArchived {}]
        }
        Action::RestoreArticle => {
            if !rules::archived(status) {
                return Err(refuse(None));
            }
            vec![EventData::ArticleRestored {}]
        }
    };
    Ok(data.into_iter().map(event).collect())
}

/// The checks of a command that need no article: the actor's roles, then the sizes that bound
/// the work of everything after (tag and byline counts, body bytes). `decide` makes the same
/// checks; a caller runs this first so that a command bound to fail them never waits for, or
/// holds, a shared writer. It costs constant time whatever the command holds.
pub fn precheck(command: &Command) -> Result<(), DomainError> {
    check_roles(&command.actor, &command.action)?;
    match &command.action {
        Action::CreateArticle { content } | Action::ReviseDraft { content } => check_sizes(content),
        _ => Ok(()),
    }
}

fn check_roles(actor: &Actor, action: &Action) -> Result<(), DomainError> {
    let command = action.name();
    let required = required_roles(action);
    if matches!(action, Action::PublishDue) {
        if !actor.user.is_system() {
            return Err(DomainError::Forbidden {
                command,
                required: Vec::new(),
            });
        }
    } else if actor.user.is_system() || !required.iter().any(|r| actor.has(*r)) {
        return Err(DomainError::Forbidden {
            command,
            required: required.to_vec(),
        });
    }
    Ok(())
}

/// The roles that may issue an action (ADMIN may issue all of them). `PublishDue` is for
/// the system actor alone and lists none.
pub fn required_roles(action: &Action) -> &'static [Role] {
    match action {
        Action::CreateArticle { .. }
        | Action::ReviseDraft { .. }
        | Action::SubmitForReview
        | Action::WithdrawSubmission
        | Action::RestoreRevision { .. } => &[Role::Editor],
        Action::AssignReviewer { .. }
        | Action::UnassignReviewer { .. }
        | Action::AddReviewComment { .. } => &[Role::Editor, Role::Reviewer],
        Action::RequestChanges { .. } | Action::ApproveRevision { .. } => &[Role::Reviewer],
        Action::PublishNow { .. }
        | Action::SchedulePublication { .. }
        | Action::CancelSchedule
        | Action::UnpublishArticle { .. }
        | Action::ArchiveArticle
        | Action::RestoreArticle => &[Role::Publisher],
        Action::SetEmbargo { .. } => &[Role::Editor, Role::Publisher],
        Action::LiftEmbargo { .. } => &[Role::Admin],
        Action::PublishDue => &[],
    }
}

/// What revising (or restoring a revision) requires, and the events that come first: revising
/// a scheduled article cancels its schedule.
fn revise_preamble(article: &Article, name: &'static str) -> Result<Vec<EventData>, DomainError> {
    match article.status {
        Status::InReview => Err(DomainError::InvalidTransition {
            command: name,
            status: article.status,
            detail: Some("withdraw the submission first".to_owned()),
        }),
        Status::Archived => Err(DomainError::InvalidTransition {
            command: name,
            status: article.status,
            detail: Some("restore the article first".to_owned()),
        }),
        Status::Scheduled => Ok(article
            .scheduled_for
            .map(|publish_at| EventData::ScheduleCancelled {
                revision: article.revision(),
                publish_at,
                cause: CancelCause::DraftRevised,
            })
            .into_iter()
            .collect()),
        Status::Draft
        | Status::ChangesRequested
        | Status::Approved
        | Status::Published
        | Status::Unpublished => Ok(Vec::new()),
    }
}

fn check_embargo(article: &Article, at: chrono::DateTime<chrono::Utc>) -> Result<(), DomainError> {
    match article.embargo_until {
        Some(until) if until > at => Err(DomainError::Embargoed { until }),
        _ => Ok(()),
    }
}

fn correction_note(
    article: &Article,
    correction: Option<String>,
) -> Result<Option<String>, DomainError> {
    let Some(note) = correction.filter(|c| !c.trim().is_empty()) else {
        return Ok(None);
    };
    if article.first_published_at.is_none() {
        return Err(DomainError::validation(
            "correction",
            "can only be carried by a re-publication of an article that was live",
        ));
    }
    required_text("correction", &note, limits::CORRECTION_MAX_CHARS).map(Some)
}

fn required_text(field: &str, raw: &str, max_chars: usize) -> Result<String, DomainError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(DomainError::validation(field, "is required"));
    }
    if text.chars().count() > max_chars {
        return Err(DomainError::validation(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The status rules of `decide`, one exhaustive match each: a new status fails to compile here
/// until every rule says whether it allows it.
mod rules {
    use crate::Status;

    /// Submitting for review: from a draft, after changes were requested, or after unpublishing.
    pub(super) fn may_submit(status: Status) -> bool {
        match status {
            Status::Draft | Status::ChangesRequested | Status::Unpublished => true,
            Status::InReview
            | Status::Approved
            | Status::Scheduled
            | Status::Published
            | Status::Archived => false,
        }
    }

    /// Withdrawing, requesting changes and approving need a submission under review.
    pub(super) fn under_review(status: Status) -> bool {
        match status {
            Status::InReview => true,
            Status::Draft
            | Status::ChangesRequested
            | Status::Approved
            | Status::Scheduled
            | Status::Published
            | Status::Unpublished
            | Status::Archived => false,
        }
    }

    /// Assigning and unassigning reviewers: until the article is approved.
    pub(super) fn may_change_reviewers(status: Status) -> bool {
        match status {
            Status::Draft | Status::InReview | Status::ChangesRequested => true,
            Status::Approved
            | Status::Scheduled
            | Status::Published
            | Status::Unpublished
            | Status::Archived => false,
        }
    }

    /// Commenting and embargoing: any article that is not archived.
    pub(super) fn open(status: Status) -> bool {
        match status {
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Approved
            | Status::Scheduled
            | Status::Published
            | Status::Unpublished => true,
            Status::Archived => false,
        }
    }

    /// Publishing now: an approved article, scheduled or not.
    pub(super) fn may_publish_now(status: Status) -> bool {
        match status {
            Status::Approved | Status::Scheduled => true,
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Published
            | Status::Unpublished
            | Status::Archived => false,
        }
    }

    /// Scheduling: an approved article not yet scheduled.
    pub(super) fn may_schedule(status: Status) -> bool {
        match status {
            Status::Approved => true,
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Scheduled
            | Status::Published
            | Status::Unpublished
            | Status::Archived => false,
        }
    }

    /// Cancelling a schedule and publishing when due: a scheduled article.
    pub(super) fn scheduled(status: Status) -> bool {
        match status {
            Status::Scheduled => true,
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Approved
            | Status::Published
            | Status::Unpublished
            | Status::Archived => false,
        }
    }

    /// Archiving: anything not archived already and not waiting to be published (the live
    /// revision is checked apart).
    pub(super) fn may_archive(status: Status) -> bool {
        match status {
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Approved
            | Status::Published
            | Status::Unpublished => true,
            Status::Scheduled | Status::Archived => false,
        }
    }

    /// Restoring: an archived article.
    pub(super) fn archived(status: Status) -> bool {
        match status {
            Status::Archived => true,
            Status::Draft
            | Status::InReview
            | Status::ChangesRequested
            | Status::Approved
            | Status::Scheduled
            | Status::Published
            | Status::Unpublished => false,
        }
    }
}
