//! The rules of DESIGN.md §3, one scenario each.

mod support;

use galley_domain::{
    Action, Actor, Approval, ArticleContent, CancelCause, ContentDraft, DomainError, EventData,
    PublishTrigger, Role, Status, Version,
};
use support::act::*;
use support::*;

use Status::*;

// Creating.

#[test]
fn creating_an_article_records_its_first_revision_with_validated_content() {
    let article =
        given_nothing()
            .when(editor(), create(seed()))
            .then_events([EventData::ArticleCreated {
                article_id: ARTICLE,
                revision: R1,
                content: seed_content(),
            }]);
    assert_eq!(article.id, Some(ARTICLE));
    assert_eq!(article.status, Draft);
    assert_eq!(article.version, Version(1));
    assert_eq!(article.revision(), R1);
    assert_eq!(article.authors, vec![EDITOR]);
    assert_eq!(article.created_at, Some(now()));
    assert_eq!(article.live_revision, None);
    assert!(!article.has_unpublished_changes());
}

#[test]
fn creating_expects_version_zero_and_otherwise_is_a_conflict() {
    given_nothing()
        .when(editor(), create(seed()))
        .expecting(Version(3))
        .then_error(DomainError::Conflict {
            expected: Version(3),
            current: Version(0),
        });
}

#[test]
fn creating_an_article_that_exists_is_a_conflict_naming_its_version() {
    given_status(Draft)
        .when(editor(), create(seed()))
        .expecting(Version::NONE)
        .then_error(DomainError::Conflict {
            expected: Version::NONE,
            current: Version(2),
        });
}

#[test]
fn creating_with_invalid_content_fails_validation_naming_the_field() {
    given_nothing()
        .when(
            editor(),
            create(ContentDraft {
                language: Some("not a language".to_owned()),
                ..seed()
            }),
        )
        .then_invalid_field("language");
}

#[test]
fn a_draft_may_be_saved_without_headline_or_body() {
    let article = given_nothing()
        .when(editor(), create(ContentDraft::default()))
        .accepted()
        .state();
    let content = article.content().unwrap();
    assert_eq!(content.headline, "");
    assert_eq!(content.slug, None);
    assert_eq!(content.language.as_str(), "en");
}

// Not found, conflicts and the order of checks.

#[test]
fn every_command_but_create_on_a_missing_article_is_not_found() {
    let actions = [
        (editor(), revise(seed())),
        (editor(), submit()),
        (editor(), withdraw()),
        (editor(), assign(REVIEWER)),
        (reviewer(), comment(R1, "x")),
        (reviewer(), request_changes("x")),
        (reviewer(), approve(R1)),
        (publisher(), publish()),
        (publisher(), schedule(t(100))),
        (publisher(), cancel_schedule()),
        (system(), publish_due()),
        (publisher(), unpublish("x")),
        (editor(), embargo(t(100))),
        (admin(), lift_embargo("x")),
        (publisher(), archive()),
        (publisher(), restore()),
        (editor(), restore_revision(R1)),
    ];
    assert_eq!(actions.len(), 17);
    for (actor, action) in actions {
        given_nothing()
            .when(actor, action)
            .then_error(DomainError::NotFound);
    }
}

#[test]
fn a_stale_expected_version_is_a_conflict_that_reports_the_current_version() {
    given_status(Approved)
        .when(publisher(), publish())
        .expecting(Version(3))
        .then_error(DomainError::Conflict {
            expected: Version(3),
            current: Version(4),
        });
}

#[test]
fn an_expected_version_from_the_future_is_a_conflict_too() {
    given_status(Draft)
        .when(editor(), submit())
        .expecting(Version(9))
        .then_error(DomainError::Conflict {
            expected: Version(9),
            current: Version(2),
        });
}

#[test]
fn a_conflict_message_names_both_versions() {
    let e = given_status(Draft)
        .when(editor(), submit())
        .expecting(Version(1))
        .then_code("CONFLICT");
    assert_eq!(
        e.to_string(),
        "expected version 1 but the article is at version 2"
    );
}

