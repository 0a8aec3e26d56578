//! Articles as GraphQL `ContentInput`s. The seed article comes from the domain's one parser of
//! `fixtures/seed-article.md` (`galley_domain::testing`, the `testing` feature), so every suite
//! writes the same article.

use galley_domain::ContentDraft;
use serde_json::{json, Value};

/// The seed article of `fixtures/seed-article.md` as a `ContentInput`: its front matter
/// (headline, standfirst, slug, category, tags, byline, language; not the `published` date)
/// and its body.
pub fn seed_article() -> Value {
    content_input(&galley_domain::testing::seed_draft())
}

/// Parses a Markdown file with front matter into a `ContentInput`, with the domain's parser
/// (`galley_domain::testing::parse_article`).
pub fn parse_article(raw: &str) -> Value {
    content_input(&galley_domain::testing::parse_article(raw))
}

/// A draft as a `ContentInput` (absent optional fields are `null`).
pub fn content_input(draft: &ContentDraft) -> Value {
    json!({
        "headline": draft.headline,
        "standfirst": draft.standfirst,
        "body": draft.body,
        "slug": draft.slug,
        "category": draft.category,
        "tags": draft.tags,
        "byline": draft.byline,
        "language": draft.language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_article_keeps_its_front_matter_and_body() {
        let seed = seed_article();
        assert_eq!(
            seed["headline"],
            "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO"
        );
        assert_eq!(
            seed["slug"],
            "nato-denies-serbia-an-army-presence-in-kosovo"
        );
        assert_eq!(seed["tags"][0], "Aleksandar Vučić");
        assert_eq!(seed["tags"].as_array().unwrap().len(), 8);
        assert_eq!(seed["byline"], json!(["Tristan Vanheuckelom"]));
        assert_eq!(seed["language"], "en");
        assert!(seed.get("published").is_none());
        let body = seed["body"].as_str().unwrap();
        assert!(body.starts_with("The NATO-led Kosovo Force (KFOR)"));
        assert!(body.contains("\n\n> We all knew"));
        assert!(body.contains("Near the town of Štrpac"));
        assert!(body.ends_with("suspicion of attempted manslaughter."));
    }
}
