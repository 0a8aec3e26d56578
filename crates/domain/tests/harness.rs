//! The harness itself: the seed article parses, and every standard history is one the domain
//! produces itself, so no scenario starts from a state the workflow cannot reach.

mod support;

use galley_domain::{Article, Status};
use support::act::*;
use support::*;

#[test]
fn the_seed_article_parses_into_every_content_field() {
    let draft = seed();
    assert_eq!(
        draft.headline,
        "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
    );
    assert!(draft
        .standfirst
        .starts_with("Serbian President Aleksandar Vučić"));
    assert_eq!(
        draft.slug.as_deref(),
        Some("nato-denies-serbia-an-army-presence-in-kosovo")
    );
    assert_eq!(draft.category.as_deref(), Some("News"));
    assert_eq!(draft.tags.len(), 8);
    assert_eq!(draft.tags[0], "Aleksandar Vučić");
    assert_eq!(draft.byline, vec!["Tristan Vanheuckelom"]);
    assert_eq!(draft.language.as_deref(), Some("en"));
    assert!(draft.body.starts_with("The NATO-led Kosovo Force (KFOR)"));
    assert!(draft.body.contains("\n> We all knew"));
    assert!(draft.body.contains("[comes as no surprise](#)"));
    assert!(draft.body.contains("Štrpac"));
}

#[test]
fn every_standard_history_ends_in_its_status() {
    for status in Status::ALL {
        let article = Article::replay(&history(status));
        assert_eq!(article.status, status);
        assert_eq!(article.version.0, history(status).len() as u64);
    }
}

#[test]
fn every_standard_history_is_what_the_domain_itself_decides() {
    let base = given_nothing()
        .then_after_at(t(0), editor(), create(first_draft()))
        .then_after_at(t(1), editor(), revise(seed()));
    let submitted = base.clone().then_after_at(t(2), editor(), submit());
    let approved = submitted
        .clone()
        .then_after_at(t(3), reviewer(), approve(R2));
    let published = approved.clone().then_after_at(t(4), publisher(), publish());
    let reached = |status: Status| -> Vec<_> {
        match status {
            Status::Draft => base.clone(),
            Status::InReview => submitted.clone(),
            Status::ChangesRequested => submitted.clone().then_after_at(
                t(3),
                reviewer(),
                request_changes("Attribute the Pink interview."),
            ),
            Status::Approved => approved.clone(),
            Status::Scheduled => approved
                .clone()
                .then_after_at(t(4), publisher(), schedule(due())),
            Status::Published => published.clone(),
            Status::Unpublished => {
                published
                    .clone()
                    .then_after_at(t(5), publisher(), unpublish("Legal review."))
            }
            Status::Archived => base.clone().then_after_at(t(2), publisher(), archive()),
        }
        .events
    };
    for status in Status::ALL {
        assert_eq!(reached(status), history(status), "{status}");
    }
}
