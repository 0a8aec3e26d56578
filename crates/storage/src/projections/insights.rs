//! The review queue's and the dashboard's projections: `article_reviewers`, `review_cycles`
//! and `publications`, written by [`super::Rows`] from single events on the live path and on
//! rebuild alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::backend::{fulltext, Tx};
use crate::error::StoreError;

/// Every row of these tables and of the search index, keyed by (table, key), for verify.
pub(crate) async fn dump(
    tx: &mut Tx,
    out: &mut BTreeMap<(String, String), String>,
) -> Result<(), StoreError> {
    for row in tx
        .exec()
        .fetch_all("SELECT article_id, user_id FROM article_reviewers", &[])
        .await?
    {
        let id: uuid::Uuid = row.get("article_id")?;
        let user: uuid::Uuid = row.get("user_id")?;
        out.insert(
            ("article_reviewers".to_owned(), format!("{id}/{user}")),
            String::new(),
        );
    }
    for row in tx
        .exec()
        .fetch_all(
            "SELECT article_id, submitted_version, revision, submitted_at, submitted_by, \
             outcome, decided_at, decided_by FROM review_cycles",
            &[],
        )
        .await?
    {
        let id: uuid::Uuid = row.get("article_id")?;
        let version: i64 = row.get("submitted_version")?;
        let value = format!(
            "revision {} submitted {:?} by {} outcome {:?} at {:?} by {:?}",
            row.get::<i64>("revision")?,
            row.get::<DateTime<Utc>>("submitted_at")?,
            row.get::<uuid::Uuid>("submitted_by")?,
            row.get::<Option<String>>("outcome")?,
            row.get::<Option<DateTime<Utc>>>("decided_at")?,
            row.get::<Option<uuid::Uuid>>("decided_by")?,
        );
        out.insert(
            ("review_cycles".to_owned(), format!("{id}/{version}")),
            value,
        );
    }
    for row in tx
        .exec()
        .fetch_all(
            "SELECT article_id, version, revision, published_at, published_via \
             FROM publications",
            &[],
        )
        .await?
    {
        let id: uuid::Uuid = row.get("article_id")?;
        let version: i64 = row.get("version")?;
        let value = format!(
            "revision {} at {:?} via {}",
            row.get::<i64>("revision")?,
            row.get::<DateTime<Utc>>("published_at")?,
            row.get::<String>("published_via")?,
        );
        out.insert(
            ("publications".to_owned(), format!("{id}/{version}")),
            value,
        );
    }
    for (id, text) in fulltext::dump(tx).await? {
        out.insert(("article_search".to_owned(), id.to_string()), text);
    }
    Ok(())
}
