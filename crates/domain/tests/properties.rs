//! Properties of any sequence of commands, checked with proptest: random actions by random
//! users with random roles (authors and non-authors, and the system), at increasing times,
//! sometimes naming a stale version. Only accepted commands' events are applied.

mod support;

use chrono::{DateTime, Duration, Utc};
use galley_domain::{
    decide, evolve, required_roles, Action, Actor, Article, Command, ContentDraft, DomainError,
    Event, EventData, PublishTrigger, RevisionNumber, Role, Status, UserId, Version,
};
use proptest::prelude::*;
use support::act::*;
use support::*;

/// One step of a random sequence.
#[derive(Debug, Clone)]
struct Step {
    /// Index into the cast; the last index is the system actor.
    actor: usize,
    /// Whether to look, from `actor` on, for a member of the cast who may issue the action
    /// (so that sequences get somewhere) rather than take `actor` as is.
    fitting: bool,
    action: ActionSpec,
    /// Minutes after the previous step.
    after: i64,
    /// 0 names the current version; anything else is off by that much.
    version_skew: i64,
}

/// An action whose times are relative to the step's time.
#[derive(Debug, Clone)]
enum ActionSpec {
    Create(u8),
    Revise(u8),
    Submit,
    Withdraw,
    Assign(usize),
    Comment(Pick, bool),
    RequestChanges(bool),
    Approve(Pick),
    Publish(bool),
    Schedule(i64, bool),
    CancelSchedule,
    PublishDue,
    Unpublish(bool),
    Embargo(i64),
    LiftEmbargo(bool),
    Archive,
    Restore,
    RestoreRevision(Pick),
}

/// A revision number, chosen relative to the article's current revision so that sequences
/// name the right one often and a wrong one sometimes.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Current,
    Previous,
    Next,
    Absolute(u32),
}

impl Pick {
    fn resolve(self, current: RevisionNumber) -> RevisionNumber {
        match self {
            Pick::Current => current,
            Pick::Previous => RevisionNumber(current.0.saturating_sub(1)),
            Pick::Next => current.next(),
            Pick::Absolute(n) => RevisionNumber(n),
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => Just(Pick::Current),
        2 => Just(Pick::Previous),
        1 => Just(Pick::Next),
        1 => (0u32..6).prop_map(Pick::Absolute),
    ]
}

const USERS: usize = 5;

fn user_id(i: usize) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0x1000 + i as u128))
}

fn content(n: u8) -> ContentDraft {
    match n % 5 {
        0 => seed(),
        1 => first_draft(),
        2 => seed_headed("Vučić: KFOR said no"),
        3 => ContentDraft::default(),
        _ => seed_headed(&"x".repeat(301)),
    }
}

fn reason(present: bool) -> String {
    if present {
        "Because.".to_owned()
    } else {
        " ".to_owned()
    }
}

impl ActionSpec {
    fn build(&self, now: DateTime<Utc>, current: RevisionNumber) -> Action {
        match *self {
            ActionSpec::Create(n) => create(content(n)),
            ActionSpec::Revise(n) => revise(content(n)),
            ActionSpec::Submit => submit(),
            ActionSpec::Withdraw => withdraw(),
            ActionSpec::Assign(i) => assign(user_id(i % USERS)),
            ActionSpec::Comment(r, ok) => comment(r.resolve(current), if ok { "Hm." } else { "" }),
            ActionSpec::RequestChanges(ok) => request_changes(&reason(ok)),
            ActionSpec::Approve(r) => approve(r.resolve(current)),
            ActionSpec::Publish(c) => Action::PublishNow {
                correction: c.then(|| "Corrected.".to_owned()),
            },
            ActionSpec::Schedule(m, c) => Action::SchedulePublication {
                publish_at: now + Duration::minutes(m),
                correction: c.then(|| "Corrected.".to_owned()),
            },
            ActionSpec::CancelSchedule => cancel_schedule(),
            ActionSpec::PublishDue => publish_due(),
            ActionSpec::Unpublish(ok) => unpublish(&reason(ok)),
            ActionSpec::Embargo(m) => embargo(now + Duration::minutes(m)),
            ActionSpec::LiftEmbargo(ok) => lift_embargo(&reason(ok)),
            ActionSpec::Archive => archive(),
            ActionSpec::Restore => restore(),
            ActionSpec::RestoreRevision(r) => restore_revision(r.resolve(current)),
        }
    }
}

