//! Identifiers and validated value types.
//!
//! Every value here is constructed through a function that validates it, so a value that
//! exists is a value that is valid. Errors name the field they came from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
pub use crate::kinds::{Role, Version};

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an id that was generated outside the domain (the domain makes no ids).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| DomainError::validation(stringify!($name), "is not a valid UUID"))
            }
        }
    };
}

uuid_id!(
    /// The id of an article, which is also the id of its event stream (UUIDv7).
    ArticleId
);
uuid_id!(
    /// The id of a user. The nil UUID is reserved for the system actor (the scheduler).
    UserId
);
uuid_id!(
    /// The id of a review comment.
    CommentId
);

impl UserId {
    /// The actor of work the service does on its own, such as publishing scheduled articles.
    pub const SYSTEM: UserId = UserId(Uuid::nil());

    /// Whether this is the system actor.
    pub fn is_system(&self) -> bool {
        *self == Self::SYSTEM
    }
}

/// The number of a revision of an article's content, starting at 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RevisionNumber(pub u32);

impl RevisionNumber {
    /// The first revision, written when the article is created.
    pub const FIRST: RevisionNumber = RevisionNumber(1);

    /// The revision after this one.
    pub fn next(self) -> RevisionNumber {
        RevisionNumber(self.0 + 1)
    }
}

impl fmt::Display for RevisionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Limits a newsroom sets on its content. They are part of the domain so that every entry
/// point (GraphQL, import, tests) refuses the same things.
pub mod limits {
    /// Longest headline, in characters.
    pub const HEADLINE_MAX_CHARS: usize = 300;
    /// Longest standfirst, in characters.
    pub const STANDFIRST_MAX_CHARS: usize = 1_000;
    /// Largest body, in bytes of UTF-8.
    pub const BODY_MAX_BYTES: usize = 1024 * 1024;
    /// Longest slug, in characters.
    pub const SLUG_MAX_CHARS: usize = 120;
    /// Most tags on one article (counted after case-insensitive de-duplication).
    pub const TAGS_MAX: usize = 50;
    /// Most tags a draft may send, duplicates included.
    pub const TAGS_SENT_MAX: usize = 4 * TAGS_MAX;
    /// Longest tag, in characters.
    pub const TAG_MAX_CHARS: usize = 64;
    /// Longest category, in characters.
    pub const CATEGORY_MAX_CHARS: usize = 64;
    /// Most names in a byline.
    pub const BYLINE_MAX: usize = 20;
    /// Longest name in a byline, in characters.
    pub const BYLINE_NAME_MAX_CHARS: usize = 120;
    /// Longest reason (changes requested, unpublish, embargo lift), in characters.
    pub const REASON_MAX_CHARS: usize = 2_000;
    /// Longest review comment, in characters.
    pub const COMMENT_MAX_CHARS: usize = 10_000;
    /// Longest correction note, in characters.
    pub const CORRECTION_MAX_CHARS: usize = 2_000;
}

