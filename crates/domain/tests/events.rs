//! Events as a persisted contract: stable type strings, camelCase payloads, a round trip
//! through `payload()` and `from_stored` for every type, and refusal of what this build
//! cannot read.

mod support;

use galley_domain::{
    Action, Article, CancelCause, Command, DomainError, Event, EventData, PublishTrigger, Status,
    Version, SCHEMA_VERSION,
};
use serde_json::json;
use support::act::*;
use support::*;

/// One event of every type.
fn one_of_each() -> Vec<EventData> {
    vec![
        EventData::ArticleCreated {
            article_id: ARTICLE,
            revision: R1,
            content: seed_content(),
        },
        EventData::DraftRevised {
            revision: R2,
            content: first_draft_content(),
        },
        EventData::SubmittedForReview { revision: R2 },
        EventData::SubmissionWithdrawn { revision: R2 },
        EventData::ReviewerAssigned { reviewer: REVIEWER },
        EventData::ReviewerUnassigned { reviewer: REVIEWER },
        EventData::ReviewCommentAdded {
            comment_id: COMMENT,
            revision: R1,
            body: "Source?".to_owned(),
        },
        EventData::ChangesRequested {
            revision: R2,
            reason: "Cite it.".to_owned(),
        },
        EventData::RevisionApproved { revision: R2 },
        EventData::PublicationScheduled {
            revision: R2,
            publish_at: t(90),
            correction: Some("Updated.".to_owned()),
        },
        EventData::ScheduleCancelled {
            revision: R2,
            publish_at: t(90),
            cause: CancelCause::DraftRevised,
        },
        EventData::PublicationBlocked {
            revision: R2,
            publish_at: t(90),
            code: "EMBARGOED".to_owned(),
            reason: "the article is embargoed until 2026-03-02T12:08:20Z".to_owned(),
        },
        EventData::ArticlePublished {
            revision: R3,
            previous_live: Some(R2),
            correction: None,
            trigger: PublishTrigger::Schedule,
        },
        EventData::ArticleUnpublished {
            revision: R3,
            reason: "Court order.".to_owned(),
        },
        EventData::EmbargoSet { until: t(500) },
        EventData::EmbargoLifted {
            until: t(500),
            reason: "Spoke early.".to_owned(),
        },
        EventData::ArticleArchived {},
        EventData::ArticleRestored {},
        EventData::RevisionRestored {
            revision: R4,
            from: R1,
            content: first_draft_content(),
        },
    ]
}

#[test]
fn the_samples_cover_every_stored_type_once() {
    let types: Vec<&str> = one_of_each().iter().map(EventData::event_type).collect();
    assert_eq!(types, EventData::TYPES.to_vec());
}

#[test]
fn the_type_strings_are_the_names_of_the_design() {
    assert_eq!(
        EventData::TYPES,
        [
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
        ]
    );
    assert_eq!(SCHEMA_VERSION, 1);
}

#[test]
fn every_event_type_round_trips_through_its_stored_payload() {
    for data in one_of_each() {
        let payload = data.payload();
        assert!(payload.is_object(), "{}", data.event_type());
        let back = EventData::from_stored(data.event_type(), SCHEMA_VERSION, payload).unwrap();
        assert_eq!(back, data);
    }
}

#[test]
fn every_event_type_round_trips_through_stored_text() {
    // The store keeps the payload as JSON text; reading it back must give the same event.
    for data in one_of_each() {
        let text = serde_json::to_string(&data.payload()).unwrap();
        let payload = serde_json::from_str(&text).unwrap();
        let back = EventData::from_stored(data.event_type(), SCHEMA_VERSION, payload).unwrap();
        assert_eq!(back, data);
    }
}

#[test]
fn the_serde_tag_is_the_type_string() {
    for data in one_of_each() {
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["type"], data.event_type());
        assert_eq!(json["payload"], data.payload());
    }
}

#[test]
fn payload_fields_are_camel_case() {
    let payloads: Vec<serde_json::Value> = one_of_each().iter().map(EventData::payload).collect();
    assert_eq!(payloads[0]["articleId"], json!(ARTICLE.to_string()));
    assert_eq!(payloads[6]["commentId"], json!(COMMENT.to_string()));
    assert_eq!(payloads[9]["publishAt"], json!("2023-01-10T09:30:00Z"));
    assert_eq!(payloads[12]["previousLive"], json!(2));
    assert_eq!(payloads[10]["cause"], json!("DRAFT_REVISED"));
    assert_eq!(payloads[11]["publishAt"], json!("2023-01-10T09:30:00Z"));
    assert_eq!(payloads[12]["trigger"], json!("SCHEDULE"));
}

#[test]
fn small_payloads_are_pinned_exactly() {
    assert_eq!(
        EventData::SubmittedForReview { revision: R2 }.payload(),
        json!({ "revision": 2 })
    );
    assert_eq!(EventData::ArticleArchived {}.payload(), json!({}));
    assert_eq!(
        EventData::ArticlePublished {
            revision: R3,
            previous_live: None,
            correction: None,
            trigger: PublishTrigger::Now,
        }
        .payload(),
        json!({ "revision": 3, "previousLive": null, "correction": null, "trigger": "NOW" })
    );
}