#[test]
fn forbidden_comes_before_not_found() {
    given_nothing()
        .when(viewer(), submit())
        .then_code("FORBIDDEN");
}

#[test]
fn not_found_comes_before_conflict() {
    given_nothing()
        .when(editor(), submit())
        .expecting(Version(5))
        .then_error(DomainError::NotFound);
}

#[test]
fn conflict_comes_before_an_invalid_transition() {
    given_status(Archived)
        .when(editor(), submit())
        .expecting(Version(1))
        .then_code("CONFLICT");
}

#[test]
fn an_invalid_transition_comes_before_validation() {
    given_status(Draft)
        .when(reviewer(), request_changes(""))
        .then_invalid_transition();
    given_status(Archived)
        .when(
            editor(),
            revise(ContentDraft {
                headline: "x".repeat(400),
                ..seed()
            }),
        )
        .then_invalid_transition();
}

// Revising.

#[test]
fn revising_a_draft_appends_a_revision_with_the_full_new_content() {
    let article = given_status(Draft)
        .when(editor_2(), revise(seed_headed("Vučić: NATO said no")))
        .then_events([EventData::DraftRevised {
            revision: R3,
            content: ArticleContent::new(seed_headed("Vučić: NATO said no")).unwrap(),
        }]);
    assert_eq!(article.revision(), R3);
    assert_eq!(
        article.content().unwrap().slug.as_ref().unwrap().as_str(),
        "vucic-nato-said-no"
    );
    assert_eq!(article.authors, vec![EDITOR, EDITOR_2]);
    assert_eq!(article.revision_content(R1), Some(&first_draft_content()));
}

#[test]
fn revising_is_refused_while_in_review_so_the_editor_must_withdraw_first() {
    given_status(InReview)
        .when(editor(), revise(seed()))
        .then_error(invalid(
            "reviseDraft",
            InReview,
            Some("withdraw the submission first"),
        ));
    given_status(InReview)
        .then_after(editor(), withdraw())
        .when(editor(), revise(seed()))
        .accepted();
}

#[test]
fn revising_an_approved_article_invalidates_the_approval_and_returns_it_to_draft() {
    let article = given_status(Approved)
        .when(editor(), revise(seed()))
        .accepted()
        .state();
    assert_eq!(article.status, Draft);
    assert!(!article.is_current_revision_approved());
    assert_eq!(article.approval.as_ref().map(|a| a.revision), Some(R2));
}

#[test]
fn an_approval_goes_stale_when_a_later_revision_exists_so_it_cannot_be_published() {
    let revised = given_status(Approved).then_after(editor(), revise(seed()));
    revised
        .clone()
        .when(publisher(), publish())
        .then_invalid_transition();
    // Even resubmitted and in review, revision 3 has no approval of its own.
    let article = revised.then_after(editor(), submit()).state();
    assert!(!article.is_current_revision_approved());
}

#[test]
fn revising_a_scheduled_article_cancels_the_schedule_before_the_new_revision() {
    let article = given_status(Scheduled)
        .when(editor(), revise(seed()))
        .then_events([
            EventData::ScheduleCancelled {
                revision: R2,
                publish_at: due(),
                cause: CancelCause::DraftRevised,
            },
            EventData::DraftRevised {
                revision: R3,
                content: seed_content(),
            },
        ]);
    assert_eq!(article.status, Draft);
    assert_eq!(article.scheduled_for, None);
    assert_eq!(article.version, Version(7));
}

#[test]
fn a_scheduled_article_that_was_revised_is_not_published_when_the_old_time_comes() {
    given_status(Scheduled)
        .then_after_at(t(10), editor(), revise(seed()))
        .when(system(), publish_due())
        .at(t(55))
        .then_invalid_transition();
}