/// Whether a publication carries a correction note (refused on a first publication).
fn correction() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.2)
}

fn action_spec() -> impl Strategy<Value = ActionSpec> {
    prop_oneof![
        1 => any::<u8>().prop_map(ActionSpec::Create),
        3 => any::<u8>().prop_map(ActionSpec::Revise),
        8 => Just(ActionSpec::Submit),
        1 => Just(ActionSpec::Withdraw),
        2 => (0..USERS).prop_map(ActionSpec::Assign),
        2 => (pick(), any::<bool>()).prop_map(|(r, ok)| ActionSpec::Comment(r, ok)),
        3 => any::<bool>().prop_map(ActionSpec::RequestChanges),
        8 => pick().prop_map(ActionSpec::Approve),
        8 => correction().prop_map(ActionSpec::Publish),
        4 => (-30i64..300, correction()).prop_map(|(m, c)| ActionSpec::Schedule(m, c)),
        2 => Just(ActionSpec::CancelSchedule),
        4 => Just(ActionSpec::PublishDue),
        3 => any::<bool>().prop_map(ActionSpec::Unpublish),
        1 => (-30i64..300).prop_map(ActionSpec::Embargo),
        1 => any::<bool>().prop_map(ActionSpec::LiftEmbargo),
        1 => Just(ActionSpec::Archive),
        3 => Just(ActionSpec::Restore),
        3 => pick().prop_map(ActionSpec::RestoreRevision),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..=USERS,
        prop::bool::weighted(0.7),
        action_spec(),
        0i64..120,
        prop_oneof![14 => Just(0i64), 1 => -3i64..4],
    )
        .prop_map(|(actor, fitting, action, after, version_skew)| Step {
            actor,
            fitting,
            action,
            after,
            version_skew,
        })
}

fn role_set() -> impl Strategy<Value = Vec<Role>> {
    prop::collection::vec(prop::sample::select(Role::ALL.to_vec()), 0..3)
}

/// A cast of users with random roles, then a sequence that usually starts with a creation.
fn scenario() -> impl Strategy<Value = (Vec<Actor>, Vec<Step>)> {
    (
        prop::collection::vec(role_set(), USERS),
        prop::bool::weighted(0.95),
        prop::collection::vec(step(), 0..60),
    )
        .prop_map(|(roles, create_first, mut steps)| {
            let mut cast: Vec<Actor> = roles
                .into_iter()
                .enumerate()
                .map(|(i, r)| Actor::user(user_id(i), r))
                .collect();
            // Someone can always write, review and publish, so sequences get somewhere; the
            // other users hold whatever roles they were dealt.
            for (i, role) in [Role::Editor, Role::Reviewer, Role::Publisher]
                .into_iter()
                .enumerate()
            {
                cast[i] = Actor::user(cast[i].user, cast[i].roles.iter().copied().chain([role]));
            }
            cast.push(Actor::system());
            if create_first {
                steps.insert(
                    0,
                    Step {
                        actor: 0,
                        fitting: false,
                        action: ActionSpec::Create(0),
                        after: 0,
                        version_skew: 0,
                    },
                );
            }
            (cast, steps)
        })
}

/// What a run produced: the accepted events, the incrementally evolved article, and every
/// (command, state before, result) for the per-command properties.
struct Run {
    events: Vec<Event>,
    article: Article,
    decisions: Vec<(Command, Article, Result<Vec<Event>, DomainError>)>,
}

