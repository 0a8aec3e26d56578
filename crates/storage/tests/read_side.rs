//! The read side of issue 5, asserted the same way on SQLite and PostgreSQL: full-text search
//! (and the same hits on both backends), time travel, the review queue, the dashboard figures
//! from a log with known timestamps, and (PostgreSQL) that history and feed reads use indexes.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use galley_domain::{
    Action, Actor, ArticleId, ContentDraft, RevisionNumber, Role, Status, UserId, Version,
};
use galley_storage::{
    ArticleColumns, ArticleFilter, ArticleOrder, AsOf, DashboardQuery, DurationStats, StageNow,
    Store, StoreError,
};
use uuid::Uuid;

contract_tests!(
    search_is_accent_and_case_insensitive_over_every_field,
    search_ranks_a_headline_match_above_a_body_match,
    search_follows_the_current_revision,
    search_combines_with_the_other_filters_and_pages_by_relevance,
    as_of_a_version_or_a_time_is_the_article_exactly_as_it_was,
    the_review_queue_puts_my_assignments_first_then_unassigned_oldest_first,
    the_dashboard_gives_exact_figures_for_a_log_with_known_timestamps,
    the_dashboard_refuses_an_empty_or_overlong_window,
    time_in_stage_gives_exact_figures_for_a_log_with_known_timestamps,
    rebuild_reproduces_search_and_dashboard_projections_and_verify_sees_tampering,
);

/// Monday 2 March 2026, midnight UTC: the start of every story here.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn hours(n: i64) -> Duration {
    Duration::hours(n)
}

fn reviewer() -> Actor {
    Actor::user(UserId::from_uuid(Uuid::now_v7()), [Role::Reviewer])
}

/// One article's story, told with explicit times: each step expects the version the last one
/// left.
struct Story<'a> {
    store: &'a Store,
    id: ArticleId,
    version: u64,
}

impl<'a> Story<'a> {
    async fn create(
        store: &'a Store,
        editor: &Actor,
        content: ContentDraft,
        at: DateTime<Utc>,
    ) -> Story<'a> {
        Story::create_with_id(store, new_id(), editor, content, at).await
    }

    async fn create_with_id(
        store: &'a Store,
        id: ArticleId,
        editor: &Actor,
        content: ContentDraft,
        at: DateTime<Utc>,
    ) -> Story<'a> {
        let mut story = Story {
            store,
            id,
            version: 0,
        };
        story
            .act(editor, Action::CreateArticle { content }, at)
            .await;
        story
    }

    async fn act(&mut self, actor: &Actor, action: Action, at: DateTime<Utc>) {
        let mut cmd = command(self.id, self.version, actor, action);
        cmd.now = at;
        let out = run(self.store, cmd).await.expect("the story's command");
        self.version = out.article.version.0;
    }

    async fn revision(&self) -> RevisionNumber {
        self.store.article(self.id).await.unwrap().unwrap().revision
    }

    async fn approve(&mut self, reviewer: &Actor, at: DateTime<Utc>) {
        let revision = self.revision().await;
        self.act(reviewer, Action::ApproveRevision { revision }, at)
            .await;
    }
}

/// Article ids matching a text search, in relevance order.
async fn search(store: &Store, text: &str) -> Vec<ArticleId> {
    search_with(store, text, ArticleFilter::default()).await
}

/// Text search follows the log on its own: index what is committed, then search.
async fn search_with(store: &Store, text: &str, filter: ArticleFilter) -> Vec<ArticleId> {
    store.index_search().await.unwrap();
    let filter = ArticleFilter {
        text: Some(text.to_owned()),
        ..filter
    };
    let page = store
        .list_articles(
            &filter,
            ArticleOrder::Relevance,
            100,
            None,
            ArticleColumns::All,
        )
        .await
        .unwrap();
    page.items.into_iter().map(|(_, a)| a.id).collect()
}

