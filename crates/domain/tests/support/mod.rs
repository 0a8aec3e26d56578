//! The given/when/then harness shared by the domain test suites, plus the cast (users with
//! roles), the clock (minutes after a fixed morning) and the drafts of the standard histories.
//! The seed article itself comes from `galley_domain::testing` (the `testing` feature).
//!
//! Every scenario reads "given these events, when this actor does this, then these events (or
//! this error)". The harness fills in the article id, the expected version (the current one,
//! unless a test says otherwise) and the time, so a test states only what it is about.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use galley_domain::{
    decide, evolve, Action, Actor, Article, ArticleContent, ArticleId, CommentId, ContentDraft,
    DomainError, Event, EventData, PublishTrigger, RevisionNumber, Role, Status, UserId, Version,
};
use uuid::Uuid;

/// The article every scenario is about.
pub const ARTICLE: ArticleId =
    ArticleId::from_uuid(Uuid::from_u128(0x0185_9a2b_0000_7000_8000_0000_0000_0001));

pub const EDITOR: UserId = UserId::from_uuid(Uuid::from_u128(0xE0001));
pub const EDITOR_2: UserId = UserId::from_uuid(Uuid::from_u128(0xE0002));
pub const REVIEWER: UserId = UserId::from_uuid(Uuid::from_u128(0xA0001));
pub const REVIEWER_2: UserId = UserId::from_uuid(Uuid::from_u128(0xA0002));
pub const PUBLISHER: UserId = UserId::from_uuid(Uuid::from_u128(0xB0001));
pub const ADMIN: UserId = UserId::from_uuid(Uuid::from_u128(0xAD001));
pub const VIEWER: UserId = UserId::from_uuid(Uuid::from_u128(0x0F001));

pub const R1: RevisionNumber = RevisionNumber(1);
pub const R2: RevisionNumber = RevisionNumber(2);
pub const R3: RevisionNumber = RevisionNumber(3);
pub const R4: RevisionNumber = RevisionNumber(4);

/// The editor who creates every article of the scenarios.
pub fn editor() -> Actor {
    Actor::user(EDITOR, [Role::Editor])
}
/// A second editor, who may revise someone else's draft.
pub fn editor_2() -> Actor {
    Actor::user(EDITOR_2, [Role::Editor])
}
pub fn reviewer() -> Actor {
    Actor::user(REVIEWER, [Role::Reviewer])
}
pub fn reviewer_2() -> Actor {
    Actor::user(REVIEWER_2, [Role::Reviewer])
}
pub fn publisher() -> Actor {
    Actor::user(PUBLISHER, [Role::Publisher])
}
pub fn admin() -> Actor {
    Actor::user(ADMIN, [Role::Admin])
}
pub fn viewer() -> Actor {
    Actor::user(VIEWER, [Role::Viewer])
}
pub fn system() -> Actor {
    Actor::system()
}

/// `minutes` after 08:00 UTC on the day the seed article ran.
pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 10, 8, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// When the commands of a scenario arrive, unless the scenario says otherwise: after every
/// event of the standard histories, and after the standard schedule falls due.
pub fn now() -> DateTime<Utc> {
    t(60)
}

/// When the standard SCHEDULED history is due.
pub fn due() -> DateTime<Utc> {
    t(50)
}

/// The seed article as a draft, from the workspace's one parser of the fixture.
pub use galley_domain::testing::seed_draft as seed;

/// The seed article, validated.
pub use galley_domain::testing::seed_content;

/// The first, shorter draft of the seed article: revision 1 of the standard histories.
pub fn first_draft() -> ContentDraft {
    ContentDraft {
        headline: "NATO denies Serbia an army presence in Kosovo".to_owned(),
        standfirst: String::new(),
        body: seed().body.split("\n\n").next().unwrap().to_owned(),
        slug: None,
        category: Some("News".to_owned()),
        tags: vec!["Kosovo".to_owned(), "NATO".to_owned()],
        byline: vec!["Tristan Vanheuckelom".to_owned()],
        language: None,
    }
}

pub fn first_draft_content() -> ArticleContent {
    ArticleContent::new(first_draft()).unwrap()
}

/// The seed article with another headline (and a slug derived from it).
pub fn seed_headed(headline: &str) -> ContentDraft {
    ContentDraft {
        headline: headline.to_owned(),
        slug: None,
        ..seed()
    }
}

/// An event at a time, by a user.
pub fn ev(at: DateTime<Utc>, actor: UserId, data: EventData) -> Event {
    Event { at, actor, data }
}