/// The URL name of an article: ASCII, lowercase letters and digits separated by single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Parses a slug exactly as given; it must already be in canonical form.
    pub fn parse(s: &str) -> Result<Slug, DomainError> {
        let valid = !s.is_empty()
            && s.chars().count() <= limits::SLUG_MAX_CHARS
            && s.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        if valid {
            Ok(Slug(s.to_owned()))
        } else {
            Err(DomainError::validation(
                "slug",
                format!(
                    "must be 1 to {} lowercase ASCII letters or digits separated by single hyphens",
                    limits::SLUG_MAX_CHARS
                ),
            ))
        }
    }

    /// Derives a slug from a headline, transliterating non-ASCII letters ("Vučić" → "vucic").
    /// Returns `None` when nothing usable remains (an empty or all-punctuation headline).
    pub fn from_headline(headline: &str) -> Option<Slug> {
        let mut slug = slug::slugify(headline);
        if slug.chars().count() > limits::SLUG_MAX_CHARS {
            slug = slug.chars().take(limits::SLUG_MAX_CHARS).collect();
            slug = slug.trim_end_matches('-').to_owned();
        }
        Slug::parse(&slug).ok()
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Slug::parse(&value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn single_line(field: &str, raw: &str, max_chars: usize) -> Result<String, DomainError> {
    let value = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() {
        return Err(DomainError::validation(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::validation(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(value)
}

/// A subject tag, as the newsroom writes it ("Aleksandar Vučić", "KFOR"). Whitespace is
/// collapsed; case is kept for display and ignored for de-duplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Validates a tag.
    pub fn parse(s: &str) -> Result<Tag, DomainError> {
        single_line("tags", s, limits::TAG_MAX_CHARS).map(Tag)
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Tag {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Tag::parse(&value)
    }
}

impl From<Tag> for String {
    fn from(value: Tag) -> Self {
        value.0
    }
}

/// The desk or section an article belongs to ("News", "Culture").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Validates a category.
    pub fn parse(s: &str) -> Result<Category, DomainError> {
        single_line("category", s, limits::CATEGORY_MAX_CHARS).map(Category)
    }

    /// The category as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Category::parse(&value)
    }
}

impl From<Category> for String {
    fn from(value: Category) -> Self {
        value.0
    }
}

/// A BCP 47 language tag, kept in its canonical form ("en", "sr-Latn", "pt-BR").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Validates and canonicalises a BCP 47 tag.
    pub fn parse(s: &str) -> Result<Language, DomainError> {
        let tag = language_tags::LanguageTag::parse(s.trim())
            .map_err(|e| DomainError::validation("language", format!("is not BCP 47: {e}")))?;
        let tag = tag
            .canonicalize()
            .map_err(|e| DomainError::validation("language", format!("is not BCP 47: {e}")))?;
        Ok(Language(tag.to_string()))
    }

    /// The language as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Language {
    fn default() -> Self {
        Language("en".to_owned())
    }
}

impl TryFrom<String> for Language {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Language::parse(&value)
    }
}

impl From<Language> for String {
    fn from(value: Language) -> Self {
        value.0
    }
}

/// Content as a client sends it: plain strings, not yet validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDraft {
    /// The headline; may be empty while drafting, required to submit.
    pub headline: String,
    /// The summary under the headline.
    pub standfirst: String,
    /// The body, CommonMark Markdown.
    pub body: String,
    /// The slug; derived from the headline when absent.
    pub slug: Option<String>,
    /// The desk or section.
    pub category: Option<String>,
    /// Subject tags, in the order given.
    pub tags: Vec<String>,
    /// Display names of the authors.
    pub byline: Vec<String>,
    /// BCP 47 language; "en" when absent.
    pub language: Option<String>,
}

/// The size limits of a draft that can be checked in constant time, before any work that grows
/// with the input: the count of tags and byline names and the body's bytes. Everything after
/// it is linear in the (bounded) input.
/// [`ArticleContent::new`] starts with it; [`crate::precheck`] runs it before a command
/// reaches the shared writer.
pub(crate) fn check_sizes(draft: &ContentDraft) -> Result<(), DomainError> {
    // The limit counts tags after de-duplication; what may be sent is bounded too, so that
    // nothing is parsed of a list that can never fit.
    if draft.tags.len() > limits::TAGS_SENT_MAX {
        return Err(DomainError::validation(
            "tags",
            format!(
                "must be at most {} tags ({} as sent, before duplicates are removed)",
                limits::TAGS_MAX,
                limits::TAGS_SENT_MAX
            ),
        ));
    }
    if draft.byline.len() > limits::BYLINE_MAX {
        return Err(DomainError::validation(
            "byline",
            format!("must name at most {} authors", limits::BYLINE_MAX),
        ));
    }
    if draft.body.len() > limits::BODY_MAX_BYTES {
        return Err(DomainError::validation(
            "body",
            format!("must be at most {} bytes", limits::BODY_MAX_BYTES),
        ));
    }
    Ok(())
}

/// The validated content of one revision of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleContent {
    /// The headline (may be empty in a draft).
    pub headline: String,
    /// The summary under the headline.
    pub standfirst: String,
    /// The body, CommonMark Markdown.
    pub body: String,
    /// The slug; `None` only while the headline gives none and none was chosen.
    pub slug: Option<Slug>,
    /// The desk or section.
    pub category: Option<Category>,
    /// Subject tags: ordered, de-duplicated case-insensitively, first spelling kept.
    pub tags: Vec<Tag>,
    /// Display names of the authors.
    pub byline: Vec<String>,
    /// BCP 47 language.
    pub language: Language,
}

