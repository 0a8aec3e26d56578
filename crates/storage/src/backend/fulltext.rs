//! Full-text search's two engines: PostgreSQL `tsvector` with a GIN index, SQLite FTS5.
//!
//! Both index the same text, folded in Rust before it gets here (see `crate::read::search`):
//! ASCII words, which PostgreSQL's parser with the `simple` configuration (no stemming, no
//! stop words) and FTS5's `unicode61` tokenizer split identically, so the same data gives the
//! same hits on both backends. A query matches the articles that contain every one of its
//! words, the last word as a prefix when it has at least [`MIN_PREFIX_CHARS`] characters
//! (PostgreSQL `vuc:*`, FTS5 `"vuc"*`, which both match every indexed word that starts with
//! it). Ranking: `ts_rank` with the headline at weight A and the rest at weight B on
//! PostgreSQL, `bm25` with the headline weighted 2.5 on SQLite; the scores differ between
//! backends, the hits do not.

use super::args::{Arg, Row};
use super::sets::{Col, Part};
use super::tx::{Exec, Tx};
use crate::error::StoreError;

/// The last word of a query matches as a prefix from this length on (a one-letter prefix
/// would match a large part of the vocabulary).
pub(crate) const MIN_PREFIX_CHARS: usize = 2;

/// The statements that write the search documents of a set of articles: rows of (article id,
/// headline, body) from `crate::read::search::document`, those of articles that had rows before the set
/// (`existing`, whose document exists) and of new ones. On PostgreSQL an `UPDATE` and an
/// `INSERT`, not one upsert: `INSERT … ON CONFLICT DO UPDATE` computes the generated
/// `document` (the costly `to_tsvector`) for the proposed row and again for the updated one.
/// On SQLite three statements, in this order, whose FTS5 rows are addressed by the `doc`
/// number `article_search` gives each article.
pub(crate) fn parts(tx: &Tx, existing: Vec<Vec<Arg>>, new: Vec<Vec<Arg>>) -> Vec<Part> {
    const COLS: [Col; 3] = [("id", "uuid"), ("headline", "text"), ("body", "text")];
    if tx.is_pg() {
        return vec![
            Part::new(&COLS, existing, |u| {
                format!(
                    "UPDATE article_search SET headline = u.headline, body = u.body \
                     FROM {u} WHERE article_search.article_id = u.id"
                )
            }),
            Part::new(&COLS, new, |u| {
                format!(
                    "INSERT INTO article_search (article_id, headline, body) \
                     SELECT id, headline, body FROM {u}"
                )
            }),
        ];
    }
    let rows: Vec<Vec<Arg>> = existing.into_iter().chain(new).collect();
    let ids: Vec<Vec<Arg>> = rows.iter().map(|r| r[..1].to_vec()).collect();
    vec![
        Part::new(&COLS[..1], ids.clone(), |u| {
            format!(
                "INSERT INTO article_search (article_id) SELECT id FROM {u} WHERE true \
                 ON CONFLICT (article_id) DO NOTHING"
            )
        }),
        Part::new(&COLS[..1], ids, |u| {
            format!(
                "DELETE FROM article_search_fts WHERE rowid IN (SELECT s.doc FROM \
                 article_search s WHERE s.article_id IN (SELECT id FROM {u}))"
            )
        }),
        Part::new(&COLS, rows, |u| {
            format!(
                "INSERT INTO article_search_fts (rowid, headline, body) \
                 SELECT s.doc, u.headline, u.body FROM {u} JOIN article_search s \
                 ON s.article_id = u.id"
            )
        }),
    ]
}

/// Empties the index (rebuild refills it).
pub(crate) async fn clear(tx: &mut Tx) -> Result<(), StoreError> {
    if !tx.is_pg() {
        tx.exec()
            .execute("DELETE FROM article_search_fts", &[])
            .await?;
    }
    tx.exec().execute("DELETE FROM article_search", &[]).await?;
    Ok(())
}

/// Every search document as (article id, "headline | body"), for verify.
pub(crate) async fn dump(tx: &mut Tx) -> Result<Vec<(uuid::Uuid, String)>, StoreError> {
    let sql = if tx.is_pg() {
        "SELECT article_id, headline, body FROM article_search"
    } else {
        "SELECT s.article_id, f.headline, f.body FROM article_search s \
         LEFT JOIN article_search_fts f ON f.rowid = s.doc"
    };
    let rows = tx.exec().fetch_all(sql, &[]).await?;
    rows.iter()
        .map(|row: &Row| {
            let headline: Option<String> = row.get("headline")?;
            let body: Option<String> = row.get("body")?;
            Ok((
                row.get("article_id")?,
                format!(
                    "{} | {}",
                    headline.as_deref().unwrap_or("<missing>"),
                    body.as_deref().unwrap_or("<missing>")
                ),
            ))
        })
        .collect()
}

/// The SQL of a common table expression `hits (id, score)` over the articles matching every
/// folded term (the last one as a prefix, see [`MIN_PREFIX_CHARS`]), lower score first (better).
/// Pushes its argument onto `args`. `terms` must not be empty.
pub(crate) fn hits_cte(exec: &Exec<'_>, args: &mut Vec<Arg>, terms: &[String]) -> String {
    // Terms are folded to [a-z0-9]+, so they need no escaping in either query language; they
    // are still bound as a parameter, never spliced into the SQL.
    let prefix = |i: usize, t: &str| i + 1 == terms.len() && t.len() >= MIN_PREFIX_CHARS;
    if exec.is_pg() {
        let query = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if prefix(i, t) {
                    format!("{t}:*")
                } else {
                    t.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" & ");
        args.push(Arg::from(query));
        let p = format!("${}", args.len());
        format!(
            "hits AS MATERIALIZED (SELECT article_id AS id, \
             CAST(-ts_rank(document, to_tsquery('simple', {p})) AS DOUBLE PRECISION) AS score \
             FROM article_search WHERE document @@ to_tsquery('simple', {p}))"
        )
    } else {
        let query = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if prefix(i, t) {
                    format!("\"{t}\"*")
                } else {
                    format!("\"{t}\"")
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        args.push(Arg::from(query));
        let p = format!("${}", args.len());
        format!(
            "hits AS MATERIALIZED (SELECT s.article_id AS id, \
             bm25(article_search_fts, 2.5, 1.0) AS score \
             FROM article_search_fts JOIN article_search s ON s.doc = article_search_fts.rowid \
             WHERE article_search_fts MATCH {p})"
        )
    }
}
