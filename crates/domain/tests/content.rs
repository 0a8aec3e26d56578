//! Content validation: what a revision may hold, and the field each refusal names.

mod support;

use galley_domain::{
    limits, ArticleContent, ArticleId, Category, ContentDraft, DomainError, Language, Slug, Tag,
    UserId,
};
use support::act::*;
use support::*;

#[track_caller]
fn refused_on(draft: ContentDraft, field: &str) {
    match ArticleContent::new(draft) {
        Err(DomainError::Validation { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected VALIDATION_FAILED on {field}, got {other:?}"),
    }
}

#[test]
fn the_seed_article_is_valid_content_kept_as_written() {
    let content = seed_content();
    assert_eq!(
        content.slug.as_ref().map(Slug::as_str),
        Some("nato-denies-serbia-an-army-presence-in-kosovo")
    );
    assert_eq!(
        content.category.as_ref().map(Category::as_str),
        Some("News")
    );
    let tags: Vec<&str> = content.tags.iter().map(Tag::as_str).collect();
    assert_eq!(
        tags,
        [
            "Aleksandar Vučić",
            "army",
            "conflict",
            "ethnic tensions",
            "KFOR",
            "Kosovo",
            "NATO",
            "Serbia"
        ]
    );
    assert_eq!(content.language.as_str(), "en");
    assert_eq!(
        content.body,
        seed().body,
        "the Markdown body is kept byte for byte"
    );
}

#[test]
fn a_slug_is_derived_from_the_headline_transliterating_vucic_to_vucic() {
    assert_eq!(Slug::from_headline("Vučić").unwrap().as_str(), "vucic");
}

#[test]
fn a_derived_slug_is_lowercase_ascii_with_single_hyphens() {
    let content = ArticleContent::new(seed_headed("  Vučić: KFOR said “no” — again!  ")).unwrap();
    assert_eq!(content.slug.unwrap().as_str(), "vucic-kfor-said-no-again");
    assert_eq!(
        Slug::from_headline("Shooting near Štrpac")
            .unwrap()
            .as_str(),
        "shooting-near-strpac"
    );
}

#[test]
fn a_headline_of_punctuation_gives_no_slug() {
    assert_eq!(Slug::from_headline("?!"), None);
    assert_eq!(Slug::from_headline(""), None);
}

#[test]
fn a_derived_slug_from_a_long_headline_is_cut_at_the_slug_limit_without_a_trailing_hyphen() {
    let headline = "Kosovo ".repeat(40);
    let slug = Slug::from_headline(&headline).unwrap();
    assert!(slug.as_str().len() <= limits::SLUG_MAX_CHARS);
    assert!(!slug.as_str().ends_with('-'));
    assert!(slug.as_str().starts_with("kosovo-kosovo"));
}

#[test]
fn a_given_slug_wins_over_the_headline() {
    let content = ArticleContent::new(ContentDraft {
        slug: Some(" kfor-says-no ".to_owned()),
        ..seed()
    })
    .unwrap();
    assert_eq!(content.slug.unwrap().as_str(), "kfor-says-no");
}

#[test]
fn a_blank_slug_is_derived_from_the_headline() {
    let content = ArticleContent::new(ContentDraft {
        slug: Some("   ".to_owned()),
        ..seed_headed("KFOR says no")
    })
    .unwrap();
    assert_eq!(content.slug.unwrap().as_str(), "kfor-says-no");
}

#[test]
fn a_bad_slug_fails_validation_on_slug() {
    for bad in [
        "Not A Slug",
        "UPPER",
        "double--hyphen",
        "-leading",
        "trailing-",
        "vučić",
        "under_score",
        "dot.ted",
    ] {
        refused_on(
            ContentDraft {
                slug: Some(bad.to_owned()),
                ..seed()
            },
            "slug",
        );
        assert!(Slug::parse(bad).is_err(), "{bad}");
    }
    refused_on(
        ContentDraft {
            slug: Some("a".repeat(limits::SLUG_MAX_CHARS + 1)),
            ..seed()
        },
        "slug",
    );
    assert!(Slug::parse(&"a".repeat(limits::SLUG_MAX_CHARS)).is_ok());
}

#[test]
fn a_headline_may_have_300_characters_but_not_301() {
    // Characters, not bytes: "č" is two bytes.
    assert!(ArticleContent::new(seed_headed(&"č".repeat(300))).is_ok());
    refused_on(seed_headed(&"č".repeat(301)), "headline");
}

#[test]
fn a_headline_longer_than_300_characters_is_refused_on_create_and_revise() {
    let long = seed_headed(&"x".repeat(301));
    given_nothing()
        .when(editor(), create(long.clone()))
        .then_invalid_field("headline");
    given_status(galley_domain::Status::Draft)
        .when(editor(), revise(long))
        .then_invalid_field("headline");
}

#[test]
fn a_headline_is_one_line_and_trimmed() {
    refused_on(seed_headed("NATO\nsays no"), "headline");
    let content = ArticleContent::new(seed_headed("  NATO says no  ")).unwrap();
    assert_eq!(content.headline, "NATO says no");
}

#[test]
fn a_standfirst_has_a_limit() {
    refused_on(
        ContentDraft {
            standfirst: "s".repeat(limits::STANDFIRST_MAX_CHARS + 1),
            ..seed()
        },
        "standfirst",
    );
}

#[test]
fn a_body_may_be_one_mebibyte_but_not_one_byte_more() {
    let at_limit = ContentDraft {
        body: "b".repeat(1024 * 1024),
        ..seed()
    };
    assert!(ArticleContent::new(at_limit).is_ok());
    refused_on(
        ContentDraft {
            body: "b".repeat(1024 * 1024 + 1),
            ..seed()
        },
        "body",
    );
}

#[test]
fn a_body_is_measured_in_bytes_of_utf8() {
    // 524,289 two-byte characters are one byte over a mebibyte.
    refused_on(
        ContentDraft {
            body: "č".repeat(512 * 1024 + 1),
            ..seed()
        },
        "body",
    );
}

fn tags(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tag {i}")).collect()
}

#[test]
fn an_article_may_have_50_tags_but_not_51() {
    assert!(ArticleContent::new(ContentDraft {
        tags: tags(50),
        ..seed()
    })
    .is_ok());
    refused_on(
        ContentDraft {
            tags: tags(51),
            ..seed()
        },
        "tags",
    );
}

#[test]
fn the_tag_limit_counts_tags_after_de_duplication() {
    let mut many = tags(50);
    many.push("TAG 0".to_owned());
    let content = ArticleContent::new(ContentDraft {
        tags: many,
        ..seed()
    })
    .unwrap();
    assert_eq!(content.tags.len(), 50);
}

#[test]
fn tags_are_de_duplicated_case_insensitively_keeping_order_and_first_spelling() {
    let content = ArticleContent::new(ContentDraft {
        tags: ["Kosovo", "NATO", "kosovo", "Vučić", "nato", "VUČIĆ", "KFOR"]
            .map(str::to_owned)
            .to_vec(),
        ..seed()
    })
    .unwrap();
    let tags: Vec<&str> = content.tags.iter().map(Tag::as_str).collect();
    assert_eq!(tags, ["Kosovo", "NATO", "Vučić", "KFOR"]);
}

#[test]
fn a_tag_has_its_whitespace_collapsed() {
    assert_eq!(
        Tag::parse("  ethnic \n  tensions ").unwrap().as_str(),
        "ethnic tensions"
    );
}

#[test]
fn an_empty_or_overlong_tag_fails_validation_on_tags() {
    for bad in ["".to_owned(), "   ".to_owned(), "t".repeat(65)] {
        refused_on(
            ContentDraft {
                tags: vec![bad],
                ..seed()
            },
            "tags",
        );
    }
}

#[test]
fn a_blank_category_is_no_category_and_a_long_one_is_refused() {
    let content = ArticleContent::new(ContentDraft {
        category: Some("  ".to_owned()),
        ..seed()
    })
    .unwrap();
    assert_eq!(content.category, None);
    refused_on(
        ContentDraft {
            category: Some("c".repeat(65)),
            ..seed()
        },
        "category",
    );
}

#[test]
fn a_byline_has_at_most_20_names_none_of_them_empty() {
    refused_on(
        ContentDraft {
            byline: (0..21).map(|i| format!("Reporter {i}")).collect(),
            ..seed()
        },
        "byline",
    );
    refused_on(
        ContentDraft {
            byline: vec!["Tristan Vanheuckelom".to_owned(), " ".to_owned()],
            ..seed()
        },
        "byline",
    );
}

#[test]
fn the_language_defaults_to_english() {
    let content = ArticleContent::new(ContentDraft {
        language: None,
        ..seed()
    })
    .unwrap();
    assert_eq!(content.language, Language::default());
    assert_eq!(content.language.as_str(), "en");
}

#[test]
fn a_language_is_a_bcp47_tag() {
    for good in ["sr-Latn", "pt-BR", "de", "sr-Cyrl-RS"] {
        assert!(Language::parse(good).is_ok(), "{good}");
    }
    for bad in ["not a language", "english!", "x", "123"] {
        refused_on(
            ContentDraft {
                language: Some(bad.to_owned()),
                ..seed()
            },
            "language",
        );
    }
}

#[test]
fn a_validation_message_names_the_field_and_the_limit() {
    let e = ArticleContent::new(seed_headed(&"x".repeat(301))).unwrap_err();
    assert_eq!(e.code(), "VALIDATION_FAILED");
    assert_eq!(e.to_string(), "headline must be at most 300 characters");
}

#[test]
fn ids_parse_from_uuids_and_name_their_field_when_they_do_not() {
    let id: ArticleId = ARTICLE.to_string().parse().unwrap();
    assert_eq!(id, ARTICLE);
    match "nope".parse::<UserId>() {
        Err(DomainError::Validation { field, .. }) => assert_eq!(field, "UserId"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn validated_values_cannot_be_smuggled_in_through_serde() {
    assert!(serde_json::from_str::<Slug>("\"Not A Slug\"").is_err());
    assert!(serde_json::from_str::<Tag>("\"  \"").is_err());
    assert!(serde_json::from_str::<Language>("\"!!\"").is_err());
    assert_eq!(
        serde_json::from_str::<Slug>("\"kosovo\"").unwrap().as_str(),
        "kosovo"
    );
}

#[test]
fn content_survives_a_json_round_trip() {
    let content = seed_content();
    let json = serde_json::to_value(&content).unwrap();
    assert_eq!(
        json["slug"],
        "nato-denies-serbia-an-army-presence-in-kosovo"
    );
    assert_eq!(json["tags"][0], "Aleksandar Vučić");
    let back: ArticleContent = serde_json::from_value(json).unwrap();
    assert_eq!(back, content);
}

fn command(actor: galley_domain::Actor, action: galley_domain::Action) -> galley_domain::Command {
    galley_domain::Command {
        article_id: ArticleId::from_uuid(uuid::Uuid::nil()),
        expected_version: galley_domain::Version::NONE,
        actor,
        now: now(),
        action,
    }
}

#[test]
fn precheck_refuses_roles_and_oversized_drafts_without_an_article() {
    let huge = ContentDraft {
        tags: tags(100_000),
        ..seed()
    };
    // The role comes first: a viewer is refused for the role, whatever the draft holds.
    match galley_domain::precheck(&command(viewer(), create(huge.clone()))) {
        Err(DomainError::Forbidden { .. }) => {}
        other => panic!("expected FORBIDDEN, got {other:?}"),
    }
    for action in [create(huge.clone()), revise(huge)] {
        match galley_domain::precheck(&command(editor(), action)) {
            Err(DomainError::Validation { field, message }) => {
                assert_eq!(field, "tags");
                assert!(message.contains("at most 50 tags"), "{message}");
            }
            other => panic!("expected VALIDATION_FAILED on tags, got {other:?}"),
        }
    }
    // Within the bound a draft passes the precheck; `decide` makes the rest of the checks.
    let dups: Vec<String> = (0..limits::TAGS_SENT_MAX)
        .map(|i| format!("t{}", i % 3))
        .collect();
    let draft = ContentDraft {
        tags: dups,
        ..seed()
    };
    assert!(galley_domain::precheck(&command(editor(), create(draft.clone()))).is_ok());
    assert_eq!(ArticleContent::new(draft).unwrap().tags.len(), 3);
    let over = ContentDraft {
        tags: tags(limits::TAGS_SENT_MAX + 1),
        ..seed()
    };
    assert!(galley_domain::precheck(&command(editor(), create(over))).is_err());
}