impl ArticleContent {
    /// Validates a draft. Reports the first invalid field as `VALIDATION_FAILED`.
    pub fn new(draft: ContentDraft) -> Result<ArticleContent, DomainError> {
        check_sizes(&draft)?;
        let headline = draft.headline.trim().to_owned();
        if headline.chars().count() > limits::HEADLINE_MAX_CHARS {
            return Err(DomainError::validation(
                "headline",
                format!("must be at most {} characters", limits::HEADLINE_MAX_CHARS),
            ));
        }
        if headline.contains(['\n', '\r']) {
            return Err(DomainError::validation("headline", "must be a single line"));
        }
        let standfirst = draft.standfirst.trim().to_owned();
        if standfirst.chars().count() > limits::STANDFIRST_MAX_CHARS {
            return Err(DomainError::validation(
                "standfirst",
                format!(
                    "must be at most {} characters",
                    limits::STANDFIRST_MAX_CHARS
                ),
            ));
        }
        let body = draft.body;
        if body.len() > limits::BODY_MAX_BYTES {
            return Err(DomainError::validation(
                "body",
                format!("must be at most {} bytes", limits::BODY_MAX_BYTES),
            ));
        }
        let slug = match draft.slug.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(Slug::parse(s)?),
            _ => Slug::from_headline(&headline),
        };
        let category = match draft.category.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => Some(Category::parse(c)?),
            _ => None,
        };
        // The count was checked first, so this is linear in at most TAGS_SENT_MAX tags.
        let mut seen = std::collections::HashSet::with_capacity(draft.tags.len());
        let mut tags: Vec<Tag> = Vec::with_capacity(draft.tags.len());
        for raw in &draft.tags {
            let tag = Tag::parse(raw)?;
            if seen.insert(tag.key()) {
                tags.push(tag);
            }
        }
        if tags.len() > limits::TAGS_MAX {
            return Err(DomainError::validation(
                "tags",
                format!("must be at most {} tags", limits::TAGS_MAX),
            ));
        }
        let byline = draft
            .byline
            .iter()
            .map(|name| single_line("byline", name, limits::BYLINE_NAME_MAX_CHARS))
            .collect::<Result<Vec<_>, _>>()?;
        let language = match draft.language.as_deref().map(str::trim) {
            Some(l) if !l.is_empty() => Language::parse(l)?,
            _ => Language::default(),
        };
        Ok(ArticleContent {
            headline,
            standfirst,
            body,
            slug,
            category,
            tags,
            byline,
            language,
        })
    }

    /// What a revision must have before it can be submitted: headline, body and slug.
    pub fn check_submittable(&self) -> Result<(), DomainError> {
        if self.headline.is_empty() {
            return Err(DomainError::validation("headline", "is required to submit"));
        }
        if self.body.trim().is_empty() {
            return Err(DomainError::validation("body", "is required to submit"));
        }
        if self.slug.is_none() {
            return Err(DomainError::validation("slug", "is required to submit"));
        }
        Ok(())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError::validation(
                    "role",
                    format!("unknown role {s:?}; expected one of VIEWER, EDITOR, REVIEWER, PUBLISHER, ADMIN"),
                )
            })
    }
}

/// Who issues a command: a user and the roles they hold, or the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting user ([`UserId::SYSTEM`] for the scheduler).
    pub user: UserId,
    /// The roles the user holds at the time of the command.
    pub roles: Vec<Role>,
}

impl Actor {
    /// A user holding the given roles.
    pub fn user(user: UserId, roles: impl IntoIterator<Item = Role>) -> Actor {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        Actor { user, roles }
    }

    /// The system actor, used by the scheduler. It holds no role; only commands meant for it
    /// accept it.
    pub fn system() -> Actor {
        Actor {
            user: UserId::SYSTEM,
            roles: Vec::new(),
        }
    }

    /// Whether the actor holds `role` (ADMIN holds every role).
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}