#[test]
fn revising_a_published_article_keeps_the_live_revision_live_with_unpublished_changes() {
    let article = given_status(Published)
        .when(editor(), revise(seed_headed("NATO rebuffs Serbia")))
        .accepted()
        .state();
    assert_eq!(article.status, Draft);
    assert_eq!(article.live_revision, Some(R2));
    assert_eq!(article.revision(), R3);
    assert!(article.has_unpublished_changes());
}

#[test]
fn publishing_the_approved_new_revision_replaces_the_live_one() {
    let article = given_status(Published)
        .then_after(editor(), revise(seed_headed("NATO rebuffs Serbia")))
        .then_after(editor(), submit())
        .then_after(reviewer(), approve(R3))
        .when(publisher(), publish())
        .then_events([EventData::ArticlePublished {
            revision: R3,
            previous_live: Some(R2),
            correction: None,
            trigger: PublishTrigger::Now,
        }]);
    assert_eq!(article.live_revision, Some(R3));
    assert!(!article.has_unpublished_changes());
    assert_eq!(article.first_published_at, Some(t(4)));
    assert_eq!(article.last_published_at, article.updated_at);
    assert!(article.last_published_at > article.first_published_at);
}

// Submitting.

#[test]
fn submitting_needs_a_headline() {
    given_nothing()
        .then_after(
            editor(),
            create(ContentDraft {
                headline: String::new(),
                slug: Some("kosovo".to_owned()),
                ..seed()
            }),
        )
        .when(editor(), submit())
        .then_invalid_field("headline");
}

#[test]
fn submitting_needs_a_body() {
    given_nothing()
        .then_after(
            editor(),
            create(ContentDraft {
                body: " \n ".to_owned(),
                ..seed()
            }),
        )
        .when(editor(), submit())
        .then_invalid_field("body");
}

#[test]
fn submitting_needs_a_slug_which_a_punctuation_headline_does_not_give() {
    given_nothing()
        .then_after(
            editor(),
            create(ContentDraft {
                headline: "?!".to_owned(),
                slug: None,
                ..seed()
            }),
        )
        .when(editor(), submit())
        .then_invalid_field("slug");
}

#[test]
fn submitting_records_first_and_latest_submission_times() {
    let article = given_status(Draft)
        .then_after_at(t(10), editor(), submit())
        .then_after_at(t(11), editor(), withdraw())
        .then_after_at(t(12), editor(), submit())
        .state();
    assert_eq!(article.first_submitted_at, Some(t(10)));
    assert_eq!(article.submitted_at, Some(t(12)));
}

#[test]
fn withdrawing_a_submission_returns_the_article_to_draft() {
    let article = given_status(InReview)
        .when(editor(), withdraw())
        .then_events([EventData::SubmissionWithdrawn { revision: R2 }]);
    assert_eq!(article.status, Draft);
}

// Reviewing.

#[test]
fn a_reviewer_is_assigned_once() {
    let assigned = given_status(InReview).then_after(editor(), assign(REVIEWER));
    assert_eq!(assigned.state().reviewers, vec![REVIEWER]);
    assigned
        .when(editor(), assign(REVIEWER))
        .then_invalid_field("reviewer");
}

#[test]
fn the_system_cannot_be_assigned_as_a_reviewer() {
    given_status(InReview)
        .when(editor(), assign(galley_domain::UserId::SYSTEM))
        .then_invalid_field("reviewer");
}

#[test]
fn an_author_cannot_be_assigned_as_reviewer() {
    given_status(InReview)
        .when(reviewer(), assign(EDITOR))
        .then_error(DomainError::SelfApproval);
}

#[test]
fn a_review_comment_is_attached_to_the_revision_it_names() {
    given_status(InReview)
        .when(reviewer(), comment(R1, "The first draft said 1,000."))
        .then_events([EventData::ReviewCommentAdded {
            comment_id: COMMENT,
            revision: R1,
            body: "The first draft said 1,000.".to_owned(),
        }]);
}