/// The standard history that leaves the article in `status`. Revision 1 is the first draft,
/// revision 2 (the current one) is the full seed article; both by [`EDITOR`]. Reviews are by
/// [`REVIEWER`], publications by [`PUBLISHER`]; the SCHEDULED history is due at [`due`].
pub fn history(status: Status) -> Vec<Event> {
    let mut events = vec![
        ev(
            t(0),
            EDITOR,
            EventData::ArticleCreated {
                article_id: ARTICLE,
                revision: R1,
                content: first_draft_content(),
            },
        ),
        ev(
            t(1),
            EDITOR,
            EventData::DraftRevised {
                revision: R2,
                content: seed_content(),
            },
        ),
    ];
    let submitted = ev(t(2), EDITOR, EventData::SubmittedForReview { revision: R2 });
    let approved = ev(t(3), REVIEWER, EventData::RevisionApproved { revision: R2 });
    let published = ev(
        t(4),
        PUBLISHER,
        EventData::ArticlePublished {
            revision: R2,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Now,
        },
    );
    match status {
        Status::Draft => {}
        Status::InReview => events.push(submitted),
        Status::ChangesRequested => events.extend([
            submitted,
            ev(
                t(3),
                REVIEWER,
                EventData::ChangesRequested {
                    revision: R2,
                    reason: "Attribute the Pink interview.".to_owned(),
                },
            ),
        ]),
        Status::Approved => events.extend([submitted, approved]),
        Status::Scheduled => events.extend([
            submitted,
            approved,
            ev(
                t(4),
                PUBLISHER,
                EventData::PublicationScheduled {
                    revision: R2,
                    publish_at: due(),
                    correction: None,
                },
            ),
        ]),
        Status::Published => events.extend([submitted, approved, published]),
        Status::Unpublished => events.extend([
            submitted,
            approved,
            published,
            ev(
                t(5),
                PUBLISHER,
                EventData::ArticleUnpublished {
                    revision: R2,
                    reason: "Legal review.".to_owned(),
                },
            ),
        ]),
        Status::Archived => events.push(ev(t(2), PUBLISHER, EventData::ArticleArchived {})),
    }
    events
}

/// Starts a scenario from these events.
pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    Given {
        events: events.into_iter().collect(),
    }
}

/// Starts a scenario from the standard history of `status`.
pub fn given_status(status: Status) -> Given {
    given(history(status))
}

/// Starts a scenario with an article that does not exist yet.
pub fn given_nothing() -> Given {
    given(Vec::new())
}

/// The "given" part of a scenario: the events already in the stream.
#[derive(Debug, Clone)]
pub struct Given {
    pub events: Vec<Event>,
}

impl Given {
    /// More events, appended as they are.
    pub fn and(mut self, events: impl IntoIterator<Item = Event>) -> Given {
        self.events.extend(events);
        self
    }

    /// The article the events describe.
    pub fn state(&self) -> Article {
        Article::replay(&self.events)
    }

    /// The "when" part: `actor` asks for `action`, naming the current version, at the default
    /// time ([`now`], or a minute after the last event if that is later).
    pub fn when(self, actor: Actor, action: Action) -> When {
        let at = self
            .events
            .last()
            .map(|e| e.at + Duration::minutes(1))
            .filter(|at| *at > now())
            .unwrap_or_else(now);
        let expected = self.state().version;
        When {
            given: self,
            actor,
            action,
            at,
            expected,
        }
    }

    /// Runs a command that must be accepted and continues the scenario after its events.
    pub fn then_after(self, actor: Actor, action: Action) -> Given {
        self.when(actor, action).accepted()
    }

    /// Like [`Given::then_after`], at a given time.
    pub fn then_after_at(self, at: DateTime<Utc>, actor: Actor, action: Action) -> Given {
        self.when(actor, action).at(at).accepted()
    }
}

/// A scenario's command, not yet decided.
#[derive(Debug, Clone)]
pub struct When {
    pub given: Given,
    pub actor: Actor,
    pub action: Action,
    pub at: DateTime<Utc>,
    pub expected: Version,
}

impl When {
    /// Issues the command at another time.
    pub fn at(mut self, at: DateTime<Utc>) -> When {
        self.at = at;
        self
    }

    /// Issues the command naming another expected version.
    pub fn expecting(mut self, version: Version) -> When {
        self.expected = version;
        self
    }

    /// The command the scenario issues.
    pub fn command(&self) -> galley_domain::Command {
        galley_domain::Command {
            article_id: ARTICLE,
            expected_version: self.expected,
            actor: self.actor.clone(),
            now: self.at,
            action: self.action.clone(),
        }
    }

    /// Decides the command.
    pub fn result(&self) -> Result<Vec<Event>, DomainError> {
        decide(&self.given.state(), self.command())
    }

