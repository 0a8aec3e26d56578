//! The event-log contract of DESIGN.md §5, asserted the same way on SQLite and PostgreSQL.
//!
//! Every test here runs twice: `sqlite::<name>` on a temp file and `postgres::<name>` on a
//! fresh database (skipped with a notice unless GALLEY_TEST_POSTGRES_URL is set).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use futures::{FutureExt, StreamExt};
use galley_domain::{
    Action, ArticleId, CommentId, ContentDraft, DomainError, EventData, RevisionNumber, Role,
    Status, UserId, Version,
};
use galley_storage::{
    ArticleColumns, ArticleFilter, ArticleOrder, BackendKind, CommitDecision, Direction,
    EventFilter, IndexerOptions, Metadata, PendingCommand, SearchIndexState, Store, StoreError,
    StoreOptions, StoredEvent,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Barrier, Notify};
use uuid::Uuid;

contract_tests!(
    a_created_article_has_one_event_with_its_full_envelope,
    request_metadata_is_kept_in_the_envelope,
    a_stale_expected_version_is_a_conflict_that_reports_the_current_version,
    a_refused_command_writes_nothing,
    a_command_with_several_events_appends_them_together,
    positions_are_contiguous_across_articles,
    read_stream_pages_forward_and_backward_and_filters_types,
    read_all_filters_by_article_type_and_actor,
    head_is_zero_on_an_empty_log,
    the_seed_article_round_trips_through_every_read_path,
    a_slug_held_by_another_article_is_taken_and_nothing_is_written,
    a_slug_is_freed_when_its_article_moves_to_another,
    restoring_a_revision_records_where_it_came_from,
    comments_are_listed_oldest_first_and_by_revision,
    list_articles_filters_by_status_category_tag_author_text_and_time,
    list_articles_pages_through_every_order_without_gaps_or_repeats,
    list_articles_refuses_a_malformed_cursor,
    a_list_without_bodies_is_the_same_list_with_empty_bodies,
    a_kept_list_page_never_hides_a_write_made_anywhere,
    a_text_search_finds_a_revision_once_the_index_has_reached_it,
    indexers_catch_up_with_what_was_committed_while_none_ran,
    articles_by_ids_returns_only_existing_articles,
    due_articles_and_blocked_schedules,
    an_idempotent_retry_returns_the_original_result_and_appends_nothing,
    an_idempotency_key_reused_for_another_command_is_refused,
    eight_concurrent_retries_with_one_key_append_once,
    users_tokens_and_revocation,
    a_revocation_by_another_process_reaches_a_cached_token_lookup,
    a_user_name_is_unique,
    subscribe_catches_up_then_goes_live,
    subscribe_delivers_only_matching_events,
    a_subscription_ends_when_the_store_closes,
    a_writer_held_before_commit_is_never_overtaken,
    an_aborted_transaction_leaves_no_trace,
    stress_sixteen_writers_with_conflicts_and_aborts_while_three_subscribers_tail,
    rebuild_equals_live_and_verify_reports_a_corrupted_row,
    import_of_an_export_gives_identical_projections,
    import_refuses_a_gap_in_positions,
    a_batch_mixes_successes_and_refusals_in_one_transaction,
    a_subscriber_on_one_pool_sees_appends_made_through_another,
    a_subscriber_survives_the_loss_of_the_listener_connection,
    events_are_append_only,
    ready_reports_every_migration_applied,
);

const WAIT: Duration = Duration::from_secs(20);

async fn a_created_article_has_one_event_with_its_full_envelope(db: &TestDb) {
    let cast = Cast::default();
    let id = new_id();
    let cmd = command(
        id,
        0,
        &cast.editor,
        Action::CreateArticle {
            content: seed_draft(),
        },
    );
    let at = cmd.now;
    let out = run(&db.store, cmd).await.unwrap();
    assert!(!out.replayed);
    let [e] = out.events.as_slice() else {
        panic!("one event expected")
    };
    assert_eq!(e.event_type, "ArticleCreated");
    assert_eq!(e.schema_version, galley_domain::SCHEMA_VERSION);
    assert_eq!((e.version, e.position), (Version(1), 1));
    assert_eq!(e.article_id, id);
    assert_eq!(e.actor, cast.editor.user);
    assert_eq!(e.event_id.get_version_num(), 7);
    assert_eq!(
        e.correlation_id.get_version_num(),
        7,
        "a fresh correlation id"
    );
    assert_eq!(e.causation_id, None);
    assert_eq!(e.request_id, None);
    assert!((e.recorded_at - at).num_microseconds().unwrap().abs() < 1);
    assert_eq!(
        db.store
            .read_all(0, 10, &EventFilter::default())
            .await
            .unwrap(),
        out.events
    );
    assert_eq!(db.store.article(id).await.unwrap().unwrap(), out.article);
    assert_eq!(out.article.version, Version(1));
    assert_eq!(out.article.status, Status::Draft);
    assert_eq!(out.article.authors, vec![cast.editor.user]);
}

async fn request_metadata_is_kept_in_the_envelope(db: &TestDb) {
    let cast = Cast::default();
    let (correlation, causation) = (Uuid::now_v7(), Uuid::now_v7());
    let meta = Metadata {
        correlation_id: Some(correlation),
        causation_id: Some(causation),
        request_id: Some("req-42".to_owned()),
    };
    let id = new_id();
    let out = db
        .store
        .execute(
            command(
                id,
                0,
                &cast.editor,
                Action::CreateArticle {
                    content: draft("Meta"),
                },
            ),
            meta,
            None,
        )
        .await
        .unwrap();
    let back = db
        .store
        .read_stream(id, Direction::Forward, None, 10, &[])
        .await
        .unwrap();
    assert_eq!(back, out.events);
    assert_eq!(back[0].correlation_id, correlation);
    assert_eq!(back[0].causation_id, Some(causation));
    assert_eq!(back[0].request_id.as_deref(), Some("req-42"));
}

async fn a_stale_expected_version_is_a_conflict_that_reports_the_current_version(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Conflicted").await;
    run(
        &db.store,
        command(
            id,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Second"),
            },
        ),
    )
    .await
    .unwrap();
    let err = run(
        &db.store,
        command(
            id,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Third"),
            },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("CONFLICT"));
    assert_eq!(err.current_version(), Some(Version(2)));
    assert_eq!(db.store.head().await.unwrap(), 2);
    assert_eq!(
        db.store
            .article(id)
            .await
            .unwrap()
            .unwrap()
            .content
            .headline,
        "Second"
    );
}

async fn a_refused_command_writes_nothing(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Refused").await;
    let err = run(
        &db.store,
        command(id, 1, &cast.reviewer, Action::SubmitForReview),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Domain(DomainError::Forbidden { .. })),
        "{err:?}"
    );
    let err = run(
        &db.store,
        command(new_id(), 0, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("NOT_FOUND"));
    let err = run(
        &db.store,
        command(
            id,
            1,
            &cast.reviewer,
            Action::RequestChanges { reason: "x".into() },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("INVALID_TRANSITION"));
    assert_eq!(db.store.head().await.unwrap(), 1);
    assert_eq!(
        db.store.article(id).await.unwrap().unwrap().version,
        Version(1)
    );
}

async fn a_command_with_several_events_appends_them_together(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Scheduled then revised").await;
    let v = approve(&db.store, &cast, id).await;
    let at = Utc::now() + minutes(30);
    run(
        &db.store,
        command(
            id,
            v,
            &cast.publisher,
            Action::SchedulePublication {
                publish_at: at,
                correction: None,
            },
        ),
    )
    .await
    .unwrap();
    let out = run(
        &db.store,
        command(
            id,
            v + 1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Revised"),
            },
        ),
    )
    .await
    .unwrap();
    let types: Vec<_> = out.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["ScheduleCancelled", "DraftRevised"]);
    assert_eq!(
        out.events
            .iter()
            .map(|e| (e.version.0, e.position))
            .collect::<Vec<_>>(),
        [(v + 2, v + 2), (v + 3, v + 3)]
    );
    assert_eq!(out.events[0].correlation_id, out.events[1].correlation_id);
    assert_eq!(out.article.status, Status::Draft);
    assert_eq!(out.article.scheduled_for, None);
}

async fn positions_are_contiguous_across_articles(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Alpha").await;
    let b = create(&db.store, &cast, "Beta").await;
    run(
        &db.store,
        command(
            a,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Alpha 2"),
            },
        ),
    )
    .await
    .unwrap();
    run(
        &db.store,
        command(
            b,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Beta 2"),
            },
        ),
    )
    .await
    .unwrap();
    let all = db
        .store
        .read_all(0, 100, &EventFilter::default())
        .await
        .unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|e| (e.position, e.article_id, e.version.0))
        .collect();
    assert_eq!(seen, [(1, a, 1), (2, b, 1), (3, a, 2), (4, b, 2)]);
    assert_eq!(db.store.head().await.unwrap(), 4);
}

