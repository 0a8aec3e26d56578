//! The feed's shared read: many subscribers of one store cost one log query per commit, not
//! one each, and sharing never skips, repeats or reorders an event, including for a
//! subscriber that falls behind the shared tail and for filtered subscriptions. Both backends;
//! the read counts are counters, never timings.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{command, create, draft, run, Cast};
use futures::StreamExt;
use galley_domain::Action;
use galley_storage::testing::Backend;
use galley_storage::{EventFilter, Store, StoreOptions};

const WAIT: Duration = Duration::from_secs(20);

/// A subscription's stream.
type Events = futures::stream::BoxStream<
    'static,
    Result<galley_storage::StoredEvent, galley_storage::StoreError>,
>;

/// A store on `backend` with the given feed tail.
async fn connect(backend: &Backend, feed_tail: usize) -> Store {
    Store::connect(&StoreOptions {
        url: backend.url().to_owned(),
        feed_tail,
        ..StoreOptions::default()
    })
    .await
    .expect("a store")
}

macro_rules! on_both {
    ($($name:ident($tail:expr)),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = super::Backend::sqlite();
                    let store = super::connect(&backend, $tail).await;
                    super::$name(&store).await;
                    store.close().await;
                    backend.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(backend) = super::Backend::postgres().await else { return };
                    let store = super::connect(&backend, $tail).await;
                    super::$name(&store).await;
                    store.close().await;
                    backend.cleanup().await;
                }
            )*
        }
    };
}

on_both!(
    fifty_subscribers_share_the_log_reads_and_each_gets_its_events_in_order(
        galley_storage::StoreOptions::default().feed_tail
    ),
    a_subscriber_behind_the_tail_reads_the_log_itself_and_misses_nothing(4),
    concurrent_writers_and_subscribers_in_and_out_of_a_small_tail(16),
    the_writer_hands_its_commits_to_the_tail_exactly_as_the_log_holds_them(
        galley_storage::StoreOptions::default().feed_tail
    ),
);

/// Two stores on one PostgreSQL database (two replicas): a subscriber of the first gets
/// the second's commits (through its notifications) and the first's own (from its writer,
/// whose notifications its listener leaves alone), every event once, in order, as the log
/// holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replicas_commits_and_the_stores_own_interleave_in_its_subscribers_feed() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let tail = StoreOptions::default().feed_tail;
    let a = connect(&backend, tail).await;
    let b = connect(&backend, tail).await;
    let cast = Cast::default();
    let mut ids = Vec::new();
    for (i, store) in [&a, &b, &a, &b].into_iter().enumerate() {
        ids.push((
            store.clone(),
            create(store, &cast, &format!("Replica {i}")).await,
        ));
    }
    let head = a.head().await.unwrap();
    let mut feed = a.subscribe(head, EventFilter::default());
    assert_caught_up(&mut feed).await;
    let per_writer = 10;
    revise_concurrently(&cast, ids, per_writer).await;
    let total = head + 4 * per_writer;
    assert_eq!(b.head().await.unwrap(), total);
    let seen = events_until(&mut feed, total).await;
    let logged = a
        .read_all(head, 1_000, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(
        seen, logged,
        "every event once, in order, as the log holds it"
    );
    a.close().await;
    b.close().await;
    backend.cleanup().await;
}

/// Four articles, headlined `<prefix> 0` to `<prefix> 3`.
async fn create_four(store: &Store, cast: &Cast, prefix: &str) -> Vec<galley_domain::ArticleId> {
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(create(store, cast, &format!("{prefix} {i}")).await);
    }
    ids
}

/// A subscription that has nothing to yield for now.
async fn assert_caught_up(feed: &mut Events) {
    assert!(tokio::time::timeout(Duration::from_millis(50), feed.next())
        .await
        .is_err());
}

