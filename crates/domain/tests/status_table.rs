//! Every command in every status: for each of the 19 actions, one table with a row per status
//! that states the exact events or the exact error. The command is issued by an actor who may
//! issue it (and who is not an author, for an approval), naming the current version, at
//! [`now`]; the SCHEDULED history is due by then.

mod support;

use galley_domain::{
    Action, Actor, ArticleContent, CancelCause, ContentDraft, DomainError, EventData,
    PublishTrigger, Status, Version,
};
use support::act::*;
use support::*;

use Status::*;

/// What a row expects.
enum Then {
    Events(Vec<EventData>),
    Error(DomainError),
}

fn events(data: impl IntoIterator<Item = EventData>) -> Then {
    Then::Events(data.into_iter().collect())
}

/// Runs one action's table: every status exactly once.
#[track_caller]
fn table(actor: Actor, action: Action, rows: Vec<(Status, Then)>) {
    let mut seen: Vec<Status> = rows.iter().map(|(s, _)| *s).collect();
    seen.sort();
    assert_eq!(
        seen,
        Status::ALL.to_vec(),
        "the table names every status once"
    );
    for (status, then) in rows {
        let when = given_status(status).when(actor.clone(), action.clone());
        match then {
            Then::Events(expected) => {
                let result = when.result();
                assert!(result.is_ok(), "{} in {status}: {result:?}", action.name());
                when.then_events(expected);
            }
            Then::Error(expected) => {
                let result = when.result();
                assert_eq!(result, Err(expected), "{} in {status}", action.name());
            }
        }
    }
}

fn no(command: &'static str, status: Status) -> (Status, Then) {
    (status, Then::Error(invalid(command, status, None)))
}

fn no_because(command: &'static str, status: Status, detail: &str) -> (Status, Then) {
    (status, Then::Error(invalid(command, status, Some(detail))))
}

fn revised_draft() -> ContentDraft {
    ContentDraft {
        standfirst: "KFOR rebuffed Belgrade's request to deploy 1,000 troops.".to_owned(),
        ..seed()
    }
}

fn revised_content() -> ArticleContent {
    ArticleContent::new(revised_draft()).unwrap()
}

fn version_of(status: Status) -> Version {
    Version(history(status).len() as u64)
}

#[test]
fn create_article_in_any_status_is_a_conflict_at_the_current_version() {
    let rows = Status::ALL
        .into_iter()
        .map(|s| {
            (
                s,
                Then::Error(DomainError::Conflict {
                    expected: Version::NONE,
                    current: version_of(s),
                }),
            )
        })
        .collect();
    table(editor(), create(seed()), rows);
}

#[test]
fn revise_draft_in_every_status() {
    let c = "reviseDraft";
    let revised = || EventData::DraftRevised {
        revision: R3,
        content: revised_content(),
    };
    table(
        editor(),
        revise(revised_draft()),
        vec![
            (Draft, events([revised()])),
            no_because(c, InReview, "withdraw the submission first"),
            (ChangesRequested, events([revised()])),
            (Approved, events([revised()])),
            (
                Scheduled,
                events([
                    EventData::ScheduleCancelled {
                        revision: R2,
                        publish_at: due(),
                        cause: CancelCause::DraftRevised,
                    },
                    revised(),
                ]),
            ),
            (Published, events([revised()])),
            (Unpublished, events([revised()])),
            no_because(c, Archived, "restore the article first"),
        ],
    );
}

#[test]
fn submit_for_review_in_every_status() {
    let c = "submitForReview";
    let submitted = || EventData::SubmittedForReview { revision: R2 };
    table(
        editor(),
        submit(),
        vec![
            (Draft, events([submitted()])),
            no(c, InReview),
            (ChangesRequested, events([submitted()])),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            (Unpublished, events([submitted()])),
            no(c, Archived),
        ],
    );
}