async fn read_stream_pages_forward_and_backward_and_filters_types(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Paged").await;
    for v in 1..5 {
        run(
            &db.store,
            command(
                id,
                v,
                &cast.editor,
                Action::ReviseDraft {
                    content: draft(&format!("Paged {v}")),
                },
            ),
        )
        .await
        .unwrap();
    }
    let versions =
        |events: Vec<StoredEvent>| events.iter().map(|e| e.version.0).collect::<Vec<_>>();
    let s = &db.store;
    assert_eq!(
        versions(
            s.read_stream(id, Direction::Forward, None, 2, &[])
                .await
                .unwrap()
        ),
        [1, 2]
    );
    assert_eq!(
        versions(
            s.read_stream(id, Direction::Forward, Some(Version(2)), 10, &[])
                .await
                .unwrap()
        ),
        [3, 4, 5]
    );
    assert_eq!(
        versions(
            s.read_stream(id, Direction::Backward, None, 2, &[])
                .await
                .unwrap()
        ),
        [5, 4]
    );
    assert_eq!(
        versions(
            s.read_stream(id, Direction::Backward, Some(Version(4)), 10, &[])
                .await
                .unwrap()
        ),
        [3, 2, 1]
    );
    let created = s
        .read_stream(
            id,
            Direction::Forward,
            None,
            10,
            &["ArticleCreated".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(versions(created), [1]);
    assert!(s
        .read_stream(new_id(), Direction::Forward, None, 10, &[])
        .await
        .unwrap()
        .is_empty());

    // The same pages without payloads: the same envelopes, each payload Null; and each event
    // read whole by its position.
    for (direction, cursor, types) in [
        (Direction::Forward, None, vec![]),
        (Direction::Forward, Some(Version(2)), vec![]),
        (Direction::Backward, None, vec![]),
        (Direction::Forward, None, vec!["DraftRevised".to_owned()]),
    ] {
        let whole = s
            .read_stream(id, direction, cursor, 10, &types)
            .await
            .unwrap();
        let envelopes = s
            .read_stream_envelopes(id, direction, cursor, 10, &types)
            .await
            .unwrap();
        assert_eq!(envelopes.len(), whole.len());
        assert!(!whole.is_empty());
        for (envelope, event) in envelopes.iter().zip(&whole) {
            assert_eq!(envelope.payload, serde_json::Value::Null);
            assert!(!event.payload.is_null());
            let mut filled = envelope.clone();
            filled.payload = event.payload.clone();
            assert_eq!(&filled, event, "all but the payload is read");
            assert_eq!(
                s.read_event_at(event.position).await.unwrap().as_ref(),
                Some(event)
            );
        }
    }
    let head = s.head().await.unwrap();
    assert_eq!(s.read_event_at(head + 1).await.unwrap(), None);
}

async fn read_all_filters_by_article_type_and_actor(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Filter A").await;
    let b = new_id();
    run(
        &db.store,
        command(
            b,
            0,
            &cast.second_editor,
            Action::CreateArticle {
                content: draft("Filter B"),
            },
        ),
    )
    .await
    .unwrap();
    run(
        &db.store,
        command(a, 1, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    let s = &db.store;
    let positions =
        |events: Vec<StoredEvent>| events.iter().map(|e| e.position).collect::<Vec<_>>();
    let by_article = EventFilter {
        article_id: Some(a),
        ..Default::default()
    };
    assert_eq!(
        positions(s.read_all(0, 10, &by_article).await.unwrap()),
        [1, 3]
    );
    let by_type = EventFilter {
        event_types: vec!["ArticleCreated".into()],
        ..Default::default()
    };
    assert_eq!(
        positions(s.read_all(0, 10, &by_type).await.unwrap()),
        [1, 2]
    );
    let by_actor = EventFilter {
        actor: Some(cast.second_editor.user),
        ..Default::default()
    };
    assert_eq!(positions(s.read_all(0, 10, &by_actor).await.unwrap()), [2]);
    assert_eq!(
        positions(s.read_all(1, 1, &EventFilter::default()).await.unwrap()),
        [2]
    );
    assert!(by_article.matches(&s.read_all(0, 1, &by_article).await.unwrap()[0]));
}

async fn head_is_zero_on_an_empty_log(db: &TestDb) {
    assert_eq!(db.store.head().await.unwrap(), 0);
    assert!(db
        .store
        .read_all(0, 10, &EventFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(db.store.article(new_id()).await.unwrap(), None);
    assert_eq!(
        db.store.backend(),
        if db.backend == "postgres" {
            BackendKind::Postgres
        } else {
            BackendKind::Sqlite
        }
    );
}

async fn the_seed_article_round_trips_through_every_read_path(db: &TestDb) {
    let cast = Cast::default();
    let id = new_id();
    let out = run(
        &db.store,
        command(
            id,
            0,
            &cast.editor,
            Action::CreateArticle {
                content: seed_draft(),
            },
        ),
    )
    .await
    .unwrap();
    let a = out.article;
    assert_eq!(
        a.content.headline,
        "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
    );
    assert!(a.content.standfirst.contains("Vučić"));
    assert!(a.content.body.contains("\n> We all knew"));
    assert!(a.content.body.contains("Štrpac"));
    assert_eq!(
        a.content.slug.as_ref().map(|s| s.as_str()),
        Some("nato-denies-serbia-an-army-presence-in-kosovo")
    );
    assert_eq!(a.content.tags.len(), 8);
    assert_eq!(a.content.tags[0].as_str(), "Aleksandar Vučić");
    assert_eq!(a.content.byline, ["Tristan Vanheuckelom"]);
    assert_eq!(
        db.store
            .article_by_slug("nato-denies-serbia-an-army-presence-in-kosovo")
            .await
            .unwrap(),
        Some(a.clone())
    );
    let revisions = db.store.revisions(id).await.unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].content, a.content);
    assert_eq!(revisions[0].author, cast.editor.user);
    assert_eq!(
        db.store
            .revision(id, RevisionNumber(1))
            .await
            .unwrap()
            .unwrap(),
        revisions[0]
    );
    assert_eq!(
        db.store.revision(id, RevisionNumber(2)).await.unwrap(),
        None
    );
    let EventData::ArticleCreated { content, .. } = out.events[0].event().unwrap().data else {
        panic!("ArticleCreated expected")
    };
    assert_eq!(content, a.content);
    db.store.index_search().await.unwrap();
    let found = db
        .store
        .list_articles(
            &ArticleFilter {
                text: Some("štrpac".into()),
                ..Default::default()
            },
            ArticleOrder::Relevance,
            10,
            None,
            ArticleColumns::All,
        )
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
}

async fn a_slug_held_by_another_article_is_taken_and_nothing_is_written(db: &TestDb) {
    let cast = Cast::default();
    create(&db.store, &cast, "Same Headline").await;
    let err = run(
        &db.store,
        command(
            new_id(),
            0,
            &cast.editor,
            Action::CreateArticle {
                content: draft("Same headline"),
            },
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::SlugTaken { slug } if slug == "same-headline"),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("SLUG_TAKEN"));
    assert_eq!(db.store.head().await.unwrap(), 1);
    let other = create(&db.store, &cast, "Other").await;
    let err = run(
        &db.store,
        command(
            other,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Same headline"),
            },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Some("SLUG_TAKEN"));
    assert_eq!(db.store.head().await.unwrap(), 2);
    assert_eq!(db.store.revisions(other).await.unwrap().len(), 1);
}

async fn a_slug_is_freed_when_its_article_moves_to_another(db: &TestDb) {
    let cast = Cast::default();
    let first = create(&db.store, &cast, "Wanted slug").await;
    run(
        &db.store,
        command(
            first,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Moved on"),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(db.store.article_by_slug("wanted-slug").await.unwrap(), None);
    assert_eq!(
        db.store
            .article_by_slug("moved-on")
            .await
            .unwrap()
            .unwrap()
            .id,
        first
    );
    let second = create(&db.store, &cast, "Wanted slug").await;
    assert_eq!(
        db.store
            .article_by_slug("wanted-slug")
            .await
            .unwrap()
            .unwrap()
            .id,
        second
    );
}

async fn restoring_a_revision_records_where_it_came_from(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Original").await;
    run(
        &db.store,
        command(
            id,
            1,
            &cast.second_editor,
            Action::ReviseDraft {
                content: draft("Changed"),
            },
        ),
    )
    .await
    .unwrap();
    let out = run(
        &db.store,
        command(
            id,
            2,
            &cast.editor,
            Action::RestoreRevision {
                revision: RevisionNumber(1),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.article.revision, RevisionNumber(3));
    assert_eq!(out.article.content.headline, "Original");
    assert_eq!(
        out.article.authors,
        vec![cast.editor.user, cast.second_editor.user]
    );
    let revisions = db.store.revisions(id).await.unwrap();
    assert_eq!(
        revisions
            .iter()
            .map(|r| (r.revision.0, r.restored_from.map(|f| f.0)))
            .collect::<Vec<_>>(),
        [(1, None), (2, None), (3, Some(1))]
    );
    assert_eq!(revisions[2].content, revisions[0].content);
    assert_eq!(revisions[1].author, cast.second_editor.user);
}

async fn comments_are_listed_oldest_first_and_by_revision(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Commented").await;
    let comment = |v: u64, rev: u32, body: &str| {
        command(
            id,
            v,
            &cast.reviewer,
            Action::AddReviewComment {
                comment_id: CommentId::from_uuid(Uuid::now_v7()),
                revision: RevisionNumber(rev),
                body: body.to_owned(),
            },
        )
    };
    run(&db.store, comment(1, 1, "First on one")).await.unwrap();
    run(
        &db.store,
        command(
            id,
            2,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Commented 2"),
            },
        ),
    )
    .await
    .unwrap();
    run(&db.store, comment(3, 2, "On two")).await.unwrap();
    run(&db.store, comment(4, 1, "Second on one"))
        .await
        .unwrap();
    let all = db.store.comments(id, None).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["First on one", "On two", "Second on one"]
    );
    assert!(all
        .iter()
        .all(|c| c.author == cast.reviewer.user && c.article_id == id));
    let one = db
        .store
        .comments(id, Some(RevisionNumber(1)))
        .await
        .unwrap();
    assert_eq!(
        one.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["First on one", "Second on one"]
    );
}

async fn list_articles_filters_by_status_category_tag_author_text_and_time(db: &TestDb) {
    let cast = Cast::default();
    let news = create(&db.store, &cast, "Storm over Belgrade").await;
    let culture = new_id();
    let mut c = draft("Opera season opens");
    c.category = Some("Culture".into());
    c.tags = vec!["Music".into()];
    run(
        &db.store,
        command(
            culture,
            0,
            &cast.second_editor,
            Action::CreateArticle { content: c },
        ),
    )
    .await
    .unwrap();
    run(
        &db.store,
        command(news, 1, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    let ids = |filter: ArticleFilter| {
        let store = db.store.clone();
        async move {
            // Text search follows the log on its own: index what is committed first.
            store.index_search().await.unwrap();
            let page = store
                .list_articles(
                    &filter,
                    ArticleOrder::UpdatedDesc,
                    50,
                    None,
                    ArticleColumns::All,
                )
                .await
                .unwrap();
            page.items
                .into_iter()
                .map(|(_, a)| a.id)
                .collect::<Vec<ArticleId>>()
        }
    };
    assert_eq!(ids(ArticleFilter::default()).await, [news, culture]);
    assert_eq!(
        ids(ArticleFilter {
            status: vec![Status::InReview],
            ..Default::default()
        })
        .await,
        [news]
    );
    assert_eq!(
        ids(ArticleFilter {
            status: vec![Status::Draft, Status::InReview],
            ..Default::default()
        })
        .await,
        [news, culture]
    );
    assert_eq!(
        ids(ArticleFilter {
            category: Some("Culture".into()),
            ..Default::default()
        })
        .await,
        [culture]
    );
    assert_eq!(
        ids(ArticleFilter {
            tag: Some("nato".into()),
            ..Default::default()
        })
        .await,
        [news]
    );
    assert_eq!(
        ids(ArticleFilter {
            tag: Some("MUSIC".into()),
            ..Default::default()
        })
        .await,
        [culture]
    );
    assert_eq!(
        ids(ArticleFilter {
            author: Some(cast.second_editor.user),
            ..Default::default()
        })
        .await,
        [culture]
    );
    assert_eq!(
        ids(ArticleFilter {
            text: Some("BELGRADE".into()),
            ..Default::default()
        })
        .await,
        [news]
    );
    assert_eq!(
        ids(ArticleFilter {
            text: Some("100%".into()),
            ..Default::default()
        })
        .await,
        []
    );
    let culture_updated = db.store.article(culture).await.unwrap().unwrap().updated_at;
    let news_updated = db.store.article(news).await.unwrap().unwrap().updated_at;
    assert!(news_updated > culture_updated);
    assert_eq!(
        ids(ArticleFilter {
            updated_since: Some(news_updated),
            ..Default::default()
        })
        .await,
        [news]
    );
}

async fn list_articles_pages_through_every_order_without_gaps_or_repeats(db: &TestDb) {
    let cast = Cast::default();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create(&db.store, &cast, &format!("Paging {i}")).await);
    }
    // Touch one so that updated order differs from created order.
    run(
        &db.store,
        command(created[2], 1, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    db.store.index_search().await.unwrap();
    for order in [
        ArticleOrder::UpdatedDesc,
        ArticleOrder::UpdatedAsc,
        ArticleOrder::CreatedDesc,
        ArticleOrder::Relevance,
    ] {
        let filter = ArticleFilter {
            text: (order == ArticleOrder::Relevance).then(|| "paging".to_owned()),
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = db
                .store
                .list_articles(&filter, order, 3, after.as_deref(), ArticleColumns::All)
                .await
                .unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|(_, a)| a.clone()));
            after = page.items.last().map(|(c, _)| c.to_string());
            if !page.has_next_page {
                break;
            }
        }
        assert_eq!(seen.len(), 7, "{order:?}");
        let unique: BTreeSet<_> = seen.iter().map(|a| a.id).collect();
        assert_eq!(unique.len(), 7, "{order:?}");
        let key = |a: &galley_storage::ArticleRecord| match order {
            ArticleOrder::CreatedDesc => a.created_at,
            _ => a.updated_at,
        };
        let sorted = seen.windows(2).all(|w| match order {
            ArticleOrder::UpdatedAsc => key(&w[0]) <= key(&w[1]),
            _ => key(&w[0]) >= key(&w[1]),
        });
        assert!(sorted, "{order:?}");
    }
    let newest = db
        .store
        .list_articles(
            &ArticleFilter::default(),
            ArticleOrder::UpdatedDesc,
            1,
            None,
            ArticleColumns::All,
        )
        .await
        .unwrap();
    assert_eq!(newest.items[0].1.id, created[2]);
    assert!(newest.has_next_page);
}

async fn list_articles_refuses_a_malformed_cursor(db: &TestDb) {
    let cast = Cast::default();
    create(&db.store, &cast, "Cursor").await;
    for bad in ["nonsense", "zz", "", "6869"] {
        let err = db
            .store
            .list_articles(
                &ArticleFilter::default(),
                ArticleOrder::UpdatedDesc,
                5,
                Some(bad),
                ArticleColumns::All,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid { field, .. } if field == "after"),
            "{err:?}"
        );
        assert_eq!(err.code(), Some("BAD_REQUEST"));
    }
    let page = db
        .store
        .list_articles(
            &ArticleFilter::default(),
            ArticleOrder::UpdatedDesc,
            5,
            None,
            ArticleColumns::All,
        )
        .await
        .unwrap();
    let cursor = page.items[0].0.to_string();
    let err = db
        .store
        .list_articles(
            &ArticleFilter::default(),
            ArticleOrder::CreatedDesc,
            5,
            Some(&cursor),
            ArticleColumns::All,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("BAD_REQUEST"), "a cursor of another order");
}

async fn a_list_without_bodies_is_the_same_list_with_empty_bodies(db: &TestDb) {
    let cast = Cast::default();
    for i in 0..3 {
        create(&db.store, &cast, &format!("Lean {i}")).await;
    }
    for order in [ArticleOrder::UpdatedDesc, ArticleOrder::CreatedDesc] {
        let all = ArticleFilter::default();
        let list = |columns| db.store.list_articles(&all, order, 2, None, columns);
        let full = list(ArticleColumns::All).await.unwrap();
        let lean = list(ArticleColumns::WithoutBody).await.unwrap();
        let summary = list(ArticleColumns::Summary).await.unwrap();
        for page in [&lean, &summary] {
            assert_eq!(page.has_next_page, full.has_next_page);
            assert_eq!(page.items.len(), 2);
        }
        let pages = lean.items.iter().zip(&summary.items).zip(&full.items);
        for (((lean_cursor, lean), (summary_cursor, summary)), (full_cursor, full)) in pages {
            assert!(
                !full.content.body.is_empty()
                    && !full.content.tags.is_empty()
                    && !full.content.byline.is_empty()
                    && !full.authors.is_empty(),
                "the full record has its body, tags, byline and authors"
            );
            assert_eq!(lean.content.body, "", "{order:?}");
            assert_eq!(lean_cursor, full_cursor, "the same cursors");
            assert_eq!(summary_cursor, full_cursor, "the same cursors");
            assert_eq!(lean_cursor.to_string(), full_cursor.to_string());
            let mut filled = lean.clone();
            filled.content.body.clone_from(&full.content.body);
            assert_eq!(&filled, full, "all but the body is read");
            assert!(
                summary.content.body.is_empty()
                    && summary.content.tags.is_empty()
                    && summary.content.byline.is_empty()
                    && summary.authors.is_empty()
                    && summary.reviewers.is_empty(),
                "a summary leaves out the body, tags, byline and people"
            );
            let mut filled = summary.clone();
            filled.content.body.clone_from(&full.content.body);
            filled.content.tags.clone_from(&full.content.tags);
            filled.content.byline.clone_from(&full.content.byline);
            filled.authors.clone_from(&full.authors);
            filled.reviewers.clone_from(&full.reviewers);
            assert_eq!(&filled, full, "a summary reads every other column");
        }
    }
}

/// Another store on the test's database (as another replica would open it), with a pool of
/// two and the options `adjust` sets.
async fn another_store(db: &TestDb, adjust: impl FnOnce(&mut StoreOptions)) -> Store {
    let mut options = StoreOptions {
        url: db.url.clone(),
        max_connections: 2,
        migrate: false,
        ..StoreOptions::default()
    };
    adjust(&mut options);
    Store::connect(&options).await.unwrap()
}

/// List pages without bodies are kept per log head (`StoreOptions::list_cache_pages`). A
/// write through another store on the same database (another replica) shows in the very next
/// list of this one, with no wait, as does a write through this one; and every page equals
/// the one a store that keeps nothing reads.
async fn a_kept_list_page_never_hides_a_write_made_anywhere(db: &TestDb) {
    let cast = Cast::default();
    let other = another_store(db, |o| o.list_cache_pages = 16).await;
    let uncached = another_store(db, |o| o.list_cache_pages = 0).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create(&db.store, &cast, &format!("Kept {i}")).await);
    }
    let all = ArticleFilter::default();
    let drafts = ArticleFilter {
        status: vec![Status::Draft],
        ..ArticleFilter::default()
    };
    let headlines = |store: &Store, filter: &ArticleFilter, columns| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let page = store
                .list_articles(&filter, ArticleOrder::UpdatedDesc, 10, None, columns)
                .await
                .unwrap();
            page.items
                .into_iter()
                .map(|(_, a)| (a.content.headline, a.version.0, a.content.tags))
                .collect::<Vec<_>>()
        }
    };
    let check = |expected: Vec<&'static str>| {
        let stores = [db.store.clone(), other.clone(), uncached.clone()];
        let (all, drafts) = (all.clone(), drafts.clone());
        async move {
            for columns in [ArticleColumns::Summary, ArticleColumns::WithoutBody] {
                let fresh = headlines(&stores[2], &all, columns).await;
                let shown: Vec<&str> = fresh.iter().map(|(h, _, _)| h.as_str()).collect();
                assert_eq!(shown, expected, "{columns:?}");
                for store in &stores[..2] {
                    // Twice: the second is served from the kept page.
                    for _ in 0..2 {
                        assert_eq!(headlines(store, &all, columns).await, fresh);
                        assert_eq!(
                            headlines(store, &drafts, columns).await,
                            headlines(&stores[2], &drafts, columns).await
                        );
                    }
                }
            }
        }
    };
    check(vec!["Kept 2", "Kept 1", "Kept 0"]).await;

    // Revised through the other store: the next list here shows it, first.
    run(
        &other,
        command(
            ids[0],
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Kept 0, revised elsewhere"),
            },
        ),
    )
    .await
    .unwrap();
    check(vec!["Kept 0, revised elsewhere", "Kept 2", "Kept 1"]).await;

    // Revised through this one, and submitted (it leaves the drafts).
    run(
        &db.store,
        command(
            ids[1],
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Kept 1, revised here"),
            },
        ),
    )
    .await
    .unwrap();
    run(
        &db.store,
        command(ids[1], 2, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    check(vec![
        "Kept 1, revised here",
        "Kept 0, revised elsewhere",
        "Kept 2",
    ])
    .await;
    let in_drafts = headlines(&db.store, &drafts, ArticleColumns::Summary).await;
    assert_eq!(in_drafts.len(), 2, "the submitted article left the drafts");

    // After a rebuild in place the lists are unchanged.
    db.store.rebuild_projections().await.unwrap();
    check(vec![
        "Kept 1, revised here",
        "Kept 0, revised elsewhere",
        "Kept 2",
    ])
    .await;
    other.close().await;
    uncached.close().await;
}

/// The ids a text search finds, read without bodies (so through the kept list pages).
async fn text_hits(store: &Store, text: &str) -> Vec<ArticleId> {
    let filter = ArticleFilter {
        text: Some(text.to_owned()),
        ..ArticleFilter::default()
    };
    let page = store
        .list_articles(
            &filter,
            ArticleOrder::Relevance,
            50,
            None,
            ArticleColumns::Summary,
        )
        .await
        .unwrap();
    page.items.into_iter().map(|(_, a)| a.id).collect()
}

/// Revises `id` from `version` to a draft with this headline.
async fn revise_to(store: &Store, cast: &Cast, id: ArticleId, version: u64, headline: &str) {
    run(store, revise(id, version, cast, headline))
        .await
        .unwrap();
}

/// Text search follows the log on its own (projections/search_index.rs). The test's store
/// runs no indexer (`galley_storage::testing::connect`), so the index moves only when asked:
/// a revision is found once the checkpoint has reached it, not before, while the article and
/// every other list are current at once; several revisions are indexed as their last one; a
/// kept text list follows the checkpoint even when the head stays put; verify and rebuild
/// agree with what the indexer writes.
async fn a_text_search_finds_a_revision_once_the_index_has_reached_it(db: &TestDb) {
    let cast = Cast::default();
    assert_eq!(
        db.store.search_index().await.unwrap(),
        SearchIndexState::default()
    );
    let id = create(&db.store, &cast, "Quarry reopens").await;
    // Twice: the second is the kept page, which must follow the index too.
    for _ in 0..2 {
        assert!(
            text_hits(&db.store, "quarry").await.is_empty(),
            "not indexed yet"
        );
    }
    let state = db.store.search_index().await.unwrap();
    assert_eq!((state.checkpoint, state.head, state.lag()), (0, 1, 1));
    let article = db.store.article(id).await.unwrap().unwrap();
    assert_eq!(article.content.headline, "Quarry reopens");

    let state = db.store.index_search().await.unwrap();
    assert_eq!((state.checkpoint, state.head, state.lag()), (1, 1, 0));
    assert_eq!(
        db.store.head().await.unwrap(),
        1,
        "indexing appends nothing"
    );
    assert_eq!(text_hits(&db.store, "quarry").await, [id]);

    for (version, headline) in [(1, "Quarry closes"), (2, "Quarry sold"), (3, "Mill sold")] {
        revise_to(&db.store, &cast, id, version, headline).await;
    }
    assert_eq!(
        text_hits(&db.store, "quarry").await,
        [id],
        "the index still holds the old document"
    );
    assert!(text_hits(&db.store, "mill").await.is_empty());
    let state = db.store.index_search().await.unwrap();
    assert_eq!((state.checkpoint, state.head), (4, 4));
    assert!(
        text_hits(&db.store, "quarry").await.is_empty(),
        "only the last revision is indexed"
    );
    assert_eq!(text_hits(&db.store, "mill").await, [id]);

    // Verify lets the index catch up inside its own transaction (rolled back), so a lagging
    // index is no difference; the live index is still behind after it.
    revise_to(&db.store, &cast, id, 4, "Foundry opens").await;
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    assert_eq!(db.store.search_index().await.unwrap().checkpoint, 4);
    assert!(text_hits(&db.store, "foundry").await.is_empty());
    // A rebuild indexes every article and leaves the checkpoint at the head.
    db.store.rebuild_projections().await.unwrap();
    let state = db.store.search_index().await.unwrap();
    assert_eq!((state.checkpoint, state.head), (5, 5));
    assert_eq!(text_hits(&db.store, "foundry").await, [id]);
    assert!(text_hits(&db.store, "mill").await.is_empty());
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

/// Waits (bounded, no timing asserted) until `store`'s view of the index has reached `head`.
async fn indexed_up_to(store: &Store, head: u64) -> SearchIndexState {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = store.search_index().await.unwrap();
        if state.checkpoint >= head {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index stayed at {state:?}, short of {head}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Events committed while no indexer ran (a crash, a restart, a store without one) are indexed
/// by the next indexer to start, without a doorbell; two replicas' indexers on one database
/// share the work (one pass at a time, whichever holds the checkpoint) and end with every
/// article's last content, exactly what a rebuild writes.
async fn indexers_catch_up_with_what_was_committed_while_none_ran(db: &TestDb) {
    let cast = Cast::default();
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = create(&db.store, &cast, &format!("Tannery {i}")).await;
        for (v, word) in [(1, "alpha"), (2, "bravo"), (3, "charlie")] {
            revise_to(&db.store, &cast, id, v, &format!("Tannery {i} {word}")).await;
        }
        ids.push(id);
    }
    let head = db.store.head().await.unwrap();
    assert_eq!(db.store.search_index().await.unwrap().checkpoint, 0);

    let indexer = IndexerOptions {
        enabled: true,
        delay: Duration::from_millis(1),
        recheck: Duration::from_millis(50),
    };
    let replicas = [
        another_store(db, |o| o.search_indexer = indexer).await,
        another_store(db, |o| o.search_indexer = indexer).await,
    ];
    indexed_up_to(&db.store, head).await;
    assert_eq!(text_hits(&db.store, "tannery").await.len(), 6);
    assert_eq!(text_hits(&db.store, "charlie").await.len(), 6);
    assert!(text_hits(&db.store, "bravo").await.is_empty());

    // Writes through both replicas, interleaved: their indexers are rung by their own
    // commits (and, on PostgreSQL, by each other's).
    for (n, id) in ids.iter().enumerate() {
        let store = &replicas[n % 2];
        revise_to(store, &cast, *id, 4, &format!("Brewery {n}")).await;
    }
    let head = db.store.head().await.unwrap();
    indexed_up_to(&db.store, head).await;
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(text_hits(&db.store, &format!("brewery {n}")).await, [*id]);
    }
    assert!(text_hits(&db.store, "tannery").await.is_empty());
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    for store in &replicas {
        store.close().await;
    }
}

async fn articles_by_ids_returns_only_existing_articles(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "By id A").await;
    let b = create(&db.store, &cast, "By id B").await;
    let mut found: Vec<_> = db
        .store
        .articles_by_ids(&[a, new_id(), b])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    found.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(found, expected);
    assert!(db.store.articles_by_ids(&[]).await.unwrap().is_empty());
}

async fn due_articles_and_blocked_schedules(db: &TestDb) {
    let cast = Cast::default();
    let soon = create(&db.store, &cast, "Due soon").await;
    let later = create(&db.store, &cast, "Due later").await;
    let now = Utc::now();
    for (id, at) in [(soon, now + minutes(5)), (later, now + minutes(50))] {
        let v = approve(&db.store, &cast, id).await;
        run(
            &db.store,
            command(
                id,
                v,
                &cast.publisher,
                Action::SchedulePublication {
                    publish_at: at,
                    correction: None,
                },
            ),
        )
        .await
        .unwrap();
    }
    assert!(db.store.due_articles(now, 10).await.unwrap().is_empty());
    let due = db.store.due_articles(now + minutes(10), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, soon);
    assert_eq!(due[0].version, Version(4));
    let both = db.store.due_articles(now + minutes(60), 10).await.unwrap();
    assert_eq!(both.iter().map(|d| d.id).collect::<Vec<_>>(), [soon, later]);
    assert_eq!(
        db.store
            .due_articles(now + minutes(60), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // An embargo set after scheduling blocks the scheduler: the first due attempt records a
    // PublicationBlocked event with the reason, the same cause again is refused and records
    // nothing, and leaving SCHEDULED drops the note. Every step matches a rebuild.
    let until = chrono::SubsecRound::trunc_subsecs(now + minutes(30), 0);
    run(
        &db.store,
        command(soon, 4, &cast.editor, Action::SetEmbargo { until }),
    )
    .await
    .unwrap();
    let mut due_now = command(soon, 5, &galley_domain::Actor::system(), Action::PublishDue);
    due_now.now = now + minutes(10);
    let blocked = run(&db.store, due_now.clone()).await.unwrap();
    assert_eq!(
        blocked
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["PublicationBlocked"]
    );
    let reason = format!("EMBARGOED: {}", DomainError::Embargoed { until });
    let a = db.store.article(soon).await.unwrap().unwrap();
    assert_eq!(a.status, Status::Scheduled);
    assert_eq!(a.schedule_blocked_reason.as_deref(), Some(reason.as_str()));
    assert_eq!(a, blocked.article);
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    let mut again = due_now;
    again.expected_version = Version(6);
    again.now = now + minutes(11);
    let err = run(&db.store, again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Domain(DomainError::Embargoed { .. })),
        "{err:?}"
    );
    assert_eq!(
        db.store.article(soon).await.unwrap().unwrap().version,
        Version(6)
    );
    run(
        &db.store,
        command(soon, 6, &cast.publisher, Action::CancelSchedule),
    )
    .await
    .unwrap();
    let a = db.store.article(soon).await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.schedule_blocked_reason),
        (Status::Approved, None)
    );
    db.store.rebuild_projections().await.unwrap();
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

async fn an_idempotent_retry_returns_the_original_result_and_appends_nothing(db: &TestDb) {
    let cast = Cast::default();
    let id = new_id();
    let create = command(
        id,
        0,
        &cast.editor,
        Action::CreateArticle {
            content: draft("Once"),
        },
    );
    let key = Some("create-once".to_owned());
    let first = db
        .store
        .execute(create.clone(), Metadata::default(), key.clone())
        .await
        .unwrap();
    let mut retry = create.clone();
    retry.now = Utc::now() + minutes(1);
    let again = db
        .store
        .execute(
            retry,
            Metadata {
                request_id: Some("retry".into()),
                ..Default::default()
            },
            key,
        )
        .await
        .unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    assert_eq!(again.article, first.article);
    assert_eq!(db.store.head().await.unwrap(), 1);
    // Without a key the same command is a new command (and here a conflict).
    let err = run(&db.store, create).await.unwrap_err();
    assert_eq!(err.code(), Some("CONFLICT"));
}

async fn an_idempotency_key_reused_for_another_command_is_refused(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Keyed").await;
    let key = Some("k-1".to_owned());
    db.store
        .execute(
            command(id, 1, &cast.editor, Action::SubmitForReview),
            Metadata::default(),
            key.clone(),
        )
        .await
        .unwrap();
    // Keys are the user's own: another editor's same key is another command, decided on its
    // own (here a stale version).
    let err = db
        .store
        .execute(
            command(id, 1, &cast.second_editor, Action::SubmitForReview),
            Metadata::default(),
            key.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CONFLICT"), "{err:?}");
    for other in [
        command(id, 2, &cast.editor, Action::WithdrawSubmission),
        command(new_id(), 1, &cast.editor, Action::SubmitForReview),
    ] {
        let err = db
            .store
            .execute(other, Metadata::default(), key.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::IdempotencyKeyReused), "{err:?}");
        assert_eq!(err.code(), Some("IDEMPOTENCY_KEY_REUSED"));
    }
    assert_eq!(db.store.head().await.unwrap(), 2);
    // A refused command does not use up its key.
    let refused = command(
        id,
        2,
        &cast.reviewer,
        Action::RequestChanges {
            reason: String::new(),
        },
    );
    let key2 = Some("k-2".to_owned());
    assert!(db
        .store
        .execute(refused, Metadata::default(), key2.clone())
        .await
        .is_err());
    let ok = command(
        id,
        2,
        &cast.reviewer,
        Action::RequestChanges {
            reason: "More sources".into(),
        },
    );
    assert!(
        !db.store
            .execute(ok, Metadata::default(), key2)
            .await
            .unwrap()
            .replayed
    );
}

async fn eight_concurrent_retries_with_one_key_append_once(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Raced").await;
    let cmd = command(
        id,
        1,
        &cast.editor,
        Action::ReviseDraft {
            content: seed_draft(),
        },
    );
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, cmd, barrier) = (db.store.clone(), cmd.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .execute(cmd, Metadata::default(), Some("same-key".into()))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().expect("every retry succeeds"));
    }
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1);
    assert!(outcomes.iter().all(|o| o.events == outcomes[0].events));
    assert!(outcomes.iter().all(|o| o.article == outcomes[0].article));
    assert_eq!(outcomes[0].events.len(), 1);
    assert_eq!(db.store.head().await.unwrap(), 2);
    assert_eq!(
        db.store.article(id).await.unwrap().unwrap().version,
        Version(2)
    );
}