/// The corpus both backends are given: the seed article and a few small ones.
fn corpus() -> Vec<ContentDraft> {
    let mut drafts = vec![seed_draft()];
    let mut vucic = draft("Vučić visits Brussels");
    vucic.tags = vec!["EU".into()];
    vucic.body = "Talks with the European Union resumed.".into();
    vucic.byline = vec!["Ana Marković".into()];
    drafts.push(vucic);
    let mut culture = draft("Opera season opens in Novi Sad");
    culture.category = Some("Culture".into());
    culture.tags = vec!["Music".into(), "Über-Kultur".into()];
    culture.body = "The first night sold out; critics praised the naïve staging.".into();
    culture.byline = vec!["Jelena Petrović".into()];
    drafts.push(culture);
    let mut weather = draft("Snow closes roads in the north");
    weather.body = "Drivers near Štrpac were told to wait. Serbia's army helped.".into();
    weather.byline = vec!["Marko Vanheusden".into()];
    drafts.push(weather);
    drafts
}

async fn load_corpus(store: &Store, ids: &[ArticleId]) {
    let cast = Cast::default();
    for (id, content) in ids.iter().zip(corpus()) {
        Story::create_with_id(store, *id, &cast.editor, content, now()).await;
    }
}

const QUERIES: [&str; 21] = [
    "vuc",
    "Vanheuckelom",
    "vanheu",
    "markovic",
    "nato kf",
    "kfor nat",
    "v",
    "vucic",
    "VUČIĆ",
    "Štrpac",
    "strpac",
    "kosovo",
    "nato kfor",
    "serbia",
    "serbia's",
    "uber kultur",
    "naive",
    "1244",
    "opera -- novi sad!",
    "nothing-matches-this",
    "the",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_data_gives_the_same_hits_on_sqlite_and_postgresql() {
    let Some(pg) = postgres().await else { return };
    let lite = sqlite().await;
    let ids: Vec<ArticleId> = (0..corpus().len()).map(|_| new_id()).collect();
    load_corpus(&lite.store, &ids).await;
    load_corpus(&pg.store, &ids).await;
    for q in QUERIES {
        let on_sqlite: BTreeSet<_> = search(&lite.store, q).await.into_iter().collect();
        let on_postgres: BTreeSet<_> = search(&pg.store, q).await.into_iter().collect();
        assert_eq!(on_sqlite, on_postgres, "hits for {q:?}");
    }
    // And the hit sets are the expected ones, not merely equal.
    let hits = |q: &'static str| {
        let store = lite.store.clone();
        async move { search(&store, q).await.into_iter().collect::<BTreeSet<_>>() }
    };
    assert_eq!(hits("vucic").await, BTreeSet::from([ids[0], ids[1]]));
    assert_eq!(hits("strpac").await, BTreeSet::from([ids[0], ids[3]]));
    assert_eq!(hits("uber kultur").await, BTreeSet::from([ids[2]]));
    assert_eq!(hits("1244").await, BTreeSet::from([ids[0]]));
    assert!(hits("nothing-matches-this").await.is_empty());
    assert_eq!(hits("the").await.len(), 4);
    // The last word is a prefix (from two characters on); earlier words are whole words.
    assert_eq!(hits("vuc").await, BTreeSet::from([ids[0], ids[1]]));
    assert_eq!(hits("nato kf").await, BTreeSet::from([ids[0]]));
    assert!(
        hits("kf nato").await.is_empty(),
        "only the last word is a prefix"
    );
    assert!(
        hits("v").await.is_empty(),
        "a one-letter word is a whole word"
    );
    // The byline is indexed.
    assert_eq!(hits("Vanheuckelom").await, BTreeSet::from([ids[0]]));
    assert_eq!(hits("vanheu").await, BTreeSet::from([ids[0], ids[3]]));
    assert_eq!(hits("markovic").await, BTreeSet::from([ids[1]]));
    lite.finish().await;
    pg.finish().await;
}

async fn search_is_accent_and_case_insensitive_over_every_field(db: &TestDb) {
    let ids: Vec<ArticleId> = (0..corpus().len()).map(|_| new_id()).collect();
    load_corpus(&db.store, &ids).await;
    let seed = ids[0];
    // Headline, standfirst, tags and body of the seed article.
    for q in [
        "nato denies",
        "Aleksandar",
        "ethnic tensions",
        "Metohija",
        "KFOR",
    ] {
        assert!(search(&db.store, q).await.contains(&seed), "{q}");
    }
    for q in ["vucic", "Vucic", "VUČIĆ", "vučić"] {
        let found: BTreeSet<_> = search(&db.store, q).await.into_iter().collect();
        assert_eq!(found, BTreeSet::from([ids[0], ids[1]]), "{q}");
    }
    assert_eq!(search(&db.store, "naïve").await, [ids[2]]);
    assert_eq!(search(&db.store, "NAIVE").await, [ids[2]]);
    // Every word must match.
    assert_eq!(search(&db.store, "vucic brussels").await, [ids[1]]);
    assert!(search(&db.store, "opera vucic").await.is_empty());
    // The last word is a prefix: "opera" also finds the seed's "operating".
    assert_eq!(
        search(&db.store, "vucic opera")
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([ids[0]])
    );
    // Nothing searchable left: nothing matches (rather than everything).
    assert!(search(&db.store, "%%% ***").await.is_empty());
}

