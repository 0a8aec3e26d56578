//! The text of full-text search: what is indexed and what is asked, folded the same way.
//!
//! The text is folded here in Rust rather than by the database: transliterated to ASCII
//! (`deunicode`: "Vučić" becomes "Vucic"), lower-cased, and every run of other characters
//! becomes one space. Both engines (see `crate::backend::fulltext`) then split it into the
//! same words, so every search is accent-insensitive and finds the same articles on both
//! backends. A query is folded the same way and matches the articles that contain every one
//! of its words (in the headline, standfirst, tags, byline or body), the last word as a prefix
//! when it has at least `crate::backend::fulltext::MIN_PREFIX_CHARS` characters (a search box: "vuc" finds "Vučić").
//!
//! The index is a projection of each article's current revision, written whenever the content
//! changes (live path and rebuild alike) from [`document`].

use galley_domain::ArticleContent;

/// At most this many words of a query are used.
const MAX_QUERY_TERMS: usize = 16;

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