/// Token lookups are cached per store (`StoreOptions::token_cache_ttl`). A revocation made by
/// another process (another pool on the same database) empties the cache on PostgreSQL through
/// `NOTIFY galley_tokens`, however long the cache would keep the entry; on SQLite it takes
/// effect when the entry expires.
async fn a_revocation_by_another_process_reaches_a_cached_token_lookup(db: &TestDb) {
    let now = Utc::now();
    let id = UserId::from_uuid(Uuid::now_v7());
    db.store
        .create_user(id, "ines", &[Role::Editor], "ines-hash", now)
        .await
        .unwrap();
    let long = another_store(db, |o| o.token_cache_ttl = Duration::from_secs(3600)).await;
    let short = another_store(db, |o| o.token_cache_ttl = Duration::from_millis(300)).await;
    for store in [&long, &short] {
        assert_eq!(
            store
                .user_by_token_hash("ines-hash")
                .await
                .unwrap()
                .unwrap()
                .id,
            id
        );
    }
    assert_eq!(db.store.revoke_tokens("ines", now).await.unwrap(), 1);

    if db.backend == "postgres" {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for store in [&long, &short] {
            while store
                .user_by_token_hash("ines-hash")
                .await
                .unwrap()
                .is_some()
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the revocation never reached the other store's cache"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    } else {
        // No notifications on SQLite: the entry stands until it expires.
        assert!(long
            .user_by_token_hash("ines-hash")
            .await
            .unwrap()
            .is_some());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(short.user_by_token_hash("ines-hash").await.unwrap(), None);
    }
    // A token added later is found at once: misses are never cached.
    db.store.add_token("ines", "ines-new", now).await.unwrap();
    assert_eq!(
        long.user_by_token_hash("ines-new")
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    long.close().await;
    short.close().await;
}

async fn users_tokens_and_revocation(db: &TestDb) {
    let s = &db.store;
    let now = Utc::now();
    let id = UserId::from_uuid(Uuid::now_v7());
    let user = s
        .create_user(
            id,
            "marija",
            &[Role::Reviewer, Role::Editor, Role::Editor],
            "hash-1",
            now,
        )
        .await
        .unwrap();
    assert_eq!(user.name, "marija");
    assert_eq!(user.roles, [Role::Editor, Role::Reviewer]);
    assert_eq!(
        s.user_by_token_hash("hash-1").await.unwrap().unwrap().id,
        id
    );
    assert_eq!(s.user_by_token_hash("nope").await.unwrap(), None);
    s.add_token("marija", "hash-2", now).await.unwrap();
    assert_eq!(
        s.user_by_token_hash("hash-2").await.unwrap(),
        Some(user.clone())
    );
    assert!(matches!(
        s.add_token("nobody", "hash-3", now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.revoke_tokens("marija", now).await.unwrap(), 2);
    assert_eq!(s.revoke_tokens("marija", now).await.unwrap(), 0);
    assert_eq!(s.user_by_token_hash("hash-1").await.unwrap(), None);
    assert_eq!(s.user_by_token_hash("hash-2").await.unwrap(), None);
    s.add_token("marija", "hash-4", now).await.unwrap();
    assert_eq!(
        s.user_by_token_hash("hash-4").await.unwrap().unwrap().id,
        id
    );

    let other = UserId::from_uuid(Uuid::now_v7());
    s.create_user(other, "aleks", &[Role::Admin], "hash-5", now)
        .await
        .unwrap();
    let names: Vec<_> = s
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["aleks", "marija"]);
    let by_ids = s
        .users_by_ids(&[id, UserId::from_uuid(Uuid::now_v7())])
        .await
        .unwrap();
    assert_eq!(by_ids, vec![user]);
    assert!(s.users_by_ids(&[]).await.unwrap().is_empty());
}

async fn a_user_name_is_unique(db: &TestDb) {
    let now = Utc::now();
    db.store
        .create_user(
            UserId::from_uuid(Uuid::now_v7()),
            "sam",
            &[Role::Viewer],
            "h1",
            now,
        )
        .await
        .unwrap();
    let err = db
        .store
        .create_user(
            UserId::from_uuid(Uuid::now_v7()),
            "sam",
            &[Role::Viewer],
            "h2",
            now,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "name"),
        "{err:?}"
    );
    assert_eq!(db.store.users().await.unwrap().len(), 1);
    assert_eq!(db.store.user_by_token_hash("h2").await.unwrap(), None);
}

async fn next(
    stream: &mut futures::stream::BoxStream<'static, Result<StoredEvent, StoreError>>,
) -> StoredEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an event in time")
        .expect("the stream goes on")
        .expect("no error")
}

async fn subscribe_catches_up_then_goes_live(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Live").await;
    run(
        &db.store,
        command(id, 1, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    let mut from_start = db.store.subscribe(0, EventFilter::default());
    let mut from_one = db.store.subscribe(1, EventFilter::default());
    assert_eq!(next(&mut from_start).await.position, 1);
    assert_eq!(next(&mut from_start).await.position, 2);
    assert_eq!(next(&mut from_one).await.position, 2);
    // Nothing more yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), from_start.next())
            .await
            .is_err()
    );
    let out = run(
        &db.store,
        command(id, 2, &cast.editor, Action::WithdrawSubmission),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut from_start).await, out.events[0]);
    assert_eq!(next(&mut from_one).await, out.events[0]);
}

async fn subscribe_delivers_only_matching_events(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Watched").await;
    let mut only_a = db.store.subscribe(
        0,
        EventFilter {
            article_id: Some(a),
            ..Default::default()
        },
    );
    let mut only_submits = db.store.subscribe(
        0,
        EventFilter {
            event_types: vec!["SubmittedForReview".into()],
            ..Default::default()
        },
    );
    for i in 0..5 {
        create(&db.store, &cast, &format!("Noise {i}")).await;
    }
    run(
        &db.store,
        command(a, 1, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    let first = next(&mut only_a).await;
    let second = next(&mut only_a).await;
    assert_eq!((first.version.0, second.version.0), (1, 2));
    assert_eq!(second.position, 7);
    let submit = next(&mut only_submits).await;
    assert_eq!((submit.article_id, submit.position), (a, 7));
}

async fn a_subscription_ends_when_the_store_closes(db: &TestDb) {
    let store = db.second_store().await;
    let mut feed = store.subscribe(0, EventFilter::default());
    let waiting = tokio::spawn(async move { feed.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.close().await;
    assert!(tokio::time::timeout(WAIT, waiting)
        .await
        .expect("ends")
        .unwrap());
}

/// Holds the transaction of any append to `held` before its commit until released.
fn hold_before_commit(db: &TestDb, held: ArticleId) -> (Arc<Notify>, Arc<Notify>) {
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (r, l) = (reached.clone(), release.clone());
    db.store
        .set_before_commit_hook(Some(Arc::new(move |events: Vec<StoredEvent>| {
            let hold = events.iter().any(|e| e.article_id == held);
            let (r, l) = (r.clone(), l.clone());
            async move {
                if hold {
                    r.notify_one();
                    l.notified().await;
                }
                CommitDecision::Commit
            }
            .boxed()
        })));
    (reached, release)
}

async fn a_writer_held_before_commit_is_never_overtaken(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Writer A").await;
    let b = create(&db.store, &cast, "Writer B").await;
    let mut feed = db.store.subscribe(2, EventFilter::default());
    let (reached, release) = hold_before_commit(db, a);

    let store = db.store.clone();
    let cmd_a = command(
        a,
        1,
        &cast.editor,
        Action::ReviseDraft {
            content: draft("Writer A 2"),
        },
    );
    let writer_a = tokio::spawn(async move { run(&store, cmd_a).await });
    tokio::time::timeout(WAIT, reached.notified())
        .await
        .expect("A reaches its commit");

    let store = db.store.clone();
    let cmd_b = command(
        b,
        1,
        &cast.editor,
        Action::ReviseDraft {
            content: draft("Writer B 2"),
        },
    );
    let writer_b = tokio::spawn(async move { run(&store, cmd_b).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // While A is held, nothing after position 2 is visible to any reader, and B waits.
    assert_eq!(db.store.head().await.unwrap(), 2);
    assert!(db
        .store
        .read_all(2, 10, &EventFilter::default())
        .await
        .unwrap()
        .is_empty());
    let other_pool = db.second_store().await;
    assert!(other_pool
        .read_all(2, 10, &EventFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(!writer_b.is_finished(), "B must not commit ahead of A");
    assert!(tokio::time::timeout(Duration::from_millis(50), feed.next())
        .await
        .is_err());

    release.notify_one();
    let out_a = writer_a.await.unwrap().unwrap();
    let out_b = writer_b.await.unwrap().unwrap();
    assert_eq!(out_a.events[0].position, 3);
    assert_eq!(out_b.events[0].position, 4, "B gets the later position");
    let seen = other_pool
        .read_all(2, 10, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(
        seen.iter().map(|e| e.article_id).collect::<Vec<_>>(),
        [a, b]
    );
    assert_eq!(next(&mut feed).await, out_a.events[0]);
    assert_eq!(next(&mut feed).await, out_b.events[0]);
    db.store.set_before_commit_hook(None);
    other_pool.close().await;
}

fn abort_when(db: &TestDb, marker: &'static str) {
    db.store
        .set_before_commit_hook(Some(Arc::new(move |events: Vec<StoredEvent>| {
            let abort = events
                .iter()
                .any(|e| e.payload.to_string().contains(marker));
            async move {
                if abort {
                    CommitDecision::Abort
                } else {
                    CommitDecision::Commit
                }
            }
            .boxed()
        })));
}

async fn an_aborted_transaction_leaves_no_trace(db: &TestDb) {
    let cast = Cast::default();
    let id = create(&db.store, &cast, "Survivor").await;
    abort_when(db, "DOOMED");
    let doomed = run(
        &db.store,
        command(
            id,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("DOOMED revision"),
            },
        ),
    )
    .await;
    assert!(
        matches!(doomed, Err(StoreError::BatchFailed { .. })),
        "{doomed:?}"
    );
    let doomed_create = run(
        &db.store,
        command(
            new_id(),
            0,
            &cast.editor,
            Action::CreateArticle {
                content: draft("DOOMED new"),
            },
        ),
    )
    .await;
    assert!(doomed_create.is_err());
    assert_eq!(db.store.head().await.unwrap(), 1);
    let a = db.store.article(id).await.unwrap().unwrap();
    assert_eq!((a.version, a.revision), (Version(1), RevisionNumber(1)));
    assert_eq!(db.store.revisions(id).await.unwrap().len(), 1);
    assert_eq!(db.store.article_by_slug("doomed-new").await.unwrap(), None);
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    // The next append takes the position the aborted one would have had.
    let out = run(
        &db.store,
        command(
            id,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Kept"),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.events[0].position, 2);
    db.store.set_before_commit_hook(None);
}

async fn stress_sixteen_writers_with_conflicts_and_aborts_while_three_subscribers_tail(
    db: &TestDb,
) {
    const WRITERS: usize = 16;
    const COMMANDS: usize = 200;
    const ARTICLES: usize = 20;
    let cast = Cast::default();
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut feed = db.store.subscribe(0, EventFilter::default());
        subscribers.push(tokio::spawn(async move {
            let mut seen: Vec<StoredEvent> = Vec::new();
            while let Some(e) = feed.next().await {
                let e = e.expect("no feed error");
                let done = e.event_type == "ArticleArchived";
                seen.push(e);
                if done {
                    break;
                }
            }
            seen
        }));
    }
    let mut articles = Vec::new();
    for i in 0..ARTICLES {
        articles.push(create(&db.store, &cast, &format!("Stress {i}")).await);
    }
    abort_when(db, "ABORT-ME");
    let articles = Arc::new(articles);
    let start = std::time::Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, cast, articles) = (db.store.clone(), cast.clone(), articles.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(w as u64);
                let mut committed: Vec<StoredEvent> = Vec::new();
                let (mut conflicts, mut aborted, mut lost) = (0, 0, 0);
                for i in 0..COMMANDS {
                    let id = articles[rng.random_range(0..ARTICLES)];
                    let current = store.article(id).await.unwrap().unwrap().version.0;
                    // Every tenth command deliberately expects a stale version.
                    let expected = if i % 10 == 3 { current - 1 } else { current };
                    let doomed = i % 17 == 5;
                    let action = if i % 2 == 0 || doomed {
                        let mut content = draft(&format!("Stress {w} {i}"));
                        content.slug = Some(format!("stress-{w}-{i}"));
                        if doomed {
                            content.body = format!("ABORT-ME {w} {i}");
                        }
                        Action::ReviseDraft { content }
                    } else {
                        Action::AddReviewComment {
                            comment_id: CommentId::from_uuid(Uuid::now_v7()),
                            revision: RevisionNumber(1),
                            body: format!("Comment {w} {i}"),
                        }
                    };
                    match run(&store, command(id, expected, &cast.editor, action)).await {
                        Ok(_) if doomed => panic!("a command aborted at commit was acknowledged"),
                        Ok(out) => committed.extend(out.events),
                        Err(e) if e.code() == Some("CONFLICT") => conflicts += 1,
                        Err(StoreError::BatchFailed { .. }) if doomed => aborted += 1,
                        // Group commit: a command that shared its transaction with a doomed
                        // one is lost with it, unacknowledged.
                        Err(StoreError::BatchFailed { .. }) => lost += 1,
                        Err(e) => panic!("unexpected error: {e:?}"),
                    }
                }
                (committed, conflicts, aborted, lost)
            })
        })
        .collect();
    let mut committed: Vec<StoredEvent> = Vec::new();
    let (mut conflicts, mut aborted, mut lost) = (0, 0, 0);
    for w in writers {
        let (events, c, a, l) = w.await.unwrap();
        committed.extend(events);
        conflicts += c;
        aborted += a;
        lost += l;
    }
    db.store.set_before_commit_hook(None);
    eprintln!(
        "{}: {} commands in {:?}: {} events committed, {conflicts} conflicts, {aborted} aborted, \
         {lost} lost with an aborted batch, {} commits",
        db.backend,
        WRITERS * COMMANDS,
        start.elapsed(),
        committed.len(),
        db.store.commits()
    );
    assert!(
        conflicts >= WRITERS * COMMANDS / 10,
        "the deliberate conflicts"
    );
    assert!(aborted > 0);
    // A last event tells the subscribers to stop.
    let last = articles[0];
    let v = db.store.article(last).await.unwrap().unwrap().version.0;
    let fin = run(
        &db.store,
        command(last, v, &cast.publisher, Action::ArchiveArticle),
    )
    .await
    .unwrap();
    committed.extend(fin.events);

    let head = db.store.head().await.unwrap();
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let page = db
            .store
            .read_all(after, 1000, &EventFilter::default())
            .await
            .unwrap();
        let Some(e) = page.last() else { break };
        after = e.position;
        log.extend(page);
    }
    // Positions have no holes.
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );
    // Exactly the committed events (plus the 20 creates) are in the log.
    assert_eq!(log.len(), committed.len() + ARTICLES);
    let by_position: HashMap<u64, &StoredEvent> = log.iter().map(|e| (e.position, e)).collect();
    for e in &committed {
        assert_eq!(by_position[&e.position], e);
    }
    // Per-article versions have no holes.
    let mut versions: BTreeMap<ArticleId, Vec<u64>> = BTreeMap::new();
    for e in &log {
        versions.entry(e.article_id).or_default().push(e.version.0);
    }
    for (id, v) in &versions {
        assert_eq!(
            *v,
            (1..=v.len() as u64).collect::<Vec<_>>(),
            "versions of {id}"
        );
        assert_eq!(
            db.store.article(*id).await.unwrap().unwrap().version.0,
            v.len() as u64
        );
    }
    // No aborted work is visible.
    assert!(log
        .iter()
        .all(|e| !e.payload.to_string().contains("ABORT-ME")));
    for id in articles.iter() {
        for r in db.store.revisions(*id).await.unwrap() {
            assert!(!r.content.body.contains("ABORT-ME"));
        }
    }
    // Every subscriber saw every committed event exactly once, in position order.
    for s in subscribers {
        let seen = tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .expect("subscriber done")
            .unwrap();
        assert_eq!(seen, log);
    }
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

/// A random mix of every kind of command over a few articles; refusals are expected.
async fn random_workload(db: &TestDb, seed: u64, steps: usize) -> Vec<ArticleId> {
    let cast = Cast::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids: Vec<ArticleId> = Vec::new();
    for step in 0..steps {
        if ids.is_empty() || rng.random_bool(0.1) {
            let id = new_id();
            let content = if ids.is_empty() {
                seed_draft()
            } else {
                draft(&format!("Random {seed} {step}"))
            };
            run(
                &db.store,
                command(id, 0, &cast.editor, Action::CreateArticle { content }),
            )
            .await
            .unwrap();
            ids.push(id);
            continue;
        }
        let id = ids[rng.random_range(0..ids.len())];
        let a = db.store.article(id).await.unwrap().unwrap();
        let now = Utc::now();
        let (actor, action) = match rng.random_range(0..16) {
            0 | 1 => (
                &cast.editor,
                Action::ReviseDraft {
                    content: draft(&format!("Random {seed} {step} rev")),
                },
            ),
            2 | 3 => (&cast.editor, Action::SubmitForReview),
            4 => (&cast.editor, Action::WithdrawSubmission),
            5 => (
                &cast.reviewer,
                Action::RequestChanges {
                    reason: "Needs a second source".into(),
                },
            ),
            6 | 7 => (
                &cast.reviewer,
                Action::ApproveRevision {
                    revision: a.revision,
                },
            ),
            8 => (&cast.publisher, Action::PublishNow { correction: None }),
            9 => (
                &cast.publisher,
                Action::SchedulePublication {
                    publish_at: now + minutes(90),
                    correction: None,
                },
            ),
            10 => (&cast.publisher, Action::CancelSchedule),
            11 => (
                &cast.publisher,
                Action::UnpublishArticle {
                    reason: "Legal".into(),
                },
            ),
            12 => (
                &cast.publisher,
                if a.status == Status::Archived {
                    Action::RestoreArticle
                } else {
                    Action::ArchiveArticle
                },
            ),
            13 => (
                &cast.editor,
                Action::RestoreRevision {
                    revision: RevisionNumber(1),
                },
            ),
            14 => (
                &cast.reviewer,
                Action::AddReviewComment {
                    comment_id: CommentId::from_uuid(Uuid::now_v7()),
                    revision: a.revision,
                    body: "Check the quote".into(),
                },
            ),
            _ => {
                if a.embargo_until.is_some() {
                    (
                        &cast.admin,
                        Action::LiftEmbargo {
                            reason: "Cleared".into(),
                        },
                    )
                } else {
                    (
                        &cast.editor,
                        Action::SetEmbargo {
                            until: now + minutes(30),
                        },
                    )
                }
            }
        };
        let _ = run(&db.store, command(id, a.version.0, actor, action)).await;
    }
    ids
}

/// Everything the API can read about the articles, for before/after comparisons.
async fn snapshot(db: &TestDb, ids: &[ArticleId]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let a = db.store.article(*id).await.unwrap().unwrap();
        out.push(format!("{a:?}"));
        out.push(format!("{:?}", db.store.revisions(*id).await.unwrap()));
        out.push(format!("{:?}", db.store.comments(*id, None).await.unwrap()));
        if let Some(slug) = &a.content.slug {
            out.push(format!(
                "{:?}",
                db.store
                    .article_by_slug(slug.as_str())
                    .await
                    .unwrap()
                    .map(|a| a.id)
            ));
        }
    }
    out
}

async fn rebuild_equals_live_and_verify_reports_a_corrupted_row(db: &TestDb) {
    let ids = random_workload(db, 7, 160).await;
    let head = db.store.head().await.unwrap();
    assert!(head > 60, "the workload appended {head} events");
    assert_eq!(db.store.verify_projections().await.unwrap(), vec![]);
    let before = snapshot(db, &ids).await;
    assert_eq!(db.store.rebuild_projections().await.unwrap(), head);
    assert_eq!(snapshot(db, &ids).await, before);

    let seed = db.store.article(ids[0]).await.unwrap().unwrap();
    let slug = seed.content.slug.clone().unwrap();
    db.store
        .execute_raw_sql_for_tests(&format!(
            "UPDATE articles SET headline = 'Tampered' WHERE slug = '{}'",
            slug.as_str()
        ))
        .await
        .unwrap();
    let deleted = db
        .store
        .execute_raw_sql_for_tests(
            "DELETE FROM article_revisions WHERE revision = 1 \
             AND headline = 'NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO'",
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let diffs = db.store.verify_projections().await.unwrap();
    let tables: Vec<_> = diffs
        .iter()
        .map(|d| (d.table.as_str(), d.key.clone()))
        .collect();
    assert!(
        tables.contains(&("articles", seed.id.to_string())),
        "{diffs:#?}"
    );
    let article_diff = diffs.iter().find(|d| d.table == "articles").unwrap();
    assert!(
        article_diff.detail.contains("Tampered"),
        "{}",
        article_diff.detail
    );
    assert!(
        diffs.iter().any(|d| d.table == "article_revisions"
            && d.key == format!("{}/1", ids[0])
            && d.detail.contains("missing")),
        "{diffs:#?}"
    );
    assert_eq!(diffs.len(), 2, "{diffs:#?}");
    // Verify changed nothing; a rebuild repairs it.
    assert_eq!(
        db.store
            .article(seed.id)
            .await
            .unwrap()
            .unwrap()
            .content
            .headline,
        "Tampered"
    );
    db.store.rebuild_projections().await.unwrap();
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    assert_eq!(snapshot(db, &ids).await, before);
}

async fn import_of_an_export_gives_identical_projections(db: &TestDb) {
    let ids = random_workload(db, 11, 80).await;
    let exported = db
        .store
        .read_all(0, 100_000, &EventFilter::default())
        .await
        .unwrap();
    let before = snapshot(db, &ids).await;
    let target = if db.backend == "postgres" {
        postgres().await.expect("configured")
    } else {
        sqlite().await
    };
    assert_eq!(
        target.store.import_events(&exported).await.unwrap(),
        exported.len() as u64
    );
    assert_eq!(
        target
            .store
            .read_all(0, 100_000, &EventFilter::default())
            .await
            .unwrap(),
        exported
    );
    assert_eq!(target.store.head().await.unwrap(), exported.len() as u64);
    assert_eq!(snapshot(&target, &ids).await, before);
    assert!(target.store.verify_projections().await.unwrap().is_empty());
    // After a bulk import the planner's statistics are brought up to date on PostgreSQL
    // (SQLite keeps none): the events table is analysed, every imported row counted.
    let analysed = target.store.analyze().await.unwrap();
    assert_eq!(analysed, db.backend == "postgres");
    if analysed {
        // `reltuples` is written by ANALYZE in the catalog (the statistics views are
        // reported asynchronously); before it, a fresh table has none.
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&target.url)
            .await
            .unwrap();
        let tuples: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(tuples as usize, exported.len());
        sqlx::Connection::close(conn).await.unwrap();
    }
    // The log goes on where the import ended.
    let cast = Cast::default();
    let id = create(&target.store, &cast, "After import").await;
    assert_eq!(
        target
            .store
            .read_stream(id, Direction::Forward, None, 1, &[])
            .await
            .unwrap()[0]
            .position,
        exported.len() as u64 + 1
    );
    target.finish().await;
}

async fn import_refuses_a_gap_in_positions(db: &TestDb) {
    let cast = Cast::default();
    let source = db.second_store().await;
    create(&source, &cast, "Gap one").await;
    create(&source, &cast, "Gap two").await;
    let mut events = source
        .read_all(0, 10, &EventFilter::default())
        .await
        .unwrap();
    source.close().await;
    let target = sqlite().await;
    events.remove(0);
    let err = target.store.import_events(&events).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "position"),
        "{err:?}"
    );
    assert_eq!(target.store.head().await.unwrap(), 0);
    target.finish().await;
}

async fn a_batch_mixes_successes_and_refusals_in_one_transaction(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Batch A").await;
    let b = create(&db.store, &cast, "Batch B").await;
    let pending = |cmd| PendingCommand {
        command: cmd,
        metadata: Metadata::default(),
        idempotency_key: None,
    };
    let results = db
        .store
        .execute_batch(vec![
            pending(command(a, 1, &cast.editor, Action::SubmitForReview)),
            pending(command(b, 7, &cast.editor, Action::SubmitForReview)),
            pending(command(
                new_id(),
                0,
                &cast.editor,
                Action::CreateArticle {
                    content: draft("Batch A"),
                },
            )),
            pending(command(
                b,
                1,
                &cast.editor,
                Action::ReviseDraft {
                    content: draft("Batch B 2"),
                },
            )),
            // Sees the previous command of the same batch.
            pending(command(b, 2, &cast.editor, Action::SubmitForReview)),
        ])
        .await;
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap().events[0].position, 3);
    assert_eq!(results[1].as_ref().unwrap_err().code(), Some("CONFLICT"));
    assert_eq!(results[2].as_ref().unwrap_err().code(), Some("SLUG_TAKEN"));
    assert_eq!(results[3].as_ref().unwrap().events[0].position, 4);
    assert_eq!(results[4].as_ref().unwrap().events[0].position, 5);
    assert_eq!(db.store.head().await.unwrap(), 5);
    assert_eq!(
        db.store.article(b).await.unwrap().unwrap().status,
        Status::InReview
    );
    assert!(db.store.verify_projections().await.unwrap().is_empty());

    // A batch that fails at commit acknowledges none of its commands.
    abort_when(db, "Batch C");
    let results = db
        .store
        .execute_batch(vec![
            pending(command(a, 2, &cast.editor, Action::WithdrawSubmission)),
            pending(command(
                new_id(),
                0,
                &cast.editor,
                Action::CreateArticle {
                    content: draft("Batch C"),
                },
            )),
        ])
        .await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(db.store.head().await.unwrap(), 5);
    db.store.set_before_commit_hook(None);
}

async fn a_subscriber_on_one_pool_sees_appends_made_through_another(db: &TestDb) {
    if db.backend != "postgres" {
        // SQLite is embedded: one process, one store; there is no other pool to hear from.
        return;
    }
    let cast = Cast::default();
    let writer = db.second_store().await;
    let mut feed = db.store.subscribe(0, EventFilter::default());
    // Let the subscriber catch up (nothing) and wait on its doorbell.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), feed.next())
            .await
            .is_err()
    );
    for i in 0..3 {
        let started = std::time::Instant::now();
        let id = create(&writer, &cast, &format!("Across pools {i}")).await;
        let e = tokio::time::timeout(Duration::from_secs(2), feed.next())
            .await
            .expect("delivered by the notification, not by polling")
            .unwrap()
            .unwrap();
        assert_eq!((e.article_id, e.position), (id, i + 1));
        eprintln!("cross-pool delivery in {:?}", started.elapsed());
    }
    writer.close().await;
}

