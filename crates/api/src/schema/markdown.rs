//! Article bodies as HTML: CommonMark rendered with `pulldown-cmark` and sanitised with
//! `ammonia`, the one way a body reaches a reader as HTML (`bodyHtml`, `previewMarkdown`).
//! Pure: no GraphQL, no IO.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The sanitiser every rendered body goes through: ammonia's defaults (no `script` or
/// `style`, no event-handler or `style` attributes, an allow-list of tags and attributes),
/// links and images only with absolute http, https and mailto URLs (relative and
/// protocol-relative ones such as `//evil.example` are dropped: a body is shown on pages whose
/// origin it cannot know), and `rel="noopener noreferrer"` on every link.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"));
    builder
});

/// Renders CommonMark (with tables and strikethrough) to HTML and sanitises it. Raw HTML in
/// the Markdown is passed to the sanitiser like the rest, so `<script>` or `onerror=` never
/// reach a reader.
pub fn body_html(markdown: &str) -> String {
    let options =
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    SANITIZER.clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_scripts_handlers_and_bad_links_are_removed() {
        let html = body_html(
            "Hello *world*\n\n> quoted\n\n[site](https://example.org) [bad](javascript:alert(1))\n\n\
             <script>alert(1)</script><img src=x onerror=\"alert(1)\"><a href=\"#\" onclick=\"x()\">a</a>",
        );
        assert!(html.contains("<em>world</em>"), "{html}");
        assert!(html.contains("<blockquote>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.org" rel="noopener noreferrer">site</a>"#),
            "{html}"
        );
        for bad in ["<script", "alert(1)</", "onerror", "onclick", "javascript:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