/// Revises each article `per_writer` times from version 1, one task per article, each
/// through its own store, all at once.
async fn revise_concurrently(
    cast: &Cast,
    writers: Vec<(Store, galley_domain::ArticleId)>,
    per_writer: u64,
) {
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|(store, id)| {
            let cast = cast.clone();
            tokio::spawn(async move { revise(&store, &cast, id, 1, per_writer).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The events a subscription yields until it has yielded position `until`.
async fn events_until(feed: &mut Events, until: u64) -> Vec<galley_storage::StoredEvent> {
    let mut out: Vec<galley_storage::StoredEvent> = Vec::new();
    while out.last().map_or(0, |e| e.position) < until {
        let event = tokio::time::timeout(WAIT, feed.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("no error");
        out.push(event);
    }
    out
}

/// Concurrent writers on one store (so grouped batches): a subscriber gets every event from
/// the tail the writer fills, equal field for field to what a read of the log returns, and
/// the shared reader reads the log only to start, not once per commit.
async fn the_writer_hands_its_commits_to_the_tail_exactly_as_the_log_holds_them(store: &Store) {
    let cast = Cast::default();
    let ids = create_four(store, &cast, "Tail").await;
    let head = store.head().await.unwrap();
    let mut feed = store.subscribe(head, EventFilter::default());
    assert_caught_up(&mut feed).await;
    let reads_before = store.feed_reads();
    let commits_before = store.commits();
    let per_writer = 10;
    let writers = ids.into_iter().map(|id| (store.clone(), id)).collect();
    revise_concurrently(&cast, writers, per_writer).await;
    let total = head + 4 * per_writer;
    let seen = events_until(&mut feed, total).await;
    let logged = store
        .read_all(head, 1_000, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(seen, logged, "the tail's events are the log's");
    let commits = store.commits() - commits_before;
    let reads = store.feed_reads() - reads_before;
    // A read per commit would be `commits` (at least 10 here); a reader that started late
    // or heard an unconditional ring reads a few times.
    assert!(commits >= 10, "{commits} commits");
    assert!(reads <= 3, "{reads} log reads for {commits} commits");
}

/// Revises `id` `n` times, one commit each, from version `from`; returns the last version.
async fn revise(
    store: &Store,
    cast: &Cast,
    id: galley_domain::ArticleId,
    from: u64,
    n: u64,
) -> u64 {
    for i in 0..n {
        let action = Action::ReviseDraft {
            content: draft(&format!("Revision {i} of {id}")),
        };
        run(store, command(id, from + i, &cast.editor, action))
            .await
            .expect("a revision");
    }
    from + n
}

/// The positions a subscription yields until it has yielded `until` (inclusive).
async fn positions_until(feed: &mut Events, until: u64) -> Vec<u64> {
    events_until(feed, until)
        .await
        .into_iter()
        .map(|e| e.position)
        .collect()
}

async fn fifty_subscribers_share_the_log_reads_and_each_gets_its_events_in_order(store: &Store) {
    let cast = Cast::default();
    let id = create(store, &cast, "Fan-out").await;
    let head = store.head().await.unwrap();
    let reads_before = store.feed_reads();
    let revisions = EventFilter {
        event_types: vec!["DraftRevised".to_owned()],
        ..EventFilter::default()
    };
    let mut feeds: Vec<_> = (0..50)
        .map(|i| {
            let filter = if i % 2 == 0 {
                EventFilter::default()
            } else {
                revisions.clone()
            };
            store.subscribe(head, filter)
        })
        .collect();
    // Every subscriber is caught up (and waiting) before the commits begin.
    for feed in &mut feeds {
        assert!(tokio::time::timeout(Duration::from_millis(50), feed.next())
            .await
            .is_err());
    }
    // One commit at a time, every subscriber receiving it before the next: without sharing,
    // every subscriber reads the log after every commit (50 × 20 = 1,000 queries).
    let commits = 20;
    for n in 1..=commits {
        revise(store, &cast, id, n, 1).await;
        for feed in &mut feeds {
            assert_eq!(positions_until(feed, head + n).await, vec![head + n]);
        }
    }
    assert_eq!(store.head().await.unwrap(), head + commits);
    // Shared, each subscriber reads once to catch up and the reader once per ring.
    let reads = store.feed_reads() - reads_before;
    assert!(
        reads <= 50 + 4,
        "{reads} log reads for 50 subscribers and {commits} commits"
    );
}

async fn a_subscriber_behind_the_tail_reads_the_log_itself_and_misses_nothing(store: &Store) {
    let cast = Cast::default();
    let id = create(store, &cast, "Far behind").await;
    let mut live = store.subscribe(0, EventFilter::default());
    let mut late = store.subscribe(0, EventFilter::default());
    let mut filtered = store.subscribe(
        0,
        EventFilter {
            event_types: vec!["DraftRevised".to_owned()],
            ..EventFilter::default()
        },
    );
    assert_eq!(positions_until(&mut live, 1).await, vec![1]);
    // 30 commits while `late` and `filtered` are not polled: the tail of 4 has long moved on.
    let mut version = 1;
    for _ in 0..6 {
        version = revise(store, &cast, id, version, 5).await;
        let head = store.head().await.unwrap();
        assert_eq!(positions_until(&mut live, head).await.len(), 5);
    }
    let head = store.head().await.unwrap();
    assert_eq!(head, 31);
    assert_eq!(
        positions_until(&mut late, head).await,
        (1..=head).collect::<Vec<_>>()
    );
    assert_eq!(
        positions_until(&mut filtered, head).await,
        (2..=head).collect::<Vec<_>>()
    );
    // And all three go on live together.
    revise(store, &cast, id, version, 1).await;
    for feed in [&mut live, &mut late, &mut filtered] {
        assert_eq!(positions_until(feed, head + 1).await, vec![head + 1]);
    }
}

async fn concurrent_writers_and_subscribers_in_and_out_of_a_small_tail(store: &Store) {
    let cast = Cast::default();
    let ids = create_four(store, &cast, "Concurrent").await;
    let start = store.head().await.unwrap();
    let per_writer = 15;
    let total = start + 4 * per_writer;
    // Ten subscribers from the start, each polled at its own pace (some sleep between events,
    // so they fall out of the tail of 16 and read the log themselves).
    let mut readers = Vec::new();
    for n in 0..10u64 {
        let mut feed = store.subscribe(0, EventFilter::default());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.last().copied().unwrap_or(0) < total {
                let event = tokio::time::timeout(WAIT, feed.next())
                    .await
                    .expect("an event in time")
                    .expect("the stream goes on")
                    .expect("no error");
                seen.push(event.position);
                if n % 3 == 0 && seen.len() % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(20 * (n + 1))).await;
                }
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for id in ids {
        let store = store.clone();
        let cast = cast.clone();
        writers.push(tokio::spawn(async move {
            revise(&store, &cast, id, 1, per_writer).await;
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(store.head().await.unwrap(), total);
    let expected: Vec<u64> = (1..=total).collect();
    for r in readers {
        let seen = r.await.unwrap();
        assert_eq!(seen, expected, "every event once, in position order");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
    }
}
