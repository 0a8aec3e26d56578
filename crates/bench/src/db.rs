//! Databases: a fresh one per backend and run, and direct sqlx access to it for the raw-SQL
//! baselines and for reading the log head while the server is stopped.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, PgPool, SqlitePool};

/// Which database a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by the environment.
    Postgres,
}

impl Backend {
    /// The name used in the table.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database created for one run, removed by [`BenchDb::remove`].
#[derive(Debug)]
pub struct BenchDb {
    /// Which backend.
    pub backend: Backend,
    /// The URL galley is given.
    pub url: String,
    /// The folder holding the SQLite files and the run's scratch files.
    pub dir: PathBuf,
    /// For PostgreSQL: the URL of the maintenance database and the created database's name.
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server the harness uses.
pub fn postgres_admin_url() -> String {
    std::env::var("GALLEY_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("GALLEY_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl BenchDb {
    /// Creates a scratch folder and, for PostgreSQL, a database `galley_bench_<uuid>`.
    pub async fn create(backend: Backend) -> anyhow::Result<BenchDb> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let dir = std::env::temp_dir().join(format!("galley-bench-{}-{id}", backend.name()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        match backend {
            Backend::Sqlite => Ok(BenchDb {
                backend,
                url: format!("sqlite://{}?mode=rwc", dir.join("galley.db").display()),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("galley_bench_{id}");
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {admin}"))?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("cannot create the database {name}"))?;
                conn.close().await?;
                Ok(BenchDb {
                    backend,
                    url: with_database(&admin, &name),
                    dir,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// Drops the PostgreSQL database and deletes the scratch folder.
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = &self.postgres {
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot drop the database {name}"))?;
            conn.close().await?;
        }
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        Ok(())
    }

    /// A scratch file path inside the run's folder.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A direct pool on the database galley uses.
    pub async fn raw(&self, connections: u32) -> anyhow::Result<Raw> {
        match self.backend {
            Backend::Postgres => Ok(Raw::Pg(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect_with(PgConnectOptions::from_str(&self.url)?)
                    .await?,
            )),
            Backend::Sqlite => Ok(Raw::Sqlite(
                sqlite_pool(&self.dir.join("galley.db"), connections).await?,
            )),
        }
    }
}

/// Opens an SQLite file with the settings galley's store uses (crates/storage/src/backend/mod.rs):
/// WAL, `synchronous = FULL`, foreign keys, a 10 s busy timeout.
pub async fn sqlite_pool(path: &Path, connections: u32) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqlitePoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await?)
}

/// A direct pool on one backend.
#[derive(Debug, Clone)]
pub enum Raw {
    /// PostgreSQL.
    Pg(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl Raw {
    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Raw::Pg(p) => p.close().await,
            Raw::Sqlite(p) => p.close().await,
        }
    }
}

/// Replaces the database name of a PostgreSQL URL, keeping user, host and query parameters.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A PostgreSQL URL with `sslmode=disable` added when it names no `sslmode`.
pub fn plaintext_unless_set(url: &str) -> String {
    if url.contains("sslmode=") {
        return url.to_owned();
    }
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}sslmode=disable")
}

#[cfg(test)]
mod tests {
    use super::{plaintext_unless_set, with_database};

    #[test]
    fn tls_is_turned_off_only_where_the_url_says_nothing_of_it() {
        assert_eq!(
            plaintext_unless_set("postgres://u@h/db"),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            plaintext_unless_set("postgres://u@h/db?application_name=x"),
            "postgres://u@h/db?application_name=x&sslmode=disable"
        );
        assert_eq!(
            plaintext_unless_set("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
    }

    #[test]
    fn the_database_name_is_replaced_and_everything_else_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b2"),
            "postgres://u:p@h/b2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b3"),
            "postgres://h:5432/b3"
        );
    }
}