fn run(cast: &[Actor], steps: &[Step]) -> Run {
    let mut article = Article::default();
    let mut events = Vec::new();
    let mut decisions = Vec::new();
    let mut at = t(0);
    for step in steps {
        at += Duration::minutes(step.after);
        let expected = Version(article.version.0.saturating_add_signed(step.version_skew));
        let action = step.action.build(at, article.revision());
        let actor = if step.fitting {
            (0..cast.len())
                .map(|i| &cast[(step.actor + i) % cast.len()])
                .find(|a| {
                    may_issue(a, &action)
                        && !(matches!(action, Action::ApproveRevision { .. })
                            && article.authors.contains(&a.user))
                })
                .unwrap_or(&cast[step.actor])
        } else {
            &cast[step.actor]
        };
        let command = Command {
            article_id: ARTICLE,
            expected_version: expected,
            actor: actor.clone(),
            now: at,
            action,
        };
        let result = decide(&article, command.clone());
        let before = article.clone();
        if let Ok(new) = &result {
            for event in new {
                article = evolve(article, event);
                events.push(event.clone());
            }
        }
        decisions.push((command, before, result));
    }
    Run {
        events,
        article,
        decisions,
    }
}

fn allowed(command: &Command) -> bool {
    may_issue(&command.actor, &command.action)
}

fn may_issue(actor: &Actor, action: &Action) -> bool {
    match *action {
        Action::PublishDue => actor.user.is_system(),
        _ => !actor.user.is_system() && required_roles(action).iter().any(|r| actor.has(*r)),
    }
}

proptest! {
    // Persisting failures needs a lib.rs beside the test; a failure prints its seed instead.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replaying_the_accepted_events_gives_the_incrementally_evolved_state(
        (cast, steps) in scenario()
    ) {
        let run = run(&cast, &steps);
        prop_assert_eq!(Article::replay(&run.events), run.article);
    }

    #[test]
    fn the_version_always_equals_the_number_of_events((cast, steps) in scenario()) {
        let run = run(&cast, &steps);
        let mut article = Article::default();
        for (n, event) in run.events.iter().enumerate() {
            article = evolve(article, event);
            prop_assert_eq!(article.version, Version(n as u64 + 1));
        }
    }

    #[test]
    fn revision_numbers_only_grow_and_each_new_one_is_the_next((cast, steps) in scenario()) {
        let run = run(&cast, &steps);
        let mut article = Article::default();
        for event in &run.events {
            let before = article.revision();
            article = evolve(article, event);
            prop_assert!(article.revision() >= before);
            match &event.data {
                EventData::ArticleCreated { revision, .. }
                | EventData::DraftRevised { revision, .. }
                | EventData::RevisionRestored { revision, .. } => {
                    prop_assert_eq!(*revision, before.next());
                    prop_assert_eq!(article.revision(), *revision);
                }
                _ => prop_assert_eq!(article.revision(), before),
            }
        }
    }

    #[test]
    fn nothing_is_published_without_an_approval_of_exactly_that_revision_by_a_non_author(
        (cast, steps) in scenario()
    ) {
        let run = run(&cast, &steps);
        let mut article = Article::default();
        for event in &run.events {
            if let EventData::ArticlePublished { revision, previous_live, trigger, .. } = &event.data {
                let approval = article.approval.clone();
                prop_assert!(approval.is_some(), "published without any approval");
                let approval = approval.unwrap();
                prop_assert_eq!(approval.revision, *revision);
                prop_assert_eq!(article.revision(), *revision);
                prop_assert!(!article.authors.contains(&approval.by));
                prop_assert!(!approval.by.is_system());
                let approver = cast.iter().find(|a| a.user == approval.by).unwrap();
                prop_assert!(approver.has(Role::Reviewer));
                prop_assert_eq!(*previous_live, article.live_revision);
                prop_assert!(article.embargo_until.is_none_or(|until| until <= event.at));
                prop_assert_eq!(
                    *trigger == PublishTrigger::Schedule,
                    event.actor.is_system()
                );
            }
            article = evolve(article, event);
            if article.status == Status::Published {
                prop_assert_eq!(article.live_revision, Some(article.revision()));
            }
            prop_assert_eq!(
                article.has_unpublished_changes(),
                article.live_revision.is_some_and(|l| l != article.revision())
            );
        }
    }

    #[test]
    fn a_command_naming_another_version_is_a_conflict_reporting_the_current_one(
        (cast, steps) in scenario()
    ) {
        let run = run(&cast, &steps);
        for (command, before, result) in &run.decisions {
            let creating = matches!(command.action, Action::CreateArticle { .. });
            if result.is_ok() {
                prop_assert_eq!(command.expected_version, before.version);
            }
            if command.expected_version != before.version
                && allowed(command)
                && (creating || before.exists())
            {
                prop_assert_eq!(
                    result.clone(),
                    Err(DomainError::Conflict {
                        expected: command.expected_version,
                        current: before.version,
                    })
                );
            }
        }
    }

    #[test]
    fn the_order_of_checks_holds_for_every_refusal((cast, steps) in scenario()) {
        let run = run(&cast, &steps);
        for (command, before, result) in &run.decisions {
            let creating = matches!(command.action, Action::CreateArticle { .. });
            let code = result.as_ref().err().map(DomainError::code);
            if !allowed(command) {
                prop_assert_eq!(code, Some("FORBIDDEN"));
            } else if !creating && !before.exists() {
                prop_assert_eq!(code, Some("NOT_FOUND"));
            } else if code.is_some() {
                prop_assert!(!matches!(code, Some("FORBIDDEN") | Some("NOT_FOUND")));
            }
        }
    }

    #[test]
    fn accepted_events_carry_the_commands_time_and_actor((cast, steps) in scenario()) {
        let run = run(&cast, &steps);
        for (command, _, result) in &run.decisions {
            if let Ok(events) = result {
                prop_assert!(!events.is_empty());
                for event in events {
                    prop_assert_eq!(event.at, command.now);
                    prop_assert_eq!(event.actor, command.actor.user);
                }
            }
        }
    }

    #[test]
    fn every_accepted_event_survives_the_stored_round_trip((cast, steps) in scenario()) {
        let run = run(&cast, &steps);
        for event in &run.events {
            let back = EventData::from_stored(
                event.data.event_type(),
                galley_domain::SCHEMA_VERSION,
                event.data.payload(),
            );
            prop_assert_eq!(back.ok(), Some(event.data.clone()));
        }
    }
}

