//! Test data shared by every suite of the workspace (the `testing` feature, enabled only from
//! dev-dependencies): the seed article of `fixtures/seed-article.md` and its one parser.
//!
//! The domain's scenarios, the storage contract suite and the end-to-end harness all write the
//! same article, so they all read it from here: [`seed_draft`] gives it as a [`ContentDraft`],
//! [`seed_content`] validated. The end-to-end harness turns the draft into a GraphQL
//! `ContentInput`.

use crate::{ArticleContent, ContentDraft};

/// The seed article as the newsroom wrote it: front matter, then the Markdown body. A real news
/// article with non-ASCII names, a block quote, a link and many paragraphs.
pub const SEED_ARTICLE: &str = include_str!("../../../fixtures/seed-article.md");

/// The seed article's front matter and body as a draft.
pub fn seed_draft() -> ContentDraft {
    parse_article(SEED_ARTICLE)
}

/// The seed article, validated.
pub fn seed_content() -> ArticleContent {
    ArticleContent::new(seed_draft()).expect("the seed article is valid content")
}

/// Parses a Markdown file with front matter into a draft.
///
/// The file opens with `---`, then `key: value` lines, then `---` and the body (trimmed). A value
/// is a JSON string (`"…"`), a one-line JSON list of strings (`[…]`) or a bare word. The content
/// fields are `headline`, `standfirst`, `slug`, `category`, `tags`, `byline` and `language`;
/// other keys (the fixture's `published` date) are not content and are skipped. Panics, naming
/// the line, on anything else: it reads fixtures, not input.
pub fn parse_article(raw: &str) -> ContentDraft {
    let rest = raw
        .strip_prefix("---\n")
        .expect("the article opens with front matter (`---`)");
    let (front, body) = rest
        .split_once("\n---\n")
        .expect("the front matter is closed (`---`)");
    let mut draft = ContentDraft {
        body: body.trim().to_owned(),
        ..ContentDraft::default()
    };
    for line in front.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("a `key: value` line, not {line:?}"));
        let value = value.trim();
        let text = || -> String {
            if value.starts_with('"') {
                serde_json::from_str(value)
                    .unwrap_or_else(|e| panic!("a JSON string in {line:?}: {e}"))
            } else {
                value.to_owned()
            }
        };
        let list = || -> Vec<String> {
            serde_json::from_str(value)
                .unwrap_or_else(|e| panic!("a JSON list of strings in {line:?}: {e}"))
        };
        match key.trim() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_values_are_json_strings_lists_or_bare_words() {
        let draft = parse_article(
            "---\nheadline: \"A: \\\"quoted\\\" title\"\nslug: bare-word\n\ntags: [\"a, b\", \"c\"]\npublished: 2023-01-10\n---\n\n Body.\n\n",
        );
        assert_eq!(draft.headline, "A: \"quoted\" title");
        assert_eq!(draft.slug.as_deref(), Some("bare-word"));
        assert_eq!(draft.tags, ["a, b", "c"]);
        assert_eq!(draft.body, "Body.");
        assert_eq!(draft.standfirst, "");
        assert_eq!(draft.language, None);
    }

    #[test]
    #[should_panic(expected = "opens with front matter")]
    fn a_file_without_front_matter_is_refused() {
        parse_article("Just a body.\n");
    }
}