#[test]
fn an_editor_may_comment_too() {
    given_status(InReview)
        .when(editor(), comment(R2, "Fixed the date."))
        .accepted();
}

#[test]
fn a_review_comment_must_name_an_existing_revision() {
    for revision in [galley_domain::RevisionNumber(0), R3] {
        given_status(InReview)
            .when(reviewer(), comment(revision, "x"))
            .then_invalid_field("revision");
    }
}

#[test]
fn a_review_comment_must_have_a_body() {
    given_status(InReview)
        .when(reviewer(), comment(R2, "   "))
        .then_invalid_field("body");
    given_status(InReview)
        .when(reviewer(), comment(R2, &"x".repeat(10_001)))
        .then_invalid_field("body");
}

#[test]
fn requesting_changes_needs_a_reason() {
    for reason in ["", "  \n "] {
        given_status(InReview)
            .when(reviewer(), request_changes(reason))
            .then_error(DomainError::validation("reason", "is required"));
    }
    given_status(InReview)
        .when(reviewer(), request_changes(&"x".repeat(2_001)))
        .then_invalid_field("reason");
}

#[test]
fn changes_requested_can_be_revised_and_resubmitted() {
    let article = given_status(ChangesRequested)
        .then_after(editor(), revise(seed()))
        .then_after(editor(), submit())
        .then_after(reviewer(), approve(R3))
        .state();
    assert_eq!(article.status, Approved);
}

#[test]
fn an_approval_names_the_revision_the_reviewer_and_the_time() {
    let article = given_status(InReview)
        .when(reviewer(), approve(R2))
        .then_events([EventData::RevisionApproved { revision: R2 }]);
    assert_eq!(
        article.approval,
        Some(Approval {
            revision: R2,
            by: REVIEWER,
            at: now(),
        })
    );
    assert!(article.is_current_revision_approved());
}

#[test]
fn approving_another_revision_than_the_one_under_review_fails_on_revision() {
    for revision in [R1, R3] {
        given_status(InReview)
            .when(reviewer(), approve(revision))
            .then_invalid_field("revision");
    }
}

#[test]
fn the_author_cannot_approve_their_own_article() {
    let author_reviewer = Actor::user(EDITOR, [Role::Editor, Role::Reviewer]);
    given_status(InReview)
        .when(author_reviewer, approve(R2))
        .then_error(DomainError::SelfApproval);
}

#[test]
fn a_reviewer_who_revised_the_article_cannot_approve_it() {
    let reviser = Actor::user(REVIEWER, [Role::Editor, Role::Reviewer]);
    given_status(Draft)
        .then_after(reviser.clone(), revise(seed()))
        .then_after(editor(), submit())
        .when(reviser, approve(R3))
        .then_error(DomainError::SelfApproval);
}

#[test]
fn a_reviewer_who_restored_a_revision_cannot_approve_it() {
    let restorer = Actor::user(REVIEWER, [Role::Editor, Role::Reviewer]);
    given_status(Draft)
        .then_after(restorer.clone(), restore_revision(R1))
        .then_after(editor(), submit())
        .when(restorer, approve(R3))
        .then_error(DomainError::SelfApproval);
}

#[test]
fn not_even_an_admin_may_approve_an_article_they_wrote() {
    let admin_author = given_nothing()
        .then_after(admin(), create(seed()))
        .then_after(admin(), submit());
    admin_author
        .clone()
        .when(admin(), approve(R1))
        .then_error(DomainError::SelfApproval);
    admin_author.when(reviewer(), approve(R1)).accepted();
}

#[test]
fn a_reviewer_who_only_commented_may_approve() {
    given_status(InReview)
        .then_after(reviewer(), comment(R2, "Fine."))
        .when(reviewer(), approve(R2))
        .accepted();
}

// Publishing.