#[test]
fn withdraw_submission_in_every_status() {
    let c = "withdrawSubmission";
    table(
        editor(),
        withdraw(),
        vec![
            no(c, Draft),
            (
                InReview,
                events([EventData::SubmissionWithdrawn { revision: R2 }]),
            ),
            no(c, ChangesRequested),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn assign_reviewer_in_every_status() {
    let c = "assignReviewer";
    let assigned = || EventData::ReviewerAssigned {
        reviewer: REVIEWER_2,
    };
    table(
        editor(),
        assign(REVIEWER_2),
        vec![
            (Draft, events([assigned()])),
            (InReview, events([assigned()])),
            (ChangesRequested, events([assigned()])),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn unassign_reviewer_in_every_status() {
    let c = "unassignReviewer";
    let rows = Status::ALL
        .into_iter()
        .map(|status| {
            let mut events = history(status);
            events.insert(
                1,
                ev(
                    t(1),
                    EDITOR,
                    EventData::ReviewerAssigned {
                        reviewer: REVIEWER_2,
                    },
                ),
            );
            let when = given(events).when(editor(), unassign(REVIEWER_2));
            let result = when.result();
            let then = if matches!(status, Draft | InReview | ChangesRequested) {
                let article = when.then_events([EventData::ReviewerUnassigned {
                    reviewer: REVIEWER_2,
                }]);
                assert!(article.reviewers.is_empty(), "{status}");
                None
            } else {
                Some(result)
            };
            (status, then)
        })
        .collect::<Vec<_>>();
    for (status, refused) in rows {
        if let Some(result) = refused {
            assert_eq!(result, Err(invalid(c, status, None)), "{status}");
        }
    }
    given_status(Draft)
        .when(editor(), unassign(REVIEWER_2))
        .then_invalid_field("reviewer");
}

#[test]
fn add_review_comment_in_every_status() {
    let commented = || EventData::ReviewCommentAdded {
        comment_id: COMMENT,
        revision: R1,
        body: "Source for the 3,800 figure?".to_owned(),
    };
    table(
        reviewer(),
        comment(R1, "  Source for the 3,800 figure?  "),
        vec![
            (Draft, events([commented()])),
            (InReview, events([commented()])),
            (ChangesRequested, events([commented()])),
            (Approved, events([commented()])),
            (Scheduled, events([commented()])),
            (Published, events([commented()])),
            (Unpublished, events([commented()])),
            no("addReviewComment", Archived),
        ],
    );
}

#[test]
fn request_changes_in_every_status() {
    let c = "requestChanges";
    table(
        reviewer(),
        request_changes("Name the source of the quote."),
        vec![
            no(c, Draft),
            (
                InReview,
                events([EventData::ChangesRequested {
                    revision: R2,
                    reason: "Name the source of the quote.".to_owned(),
                }]),
            ),
            no(c, ChangesRequested),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn approve_revision_in_every_status() {
    let c = "approveRevision";
    table(
        reviewer_2(),
        approve(R2),
        vec![
            no(c, Draft),
            (
                InReview,
                events([EventData::RevisionApproved { revision: R2 }]),
            ),
            no(c, ChangesRequested),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn publish_now_in_every_status() {
    let c = "publishArticle";
    let published = || EventData::ArticlePublished {
        revision: R2,
        previous_live: None,
        correction: None,
        trigger: PublishTrigger::Now,
    };
    table(
        publisher(),
        publish(),
        vec![
            no(c, Draft),
            no(c, InReview),
            no(c, ChangesRequested),
            (Approved, events([published()])),
            (Scheduled, events([published()])),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn schedule_publication_in_every_status() {
    let c = "schedulePublication";
    table(
        publisher(),
        schedule(t(120)),
        vec![
            no(c, Draft),
            no(c, InReview),
            no(c, ChangesRequested),
            (
                Approved,
                events([EventData::PublicationScheduled {
                    revision: R2,
                    publish_at: t(120),
                    correction: None,
                }]),
            ),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn cancel_schedule_in_every_status() {
    let c = "cancelSchedule";
    table(
        publisher(),
        cancel_schedule(),
        vec![
            no(c, Draft),
            no(c, InReview),
            no(c, ChangesRequested),
            no(c, Approved),
            (
                Scheduled,
                events([EventData::ScheduleCancelled {
                    revision: R2,
                    publish_at: due(),
                    cause: CancelCause::Cancelled,
                }]),
            ),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn publish_due_in_every_status() {
    let c = "publishDue";
    table(
        system(),
        publish_due(),
        vec![
            no(c, Draft),
            no(c, InReview),
            no(c, ChangesRequested),
            no(c, Approved),
            (
                Scheduled,
                events([EventData::ArticlePublished {
                    revision: R2,
                    previous_live: None,
                    correction: None,
                    trigger: PublishTrigger::Schedule,
                }]),
            ),
            no(c, Published),
            no(c, Unpublished),
            no(c, Archived),
        ],
    );
}

#[test]
fn unpublish_article_in_every_status() {
    let c = "unpublishArticle";
    let not_live = |s| no_because(c, s, "no revision is live");
    table(
        publisher(),
        unpublish("Court order."),
        vec![
            not_live(Draft),
            not_live(InReview),
            not_live(ChangesRequested),
            not_live(Approved),
            not_live(Scheduled),
            (
                Published,
                events([EventData::ArticleUnpublished {
                    revision: R2,
                    reason: "Court order.".to_owned(),
                }]),
            ),
            not_live(Unpublished),
            not_live(Archived),
        ],
    );
}

#[test]
fn set_embargo_in_every_status() {
    let c = "setEmbargo";
    let set = || EventData::EmbargoSet { until: t(200) };
    table(
        editor(),
        embargo(t(200)),
        vec![
            (Draft, events([set()])),
            (InReview, events([set()])),
            (ChangesRequested, events([set()])),
            (Approved, events([set()])),
            (Scheduled, events([set()])),
            no_because(c, Published, "a live article cannot be embargoed"),
            (Unpublished, events([set()])),
            no(c, Archived),
        ],
    );
}

#[test]
fn lift_embargo_without_an_embargo_in_every_status() {
    let rows = Status::ALL
        .into_iter()
        .map(|s| no_because("liftEmbargo", s, "there is no embargo to lift"))
        .collect();
    table(admin(), lift_embargo("Agreed with the source."), rows);
}

#[test]
fn lift_embargo_in_every_status_that_holds_one() {
    // The embargo is set right after creation and ends before anything is published.
    for status in Status::ALL {
        let mut events = history(status);
        events.insert(1, ev(t(0), EDITOR, EventData::EmbargoSet { until: t(2) }));
        given(events)
            .when(admin(), lift_embargo(" Agreed with the source. "))
            .then_events([EventData::EmbargoLifted {
                until: t(2),
                reason: "Agreed with the source.".to_owned(),
            }]);
    }
}

#[test]
fn archive_article_in_every_status() {
    let c = "archiveArticle";
    let archived = || events([EventData::ArticleArchived {}]);
    table(
        publisher(),
        archive(),
        vec![
            (Draft, archived()),
            (InReview, archived()),
            (ChangesRequested, archived()),
            (Approved, archived()),
            no(c, Scheduled),
            no_because(c, Published, "unpublish it first"),
            (Unpublished, archived()),
            no(c, Archived),
        ],
    );
}

#[test]
fn restore_article_in_every_status() {
    let c = "restoreArticle";
    table(
        publisher(),
        restore(),
        vec![
            no(c, Draft),
            no(c, InReview),
            no(c, ChangesRequested),
            no(c, Approved),
            no(c, Scheduled),
            no(c, Published),
            no(c, Unpublished),
            (Archived, events([EventData::ArticleRestored {}])),
        ],
    );
}

#[test]
fn restore_revision_in_every_status() {
    let c = "restoreRevision";
    let restored = || EventData::RevisionRestored {
        revision: R3,
        from: R1,
        content: first_draft_content(),
    };
    table(
        editor(),
        restore_revision(R1),
        vec![
            (Draft, events([restored()])),
            no_because(c, InReview, "withdraw the submission first"),
            (ChangesRequested, events([restored()])),
            (Approved, events([restored()])),
            (
                Scheduled,
                events([
                    EventData::ScheduleCancelled {
                        revision: R2,
                        publish_at: due(),
                        cause: CancelCause::DraftRevised,
                    },
                    restored(),
                ]),
            ),
            (Published, events([restored()])),
            (Unpublished, events([restored()])),
            no_because(c, Archived, "restore the article first"),
        ],
    );
}

#[test]
fn each_accepted_cell_leads_to_the_status_the_workflow_names() {
    // (from, action, to) for the accepted moves that change the status.
    let moves: Vec<(Status, Actor, Action, Status)> = vec![
        (Draft, editor(), submit(), InReview),
        (InReview, editor(), withdraw(), Draft),
        (InReview, reviewer(), request_changes("x"), ChangesRequested),
        (InReview, reviewer_2(), approve(R2), Approved),
        (ChangesRequested, editor(), revise(revised_draft()), Draft),
        (ChangesRequested, editor(), submit(), InReview),
        (Approved, editor(), revise(revised_draft()), Draft),
        (Approved, publisher(), schedule(t(120)), Scheduled),
        (Approved, publisher(), publish(), Published),
        (Approved, publisher(), archive(), Archived),
        (Scheduled, publisher(), cancel_schedule(), Approved),
        (Scheduled, system(), publish_due(), Published),
        (Scheduled, publisher(), publish(), Published),
        (Scheduled, editor(), revise(revised_draft()), Draft),
        (Published, editor(), revise(revised_draft()), Draft),
        (Published, publisher(), unpublish("x"), Unpublished),
        (Unpublished, editor(), submit(), InReview),
        (Unpublished, publisher(), archive(), Archived),
        (Archived, publisher(), restore(), Draft),
    ];
    for (from, actor, action, to) in moves {
        let after = given_status(from)
            .when(actor, action.clone())
            .accepted()
            .state();
        assert_eq!(after.status, to, "{} from {from}", action.name());
    }
}
