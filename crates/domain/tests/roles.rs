//! Every role check: each action by each role, by an actor holding several roles, by ADMIN
//! (who may do everything a user may) and by the system actor (who may only publish what fell
//! due). Each action runs from a history where it is accepted, so a refusal is the role's.

mod support;

use galley_domain::{required_roles, Action, Actor, DomainError, Event, EventData, Role, UserId};
use support::act::*;
use support::*;

use galley_domain::Status::*;

/// A history from which each action is accepted, and the action.
fn cases() -> Vec<(Vec<Event>, Action)> {
    let assigned = {
        let mut events = history(Draft);
        events.push(ev(
            t(2),
            EDITOR,
            EventData::ReviewerAssigned {
                reviewer: REVIEWER_2,
            },
        ));
        events
    };
    let embargoed = {
        let mut events = history(Draft);
        events.push(ev(t(2), EDITOR, EventData::EmbargoSet { until: t(500) }));
        events
    };
    vec![
        (Vec::new(), create(seed())),
        (history(Draft), revise(seed())),
        (history(Draft), submit()),
        (history(InReview), withdraw()),
        (history(Draft), assign(REVIEWER_2)),
        (assigned, unassign(REVIEWER_2)),
        (history(InReview), comment(R2, "Looks right.")),
        (history(InReview), request_changes("Cite the resolution.")),
        (history(InReview), approve(R2)),
        (history(Approved), publish()),
        (history(Approved), schedule(t(120))),
        (history(Scheduled), cancel_schedule()),
        (history(Scheduled), publish_due()),
        (history(Published), unpublish("Court order.")),
        (history(Draft), embargo(t(300))),
        (embargoed, lift_embargo("The source agreed.")),
        (history(Draft), archive()),
        (history(Archived), restore()),
        (history(Draft), restore_revision(R1)),
    ]
}

/// A user who is not an author of the standard histories, holding `roles`.
fn user_with(roles: &[Role]) -> Actor {
    Actor::user(
        UserId::from_uuid(uuid::Uuid::from_u128(0x5EED)),
        roles.iter().copied(),
    )
}

fn forbidden(action: &Action) -> DomainError {
    DomainError::Forbidden {
        command: action.name(),
        required: required_roles(action).to_vec(),
    }
}

#[test]
fn the_cases_cover_every_action_once() {
    let mut names: Vec<&str> = cases().iter().map(|(_, a)| a.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 19);
}

#[test]
fn each_action_is_accepted_from_its_case_by_a_user_holding_its_roles() {
    for (events, action) in cases() {
        if matches!(action, Action::PublishDue) {
            continue;
        }
        let actor = user_with(required_roles(&action));
        given(events).when(actor, action).accepted();
    }
}

#[test]
fn every_role_outside_an_actions_required_roles_is_forbidden() {
    for (events, action) in cases() {
        for role in Role::ALL {
            let allowed = role == Role::Admin && !matches!(action, Action::PublishDue)
                || required_roles(&action).contains(&role);
            let when = given(events.clone()).when(user_with(&[role]), action.clone());
            if allowed {
                assert!(
                    when.result().is_ok(),
                    "{role} may {}: {:?}",
                    action.name(),
                    when.result()
                );
            } else {
                when.then_error(forbidden(&action));
            }
        }
    }
}