#[test]
fn publishing_records_the_first_and_last_publication_times() {
    let article = given_status(Approved)
        .when(publisher(), publish())
        .accepted()
        .state();
    assert_eq!(article.status, Published);
    assert_eq!(article.live_revision, Some(R2));
    assert_eq!(article.first_published_at, Some(now()));
    assert_eq!(article.last_published_at, Some(now()));
}

#[test]
fn scheduling_needs_a_time_in_the_future() {
    for at in [t(10), now()] {
        given_status(Approved)
            .when(publisher(), schedule(at))
            .then_invalid_field("publishAt");
    }
}

#[test]
fn a_scheduled_article_is_not_published_before_it_is_due() {
    given_status(Scheduled)
        .when(system(), publish_due())
        .at(t(49))
        .then_error(invalid(
            "publishDue",
            Scheduled,
            Some(&format!("it is not due until {}", due())),
        ));
}

#[test]
fn the_scheduler_publishes_a_scheduled_article_once_due() {
    let article = given_status(Scheduled)
        .when(system(), publish_due())
        .at(due())
        .then_events([EventData::ArticlePublished {
            revision: R2,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Schedule,
        }]);
    assert_eq!(article.status, Published);
    assert_eq!(article.scheduled_for, None);
    assert!(!article.authors.contains(&galley_domain::UserId::SYSTEM));
}

#[test]
fn publishing_a_scheduled_article_early_clears_its_schedule() {
    let article = given_status(Scheduled)
        .when(publisher(), publish())
        .at(t(20))
        .accepted()
        .state();
    assert_eq!(article.status, Published);
    assert_eq!(article.scheduled_for, None);
}

#[test]
fn cancelling_a_schedule_returns_the_article_to_approved() {
    let article = given_status(Scheduled)
        .when(publisher(), cancel_schedule())
        .accepted()
        .state();
    assert_eq!(article.status, Approved);
    assert_eq!(article.scheduled_for, None);
    assert!(article.is_current_revision_approved());
}

#[test]
fn a_schedule_cannot_be_set_twice_without_cancelling() {
    given_status(Scheduled)
        .when(publisher(), schedule(t(300)))
        .then_invalid_transition();
    given_status(Scheduled)
        .then_after_at(t(10), publisher(), cancel_schedule())
        .when(publisher(), schedule(t(300)))
        .at(t(11))
        .accepted();
}

// Corrections.

fn republish_ready() -> Given {
    given_status(Published)
        .then_after(editor(), revise(seed_headed("NATO rebuffs Serbia")))
        .then_after(editor(), submit())
        .then_after(reviewer(), approve(R3))
}

#[test]
fn a_first_publication_cannot_carry_a_correction_note() {
    given_status(Approved)
        .when(publisher(), publish_correcting("We misspelled Štrpac."))
        .then_invalid_field("correction");
    given_status(Approved)
        .when(
            publisher(),
            Action::SchedulePublication {
                publish_at: t(100),
                correction: Some("We misspelled Štrpac.".to_owned()),
            },
        )
        .then_invalid_field("correction");
}

#[test]
fn a_republication_records_its_correction_note() {
    republish_ready()
        .when(
            publisher(),
            publish_correcting("  An earlier version misspelled Štrpac. "),
        )
        .then_events([EventData::ArticlePublished {
            revision: R3,
            previous_live: Some(R2),
            correction: Some("An earlier version misspelled Štrpac.".to_owned()),
            trigger: PublishTrigger::Now,
        }]);
}

#[test]
fn a_blank_correction_note_is_no_correction() {
    given_status(Approved)
        .when(publisher(), publish_correcting("   "))
        .then_events([EventData::ArticlePublished {
            revision: R2,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Now,
        }]);
}

#[test]
fn a_correction_note_has_a_length_limit() {
    republish_ready()
        .when(publisher(), publish_correcting(&"x".repeat(2_001)))
        .then_invalid_field("correction");
}