async fn a_subscriber_survives_the_loss_of_the_listener_connection(db: &TestDb) {
    if db.backend != "postgres" {
        return;
    }
    let cast = Cast::default();
    let writer = db.second_store().await;
    let mut feed = db.store.subscribe(0, EventFilter::default());
    create(&writer, &cast, "Before the cut").await;
    assert_eq!(next(&mut feed).await.position, 1);
    // Cut every LISTEN connection of this database, as a network failure or a failover would.
    let killed = writer
        .execute_raw_sql_for_tests(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' \
             AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    assert!(killed >= 1, "a listener connection was cut");
    for i in 0..3 {
        let id = create(&writer, &cast, &format!("After the cut {i}")).await;
        let e = next(&mut feed).await;
        assert_eq!((e.article_id, e.position), (id, i + 2));
    }
    writer.close().await;
}

async fn events_are_append_only(db: &TestDb) {
    let cast = Cast::default();
    create(&db.store, &cast, "Immutable").await;
    let update = db
        .store
        .execute_raw_sql_for_tests("UPDATE events SET event_type = 'Forged'")
        .await;
    assert!(update.is_err(), "{update:?}");
    let delete = db
        .store
        .execute_raw_sql_for_tests("DELETE FROM events")
        .await;
    assert!(delete.is_err(), "{delete:?}");
    assert_eq!(
        db.store
            .read_all(0, 10, &EventFilter::default())
            .await
            .unwrap()[0]
            .event_type,
        "ArticleCreated"
    );
}

async fn ready_reports_every_migration_applied(db: &TestDb) {
    db.store.ready().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ready().await.unwrap();
    let _ = ContentDraft::default();
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works_for_one_process() {
    let store = galley_storage::testing::connect("sqlite::memory:")
        .await
        .unwrap();
    let cast = Cast::default();
    let id = create(&store, &cast, "In memory").await;
    let mut feed = store.subscribe(0, EventFilter::default());
    assert_eq!(next(&mut feed).await.article_id, id);
    assert_eq!(store.head().await.unwrap(), 1);
    assert!(store.verify_projections().await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn a_url_of_no_known_backend_is_refused() {
    let err = galley_storage::testing::connect("mysql://localhost/galley")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "url"),
        "{err:?}"
    );
}