/// The properties above are only as good as the sequences: check that the generator reaches
/// publication, re-publication, scheduling and conflicts often enough to matter.
#[test]
fn the_generated_sequences_reach_every_part_of_the_workflow() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let (mut published, mut republished, mut scheduled_publication, mut conflicts) = (0, 0, 0, 0);
    let mut statuses = std::collections::BTreeSet::new();
    for _ in 0..512 {
        let (cast, steps) = strategy.new_tree(&mut runner).unwrap().current();
        let run = run(&cast, &steps);
        let mut article = Article::default();
        for event in &run.events {
            article = evolve(article, event);
            statuses.insert(article.status);
        }
        for event in &run.events {
            if let EventData::ArticlePublished {
                previous_live,
                trigger,
                ..
            } = &event.data
            {
                published += 1;
                republished += usize::from(previous_live.is_some());
                scheduled_publication += usize::from(*trigger == PublishTrigger::Schedule);
            }
        }
        conflicts += run
            .decisions
            .iter()
            .filter(|(_, _, r)| matches!(r, Err(DomainError::Conflict { .. })))
            .count();
    }
    assert_eq!(statuses.len(), Status::ALL.len(), "reached {statuses:?}");
    assert!(published >= 50, "{published} publications");
    assert!(republished >= 2, "{republished} re-publications");
    assert!(
        scheduled_publication >= 2,
        "{scheduled_publication} scheduled"
    );
    assert!(conflicts >= 50, "{conflicts} conflicts");
}