#[test]
fn a_scheduled_republication_carries_its_correction_when_it_falls_due() {
    let scheduled = republish_ready().then_after_at(
        t(70),
        publisher(),
        Action::SchedulePublication {
            publish_at: t(90),
            correction: Some("Figures updated.".to_owned()),
        },
    );
    assert_eq!(
        scheduled.state().scheduled_correction.as_deref(),
        Some("Figures updated.")
    );
    scheduled
        .when(system(), publish_due())
        .at(t(90))
        .then_events([EventData::ArticlePublished {
            revision: R3,
            previous_live: Some(R2),
            correction: Some("Figures updated.".to_owned()),
            trigger: PublishTrigger::Schedule,
        }]);
}

#[test]
fn an_article_that_was_unpublished_may_carry_a_correction_when_it_returns() {
    given_status(Unpublished)
        .then_after(editor(), submit())
        .then_after(reviewer(), approve(R2))
        .when(
            publisher(),
            publish_correcting("Restored after legal review."),
        )
        .then_events([EventData::ArticlePublished {
            revision: R2,
            previous_live: None,
            correction: Some("Restored after legal review.".to_owned()),
            trigger: PublishTrigger::Now,
        }]);
}

// Embargo.

fn embargoed_until(status: Status, until: chrono::DateTime<chrono::Utc>) -> Given {
    let mut events = history(status);
    events.insert(2, ev(t(1), EDITOR, EventData::EmbargoSet { until }));
    given(events)
}

#[test]
fn an_embargo_in_the_future_blocks_publishing_now() {
    embargoed_until(Approved, t(500))
        .when(publisher(), publish())
        .then_error(DomainError::Embargoed { until: t(500) });
}

#[test]
fn an_embargo_blocks_scheduling_before_it_ends() {
    embargoed_until(Approved, t(500))
        .when(publisher(), schedule(t(499)))
        .then_error(DomainError::Embargoed { until: t(500) });
}

#[test]
fn scheduling_for_when_the_embargo_ends_is_allowed() {
    embargoed_until(Approved, t(500))
        .when(publisher(), schedule(t(500)))
        .accepted();
}

#[test]
fn an_embargo_set_after_scheduling_blocks_the_scheduler_once_per_cause() {
    let embargoed = given_status(Scheduled).then_after_at(t(10), editor(), embargo(t(500)));
    let reason = DomainError::Embargoed { until: t(500) }.to_string();
    let article = embargoed
        .clone()
        .when(system(), publish_due())
        .at(t(60))
        .then_events([EventData::PublicationBlocked {
            revision: R2,
            publish_at: due(),
            code: "EMBARGOED".to_owned(),
            reason: reason.clone(),
        }]);
    assert_eq!(article.status, Scheduled);
    assert_eq!(
        article.schedule_blocked.as_deref(),
        Some(format!("EMBARGOED: {reason}").as_str())
    );
    // The same cause on the next tick is refused: nothing more is recorded.
    let blocked = embargoed.then_after_at(t(60), system(), publish_due());
    blocked
        .clone()
        .when(system(), publish_due())
        .at(t(61))
        .then_error(DomainError::Embargoed { until: t(500) });
    // A new cause (a later embargo) is recorded again.
    blocked
        .clone()
        .then_after_at(t(62), editor(), embargo(t(900)))
        .when(system(), publish_due())
        .at(t(63))
        .then_events([EventData::PublicationBlocked {
            revision: R2,
            publish_at: due(),
            code: "EMBARGOED".to_owned(),
            reason: DomainError::Embargoed { until: t(900) }.to_string(),
        }]);
    // Lifting the embargo lets the next tick publish, and the note goes with the schedule.
    let published = blocked
        .then_after_at(t(70), admin(), lift_embargo("The minister spoke."))
        .when(system(), publish_due())
        .at(t(71))
        .then_events([EventData::ArticlePublished {
            revision: R2,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Schedule,
        }]);
    assert_eq!(published.schedule_blocked, None);
}

