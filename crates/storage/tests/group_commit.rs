//! Group commit (issue 6), asserted the same way on SQLite and PostgreSQL: concurrent
//! `execute` calls share one transaction, each command is still checked on its own, and a
//! batch that fails at commit acknowledges none of its commands.
//!
//! Grouping is made deterministic without timing: the first batch is held at its commit by the
//! before-commit test hook while the next commands queue up (the test waits until the store
//! reports them queued), so the next batch is exactly those commands, in that order.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::FutureExt;
use galley_domain::{Action, ArticleId, Command, RevisionNumber, Status, Version};
use galley_storage::BackendKind;
use galley_storage::{
    testing, CommandOutcome, CommitDecision, Metadata, PendingCommand, Store, StoreError,
    StoreOptions, StoredEvent,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

contract_tests!(
    one_batch_answers_each_command_on_its_own_in_queue_order,
    a_batch_that_fails_at_commit_acknowledges_none_and_the_next_batch_continues_the_log,
    thirty_two_concurrent_creates_share_one_commit,
    one_idempotency_key_twice_in_a_batch_appends_once,
    close_answers_queued_commands_with_an_error,
    a_store_sees_appends_another_process_made_to_an_article_it_has_written,
    one_batch_writes_what_its_commands_would_have_written_one_by_one,
    a_batch_that_panics_before_commit_releases_the_log,
    the_next_batch_begins_beside_the_commit_that_precedes_it,
    a_transaction_begun_for_callers_that_went_away_releases_the_log,
);

const WAIT: Duration = Duration::from_secs(20);

/// What the scripted hook does at a commit.
enum Step {
    /// Signal `reached`, then wait for `release`, then commit.
    Hold {
        reached: Arc<Notify>,
        release: Arc<Notify>,
    },
    /// Roll the batch back, as a crash before commit would.
    Abort,
}

/// A before-commit hook that runs `steps` at the first commits, then commits; it records the
/// number of events of every batch that reached it.
struct Script {
    sizes: Arc<Mutex<Vec<usize>>>,
}

fn script(store: &Store, steps: Vec<Step>) -> Script {
    let steps = Arc::new(Mutex::new(VecDeque::from(steps)));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    store.set_before_commit_hook(Some(Arc::new(move |events: Vec<StoredEvent>| {
        seen.lock().unwrap().push(events.len());
        let step = steps.lock().unwrap().pop_front();
        async move {
            match step {
                Some(Step::Hold { reached, release }) => {
                    reached.notify_one();
                    release.notified().await;
                    CommitDecision::Commit
                }
                Some(Step::Abort) => CommitDecision::Abort,
                None => CommitDecision::Commit,
            }
        }
        .boxed()
    })));
    Script { sizes }
}

fn hold() -> (Step, Arc<Notify>, Arc<Notify>) {
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let step = Step::Hold {
        reached: reached.clone(),
        release: release.clone(),
    };
    (step, reached, release)
}

type Call = JoinHandle<Result<CommandOutcome, StoreError>>;

/// Sends a command from its own task and returns once the store reports it queued, so that
/// commands queue in the order they are sent.
async fn send_queued(store: &Store, command: Command, key: Option<&str>) -> Call {
    let before = store.queued_commands();
    let (s, key) = (store.clone(), key.map(str::to_owned));
    let call = tokio::spawn(async move { s.execute(command, Metadata::default(), key).await });
    tokio::time::timeout(WAIT, async {
        while store.queued_commands() <= before {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the command is queued");
    call
}

/// Starts a create that the hook holds at its commit; returns once it is held.
async fn start_held_create(db: &TestDb, cast: &Cast, reached: &Notify) -> Call {
    let id = new_id();
    let store = db.store.clone();
    let cmd = command(
        id,
        0,
        &cast.editor,
        Action::CreateArticle {
            content: draft("Held"),
        },
    );
    let call = tokio::spawn(async move { run(&store, cmd).await });
    tokio::time::timeout(WAIT, reached.notified())
        .await
        .expect("the first batch reaches its commit");
    call
}

/// Queues `n` creates, headlined `<prefix><i>`, in order (see [`send_queued`]).
async fn queue_creates(db: &TestDb, cast: &Cast, prefix: &str, n: usize) -> Vec<Call> {
    let mut calls = Vec::new();
    for i in 0..n {
        let cmd = create_cmd(cast, new_id(), &format!("{prefix}{i}"));
        calls.push(send_queued(&db.store, cmd, None).await);
    }
    calls
}

fn create_cmd(cast: &Cast, id: ArticleId, headline: &str) -> Command {
    command(
        id,
        0,
        &cast.editor,
        Action::CreateArticle {
            content: draft(headline),
        },
    )
}

async fn one_batch_answers_each_command_on_its_own_in_queue_order(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Existing").await;
    let (step, reached, release) = hold();
    let script = script(&db.store, vec![step]);
    let commits = db.store.commits();
    let held = start_held_create(db, &cast, &reached).await;

    let (x, y, z) = (new_id(), new_id(), new_id());
    let calls = vec![
        send_queued(&db.store, create_cmd(&cast, x, "Batch X"), None).await,
        send_queued(&db.store, create_cmd(&cast, y, "Batch Y"), None).await,
        // A stale expected version: the article is at version 1.
        send_queued(
            &db.store,
            command(
                a,
                0,
                &cast.editor,
                Action::ReviseDraft {
                    content: draft("Stale"),
                },
            ),
            None,
        )
        .await,
        // Refused by the domain: a draft cannot be approved.
        send_queued(
            &db.store,
            command(
                a,
                1,
                &cast.reviewer,
                Action::ApproveRevision {
                    revision: RevisionNumber(1),
                },
            ),
            None,
        )
        .await,
        send_queued(&db.store, create_cmd(&cast, z, "Batch Z"), None).await,
        // Decides against X as the first command of this batch left it.
        send_queued(
            &db.store,
            command(x, 1, &cast.editor, Action::SubmitForReview),
            None,
        )
        .await,
        // Takes the slug Y took earlier in the same batch.
        send_queued(&db.store, create_cmd(&cast, new_id(), "Batch Y"), None).await,
    ];
    assert_eq!(db.store.queued_commands(), 7);
    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap().events[0].position, 2);
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }

    assert_eq!(
        db.store.commits(),
        commits + 2,
        "the held batch and one more"
    );
    assert_eq!(*script.sizes.lock().unwrap(), [1, 4]);
    let position = |i: usize| results[i].as_ref().unwrap().events[0].position;
    assert_eq!(position(0), 3);
    assert_eq!(position(1), 4);
    let stale = results[2].as_ref().unwrap_err();
    assert_eq!(stale.code(), Some("CONFLICT"), "{stale:?}");
    assert_eq!(stale.current_version(), Some(Version(1)));
    let refused = results[3].as_ref().unwrap_err();
    assert!(
        matches!(refused, StoreError::Domain(_)) && refused.code() != Some("CONFLICT"),
        "{refused:?}"
    );
    assert_eq!(position(4), 5);
    assert_eq!(position(5), 6);
    assert_eq!(
        results[5].as_ref().unwrap().article.status,
        Status::InReview
    );
    assert_eq!(results[6].as_ref().unwrap_err().code(), Some("SLUG_TAKEN"));

    assert_eq!(db.store.head().await.unwrap(), 6);
    let log = db
        .store
        .read_all(0, 100, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        db.store.article(a).await.unwrap().unwrap().version,
        Version(1)
    );
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    db.store.set_before_commit_hook(None);
}

async fn a_batch_that_fails_at_commit_acknowledges_none_and_the_next_batch_continues_the_log(
    db: &TestDb,
) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Existing").await;
    let (step, reached, release) = hold();
    let script = script(&db.store, vec![step, Step::Abort]);
    let held = start_held_create(db, &cast, &reached).await;

    let doomed = [new_id(), new_id(), new_id()];
    let mut calls = Vec::new();
    for (i, id) in doomed.iter().enumerate() {
        calls.push(
            send_queued(
                &db.store,
                create_cmd(&cast, *id, &format!("Lost {i}")),
                None,
            )
            .await,
        );
    }
    calls.push(
        send_queued(
            &db.store,
            command(
                a,
                1,
                &cast.editor,
                Action::ReviseDraft {
                    content: draft("Lost revision"),
                },
            ),
            Some("lost-key"),
        )
        .await,
    );
    // A command that would have been refused anyway is not acknowledged either.
    calls.push(
        send_queued(
            &db.store,
            command(a, 0, &cast.editor, Action::SubmitForReview),
            None,
        )
        .await,
    );
    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap().events[0].position, 2);
    for call in calls {
        let result = call.await.unwrap();
        assert!(
            matches!(result, Err(StoreError::BatchFailed { .. })),
            "{result:?}"
        );
    }
    assert_eq!(*script.sizes.lock().unwrap(), [1, 4]);

    // Nothing of the lost batch is visible.
    assert_eq!(db.store.head().await.unwrap(), 2);
    for id in doomed {
        assert_eq!(db.store.article(id).await.unwrap(), None);
    }
    assert_eq!(db.store.article_by_slug("lost-0").await.unwrap(), None);
    assert_eq!(
        db.store.article(a).await.unwrap().unwrap().version,
        Version(1)
    );
    assert_eq!(db.store.revisions(a).await.unwrap().len(), 1);

    // The next batch continues the log where it was, and the lost key is free again.
    let again = db
        .store
        .execute(
            command(
                a,
                1,
                &cast.editor,
                Action::ReviseDraft {
                    content: draft("Kept revision"),
                },
            ),
            Metadata::default(),
            Some("lost-key".to_owned()),
        )
        .await
        .unwrap();
    assert!(!again.replayed);
    assert_eq!(again.events[0].position, 3);
    let created = run(&db.store, create_cmd(&cast, doomed[0], "Lost 0"))
        .await
        .unwrap();
    assert_eq!(created.events[0].position, 4);
    assert!(db.store.verify_projections().await.unwrap().is_empty());
    db.store.set_before_commit_hook(None);
}

