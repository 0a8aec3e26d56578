//! The difference between two revisions of an article: which content fields changed, and a
//! word-level diff of the body, computed with `similar`.
//!
//! The body diff is word-level (tokens are words and the runs of whitespace between them,
//! `similar`'s `diff_words`), grouped into hunks with a few tokens of context; each hunk
//! carries its changes and an inline rendering in the style of `git diff --word-diff`
//! (`[-removed-]{+added+}`). The unified text form is the classic line-based unified diff of
//! the two bodies, which every patch tool reads. This module is pure: no GraphQL, no IO.

use galley_domain::ArticleContent;
use similar::{Algorithm, ChangeTag, TextDiff};

/// Tokens of unchanged context kept around each word-level hunk (about three words).
const WORD_CONTEXT: usize = 6;
/// Lines of context in the unified text form.
const LINE_CONTEXT: usize = 3;

/// A content field whose value differs between the two revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's name as the API spells it (`headline`, `standfirst`, `slug`, `category`,
    /// `byline`, `language`).
    pub field: &'static str,
    /// The value in the older revision (lists joined with ", ").
    pub before: Option<String>,
    /// The value in the newer revision.
    pub after: Option<String>,
}

/// What happened to a run of body tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// In both revisions.
    Equal,
    /// Only in the newer revision.
    Insert,
    /// Only in the older revision.
    Delete,
}

/// A run of consecutive body tokens with the same fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// What happened to it.
    pub kind: ChangeKind,
    /// The text.
    pub text: String,
}

/// A group of nearby body changes with their context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// Index of the hunk's first token in the older body (tokens are words and whitespace
    /// runs, from 0).
    pub old_start: usize,
    /// Tokens of the older body the hunk covers.
    pub old_len: usize,
    /// Index of the hunk's first token in the newer body.
    pub new_start: usize,
    /// Tokens of the newer body the hunk covers.
    pub new_len: usize,
    /// The hunk's text, run by run.
    pub segments: Vec<Segment>,
    /// The hunk as one line of `git diff --word-diff` text: `[-removed-]{+added+}`.
    pub inline: String,
}

/// The difference between two revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionDiff {
    /// Scalar fields that changed, in a fixed order.
    pub fields: Vec<FieldChange>,
    /// Tags in the newer revision and not the older, in the newer order.
    pub tags_added: Vec<String>,
    /// Tags in the older revision and not the newer, in the older order.
    pub tags_removed: Vec<String>,
    /// Whether the body changed at all.
    pub body_changed: bool,
    /// Words (not whitespace) only in the newer body.
    pub words_added: usize,
    /// Words only in the older body.
    pub words_removed: usize,
    /// The word-level hunks.
    pub hunks: Vec<Hunk>,
    /// The line-based unified diff of the bodies (empty when the bodies are equal).
    pub unified: String,
}

fn change(
    field: &'static str,
    before: Option<String>,
    after: Option<String>,
) -> Option<FieldChange> {
    (before != after).then_some(FieldChange {
        field,
        before,
        after,
    })
}