#[test]
fn a_cancelled_schedule_drops_the_blocked_note() {
    let article = given_status(Scheduled)
        .then_after_at(t(10), editor(), embargo(t(500)))
        .then_after_at(t(60), system(), publish_due())
        .when(publisher(), cancel_schedule())
        .accepted()
        .state();
    assert_eq!(article.status, Approved);
    assert_eq!(article.schedule_blocked, None);
}

#[test]
fn an_embargo_that_has_passed_blocks_nothing() {
    embargoed_until(Approved, t(30))
        .when(publisher(), publish())
        .at(t(30))
        .accepted();
}

#[test]
fn an_embargo_must_end_in_the_future() {
    given_status(Draft)
        .when(editor(), embargo(now()))
        .then_invalid_field("until");
}

#[test]
fn a_live_article_cannot_be_embargoed_even_with_unpublished_changes() {
    given_status(Published)
        .then_after(editor(), revise(seed()))
        .when(editor(), embargo(t(500)))
        .then_error(invalid(
            "setEmbargo",
            Draft,
            Some("a live article cannot be embargoed"),
        ));
}

#[test]
fn an_admin_lifts_an_embargo_with_a_reason_and_publishing_may_proceed() {
    let lifted = embargoed_until(Approved, t(500))
        .when(admin(), lift_embargo("The minister spoke early."))
        .then_events([EventData::EmbargoLifted {
            until: t(500),
            reason: "The minister spoke early.".to_owned(),
        }]);
    assert_eq!(lifted.embargo_until, None);
    embargoed_until(Approved, t(500))
        .then_after(admin(), lift_embargo("The minister spoke early."))
        .when(publisher(), publish())
        .accepted();
}

#[test]
fn lifting_an_embargo_needs_a_reason() {
    embargoed_until(Approved, t(500))
        .when(admin(), lift_embargo(" "))
        .then_invalid_field("reason");
}

#[test]
fn an_embargoed_error_names_the_time() {
    let e = embargoed_until(Approved, t(500))
        .when(publisher(), publish())
        .then_code("EMBARGOED");
    assert!(e.to_string().contains("2023-01-10 16:20:00"), "{e}");
}

// Unpublishing, archiving and restoring.

#[test]
fn unpublishing_needs_a_reason() {
    given_status(Published)
        .when(publisher(), unpublish(""))
        .then_invalid_field("reason");
}

#[test]
fn unpublishing_takes_the_live_revision_down() {
    let article = given_status(Published)
        .when(publisher(), unpublish("Court order."))
        .accepted()
        .state();
    assert_eq!(article.status, Unpublished);
    assert_eq!(article.live_revision, None);
    assert!(!article.has_unpublished_changes());
    assert_eq!(article.first_published_at, Some(t(4)));
}

#[test]
fn unpublishing_an_article_with_a_newer_draft_keeps_the_draft_working() {
    let article = given_status(Published)
        .then_after(editor(), revise(seed()))
        .when(publisher(), unpublish("Court order."))
        .then_events([EventData::ArticleUnpublished {
            revision: R2,
            reason: "Court order.".to_owned(),
        }]);
    assert_eq!(article.status, Draft);
    assert_eq!(article.live_revision, None);
    assert_eq!(article.revision(), R3);
}

#[test]
fn an_article_cannot_be_archived_while_live_even_with_a_newer_draft() {
    given_status(Published)
        .then_after(editor(), revise(seed()))
        .when(publisher(), archive())
        .then_error(invalid("archiveArticle", Draft, Some("unpublish it first")));
}

#[test]
fn an_admin_may_archive_and_restore_too() {
    given_status(Unpublished)
        .then_after(admin(), archive())
        .then_after(admin(), restore());
}

#[test]
fn restoring_an_archived_article_brings_it_back_as_a_draft_without_approval() {
    let restored = given_status(Approved)
        .then_after(publisher(), archive())
        .when(publisher(), restore())
        .accepted();
    let article = restored.state();
    assert_eq!(article.status, Draft);
    assert_eq!(article.approval, None);
    restored
        .when(publisher(), publish())
        .then_invalid_transition();
}