/// A batch that dies between taking the log lock and committing (here a panic in the hook)
/// must not leave its transaction open on a pooled connection: that would hold the log lock
/// and block every later append. Its caller gets an error; the next append goes through.
async fn a_batch_that_panics_before_commit_releases_the_log(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Before the panic").await;
    db.store
        .set_before_commit_hook(Some(Arc::new(|_events: Vec<StoredEvent>| {
            async move { panic!("the before-commit hook panics (test)") }.boxed()
        })));
    let revise = |text: &str| {
        command(
            a,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft(text),
            },
        )
    };
    let lost = run(&db.store, revise("Lost in the panic")).await;
    assert!(
        matches!(lost, Err(StoreError::BatchFailed { .. })),
        "{lost:?}"
    );
    db.store.set_before_commit_hook(None);

    let kept = tokio::time::timeout(WAIT, run(&db.store, revise("After the panic")))
        .await
        .expect("the log is still locked by the panicked batch")
        .unwrap();
    assert_eq!(kept.events[0].position, 2);
    assert_eq!(db.store.head().await.unwrap(), 2);
    assert_eq!(db.store.revisions(a).await.unwrap().len(), 2);
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

async fn thirty_two_concurrent_creates_share_one_commit(db: &TestDb) {
    let cast = Cast::default();
    let (step, reached, release) = hold();
    let script = script(&db.store, vec![step]);
    let commits = db.store.commits();
    let held = start_held_create(db, &cast, &reached).await;

    let calls: Vec<_> = (0..32)
        .map(|i| {
            let (store, cmd) = (
                db.store.clone(),
                create_cmd(&cast, new_id(), &format!("C{i}")),
            );
            tokio::spawn(async move { run(&store, cmd).await })
        })
        .collect();
    tokio::time::timeout(WAIT, async {
        while db.store.queued_commands() < 32 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("all 32 queue behind the held commit");
    release.notify_one();
    held.await.unwrap().unwrap();
    let mut positions = Vec::new();
    for call in calls {
        positions.push(call.await.unwrap().unwrap().events[0].position);
    }
    positions.sort_unstable();
    assert_eq!(positions, (2..=33).collect::<Vec<_>>());
    assert_eq!(db.store.commits(), commits + 2);
    assert_eq!(*script.sizes.lock().unwrap(), [1, 32]);
    db.store.set_before_commit_hook(None);
}

/// Transactions begun beside a commit, as the backend does it: on PostgreSQL the next
/// batch's `BEGIN` and lock go beside the commit when commands already wait; SQLite has one
/// write connection and never does.
fn begun_ahead_per_wait(db: &TestDb) -> u64 {
    u64::from(db.store.backend() == BackendKind::Postgres)
}

/// A batch committing while commands wait begins the next batch's transaction beside its
/// commit; that batch runs in it, continues the log, and leaves the lock free behind it.
async fn the_next_batch_begins_beside_the_commit_that_precedes_it(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Ahead").await;
    let (step, reached, release) = hold();
    let script = script(&db.store, vec![step]);
    let (commits, ahead) = (db.store.commits(), db.store.transactions_begun_ahead());
    let held = start_held_create(db, &cast, &reached).await;
    let mut calls = queue_creates(db, &cast, "N", 4).await;
    let revise = command(
        a,
        1,
        &cast.editor,
        Action::ReviseDraft {
            content: draft("Ahead, revised"),
        },
    );
    calls.push(send_queued(&db.store, revise, None).await);
    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap().events[0].position, 2);
    let mut positions = Vec::new();
    for call in calls {
        positions.push(call.await.unwrap().unwrap().events[0].position);
    }
    assert_eq!(positions, [3, 4, 5, 6, 7]);
    assert_eq!(*script.sizes.lock().unwrap(), [1, 5]);
    assert_eq!(db.store.commits(), commits + 2);
    assert_eq!(
        db.store.transactions_begun_ahead(),
        ahead + begun_ahead_per_wait(db),
        "one transaction begun beside the held batch's commit, none beside the last"
    );
    db.store.set_before_commit_hook(None);

    // Nothing holds the log now: another process appends at once.
    let other = db.second_store().await;
    let next = command(a, 2, &cast.editor, Action::SubmitForReview);
    let out = tokio::time::timeout(WAIT, run(&other, next))
        .await
        .expect("the log is free after the last batch")
        .unwrap();
    assert_eq!(out.events[0].position, 8);
    other.close().await;
    assert_eq!(db.store.revisions(a).await.unwrap().len(), 2);
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

/// A transaction begun for the next batch whose callers all went away before it ran is rolled
/// back at once: the log lock is not held while the writer waits for new commands.
async fn a_transaction_begun_for_callers_that_went_away_releases_the_log(db: &TestDb) {
    let cast = Cast::default();
    let (step, reached, release) = hold();
    script(&db.store, vec![step]);
    let (commits, ahead) = (db.store.commits(), db.store.transactions_begun_ahead());
    let held = start_held_create(db, &cast, &reached).await;
    let calls = queue_creates(db, &cast, "G", 3).await;
    for call in calls {
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
    }
    assert_eq!(
        db.store.queued_commands(),
        3,
        "still queued, with nobody waiting"
    );
    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap().events[0].position, 1);
    assert_eq!(
        db.store.transactions_begun_ahead(),
        ahead + begun_ahead_per_wait(db)
    );
    db.store.set_before_commit_hook(None);

    // The writer is idle now; another process must get the lock.
    let other = db.second_store().await;
    let out = tokio::time::timeout(WAIT, run(&other, create_cmd(&cast, new_id(), "Other")))
        .await
        .expect("the log lock was left held by an unused transaction")
        .unwrap();
    assert_eq!(out.events[0].position, 2);
    other.close().await;
    assert_eq!(
        db.store.commits(),
        commits + 1,
        "the abandoned commands wrote nothing"
    );
    assert_eq!(db.store.head().await.unwrap(), 2);
}

async fn one_idempotency_key_twice_in_a_batch_appends_once(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Keyed").await;
    let pending = |cmd, key: &str| PendingCommand {
        command: cmd,
        metadata: Metadata::default(),
        idempotency_key: Some(key.to_owned()),
    };
    let revise = command(
        a,
        1,
        &cast.editor,
        Action::ReviseDraft {
            content: draft("Keyed 2"),
        },
    );
    let results = db
        .store
        .execute_batch(vec![
            pending(revise.clone(), "k1"),
            pending(revise.clone(), "k1"),
            pending(command(a, 2, &cast.editor, Action::SubmitForReview), "k1"),
        ])
        .await;
    let first = results[0].as_ref().unwrap();
    let second = results[1].as_ref().unwrap();
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(first.events, second.events);
    assert_eq!(second.article.version, Version(2));
    assert_eq!(
        results[2].as_ref().unwrap_err().code(),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(db.store.head().await.unwrap(), 2);

    // The same through the writer: both callers get the one append.
    let (step, reached, release) = hold();
    script(&db.store, vec![step]);
    let held = start_held_create(db, &cast, &reached).await;
    let submit = command(a, 2, &cast.editor, Action::SubmitForReview);
    let one = send_queued(&db.store, submit.clone(), Some("k2")).await;
    let two = send_queued(&db.store, submit, Some("k2")).await;
    release.notify_one();
    held.await.unwrap().unwrap();
    let (one, two) = (one.await.unwrap().unwrap(), two.await.unwrap().unwrap());
    assert!(!one.replayed && two.replayed);
    assert_eq!(one.events, two.events);
    assert_eq!(one.events[0].position, 4);
    assert_eq!(db.store.head().await.unwrap(), 4);
    db.store.set_before_commit_hook(None);
}

async fn close_answers_queued_commands_with_an_error(db: &TestDb) {
    let cast = Cast::default();
    let (step, reached, release) = hold();
    script(&db.store, vec![step]);
    let held = start_held_create(db, &cast, &reached).await;
    let calls = queue_creates(db, &cast, "Q", 3).await;
    let store = db.store.clone();
    let closing = tokio::spawn(async move { store.close().await });
    // Once closing, the store takes no more commands.
    tokio::time::timeout(WAIT, async {
        while db.store.queued_commands() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("close stops the queue");
    let late = run(&db.store, create_cmd(&cast, new_id(), "Late")).await;
    assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
    // The batch in flight finishes; the queued commands are answered, not run.
    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap().events[0].position, 1);
    for call in calls {
        let result = tokio::time::timeout(WAIT, call)
            .await
            .expect("answered")
            .unwrap();
        assert!(matches!(result, Err(StoreError::Closed)), "{result:?}");
    }
    tokio::time::timeout(WAIT, closing)
        .await
        .expect("close returns")
        .unwrap();
    let reopened = db.second_store().await;
    assert_eq!(reopened.head().await.unwrap(), 1);
    reopened.close().await;
}

/// The writer keeps the articles it wrote as committed and reads only their streams' tails; a
/// tail written by another process must be seen.
async fn a_store_sees_appends_another_process_made_to_an_article_it_has_written(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Shared").await;
    let other = db.second_store().await;
    run(
        &other,
        command(
            a,
            1,
            &cast.editor,
            Action::ReviseDraft {
                content: draft("Shared 2"),
            },
        ),
    )
    .await
    .unwrap();
    let stale = run(
        &db.store,
        command(a, 1, &cast.editor, Action::SubmitForReview),
    )
    .await;
    assert_eq!(stale.unwrap_err().current_version(), Some(Version(2)));
    let out = run(
        &db.store,
        command(a, 2, &cast.editor, Action::SubmitForReview),
    )
    .await
    .unwrap();
    assert_eq!(out.article.revision, RevisionNumber(2));
    assert_eq!(out.article.content.headline, "Shared 2");
    assert_eq!(out.events[0].position, 3);
    other.close().await;
}

/// A batch is decided in memory and written set-based, one statement per table: slugs given
/// up and taken, review cycles opened and closed, and one article changed several times in
/// one batch must come out as if each command had run on its own, and each outcome must
/// report the article as its own command left it.
async fn one_batch_writes_what_its_commands_would_have_written_one_by_one(db: &TestDb) {
    let cast = Cast::default();
    let a = create(&db.store, &cast, "Swap one").await;
    let (b, c, d) = (new_id(), new_id(), new_id());
    let pending = |command| PendingCommand {
        command,
        metadata: Metadata::default(),
        idempotency_key: None,
    };
    let revise = |version, headline: &str| {
        command(
            a,
            version,
            &cast.editor,
            Action::ReviseDraft {
                content: draft(headline),
            },
        )
    };
    let results = db
        .store
        .execute_batch(vec![
            // A gives up "swap-one", which B takes in the same batch.
            pending(revise(1, "Swap two")),
            pending(create_cmd(&cast, b, "Swap one")),
            // A through a review cycle that opens and closes inside the batch, and another.
            pending(command(a, 2, &cast.editor, Action::SubmitForReview)),
            pending(command(
                a,
                3,
                &cast.reviewer,
                Action::RequestChanges {
                    reason: "Sources".to_owned(),
                },
            )),
            pending(revise(4, "Swap three")),
            pending(command(a, 5, &cast.editor, Action::SubmitForReview)),
            // "swap-two" was A's for a moment of this batch, and is free again.
            pending(create_cmd(&cast, c, "Swap two")),
            pending(create_cmd(&cast, d, "Swap three")),
        ])
        .await;
    let ok = |i: usize| results[i].as_ref().unwrap();
    let versions: Vec<u64> = (0..7).map(|i| ok(i).article.version.0).collect();
    assert_eq!(versions, [2, 1, 3, 4, 5, 6, 1]);
    assert_eq!(ok(0).article.content.headline, "Swap two");
    assert_eq!(ok(0).article.status, Status::Draft);
    assert_eq!(ok(2).article.status, Status::InReview);
    assert_eq!(ok(3).article.status, Status::ChangesRequested);
    assert_eq!(ok(5).article.status, Status::InReview);
    assert_eq!(ok(5).article.revision, RevisionNumber(3));
    assert_eq!(results[7].as_ref().unwrap_err().code(), Some("SLUG_TAKEN"));
    let positions: Vec<u64> = (0..7).map(|i| ok(i).events[0].position).collect();
    assert_eq!(positions, [2, 3, 4, 5, 6, 7, 8]);
    for (slug, holder) in [("swap-one", b), ("swap-two", c), ("swap-three", a)] {
        let found = db.store.article_by_slug(slug).await.unwrap().unwrap();
        assert_eq!(found.id, holder, "{slug}");
    }
    assert_eq!(db.store.article(d).await.unwrap(), None);
    // Every outcome is the row as its command left it; the last one of A is A's row now.
    assert_eq!(db.store.article(a).await.unwrap().unwrap(), ok(5).article);
    assert_eq!(db.store.revisions(a).await.unwrap().len(), 3);
    assert!(db.store.verify_projections().await.unwrap().is_empty());

    // The scheduler's note (a PublicationBlocked event) stands while the article stays
    // SCHEDULED: a replay reports it, a command that unschedules clears it.
    run(
        &db.store,
        command(
            a,
            6,
            &cast.reviewer,
            Action::ApproveRevision {
                revision: RevisionNumber(3),
            },
        ),
    )
    .await
    .unwrap();
    let schedule = command(
        a,
        7,
        &cast.publisher,
        Action::SchedulePublication {
            publish_at: now() + chrono::Duration::days(1),
            correction: None,
        },
    );
    let key = Some("schedule-a".to_owned());
    let scheduled = db
        .store
        .execute(schedule.clone(), Metadata::default(), key.clone())
        .await
        .unwrap();
    assert_eq!(scheduled.article.status, Status::Scheduled);
    let until = chrono::SubsecRound::trunc_subsecs(now() + chrono::Duration::days(2), 0);
    run(
        &db.store,
        command(a, 8, &cast.editor, Action::SetEmbargo { until }),
    )
    .await
    .unwrap();
    let mut due = command(a, 9, &galley_domain::Actor::system(), Action::PublishDue);
    due.now = now() + chrono::Duration::days(1) + chrono::Duration::minutes(1);
    run(&db.store, due).await.unwrap();
    let note = format!(
        "EMBARGOED: {}",
        galley_domain::DomainError::Embargoed { until }
    );
    let replayed = db
        .store
        .execute(schedule, Metadata::default(), key)
        .await
        .unwrap();
    assert!(replayed.replayed);
    assert_eq!(
        replayed.article.schedule_blocked_reason.as_deref(),
        Some(note.as_str())
    );
    assert_eq!(
        replayed.article.scheduled_for,
        scheduled.article.scheduled_for
    );
    let cancelled = run(
        &db.store,
        command(a, 10, &cast.publisher, Action::CancelSchedule),
    )
    .await
    .unwrap();
    assert_eq!(cancelled.article.schedule_blocked_reason, None);
    assert_eq!(
        db.store.article(a).await.unwrap().unwrap(),
        cancelled.article
    );
    assert!(db.store.verify_projections().await.unwrap().is_empty());
}

/// On PostgreSQL a batch's statements are planned once per connection (a generic plan), and
/// a generic plan does not know how many rows the batch has: it must still look each row up
/// by index, not scan a table that was small when the plan was made. Here the table has
/// never been analysed, when PostgreSQL's own choice for a generic plan is a hash join over
/// a scan of all of `articles`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batchs_generic_plan_looks_each_article_up_by_its_key() {
    let Some(db) = postgres().await else { return };
    let cast = Cast::default();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(create(&db.store, &cast, &format!("Planned {i}")).await);
    }
    let id = ids[7].as_uuid();
    let out = db
        .store
        .in_append_transaction_for_tests(&[
            "SELECT current_setting('plan_cache_mode') || ' ' \
             || current_setting('enable_hashjoin')",
            "PREPARE batch_update(uuid[], bigint[]) AS UPDATE articles SET version = u.version \
             FROM UNNEST($1, $2) AS u(id, version) WHERE articles.id = u.id",
            &format!("EXPLAIN EXECUTE batch_update('{{{id}}}', '{{2}}')"),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], ["force_generic_plan off"]);
    let plan = out[2].join("\n");
    assert!(plan.contains("Index Scan using articles_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(!plan.contains("Hash"), "{plan}");
    // The settings end with the transaction.
    let after = db
        .store
        .execute_raw_sql_for_tests("SELECT 1 WHERE current_setting('plan_cache_mode') = 'auto'")
        .await
        .unwrap();
    assert_eq!(after, 1);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_store_ends_its_writer_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let store = testing::connect("sqlite::memory:").await.unwrap();
    let cast = Cast::default();
    run(&store, create_cmd(&cast, new_id(), "Dropped"))
        .await
        .unwrap();
    assert!(metrics.num_alive_tasks() > baseline, "the writer runs");
    drop(store);
    tokio::time::timeout(WAIT, async {
        while metrics.num_alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no task outlives the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_batch_of_one_runs_each_command_in_its_own_transaction() {
    let database = testing::Backend::sqlite();
    let store = Store::connect(&StoreOptions {
        url: database.url().to_owned(),
        max_batch: 1,
        ..StoreOptions::default()
    })
    .await
    .unwrap();
    let cast = Cast::default();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (s, cmd) = (
                store.clone(),
                create_cmd(&cast, new_id(), &format!("One {i}")),
            );
            tokio::spawn(async move { run(&s, cmd).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(store.queued_commands(), 0);
    assert_eq!(store.commits(), 8);
    store.close().await;
}
