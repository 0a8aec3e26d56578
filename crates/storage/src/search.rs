//! Full-text search over articles: PostgreSQL `tsvector` with a GIN index, SQLite FTS5.
//!
//! Both backends index the same text, folded here in Rust rather than by the database: the
//! text is transliterated to ASCII (`deunicode`: "Vučić" becomes "Vucic"), lower-cased, and
//! every run of other characters becomes one space. What is left is ASCII words, which
//! PostgreSQL's parser with the `simple` configuration (no stemming, no stop words) and FTS5's
//! `unicode61` tokenizer split identically, so the same data gives the same hits on both
//! backends and every search is accent-insensitive. A query is folded the same way and matches
//! the articles that contain every one of its words (in the headline, standfirst, tags, byline
//! or body), the last word as a prefix when it has at least [`MIN_PREFIX_CHARS`] characters
//! (a search box: "vuc" finds "Vučić"; PostgreSQL `vuc:*`, FTS5 `"vuc"*`, which both match
//! every indexed word that starts with it, so the hits stay the same). Ranking: `ts_rank` with the headline at weight A and the rest at weight B on
//! PostgreSQL, `bm25` with the headline weighted 2.5 on SQLite; the scores differ between
//! backends, the hits do not.
//!
//! The index is a projection of each article's current revision, written by
//! [`parts`] whenever the content changes (live path and rebuild alike).

use galley_domain::ArticleContent;

use crate::db::{Arg, Col, Exec, Part, Row, Tx};
use crate::error::StoreError;

/// At most this many words of a query are used.
const MAX_QUERY_TERMS: usize = 16;

/// The last word of a query matches as a prefix from this length on (a one-letter prefix
/// would match a large part of the vocabulary).
pub(crate) const MIN_PREFIX_CHARS: usize = 2;

/// Folds text for indexing and querying: ASCII transliteration, lower case, words separated
/// by single spaces.
pub(crate) fn fold(text: &str) -> String {
    let ascii = deunicode::deunicode(text);
    let mut out = String::with_capacity(ascii.len());
    for word in ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
    }
    out
}

/// The distinct words of a query, folded, in order; empty when nothing searchable is left.
pub(crate) fn query_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in fold(text).split(' ').filter(|w| !w.is_empty()) {
        if !terms.iter().any(|t| t == word) {
            terms.push(word.to_owned());
        }
        if terms.len() == MAX_QUERY_TERMS {
            break;
        }
    }
    terms
}

/// The folded text of the non-headline fields: standfirst, tags, byline and body.
fn folded_body(c: &ArticleContent) -> String {
    let mut text = String::with_capacity(c.standfirst.len() + c.body.len() + 64);
    text.push_str(&c.standfirst);
    for tag in &c.tags {
        text.push(' ');
        text.push_str(tag.as_str());
    }
    for author in &c.byline {
        text.push(' ');
        text.push_str(author);
    }
    text.push(' ');
    text.push_str(&c.body);
    fold(&text)
}

/// The folded (headline, standfirst + tags + byline + body) of an article's current revision.
pub(crate) fn document(content: &ArticleContent) -> (String, String) {
    (fold(&content.headline), folded_body(content))
}

/// The statements that write the search documents of a set of articles: rows of (article id,
/// headline, body) from [`document`], those of articles that had rows before the set
/// (`existing`, whose document exists) and of new ones. On PostgreSQL an `UPDATE` and an
/// `INSERT`, not one upsert: `INSERT … ON CONFLICT DO UPDATE` computes the generated
/// `document` (the costly `to_tsvector`) for the proposed row and again for the updated one.
/// On SQLite three statements, in this order, whose FTS5 rows are addressed by the `doc`
/// number `article_search` gives each article.
pub(crate) fn parts(pg: bool, existing: Vec<Vec<Arg>>, new: Vec<Vec<Arg>>) -> Vec<Part> {
    const COLS: [Col; 3] = [("id", "uuid"), ("headline", "text"), ("body", "text")];
    if pg {
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
/// term (the last one as a prefix, see [`MIN_PREFIX_CHARS`]), lower score first (better).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_accents_case_and_punctuation() {
        assert_eq!(
            fold("Vučić told *Pink*: “Štrpac!”"),
            "vucic told pink strpac"
        );
        assert_eq!(
            fold("3,800-strong, Kosovo-Metohija"),
            "3 800 strong kosovo metohija"
        );
        assert_eq!(fold("  "), "");
    }

    #[test]
    fn query_terms_are_folded_distinct_and_capped() {
        assert_eq!(query_terms("VUCIC vučić Kosovo"), ["vucic", "kosovo"]);
        assert!(query_terms("%%% ***").is_empty());
        let long = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(query_terms(&long).len(), MAX_QUERY_TERMS);
    }
}
