//! The harness of the contract suite: one test body, run against every backend.
//!
//! `contract_tests!` turns each `async fn name(db: &TestDb)` into `sqlite::name` (a temp file,
//! always) and `postgres::name` (a fresh database, when GALLEY_TEST_POSTGRES_URL is set). The
//! databases are the workspace's one test backend (`galley_storage::testing::Backend`, dropped
//! even when a test fails), the seed article is the domain's (`galley_domain::testing`); what
//! is here is the storage suite's own: a store on the backend, small drafts, the cast and
//! command shorthands.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use galley_domain::{Action, Actor, ArticleId, Command, ContentDraft, Role, UserId, Version};
use galley_storage::testing::{self, Backend};
use galley_storage::{CommandOutcome, Metadata, Store, StoreError};
use uuid::Uuid;

/// The seed article of the brief (non-ASCII names, block quotes, links, many paragraphs) as a
/// draft. (Not every suite of this crate writes it.)
#[allow(unused_imports)]
pub use galley_domain::testing::seed_draft;

/// A store under test and what is needed to open another pool on the same database.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// The database; dropped after the store (fields drop in order), even when a test fails.
    database: Backend,
}

impl TestDb {
    /// A store on a fresh database.
    pub async fn open(database: Backend) -> TestDb {
        let store = database.connect().await;
        TestDb {
            store,
            url: database.url().to_owned(),
            backend: database.name(),
            database,
        }
    }

    /// Another store (another pool, as another process would have) on the same database.
    pub async fn second_store(&self) -> Store {
        testing::connect(&self.url).await.expect("connect again")
    }

    pub async fn finish(self) {
        self.store.close().await;
        self.database.cleanup().await;
    }
}

pub async fn sqlite() -> TestDb {
    TestDb::open(Backend::sqlite()).await
}

pub async fn postgres() -> Option<TestDb> {
    Some(TestDb::open(Backend::postgres().await?).await)
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

/// The editor's `ReviseDraft` of `id` from `version` to [`draft`]`(headline)`.
#[allow(dead_code)]
pub fn revise(id: ArticleId, version: u64, cast: &Cast, headline: &str) -> Command {
    command(
        id,
        version,
        &cast.editor,
        Action::ReviseDraft {
            content: draft(headline),
        },
    )
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