    /// Asserts that the command produces exactly these events (at the command's time, by its
    /// actor) and returns the article after them.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = EventData>) -> Article {
        let expected: Vec<Event> = expected
            .into_iter()
            .map(|data| ev(self.at, self.actor.user, data))
            .collect();
        match self.result() {
            Ok(events) => {
                assert_eq!(
                    events,
                    expected,
                    "{} produced other events",
                    self.action.name()
                );
                let before = self.given.state();
                let after = events.iter().fold(before.clone(), evolve);
                assert_eq!(
                    after.version.0,
                    before.version.0 + events.len() as u64,
                    "each event adds one version"
                );
                after
            }
            Err(e) => panic!(
                "{} was refused ({}: {e}) but these events were expected: {expected:#?}",
                self.action.name(),
                e.code()
            ),
        }
    }

    /// Asserts that the command is refused with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.result() {
            Ok(events) => panic!(
                "{} was accepted with {events:#?} but {expected:?} was expected",
                self.action.name()
            ),
            Err(e) => assert_eq!(e, expected, "{} was refused otherwise", self.action.name()),
        }
    }

    /// Asserts that the command is refused with this code, and returns the error.
    #[track_caller]
    pub fn then_code(self, code: &str) -> DomainError {
        match self.result() {
            Ok(events) => panic!(
                "{} was accepted with {events:#?} but {code} was expected",
                self.action.name()
            ),
            Err(e) => {
                assert_eq!(
                    e.code(),
                    code,
                    "{} was refused with {e:?}",
                    self.action.name()
                );
                e
            }
        }
    }

    /// Asserts that the command is refused as INVALID_TRANSITION from the article's status.
    #[track_caller]
    pub fn then_invalid_transition(self) -> DomainError {
        let status = self.given.state().status;
        let e = self.then_code("INVALID_TRANSITION");
        match &e {
            DomainError::InvalidTransition { status: s, .. } => assert_eq!(*s, status),
            other => panic!("unexpected {other:?}"),
        }
        e
    }

    /// Asserts that the command is refused as VALIDATION_FAILED on `field`.
    #[track_caller]
    pub fn then_invalid_field(self, field: &str) {
        match self.then_code("VALIDATION_FAILED") {
            DomainError::Validation { field: f, .. } => assert_eq!(f, field),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Asserts that the command is accepted, and continues the scenario after its events.
    #[track_caller]
    pub fn accepted(self) -> Given {
        match self.result() {
            Ok(events) => self.given.and(events),
            Err(e) => panic!("{} was refused ({}: {e})", self.action.name(), e.code()),
        }
    }
}

/// `InvalidTransition` for a command in a status.
pub fn invalid(command: &'static str, status: Status, detail: Option<&str>) -> DomainError {
    DomainError::InvalidTransition {
        command,
        status,
        detail: detail.map(str::to_owned),
    }
}

/// Shorthands for the actions of the scenarios.
pub mod act {
    use super::*;

    pub fn create(content: ContentDraft) -> Action {
        Action::CreateArticle { content }
    }
    pub fn revise(content: ContentDraft) -> Action {
        Action::ReviseDraft { content }
    }
    pub fn submit() -> Action {
        Action::SubmitForReview
    }
    pub fn withdraw() -> Action {
        Action::WithdrawSubmission
    }
    pub fn assign(reviewer: UserId) -> Action {
        Action::AssignReviewer { reviewer }
    }
    pub fn unassign(reviewer: UserId) -> Action {
        Action::UnassignReviewer { reviewer }
    }
    pub fn comment(revision: RevisionNumber, body: &str) -> Action {
        Action::AddReviewComment {
            comment_id: COMMENT,
            revision,
            body: body.to_owned(),
        }
    }
    pub fn request_changes(reason: &str) -> Action {
        Action::RequestChanges {
            reason: reason.to_owned(),
        }
    }
    pub fn approve(revision: RevisionNumber) -> Action {
        Action::ApproveRevision { revision }
    }
    pub fn publish() -> Action {
        Action::PublishNow { correction: None }
    }
    pub fn publish_correcting(note: &str) -> Action {
        Action::PublishNow {
            correction: Some(note.to_owned()),
        }
    }
    pub fn schedule(publish_at: DateTime<Utc>) -> Action {
        Action::SchedulePublication {
            publish_at,
            correction: None,
        }
    }
    pub fn cancel_schedule() -> Action {
        Action::CancelSchedule
    }
    pub fn publish_due() -> Action {
        Action::PublishDue
    }
    pub fn unpublish(reason: &str) -> Action {
        Action::UnpublishArticle {
            reason: reason.to_owned(),
        }
    }
    pub fn embargo(until: DateTime<Utc>) -> Action {
        Action::SetEmbargo { until }
    }
    pub fn lift_embargo(reason: &str) -> Action {
        Action::LiftEmbargo {
            reason: reason.to_owned(),
        }
    }
    pub fn archive() -> Action {
        Action::ArchiveArticle
    }
    pub fn restore() -> Action {
        Action::RestoreArticle
    }
    pub fn restore_revision(revision: RevisionNumber) -> Action {
        Action::RestoreRevision { revision }
    }

    /// The id of the comments the scenarios add.
    pub const COMMENT: CommentId = CommentId::from_uuid(Uuid::from_u128(0xC0001));
}
