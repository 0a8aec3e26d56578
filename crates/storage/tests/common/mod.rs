//! The harness of the contract suite: one test body, run against every backend.
//!
//! `contract_tests!` turns each `async fn name(db: TestDb)` into `sqlite::name` (a temp file,
//! always) and `postgres::name` (a fresh database, when GALLEY_TEST_POSTGRES_URL is set).

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use galley_domain::{Action, Actor, ArticleId, Command, ContentDraft, Role, UserId, Version};
use galley_storage::{testing, CommandOutcome, Metadata, Store, StoreError};
use uuid::Uuid;

/// The seed article of the brief: non-ASCII names, block quotes, links, many paragraphs.
pub const SEED_ARTICLE: &str = include_str!("../../../../fixtures/seed-article.md");

/// A store under test and what is needed to open another pool on the same database.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another store (another pool, as another process would have) on the same database.
    pub async fn second_store(&self) -> Store {
        testing::connect(&self.url).await.expect("connect again")
    }

    pub async fn finish(self) {
        self.store.close().await;
        if self.backend == "postgres" {
            testing::drop_postgres_database(&self.url).await;
        }
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = testing::sqlite_url(dir.path());
    let store = testing::connect(&url).await.expect("connect to SQLite");
    TestDb {
        store,
        url,
        backend: "sqlite",
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Option<TestDb> {
    let url = testing::fresh_postgres_url().await?;
    let store = testing::connect(&url).await.expect("connect to PostgreSQL");
    Some(TestDb {
        store,
        url,
        backend: "postgres",
        _dir: None,
    })
}

#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

/// The seed article's front matter and body as a draft.
pub fn seed_draft() -> ContentDraft {
    let rest = SEED_ARTICLE.strip_prefix("---\n").expect("front matter");
    let (front, body) = rest.split_once("\n---\n").expect("end of front matter");
    let mut draft = ContentDraft {
        body: body.trim().to_owned(),
        ..ContentDraft::default()
    };
    for line in front.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let text = || -> String {
            serde_json::from_str(value).unwrap_or_else(|_| value.trim().to_owned())
        };
        let list = || -> Vec<String> { serde_json::from_str(value).expect("a JSON list") };
        match key {
            "headline" => draft.headline = text(),
            "standfirst" => draft.standfirst = text(),
            "slug" => draft.slug = Some(text()),
            "category" => draft.category = Some(text()),
            "tags" => draft.tags = list(),
            "byline" => draft.byline = list(),
            "language" => draft.language = Some(text()),
            _ => {}
        }
    }
    draft
}

/// A small draft with a unique headline (and so slug).
pub fn draft(headline: &str) -> ContentDraft {
    ContentDraft {
        headline: headline.to_owned(),
        standfirst: format!("What {headline} is about."),
        body: format!("The body of {headline}.\n\nA second paragraph."),
        category: Some("News".to_owned()),
        tags: vec!["Kosovo".to_owned(), "NATO".to_owned()],
        byline: vec!["Tristan Vanheuckelom".to_owned()],
        ..ContentDraft::default()
    }
}

/// The newsroom's cast.
#[derive(Debug, Clone)]
pub struct Cast {
    pub editor: Actor,
    pub second_editor: Actor,
    pub reviewer: Actor,
    pub publisher: Actor,
    pub admin: Actor,
}

impl Default for Cast {
    fn default() -> Self {
        let user = |role| Actor::user(UserId::from_uuid(Uuid::now_v7()), [role]);
        Cast {
            editor: user(Role::Editor),
            second_editor: user(Role::Editor),
            reviewer: user(Role::Reviewer),
            publisher: user(Role::Publisher),
            admin: user(Role::Admin),
        }
    }
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

pub fn command(id: ArticleId, version: u64, actor: &Actor, action: Action) -> Command {
    Command {
        article_id: id,
        expected_version: Version(version),
        actor: actor.clone(),
        now: now(),
        action,
    }
}

pub fn new_id() -> ArticleId {
    ArticleId::from_uuid(Uuid::now_v7())
}

/// Runs a command without metadata or idempotency key.
pub async fn run(store: &Store, command: Command) -> Result<CommandOutcome, StoreError> {
    store.execute(command, Metadata::default(), None).await
}

/// Creates an article and returns its id.
pub async fn create(store: &Store, cast: &Cast, headline: &str) -> ArticleId {
    let id = new_id();
    run(
        store,
        command(
            id,
            0,
            &cast.editor,
            Action::CreateArticle {
                content: draft(headline),
            },
        ),
    )
    .await
    .expect("create");
    id
}

/// Takes an article through review to approval; returns its version.
pub async fn approve(store: &Store, cast: &Cast, id: ArticleId) -> u64 {
    let a = store.article(id).await.unwrap().unwrap();
    let v = a.version.0;
    run(store, command(id, v, &cast.editor, Action::SubmitForReview))
        .await
        .expect("submit");
    run(
        store,
        command(
            id,
            v + 1,
            &cast.reviewer,
            Action::ApproveRevision {
                revision: a.revision,
            },
        ),
    )
    .await
    .expect("approve");
    v + 2
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}
