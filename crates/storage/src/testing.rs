//! Helpers for tests of this crate and of the crates above it: a fresh database per test.
//!
//! [`Backend`] is the one database type of every suite: the storage contract suite opens a
//! [`Store`] on it, the end-to-end harness (galley-tests) starts servers on its URL. An SQLite
//! file in a folder of its own, or a database of its own on the PostgreSQL server of
//! [`POSTGRES_URL_ENV`]; either is removed when the `Backend` is dropped, even by a failing test.
//!
//! Only crate-root paths are imported here, so this file does not follow the crate's modules.

use std::path::{Path, PathBuf};

use crate::{BackendKind, Store, StoreError, StoreOptions};

/// The environment variable naming a PostgreSQL server for tests.
pub const POSTGRES_URL_ENV: &str = "GALLEY_TEST_POSTGRES_URL";
/// Set to `1` to make a missing PostgreSQL a failure instead of a skip (CI).
pub const REQUIRE_POSTGRES_ENV: &str = "GALLEY_REQUIRE_POSTGRES";

/// A URL to a brand-new, empty PostgreSQL database, or `None` (with a notice on stderr) when
/// [`POSTGRES_URL_ENV`] is not set. Panics when it is not set but [`REQUIRE_POSTGRES_ENV`]
/// is `1`, or when the database cannot be created.
pub async fn fresh_postgres_url() -> Option<String> {
    let Ok(base) = std::env::var(POSTGRES_URL_ENV) else {
        if std::env::var(REQUIRE_POSTGRES_ENV).as_deref() == Ok("1") {
            panic!(
                "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set; set it to a \
                 PostgreSQL server URL such as postgres://postgres@127.0.0.1:5432/postgres"
            );
        }
        eprintln!("skipping PostgreSQL: {POSTGRES_URL_ENV} not set");
        return None;
    };
    let name = format!("galley_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_ENV}={base}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = sqlx::Connection::close(conn).await;
    Some(with_database(&base, &name))
}

/// Drops a database made by [`fresh_postgres_url`] (best effort; connections are closed
/// first by the caller).
pub async fn drop_postgres_database(url: &str) {
    let Ok(base) = std::env::var(POSTGRES_URL_ENV) else {
        return;
    };
    let Some(name) = url
        .rsplit('/')
        .next()
        .map(|n| n.split('?').next().unwrap_or(n))
    else {
        return;
    };
    if !name.starts_with("galley_test_") {
        return;
    }
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = sqlx::Connection::close(conn).await;
    }
}

/// A fresh database for one test: an SQLite file in a temporary folder, or a database of its own
/// on the PostgreSQL server of [`POSTGRES_URL_ENV`]. Dropping it removes the folder or drops the
/// PostgreSQL database (on a thread of its own, so it also works inside an async test and while
/// a failing test unwinds); [`Backend::cleanup`] does the same and waits for it. Close every
/// store and stop every server on it first: the drop forces the database's connections closed.
#[derive(Debug)]
pub struct Backend {
    url: String,
    kind: BackendKind,
    /// The SQLite file's folder, removed on drop.
    dir: Option<PathBuf>,
    /// Set once the PostgreSQL database is dropped, so `Drop` does not try again.
    cleaned: bool,
}

impl Backend {
    /// A fresh SQLite file (created on the first connect) in a new temporary folder.
    pub fn sqlite() -> Backend {
        let dir =
            std::env::temp_dir().join(format!("galley-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create the test folder {}: {e}", dir.display()));
        Backend {
            url: sqlite_url(&dir),
            kind: BackendKind::Sqlite,
            dir: Some(dir),
            cleaned: false,
        }
    }

    /// A fresh PostgreSQL database, or `None` with a notice on stderr when
    /// [`POSTGRES_URL_ENV`] is not set. Panics when it is not set but
    /// [`REQUIRE_POSTGRES_ENV`] is `1` (see [`fresh_postgres_url`]).
    pub async fn postgres() -> Option<Backend> {
        let url = fresh_postgres_url().await?;
        Some(Backend {
            url,
            kind: BackendKind::Postgres,
            dir: None,
            cleaned: false,
        })
    }

    /// A fresh database of the same kind as this one (for a copy, an import, a second site).
    pub async fn another(&self) -> Backend {
        match self.kind {
            BackendKind::Sqlite => Backend::sqlite(),
            BackendKind::Postgres => Backend::postgres()
                .await
                .expect("PostgreSQL is configured: this backend is on it"),
        }
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which database this is.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// `"sqlite"` or `"postgres"`, for messages.
    pub fn name(&self) -> &'static str {
        match self.kind {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }

    /// The folder of the SQLite file (`None` on PostgreSQL).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A store on this database, migrated, with a small pool (see [`connect`]).
    pub async fn connect(&self) -> Store {
        connect(&self.url).await.unwrap_or_else(|e| {
            panic!(
                "cannot open a store on the {} test database: {e}",
                self.name()
            )
        })
    }

    /// Drops the PostgreSQL database now and waits for it (call once every store and server on
    /// it is closed). The SQLite folder goes when `self` is dropped at the end.
    pub async fn cleanup(mut self) {
        if self.kind == BackendKind::Postgres {
            drop_postgres_database(&self.url).await;
        }
        self.cleaned = true;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if self.kind != BackendKind::Postgres || self.cleaned {
            return;
        }
        // A failing test unwinds without reaching `cleanup`; drop its database on a thread of
        // its own, since this may run inside a runtime that cannot block.
        let url = self.url.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_postgres_database(&url));
            }
        })
        .join();
    }
}

/// Replaces the database name (the path) of a PostgreSQL URL.
fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let scheme_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = without_query[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(without_query.len());
    let mut url = format!("{}/{name}", &without_query[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The URL of an SQLite file inside `dir` (created on connect).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("galley.db").display())
}

/// Connects to `url` with migrations applied, a small pool and no search indexer task, so
/// that a test decides when the search index moves (`Store::index_search`); a test of the
/// indexer itself opens a store with one.
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    Store::connect(&StoreOptions {
        url: url.to_owned(),
        max_connections: 8,
        migrate: true,
        search_indexer: crate::IndexerOptions {
            enabled: false,
            ..crate::IndexerOptions::default()
        },
        ..StoreOptions::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{with_database, Backend, POSTGRES_URL_ENV};

    #[tokio::test]
    async fn an_sqlite_backend_is_a_fresh_file_removed_on_drop() {
        let backend = Backend::sqlite();
        let dir = backend.dir().expect("a folder").to_owned();
        assert!(dir.is_dir());
        assert!(backend.url().starts_with("sqlite://"), "{}", backend.url());
        let store = backend.connect().await;
        assert_eq!(store.backend(), crate::BackendKind::Sqlite);
        store.close().await;
        assert!(dir.join("galley.db").is_file());
        let other = backend.another().await;
        assert_ne!(other.url(), backend.url());
        drop(backend);
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_backend_is_dropped_even_by_a_failing_test() {
        let Some(backend) = Backend::postgres().await else {
            return;
        };
        let name = backend.url().rsplit('/').next().unwrap().to_owned();
        let store = backend.connect().await;
        store.close().await;
        // A failing test unwinds without reaching `cleanup`: the drop alone removes it.
        let failing = tokio::spawn(async move {
            let _backend = backend;
            panic!("a failing test");
        });
        assert!(failing.await.unwrap_err().is_panic());
        let base = std::env::var(POSTGRES_URL_ENV).unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
            .await
            .unwrap();
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(!exists, "{name} is left behind");
        let _ = sqlx::Connection::close(conn).await;
    }

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