#[test]
fn a_revision_event_carries_the_full_content_not_a_patch() {
    let payload = EventData::DraftRevised {
        revision: R2,
        content: seed_content(),
    }
    .payload();
    let content = &payload["content"];
    for field in [
        "headline",
        "standfirst",
        "body",
        "slug",
        "category",
        "tags",
        "byline",
        "language",
    ] {
        assert!(content.get(field).is_some(), "{field}");
    }
    assert_eq!(content["language"], "en");
}

#[test]
fn an_unsupported_schema_version_is_refused() {
    for version in [0, SCHEMA_VERSION + 1, 99] {
        let e = EventData::from_stored("SubmittedForReview", version, json!({ "revision": 1 }))
            .unwrap_err();
        assert_eq!(e.event_type, "SubmittedForReview");
        assert_eq!(e.schema_version, version);
        assert!(e.to_string().contains("unsupported schema version"), "{e}");
    }
}

#[test]
fn an_unknown_type_string_is_refused() {
    let e = EventData::from_stored("ArticleTeleported", 1, json!({})).unwrap_err();
    assert_eq!(e.event_type, "ArticleTeleported");
}

#[test]
fn a_payload_that_does_not_fit_its_type_is_refused() {
    assert!(EventData::from_stored("SubmittedForReview", 1, json!({})).is_err());
    assert!(EventData::from_stored("SubmittedForReview", 1, json!({ "revision": "two" })).is_err());
    let mut content = EventData::ArticleCreated {
        article_id: ARTICLE,
        revision: R1,
        content: seed_content(),
    }
    .payload();
    content["content"]["slug"] = json!("Not A Slug");
    assert!(EventData::from_stored("ArticleCreated", 1, content).is_err());
}

#[test]
fn a_whole_event_round_trips_through_json() {
    for data in one_of_each() {
        let event = ev(t(7), EDITOR, data);
        let text = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn a_history_read_back_through_the_upcaster_replays_to_the_same_article() {
    for status in Status::ALL {
        let events = history(status);
        let stored: Vec<Event> = events
            .iter()
            .map(|e| Event {
                data: EventData::from_stored(e.data.event_type(), SCHEMA_VERSION, e.data.payload())
                    .unwrap(),
                ..e.clone()
            })
            .collect();
        assert_eq!(Article::replay(&stored), Article::replay(&events));
    }
}

#[test]
fn an_article_state_round_trips_through_json() {
    let article = given_status(Status::Scheduled).state();
    let back: Article = serde_json::from_value(serde_json::to_value(&article).unwrap()).unwrap();
    assert_eq!(back, article);
}

#[test]
fn commands_round_trip_through_json_with_the_mutation_name_as_tag() {
    let actions = [
        create(seed()),
        revise(first_draft()),
        submit(),
        withdraw(),
        assign(REVIEWER),
        comment(R1, "x"),
        request_changes("x"),
        approve(R2),
        publish_correcting("x"),
        schedule(t(90)),
        cancel_schedule(),
        publish_due(),
        unpublish("x"),
        embargo(t(90)),
        lift_embargo("x"),
        archive(),
        restore(),
        restore_revision(R1),
    ];
    for action in actions {
        let command = Command {
            article_id: ARTICLE,
            expected_version: Version(3),
            actor: editor(),
            now: now(),
            action,
        };
        let json = serde_json::to_value(&command).unwrap();
        assert!(json["action"]["command"].is_string());
        let back: Command = serde_json::from_value(json).unwrap();
        assert_eq!(back, command);
    }
    let json = serde_json::to_value(schedule(t(90))).unwrap();
    assert_eq!(json["command"], "schedulePublication");
    assert_eq!(json["publishAt"], "2023-01-10T09:30:00Z");
    assert!(matches!(
        serde_json::from_value::<Action>(json!({ "command": "submitForReview" })).unwrap(),
        Action::SubmitForReview
    ));
}

#[test]
fn every_domain_error_has_one_stable_code() {
    let errors = [
        (
            DomainError::Conflict {
                expected: Version(1),
                current: Version(2),
            },
            "CONFLICT",
        ),
        (
            DomainError::Forbidden {
                command: "x",
                required: vec![],
            },
            "FORBIDDEN",
        ),
        (DomainError::NotFound, "NOT_FOUND"),
        (
            invalid("submitForReview", Status::Archived, None),
            "INVALID_TRANSITION",
        ),
        (DomainError::validation("slug", "bad"), "VALIDATION_FAILED"),
        (DomainError::Embargoed { until: t(1) }, "EMBARGOED"),
        (DomainError::SelfApproval, "SELF_APPROVAL"),
    ];
    for (error, code) in errors {
        assert_eq!(error.code(), code);
    }
}

#[test]
fn an_invalid_transition_message_names_the_command_the_status_and_the_detail() {
    assert_eq!(
        invalid(
            "reviseDraft",
            Status::InReview,
            Some("withdraw the submission first")
        )
        .to_string(),
        "cannot reviseDraft an article that is IN_REVIEW: withdraw the submission first"
    );
    assert_eq!(
        invalid("restoreArticle", Status::Draft, None).to_string(),
        "cannot restoreArticle an article that is DRAFT"
    );
}

#[test]
fn statuses_have_stable_names_that_parse_back() {
    for status in Status::ALL {
        assert_eq!(Status::parse(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    assert_eq!(Status::parse("draft"), None);
}