#[test]
fn the_required_roles_are_those_of_the_design() {
    let expected: Vec<(&str, &[Role])> = vec![
        ("createArticle", &[Role::Editor]),
        ("reviseDraft", &[Role::Editor]),
        ("submitForReview", &[Role::Editor]),
        ("withdrawSubmission", &[Role::Editor]),
        ("assignReviewer", &[Role::Editor, Role::Reviewer]),
        ("unassignReviewer", &[Role::Editor, Role::Reviewer]),
        ("addReviewComment", &[Role::Editor, Role::Reviewer]),
        ("requestChanges", &[Role::Reviewer]),
        ("approveRevision", &[Role::Reviewer]),
        ("publishArticle", &[Role::Publisher]),
        ("schedulePublication", &[Role::Publisher]),
        ("cancelSchedule", &[Role::Publisher]),
        ("publishDue", &[]),
        ("unpublishArticle", &[Role::Publisher]),
        ("setEmbargo", &[Role::Editor, Role::Publisher]),
        ("liftEmbargo", &[Role::Admin]),
        ("archiveArticle", &[Role::Publisher]),
        ("restoreArticle", &[Role::Publisher]),
        ("restoreRevision", &[Role::Editor]),
    ];
    let actual: Vec<(&str, &[Role])> = cases()
        .iter()
        .map(|(_, a)| (a.name(), required_roles(a)))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn a_viewer_may_issue_no_command_at_all() {
    for (events, action) in cases() {
        given(events)
            .when(viewer(), action.clone())
            .then_error(forbidden(&action));
    }
}

#[test]
fn a_user_with_no_role_may_issue_no_command_at_all() {
    for (events, action) in cases() {
        given(events)
            .when(user_with(&[]), action.clone())
            .then_error(forbidden(&action));
    }
}

#[test]
fn an_admin_may_issue_every_command_a_user_may() {
    for (events, action) in cases() {
        if matches!(action, Action::PublishDue) {
            continue;
        }
        given(events).when(admin(), action).accepted();
    }
}

#[test]
fn not_even_an_admin_may_issue_publish_due_which_belongs_to_the_scheduler() {
    given_status(Scheduled)
        .when(admin(), publish_due())
        .then_error(DomainError::Forbidden {
            command: "publishDue",
            required: vec![],
        });
}

#[test]
fn the_system_actor_is_refused_every_command_but_publish_due() {
    for (events, action) in cases() {
        let when = given(events).when(system(), action.clone());
        if matches!(action, Action::PublishDue) {
            when.accepted();
        } else {
            when.then_error(forbidden(&action));
        }
    }
}

#[test]
fn the_system_actor_is_refused_even_if_it_claims_roles() {
    let pretender = Actor::user(UserId::SYSTEM, [Role::Admin]);
    given_status(Approved)
        .when(pretender, publish())
        .then_error(forbidden(&publish()));
}

#[test]
fn only_an_admin_may_lift_an_embargo_not_a_publisher_or_editor() {
    let embargoed =
        given_status(Approved).and([ev(t(4), EDITOR, EventData::EmbargoSet { until: t(500) })]);
    for actor in [editor(), publisher(), reviewer()] {
        embargoed
            .clone()
            .when(actor, lift_embargo("Because."))
            .then_code("FORBIDDEN");
    }
    embargoed.when(admin(), lift_embargo("Because.")).accepted();
}

#[test]
fn an_editor_may_set_an_embargo_and_so_may_a_publisher() {
    for actor in [editor(), publisher()] {
        given_status(Approved)
            .when(actor, embargo(t(300)))
            .then_events([EventData::EmbargoSet { until: t(300) }]);
    }
    given_status(Approved)
        .when(reviewer(), embargo(t(300)))
        .then_code("FORBIDDEN");
}

#[test]
fn a_user_holding_several_roles_may_do_what_each_role_may() {
    let desk = Actor::user(REVIEWER_2, [Role::Reviewer, Role::Publisher]);
    let approved = given_status(InReview)
        .when(desk.clone(), approve(R2))
        .accepted();
    approved.clone().when(desk.clone(), publish()).accepted();
    approved
        .when(desk, revise(seed()))
        .then_error(forbidden(&revise(seed())));
}

#[test]
fn a_forbidden_message_names_the_command_and_the_roles() {
    let e = given_status(Approved)
        .when(editor(), publish())
        .then_code("FORBIDDEN");
    assert_eq!(
        e.to_string(),
        "publishArticle requires one of the roles PUBLISHER"
    );
}

#[test]
fn roles_are_parsed_from_their_names_in_any_case() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        assert_eq!(role.as_str().to_lowercase().parse::<Role>().unwrap(), role);
        assert_eq!(role.to_string(), role.as_str());
    }
    let e = "chief".parse::<Role>().unwrap_err();
    assert_eq!(e.code(), "VALIDATION_FAILED");
    assert!(matches!(e, DomainError::Validation { field, .. } if field == "role"));
}

#[test]
fn an_actor_holds_each_role_once_and_admin_holds_all() {
    let actor = Actor::user(EDITOR, [Role::Reviewer, Role::Editor, Role::Reviewer]);
    assert_eq!(actor.roles, vec![Role::Editor, Role::Reviewer]);
    assert!(!actor.has(Role::Publisher));
    for role in Role::ALL {
        assert!(admin().has(role));
        assert!(!system().has(role));
    }
    assert!(system().user.is_system());
    assert!(!admin().user.is_system());
}

#[test]
fn a_user_refused_publish_due_is_told_only_the_scheduler_issues_it() {
    let e = given_status(Scheduled)
        .when(publisher(), publish_due())
        .then_code("FORBIDDEN");
    assert_eq!(
        e.to_string(),
        "publishDue is issued only by the system (the scheduler)"
    );
}