/// Compares revision `old` (named `old_name` in the unified header) with `new`.
pub fn diff_revisions(
    old: &ArticleContent,
    new: &ArticleContent,
    old_name: &str,
    new_name: &str,
) -> RevisionDiff {
    let text = |s: &str| Some(s.to_owned());
    let fields = [
        change("headline", text(&old.headline), text(&new.headline)),
        change("standfirst", text(&old.standfirst), text(&new.standfirst)),
        change(
            "slug",
            old.slug.as_ref().map(|s| s.as_str().to_owned()),
            new.slug.as_ref().map(|s| s.as_str().to_owned()),
        ),
        change(
            "category",
            old.category.as_ref().map(|s| s.as_str().to_owned()),
            new.category.as_ref().map(|s| s.as_str().to_owned()),
        ),
        change(
            "byline",
            text(&old.byline.join(", ")),
            text(&new.byline.join(", ")),
        ),
        change(
            "language",
            text(old.language.as_str()),
            text(new.language.as_str()),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let old_tags: Vec<&str> = old.tags.iter().map(|t| t.as_str()).collect();
    let new_tags: Vec<&str> = new.tags.iter().map(|t| t.as_str()).collect();
    let tags_added = new_tags
        .iter()
        .filter(|t| !old_tags.contains(t))
        .map(|t| (*t).to_owned())
        .collect();
    let tags_removed = old_tags
        .iter()
        .filter(|t| !new_tags.contains(t))
        .map(|t| (*t).to_owned())
        .collect();

    let (hunks, words_added, words_removed) = word_hunks(&old.body, &new.body);
    let unified = if old.body == new.body {
        String::new()
    } else {
        // Bodies are stored trimmed; ending both with a newline keeps "\ No newline at end of
        // file" markers out of the text form.
        let (old_body, new_body) = (format!("{}\n", old.body), format!("{}\n", new.body));
        TextDiff::from_lines(&old_body, &new_body)
            .unified_diff()
            .context_radius(LINE_CONTEXT)
            .header(old_name, new_name)
            .to_string()
    };
    RevisionDiff {
        fields,
        tags_added,
        tags_removed,
        body_changed: old.body != new.body,
        words_added,
        words_removed,
        hunks,
        unified,
    }
}

/// The word-level hunks of a body diff, and the words added and removed.
fn word_hunks(old: &str, new: &str) -> (Vec<Hunk>, usize, usize) {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .diff_words(old, new);
    let (mut added, mut removed) = (0, 0);
    let mut hunks = Vec::new();
    for group in diff.grouped_ops(WORD_CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (old_start, new_start) = (first.old_range().start, first.new_range().start);
        let old_len = last.old_range().end - old_start;
        let new_len = last.new_range().end - new_start;
        let mut segments: Vec<Segment> = Vec::new();
        for op in &group {
            for c in diff.iter_changes(op) {
                let kind = match c.tag() {
                    ChangeTag::Equal => ChangeKind::Equal,
                    ChangeTag::Insert => ChangeKind::Insert,
                    ChangeTag::Delete => ChangeKind::Delete,
                };
                let value = c.value();
                let is_word = !value.trim().is_empty();
                match kind {
                    ChangeKind::Insert if is_word => added += 1,
                    ChangeKind::Delete if is_word => removed += 1,
                    _ => {}
                }
                match segments.last_mut() {
                    Some(s) if s.kind == kind => s.text.push_str(value),
                    _ => segments.push(Segment {
                        kind,
                        text: value.to_owned(),
                    }),
                }
            }
        }
        let inline = segments
            .iter()
            .map(|s| match s.kind {
                ChangeKind::Equal => s.text.clone(),
                ChangeKind::Insert => format!("{{+{}+}}", s.text),
                ChangeKind::Delete => format!("[-{}-]", s.text),
            })
            .collect();
        hunks.push(Hunk {
            old_start,
            old_len,
            new_start,
            new_len,
            segments,
            inline,
        });
    }
    (hunks, added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use galley_domain::ContentDraft;

    fn content(headline: &str, body: &str, tags: &[&str]) -> ArticleContent {
        ArticleContent::new(ContentDraft {
            headline: headline.to_owned(),
            body: body.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            category: Some("News".to_owned()),
            ..ContentDraft::default()
        })
        .unwrap()
    }

    #[test]
    fn changed_fields_and_tags_are_listed() {
        let old = content("Storm hits Belgrade", "Body.", &["Weather", "Serbia"]);
        let new = content("Storm hits Novi Sad", "Body.", &["Serbia", "Floods"]);
        let d = diff_revisions(&old, &new, "revision 1", "revision 2");
        let names: Vec<_> = d.fields.iter().map(|f| f.field).collect();
        assert_eq!(names, ["headline", "slug"]);
        assert_eq!(d.fields[0].before.as_deref(), Some("Storm hits Belgrade"));
        assert_eq!(d.fields[1].after.as_deref(), Some("storm-hits-novi-sad"));
        assert_eq!(d.tags_added, ["Floods"]);
        assert_eq!(d.tags_removed, ["Weather"]);
        assert!(!d.body_changed);
        assert!(d.hunks.is_empty() && d.unified.is_empty());
    }

    #[test]
    fn the_body_diff_is_word_level_with_hunks_and_a_unified_form() {
        let old = content(
            "H",
            "The NATO-led force rebuffed the request.\n\nSecond paragraph stays.",
            &[],
        );
        let new = content(
            "H",
            "The NATO-led force firmly rejected the request.\n\nSecond paragraph stays.",
            &[],
        );
        let d = diff_revisions(&old, &new, "revision 1", "revision 2");
        assert!(d.body_changed);
        assert_eq!((d.words_added, d.words_removed), (2, 1));
        assert_eq!(d.hunks.len(), 1);
        let h = &d.hunks[0];
        assert!(
            h.inline.contains("[-rebuffed-]{+firmly rejected+}"),
            "{}",
            h.inline
        );
        assert!(h
            .segments
            .iter()
            .any(|s| s.kind == ChangeKind::Insert && s.text == "firmly rejected"));
        assert!(d.unified.starts_with("--- revision 1\n+++ revision 2\n"));
        assert!(!d.unified.contains("No newline"), "{}", d.unified);
        assert!(d
            .unified
            .contains("-The NATO-led force rebuffed the request."));
        assert!(d
            .unified
            .contains("+The NATO-led force firmly rejected the request."));
    }
}
