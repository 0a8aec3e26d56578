//! A quick sanity measurement of the append path, without HTTP: N tasks each create their own
//! article and then revise it as fast as they can through `Store::execute`, for a few seconds.
//! The benchmark harness (crates/bench) is the real measurement; this one isolates the store.
//!
//! ```text
//! cargo run --release -p galley-storage --example append_rate -- <database url> <clients> <secs> [max_batch] [create]
//! ```
//!
//! With `create`, every command creates a new article (an empty stream to read), which
//! separates the cost of replaying a growing stream from the cost of the append itself.
//!
//! The database should be a scratch one: the example migrates it and writes to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use galley_domain::{Action, Actor, ArticleId, Command, ContentDraft, Role, UserId, Version};
use galley_storage::{Metadata, Store, StoreOptions, DEFAULT_MAX_BATCH};
use uuid::Uuid;

fn content(client: usize, n: u64) -> ContentDraft {
    ContentDraft {
        headline: format!("Append rate {client} {}", Uuid::now_v7().simple()),
        standfirst: "A measurement.".to_owned(),
        body: format!("Revision {n} of a short article.\n\nA second paragraph."),
        category: Some("News".to_owned()),
        tags: vec!["Bench".to_owned()],
        byline: vec!["Galley".to_owned()],
        ..ContentDraft::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, clients, secs, rest @ ..] = args.as_slice() else {
        eprintln!("usage: append_rate <database url> <clients> <secs> [max_batch] [create]");
        std::process::exit(2);
    };
    let clients: usize = clients.parse()?;
    let secs: u64 = secs.parse()?;
    let max_batch = match rest.first() {
        Some(n) => n.parse()?,
        None => DEFAULT_MAX_BATCH,
    };
    let create_only = rest.get(1).map(String::as_str) == Some("create");
    let store = Store::connect(&StoreOptions {
        url: url.clone(),
        max_connections: 8,
        migrate: true,
        max_batch,
        ..StoreOptions::default()
    })
    .await?;
    let editor = Actor::user(UserId::from_uuid(Uuid::now_v7()), [Role::Editor]);
    let done = Arc::new(AtomicU64::new(0));
    let commits_before = store.commits();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (store, editor, done) = (store.clone(), editor.clone(), done.clone());
            tokio::spawn(async move {
                let mut id = ArticleId::from_uuid(Uuid::now_v7());
                let mut version = 0;
                while Instant::now() < deadline {
                    if create_only {
                        id = ArticleId::from_uuid(Uuid::now_v7());
                        version = 0;
                    }
                    let action = if version == 0 {
                        Action::CreateArticle {
                            content: content(client, version),
                        }
                    } else {
                        Action::ReviseDraft {
                            content: content(client, version),
                        }
                    };
                    let command = Command {
                        article_id: id,
                        expected_version: Version(version),
                        actor: editor.clone(),
                        now: Utc::now(),
                        action,
                    };
                    let out = store
                        .execute(command, Metadata::default(), None)
                        .await
                        .expect("append");
                    version = out.article.version.0;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let commits = store.commits() - commits_before;
    println!(
        "{clients} clients, max_batch {max_batch}: {n} mutations in {elapsed:.2}s = {:.0} mutations/s, \
         {commits} commits ({:.1} commands per commit)",
        n as f64 / elapsed,
        n as f64 / commits.max(1) as f64
    );
    store.close().await;
    Ok(())
}
