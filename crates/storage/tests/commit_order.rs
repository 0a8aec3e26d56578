//! The commit-order lock, tested by what it protects: several `Store`s (as several replicas
//! are) appending to one PostgreSQL database, with transactions held open before commit.
//!
//! Within one `Store` the group-commit queue already serialises appends, so the contract
//! suite's concurrency tests never contend for the `log_head` row lock. Here each writer has
//! its own pool and its own queue; only the lock keeps positions unique, contiguous and in
//! commit order. Without it a replica reads the same head as the held transaction and appends
//! at the same positions: its insert waits for the held row and then fails on the primary key,
//! and an append gives up after three such attempts. Both tests fail when `FOR UPDATE` is
//! dropped from the append transaction's head read (checked when they were written).
//! PostgreSQL only: on SQLite the database's own write lock does this job.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::FutureExt;
use galley_domain::ArticleId;
use galley_storage::{CommitDecision, EventFilter, Store, StoredEvent};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(20);

/// Holds every append transaction of `store` that writes to `held`, before its commit, until
/// released; `reached` is notified when one is held.
fn hold_before_commit(store: &Store, held: ArticleId) -> (Arc<Notify>, Arc<Notify>) {
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (r, l) = (reached.clone(), release.clone());
    store.set_before_commit_hook(Some(Arc::new(move |events: Vec<StoredEvent>| {
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

/// Waits (bounded) until at least `n` sessions on the test database wait for a lock.
async fn until_sessions_wait_for_a_lock(url: &str, n: i64) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let waiting = async {
        loop {
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .expect("pg_stat_activity");
            if count >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the other replicas' appends wait for the held one");
    pool.close().await;
}

/// The positions of the whole log, in order.
async fn log_positions(store: &Store) -> Vec<u64> {
    store
        .read_all(0, 1000, &EventFilter::default())
        .await
        .expect("read the log")
        .iter()
        .map(|e| e.position)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_wait_for_a_transaction_held_before_commit_and_append_after_it() {
    let Some(db) = postgres().await else { return };
    let cast = Cast::default();
    let held = create(&db.store, &cast, "Held").await;
    // More replicas than an append's retries on a unique violation (two), so that without the
    // lock some replica loses every attempt.
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(db.second_store().await);
    }
    let mut others = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        others.push(create(replica, &cast, &format!("Replica {i}")).await);
    }
    assert_eq!(db.store.head().await.unwrap(), 5);

    let (reached, release) = hold_before_commit(&db.store, held);
    let store = db.store.clone();
    let cmd = revise(held, 1, &cast, "Held 2");
    let writer = tokio::spawn(async move { run(&store, cmd).await });
    tokio::time::timeout(WAIT, reached.notified())
        .await
        .expect("the held append reaches its commit");

    // Each replica begins its append while the first is held: its transaction must wait.
    let mut waiting = Vec::new();
    for (i, (replica, id)) in replicas.iter().zip(&others).enumerate() {
        let headline = format!("Replica {i} revised");
        let (replica, cmd) = (replica.clone(), revise(*id, 1, &cast, &headline));
        waiting.push(tokio::spawn(async move { run(&replica, cmd).await }));
    }
    until_sessions_wait_for_a_lock(&db.url, 4).await;
    assert_eq!(
        db.store.head().await.unwrap(),
        5,
        "nothing commits while the held append is open"
    );

    release.notify_one();
    let first = writer.await.unwrap().expect("the held append commits");
    assert_eq!(
        first.events[0].position, 6,
        "the held append keeps its position"
    );
    let mut later = Vec::new();
    for task in waiting {
        let outcome = task
            .await
            .unwrap()
            .expect("a waiting replica's append commits");
        later.push(outcome.events[0].position);
    }
    later.sort_unstable();
    assert_eq!(
        later,
        [7, 8, 9, 10],
        "the waiting replicas append after the held one"
    );
    let all: Vec<u64> = (1..=10).collect();
    assert_eq!(log_positions(&replicas[0]).await, all);
    assert_eq!(replicas[3].head().await.unwrap(), 10);

    db.store.set_before_commit_hook(None);
    for replica in replicas {
        replica.close().await;
    }
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_holding_their_transactions_open_keep_the_log_contiguous() {
    let Some(db) = postgres().await else { return };
    const REPLICAS: usize = 4;
    const REVISIONS: u64 = 6;
    let mut stores = vec![db.store.clone()];
    for _ in 1..REPLICAS {
        stores.push(db.second_store().await);
    }
    // Every append stays open a little before it commits, so the replicas' transactions
    // overlap; the hook decides nothing.
    for store in &stores {
        store.set_before_commit_hook(Some(Arc::new(|_events: Vec<StoredEvent>| {
            async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                CommitDecision::Commit
            }
            .boxed()
        })));
    }
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let (store, cast) = (store.clone(), Cast::default());
        tasks.push(tokio::spawn(async move {
            let id = create(&store, &cast, &format!("Replica {i}")).await;
            for v in 1..=REVISIONS {
                run(
                    &store,
                    revise(id, v, &cast, &format!("Replica {i} rev {v}")),
                )
                .await
                .expect("every append of every replica commits");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = REPLICAS as u64 * (REVISIONS + 1);
    let expected: Vec<u64> = (1..=total).collect();
    for store in &stores {
        assert_eq!(store.head().await.unwrap(), total);
        assert_eq!(log_positions(store).await, expected, "one contiguous log");
        store.set_before_commit_hook(None);
    }
    for store in stores.into_iter().skip(1) {
        store.close().await;
    }
    db.finish().await;
}