#[test]
fn restoring_revision_n_creates_a_new_revision_with_ns_content() {
    let article = given_status(Published)
        .when(editor(), restore_revision(R1))
        .then_events([EventData::RevisionRestored {
            revision: R3,
            from: R1,
            content: first_draft_content(),
        }]);
    assert_eq!(article.revision(), R3);
    assert_eq!(article.content(), Some(&first_draft_content()));
    // History is never rewritten: revisions 1 and 2 are as they were.
    assert_eq!(article.revision_content(R1), Some(&first_draft_content()));
    assert_eq!(article.revision_content(R2), Some(&seed_content()));
    assert_eq!(article.live_revision, Some(R2));
    assert!(article.has_unpublished_changes());
}

#[test]
fn restoring_the_current_or_a_missing_revision_fails_on_revision() {
    for revision in [galley_domain::RevisionNumber(0), R2, R4] {
        given_status(Draft)
            .when(editor(), restore_revision(revision))
            .then_invalid_field("revision");
    }
}

#[test]
fn a_restored_revision_needs_its_own_approval() {
    given_status(Approved)
        .then_after(editor(), restore_revision(R1))
        .then_after(editor(), submit())
        .then_after(reviewer(), approve(R3))
        .when(publisher(), publish())
        .then_events([EventData::ArticlePublished {
            revision: R3,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Now,
        }]);
}

// State bookkeeping.

#[test]
fn the_version_counts_every_event_and_updated_at_follows_the_last() {
    let given = given_status(Unpublished);
    let article = given.state();
    assert_eq!(article.version, Version(given.events.len() as u64));
    assert_eq!(article.updated_at, Some(t(5)));
}

#[test]
fn authors_are_kept_in_order_of_first_contribution() {
    let article = given_status(Draft)
        .then_after(editor_2(), revise(seed()))
        .then_after(editor(), revise(seed()))
        .state();
    assert_eq!(article.authors, vec![EDITOR, EDITOR_2]);
}

#[test]
fn unpublishing_while_a_newer_revision_is_scheduled_leaves_the_schedule_to_publish_it() {
    let scheduled = republish_ready().then_after_at(t(70), publisher(), schedule(t(90)));
    let article = scheduled
        .clone()
        .then_after_at(t(75), publisher(), unpublish("Legal review."))
        .state();
    assert_eq!(article.status, Scheduled);
    assert_eq!(article.live_revision, None);
    scheduled
        .then_after_at(t(75), publisher(), unpublish("Legal review."))
        .when(system(), publish_due())
        .at(t(90))
        .then_events([EventData::ArticlePublished {
            revision: R3,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Schedule,
        }]);
}

#[test]
fn revising_a_published_article_keeps_its_public_slug_when_none_is_named() {
    let before = given_status(Published).state();
    let article = given_status(Published)
        .when(editor(), revise(seed_headed("NATO rebuffs Serbia")))
        .accepted()
        .state();
    assert_eq!(
        article.content().unwrap().slug,
        before.content().unwrap().slug
    );
}

#[test]
fn revising_a_never_published_article_derives_the_slug_from_the_new_headline() {
    let article = given_status(Draft)
        .when(editor(), revise(seed_headed("NATO rebuffs Serbia")))
        .accepted()
        .state();
    assert_eq!(
        article.content().unwrap().slug.as_ref().unwrap().as_str(),
        "nato-rebuffs-serbia"
    );
}

#[test]
fn resubmitting_an_unpublished_article_needs_a_fresh_approval() {
    let article = given_status(Unpublished)
        .when(editor(), submit())
        .accepted()
        .state();
    assert!(!article.is_current_revision_approved());
    given_status(Unpublished)
        .then_after(editor(), submit())
        .then_after(reviewer(), request_changes("Source the quote"))
        .when(publisher(), publish())
        .then_invalid_transition();
}