async fn search_ranks_a_headline_match_above_a_body_match(db: &TestDb) {
    let cast = Cast::default();
    let mut in_body = draft("Markets rally");
    in_body.body = "Later, Vučić said nothing about the markets.".into();
    let body_story = Story::create(&db.store, &cast.editor, in_body, now()).await;
    let mut in_headline = draft("Vučić speaks");
    in_headline.body = "A long speech about roads and bridges.".into();
    let headline_story = Story::create(&db.store, &cast.editor, in_headline, now()).await;
    for i in 0..4 {
        Story::create(
            &db.store,
            &cast.editor,
            draft(&format!("Filler {i}")),
            now(),
        )
        .await;
    }
    assert_eq!(
        search(&db.store, "vucic").await,
        [headline_story.id, body_story.id]
    );
}

async fn search_follows_the_current_revision(db: &TestDb) {
    let cast = Cast::default();
    let mut story = Story::create(&db.store, &cast.editor, draft("Bridge opens"), now()).await;
    assert_eq!(search(&db.store, "bridge").await, [story.id]);
    story
        .act(
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Tunnel opens"),
            },
            now(),
        )
        .await;
    assert!(search(&db.store, "bridge").await.is_empty());
    assert_eq!(search(&db.store, "tunnel").await, [story.id]);
}

async fn search_combines_with_the_other_filters_and_pages_by_relevance(db: &TestDb) {
    let cast = Cast::default();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut d = draft(&format!("Harbour story {i}"));
        // Ever more mentions in the body: the later ones rank higher on both backends.
        d.body = "harbour ".repeat(i + 1);
        if i % 2 == 0 {
            d.category = Some("Culture".into());
        }
        ids.push(Story::create(&db.store, &cast.editor, d, now()).await.id);
    }
    let culture = search_with(
        &db.store,
        "harbour",
        ArticleFilter {
            category: Some("Culture".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        culture.iter().collect::<BTreeSet<_>>(),
        [ids[0], ids[2], ids[4], ids[6]].iter().collect()
    );
    let filter = ArticleFilter {
        text: Some("harbour".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .store
            .list_articles(
                &filter,
                ArticleOrder::Relevance,
                2,
                after.as_deref(),
                ArticleColumns::All,
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|(_, a)| a.id));
        after = page.items.last().map(|(c, _)| c.to_string());
        if !page.has_next_page {
            break;
        }
    }
    assert_eq!(seen, search(&db.store, "harbour").await);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 7);
}

async fn as_of_a_version_or_a_time_is_the_article_exactly_as_it_was(db: &TestDb) {
    let cast = Cast::default();
    let t = t0();
    let mut story = Story::create(&db.store, &cast.editor, seed_draft(), t).await;
    let created = db.store.article(story.id).await.unwrap().unwrap();
    story
        .act(
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Second take"),
            },
            t + hours(1),
        )
        .await;
    story
        .act(&cast.editor, Action::SubmitForReview, t + hours(2))
        .await;
    let submitted = db.store.article(story.id).await.unwrap().unwrap();
    story.approve(&cast.reviewer, t + hours(3)).await;
    story
        .act(
            &cast.publisher,
            Action::PublishNow { correction: None },
            t + hours(4),
        )
        .await;
    let now_record = db.store.article(story.id).await.unwrap().unwrap();

    let at_version = |v: u64| db.store.article_as_of(story.id, AsOf::Version(Version(v)));
    let mut expected_created = created.clone();
    expected_created.schedule_blocked_reason = None;
    assert_eq!(at_version(1).await.unwrap(), Some(expected_created.clone()));
    assert_eq!(at_version(3).await.unwrap(), Some(submitted.clone()));
    assert_eq!(at_version(5).await.unwrap(), Some(now_record.clone()));
    assert_eq!(at_version(6).await.unwrap(), None, "no such version yet");
    assert_eq!(at_version(0).await.unwrap(), None);

    let at_time = |t: DateTime<Utc>| db.store.article_as_of(story.id, AsOf::Time(t));
    assert_eq!(
        at_time(t - hours(1)).await.unwrap(),
        None,
        "before creation"
    );
    assert_eq!(at_time(t).await.unwrap(), Some(expected_created.clone()));
    assert_eq!(
        at_time(t + Duration::minutes(59)).await.unwrap(),
        Some(expected_created)
    );
    let at_two = at_time(t + hours(2) + Duration::minutes(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_two, submitted);
    assert_eq!(at_two.status, Status::InReview);
    assert_eq!(at_two.content.headline, "Second take");
    assert_eq!(at_time(t + hours(48)).await.unwrap(), Some(now_record));
    assert_eq!(
        db.store
            .article_as_of(new_id(), AsOf::Version(Version(1)))
            .await
            .unwrap(),
        None
    );
}

