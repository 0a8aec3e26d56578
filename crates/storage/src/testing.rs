//! Helpers for tests of this crate and of the crates above it: a fresh database per test.

use crate::error::StoreError;
use crate::store::{Store, StoreOptions};

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
pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("galley.db").display())
}

/// Connects to `url` with migrations applied and a small pool.
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    Store::connect(&StoreOptions {
        url: url.to_owned(),
        max_connections: 8,
        migrate: true,
        ..StoreOptions::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::with_database;

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