async fn the_review_queue_puts_my_assignments_first_then_unassigned_oldest_first(db: &TestDb) {
    let cast = Cast::default();
    let (r1, r2) = (reviewer(), reviewer());
    let t = t0();
    let mut ids = Vec::new();
    // (submitted at, assigned reviewers, submitted?)
    let plan: [(i64, Vec<&Actor>, bool); 6] = [
        (60, vec![], true),
        (120, vec![&r1], true),
        (30, vec![&r2], true),
        (180, vec![&r1, &r2], true),
        (0, vec![], true),
        (10, vec![&r1], false),
    ];
    for (i, (minute, assigned, submit)) in plan.iter().enumerate() {
        let mut story =
            Story::create(&db.store, &cast.editor, draft(&format!("Queue {i}")), t).await;
        for r in assigned {
            story
                .act(&cast.editor, Action::AssignReviewer { reviewer: r.user }, t)
                .await;
        }
        if *submit {
            story
                .act(
                    &cast.editor,
                    Action::SubmitForReview,
                    t + Duration::minutes(*minute),
                )
                .await;
        }
        ids.push(story.id);
    }
    let queue = |who: UserId| {
        let store = db.store.clone();
        async move {
            store
                .review_queue(who, 50, None, ArticleColumns::All)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|(_, a)| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(queue(r1.user).await, [ids[1], ids[3], ids[4], ids[0]]);
    assert_eq!(queue(r2.user).await, [ids[2], ids[3], ids[4], ids[0]]);
    assert_eq!(queue(reviewer().user).await, [ids[4], ids[0]]);
    // A page at a time, each page continuing after the last cursor, gives the same queue.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .store
            .review_queue(r1.user, 1, after.as_deref(), ArticleColumns::All)
            .await
            .unwrap();
        assert!(page.items.len() <= 1);
        paged.extend(page.items.iter().map(|(_, a)| a.id));
        after = page.items.last().map(|(c, _)| c.to_string());
        if !page.has_next_page {
            break;
        }
    }
    assert_eq!(paged, [ids[1], ids[3], ids[4], ids[0]]);
    assert!(db
        .store
        .review_queue(r1.user, 1, Some("not a cursor"), ArticleColumns::All)
        .await
        .is_err());
    // Unassigning r1 from story 1 moves it out of r1's queue (it is assigned to no one now,
    // so it joins the unassigned, oldest submission first).
    let version = db.store.article(ids[1]).await.unwrap().unwrap().version.0;
    run(
        &db.store,
        command(
            ids[1],
            version,
            &cast.editor,
            Action::UnassignReviewer { reviewer: r1.user },
        ),
    )
    .await
    .unwrap();
    assert_eq!(queue(r1.user).await, [ids[3], ids[4], ids[0], ids[1]]);
    assert_eq!(
        queue(r2.user).await,
        [ids[2], ids[3], ids[4], ids[0], ids[1]]
    );
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

fn stats(count: u64, p50_hours: i64, p90_hours: i64) -> DurationStats {
    DurationStats {
        count,
        p50: Some(hours(p50_hours)),
        p90: Some(hours(p90_hours)),
    }
}

async fn the_dashboard_gives_exact_figures_for_a_log_with_known_timestamps(db: &TestDb) {
    let cast = Cast::default();
    let (r1, r2) = (reviewer(), reviewer());
    let t = t0();
    let ed = &cast.editor;
    let submit = Action::SubmitForReview;
    let send_back = || Action::RequestChanges {
        reason: "Needs a second source".into(),
    };
    let revise = |h: &str| Action::ReviseDraft { content: draft(h) };
    let publish = || Action::PublishNow { correction: None };

    // A: sent back once by r1 (2 h), approved by r1 (1 h), first published 7 h after its
    // first submission, on day 1.
    let mut a = Story::create(&db.store, ed, draft("Story A"), t).await;
    a.act(ed, submit.clone(), t + hours(1)).await;
    a.act(&r1, send_back(), t + hours(3)).await;
    a.act(ed, revise("Story A, again"), t + hours(4)).await;
    a.act(ed, submit.clone(), t + hours(5)).await;
    a.approve(&r1, t + hours(6)).await;
    a.act(&cast.publisher, publish(), t + hours(8)).await;

    // B: approved by r2 after 4 h, published on day 2, 24 h after submission.
    let mut b = Story::create(&db.store, ed, draft("Story B"), t).await;
    b.act(ed, submit.clone(), t + hours(2)).await;
    b.approve(&r2, t + hours(6)).await;
    b.act(&cast.publisher, publish(), t + hours(26)).await;

    // C (Culture): sent back twice by r2 (1 h, 3 h), approved by r1 (10 h), scheduled for
    // day 3 and never published: overdue, with the scheduler's reason.
    let mut culture = draft("Story C");
    culture.category = Some("Culture".into());
    let mut c = Story::create(&db.store, ed, culture.clone(), t).await;
    c.act(ed, submit.clone(), t + hours(1)).await;
    c.act(&r2, send_back(), t + hours(2)).await;
    culture.headline = "Story C, again".into();
    c.act(
        ed,
        Action::ReviseDraft {
            content: culture.clone(),
        },
        t + hours(3),
    )
    .await;
    c.act(ed, submit.clone(), t + hours(4)).await;
    c.act(&r2, send_back(), t + hours(7)).await;
    culture.headline = "Story C, third".into();
    c.act(ed, Action::ReviseDraft { content: culture }, t + hours(7))
        .await;
    c.act(ed, submit.clone(), t + hours(8)).await;
    c.approve(&r1, t + hours(18)).await;
    c.act(
        &cast.publisher,
        Action::SchedulePublication {
            publish_at: t + hours(48),
            correction: None,
        },
        t + hours(20),
    )
    .await;
    // An embargo set after scheduling blocks the scheduler when C falls due.
    let until = t + hours(200);
    c.act(ed, Action::SetEmbargo { until }, t + hours(21)).await;
    c.act(&Actor::system(), Action::PublishDue, t + hours(49))
        .await;
    let blocked_note = format!(
        "EMBARGOED: {}",
        galley_domain::DomainError::Embargoed { until }
    );

    // D: still in review (an open cycle counts nowhere yet).
    let mut d = Story::create(&db.store, ed, draft("Story D"), t).await;
    d.act(ed, submit.clone(), t + Duration::minutes(30)).await;

    // E: everything happened before the window; only its status counts.
    let before = t - hours(48);
    let mut e = Story::create(&db.store, ed, draft("Story E"), before).await;
    e.act(ed, submit.clone(), before + hours(1)).await;
    e.approve(&r1, before + hours(2)).await;
    e.act(&cast.publisher, publish(), before + hours(24)).await;

    let query = DashboardQuery {
        from: t,
        to: t + hours(72),
        category: None,
        now: t + hours(72),
    };
    let dash = db.store.dashboard(&query).await.unwrap();
    let count = |s: Status| {
        dash.status_counts
            .iter()
            .find(|(st, _)| *st == s)
            .map(|(_, n)| *n)
    };
    assert_eq!(dash.status_counts.len(), Status::ALL.len());
    assert_eq!(count(Status::Published), Some(3));
    assert_eq!(count(Status::Scheduled), Some(1));
    assert_eq!(count(Status::InReview), Some(1));
    assert_eq!(count(Status::Draft), Some(0));
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    assert_eq!(
        dash.published_per_day
            .iter()
            .map(|d| (d.day, d.count))
            .collect::<Vec<_>>(),
        [(day(2), 1), (day(3), 1), (day(4), 0)]
    );
    // First publish: A 7 h, B 24 h. Nearest rank: p50 = 1st of 2, p90 = 2nd of 2.
    assert_eq!(dash.time_to_first_publish, stats(2, 7, 24));
    // Decisions: 1, 1, 2, 3, 4, 10 h. p50 = 3rd of 6, p90 = 6th of 6.
    assert_eq!(dash.review_turnaround, stats(6, 2, 10));
    // Bounce-backs: B none, A once, C twice.
    assert_eq!(
        dash.bounce_backs
            .iter()
            .map(|b| (b.changes_requested, b.articles))
            .collect::<Vec<_>>(),
        [(0, 1), (1, 1), (2, 1)]
    );
    let reviewer_figures = |r: &Actor| {
        dash.reviewers
            .iter()
            .find(|f| f.reviewer == r.user)
            .map(|f| (f.approvals, f.changes_requested, f.median_turnaround))
    };
    assert_eq!(dash.reviewers.len(), 2);
    // r1: 2 h, 1 h, 10 h → median 2 h; r2: 4 h, 1 h, 3 h → median 3 h.
    assert_eq!(reviewer_figures(&r1), Some((2, 1, Some(hours(2)))));
    assert_eq!(reviewer_figures(&r2), Some((1, 2, Some(hours(3)))));
    assert_eq!(dash.overdue.len(), 1);
    assert_eq!(dash.overdue[0].article_id, c.id);
    assert_eq!(dash.overdue[0].headline, "Story C, third");
    assert_eq!(dash.overdue[0].scheduled_for, t + hours(48));
    assert_eq!(
        dash.overdue[0].blocked_reason.as_deref(),
        Some(blocked_note.as_str())
    );

    // Before C fell due, nothing was overdue.
    let earlier = db
        .store
        .dashboard(&DashboardQuery {
            now: t + hours(47),
            ..query.clone()
        })
        .await
        .unwrap();
    assert!(earlier.overdue.is_empty());

    // One desk: only C.
    let desk = db
        .store
        .dashboard(&DashboardQuery {
            category: Some("Culture".into()),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(desk.status_counts.iter().map(|(_, n)| n).sum::<u64>(), 1);
    assert!(desk.published_per_day.iter().all(|d| d.count == 0));
    assert_eq!(desk.time_to_first_publish, DurationStats::default());
    assert_eq!(desk.review_turnaround, stats(3, 3, 10));
    assert_eq!(desk.bounce_backs.len(), 1);
    assert_eq!(
        (
            desk.bounce_backs[0].changes_requested,
            desk.bounce_backs[0].articles
        ),
        (2, 1)
    );
    assert_eq!(desk.overdue.len(), 1);

    // The window before: E alone.
    let past = db
        .store
        .dashboard(&DashboardQuery {
            from: t - hours(72),
            to: t,
            category: None,
            now: t + hours(72),
        })
        .await
        .unwrap();
    assert_eq!(past.time_to_first_publish, stats(1, 23, 23));
    assert_eq!(past.review_turnaround, stats(1, 1, 1));
    assert_eq!(
        past.published_per_day.iter().map(|d| d.count).sum::<u64>(),
        1
    );

    // The figures come from projections: a rebuild gives the same dashboard.
    db.store.rebuild_projections().await.unwrap();
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    assert_eq!(db.store.dashboard(&query).await.unwrap(), dash);
}

async fn the_dashboard_refuses_an_empty_or_overlong_window(db: &TestDb) {
    let t = t0();
    for (from, to) in [(t, t), (t, t - hours(1)), (t, t + Duration::days(400))] {
        let err = db
            .store
            .dashboard(&DashboardQuery {
                from,
                to,
                category: None,
                now: t,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { ref field, .. } if field == "to"),
            "{err:?}"
        );
    }
}

async fn rebuild_reproduces_search_and_dashboard_projections_and_verify_sees_tampering(
    db: &TestDb,
) {
    let cast = Cast::default();
    let r1 = reviewer();
    let t = t0();
    let mut a = Story::create(&db.store, &cast.editor, seed_draft(), t).await;
    a.act(
        &cast.editor,
        Action::AssignReviewer { reviewer: r1.user },
        t,
    )
    .await;
    a.act(&cast.editor, Action::SubmitForReview, t + hours(1))
        .await;
    a.approve(&r1, t + hours(2)).await;
    a.act(
        &cast.publisher,
        Action::PublishNow { correction: None },
        t + hours(3),
    )
    .await;
    let mut b = Story::create(&db.store, &cast.editor, draft("Bridge opens"), t).await;
    b.act(
        &cast.editor,
        Action::ReviseDraft {
            content: draft("Tunnel opens"),
        },
        t + hours(1),
    )
    .await;
    b.act(&cast.editor, Action::SubmitForReview, t + hours(2))
        .await;
    b.act(&cast.editor, Action::WithdrawSubmission, t + hours(3))
        .await;

    assert_eq!(db.store.verify_projections().await.unwrap(), []);
    db.store.rebuild_projections().await.unwrap();
    assert_eq!(db.store.verify_projections().await.unwrap(), []);
    assert_eq!(search(&db.store, "vucic").await, [a.id]);
    assert_eq!(search(&db.store, "tunnel").await, [b.id]);
    assert!(search(&db.store, "bridge").await.is_empty());

    db.store
        .execute_raw_sql_for_tests(
            "UPDATE review_cycles SET outcome = 'APPROVED' WHERE outcome = 'WITHDRAWN'",
        )
        .await
        .unwrap();
    db.store
        .execute_raw_sql_for_tests("DELETE FROM publications")
        .await
        .unwrap();
    let diffs = db.store.verify_projections().await.unwrap();
    let tables: BTreeSet<_> = diffs.iter().map(|d| d.table.as_str()).collect();
    assert_eq!(
        tables,
        BTreeSet::from(["publications", "review_cycles"]),
        "{diffs:?}"
    );
    db.store.rebuild_projections().await.unwrap();
    assert_eq!(db.store.verify_projections().await.unwrap(), []);
}

/// PostgreSQL only: the history (one article's stream) and feed (events after a position)
/// queries are answered from indexes, on a log large enough for the planner to prefer them
/// honestly (no `enable_seqscan = off`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_feed_queries_use_indexes_on_postgresql() {
    let Some(db) = postgres().await else { return };
    // 50 000 events over 500 articles of 100 versions each, written directly (the shape of
    // the rows is what matters to the planner, not their payloads).
    db.store
        .execute_raw_sql_for_tests(
            "INSERT INTO events (position, event_id, article_id, version, event_type, \
             schema_version, payload, actor, correlation_id, causation_id, request_id, \
             recorded_at) \
             SELECT g, gen_random_uuid(), \
             ('00000000-0000-7000-8000-' || lpad(to_hex((g - 1) % 500), 12, '0'))::uuid, \
             (g - 1) / 500 + 1, 'ReviewCommentAdded', 1, '{}'::jsonb, \
             '00000000-0000-0000-0000-000000000001'::uuid, gen_random_uuid(), NULL, NULL, \
             now() FROM generate_series(1, 50000) AS g",
        )
        .await
        .unwrap();
    db.store
        .execute_raw_sql_for_tests("UPDATE log_head SET position = 50000")
        .await
        .unwrap();
    db.store
        .execute_raw_sql_for_tests("ANALYZE events")
        .await
        .unwrap();

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let columns = "position, event_id, article_id, version, event_type, schema_version, \
                   payload, actor, correlation_id, causation_id, request_id, recorded_at";
    let article = "'00000000-0000-7000-8000-00000000002a'::uuid";
    // The shapes of read_stream (forward and backward, with and without a type filter) and of
    // read_all (with and without an article or type filter), as crates/storage/src/read.rs
    // writes them.
    let queries = [
        format!(
            "SELECT {columns} FROM events WHERE article_id = {article} AND version > 0 \
             ORDER BY version ASC LIMIT 21"
        ),
        format!(
            "SELECT {columns} FROM events WHERE article_id = {article} AND version < 90 \
             ORDER BY version DESC LIMIT 21"
        ),
        format!(
            "SELECT {columns} FROM events WHERE article_id = {article} AND version > 0 \
             AND event_type IN ('ReviewCommentAdded') ORDER BY version ASC LIMIT 21"
        ),
        format!("SELECT {columns} FROM events WHERE position > 0 ORDER BY position ASC LIMIT 500"),
        format!(
            "SELECT {columns} FROM events WHERE position > 49000 ORDER BY position ASC LIMIT 500"
        ),
        format!(
            "SELECT {columns} FROM events WHERE position > 1000 AND article_id = {article} \
             ORDER BY position ASC LIMIT 500"
        ),
        format!(
            "SELECT {columns} FROM events WHERE position > 1000 AND event_type IN \
             ('ArticlePublished') ORDER BY position ASC LIMIT 500"
        ),
        // Time travel: the last version at or before a time, within one article.
        format!(
            "SELECT MAX(version) AS version FROM events WHERE article_id = {article} \
             AND recorded_at <= now()"
        ),
    ];
    for sql in queries {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
        assert!(plan.contains("Index"), "{sql}\n{plan}");
    }
    pool.close().await;
    db.finish().await;
}

async fn time_in_stage_gives_exact_figures_for_a_log_with_known_timestamps(db: &TestDb) {
    let cast = Cast::default();
    let ed = &cast.editor;
    let r1 = reviewer();
    let t = t0();
    let submit = Action::SubmitForReview;
    let send_back = || Action::RequestChanges {
        reason: "Needs a second source".into(),
    };
    // A: in review 2 h, sent back for 3 h, in review 1 h, approved 3 h before going live.
    let mut a = Story::create(&db.store, ed, draft("Stage A"), t).await;
    a.act(ed, submit.clone(), t + hours(1)).await;
    a.act(&r1, send_back(), t + hours(3)).await;
    a.act(
        ed,
        Action::ReviseDraft {
            content: draft("Stage A, again"),
        },
        t + hours(4),
    )
    .await;
    a.act(ed, submit.clone(), t + hours(6)).await;
    a.approve(&r1, t + hours(7)).await;
    a.act(
        &cast.publisher,
        Action::PublishNow { correction: None },
        t + hours(10),
    )
    .await;
    // B: in review 4 h, approved since 6 h.
    let mut b = Story::create(&db.store, ed, draft("Stage B"), t).await;
    b.act(ed, submit.clone(), t + hours(2)).await;
    b.approve(&r1, t + hours(6)).await;
    // C (Culture): in review 1 h, changes requested since 2 h.
    let mut culture = draft("Stage C");
    culture.category = Some("Culture".into());
    let mut c = Story::create(&db.store, ed, culture, t).await;
    c.act(ed, submit.clone(), t + hours(1)).await;
    c.act(&r1, send_back(), t + hours(2)).await;
    // D and E: in review since 5 h and 3 h.
    let mut d = Story::create(&db.store, ed, draft("Stage D"), t).await;
    d.act(ed, submit.clone(), t + hours(5)).await;
    let mut e = Story::create(&db.store, ed, draft("Stage E"), t).await;
    e.act(ed, submit.clone(), t + hours(3)).await;

    let query = DashboardQuery {
        from: t,
        to: t + hours(24),
        category: None,
        now: t + hours(24),
    };
    let stages = db.store.time_in_stage(&query).await.unwrap();
    assert_eq!(
        stages.in_review_now,
        StageNow {
            count: 2,
            oldest: Some((e.id, t + hours(3)))
        }
    );
    assert_eq!(
        stages.changes_requested_now,
        StageNow {
            count: 1,
            oldest: Some((c.id, t + hours(2)))
        }
    );
    assert_eq!(
        stages.approved_now,
        StageNow {
            count: 1,
            oldest: Some((b.id, t + hours(6)))
        }
    );
    // In review: 2, 1, 4, 1 h → p50 the 2nd of 4 (1 h), p90 the 4th (4 h).
    assert_eq!(stages.in_review, stats(4, 1, 4));
    assert_eq!(stages.changes_requested, stats(1, 3, 3));
    assert_eq!(stages.approved, stats(1, 3, 3));

    // One category: only C counts.
    let culture = db
        .store
        .time_in_stage(&DashboardQuery {
            category: Some("Culture".into()),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(culture.in_review_now, StageNow::default());
    assert_eq!(culture.changes_requested_now.count, 1);
    assert_eq!(culture.in_review, stats(1, 1, 1));
    assert_eq!(culture.changes_requested.count, 0);

    // A window that ends before A went live has no approved visit yet; a rebuild changes
    // nothing.
    let early = db
        .store
        .time_in_stage(&DashboardQuery {
            to: t + hours(9),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(early.approved.count, 0);
    assert_eq!(early.changes_requested, stats(1, 3, 3));
    db.store.rebuild_projections().await.unwrap();
    assert_eq!(db.store.time_in_stage(&query).await.unwrap(), stages);
    assert!(db
        .store
        .time_in_stage(&DashboardQuery {
            to: t,
            ..query.clone()
        })
        .await
        .is_err());
}
