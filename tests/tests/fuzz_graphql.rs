//! A fuzz target for the GraphQL layer: generated documents and variables, sent through the
//! real router in process (every layer a request passes: request id, limits, authentication,
//! validation, the executor and the store, on an SQLite file), as a viewer, an editor, an
//! admin or nobody. Every answer must come within a bound, be no 5xx, and carry no
//! INTERNAL_SERVER_ERROR: whatever a client sends is refused with a code of its own or
//! answered.
//!
//! Documents are built from the names `schema.graphql` defines (so they reach deep into real
//! fields and arguments) mixed with junk, with values of every kind, including times at the
//! ends of the calendar, huge numbers, long lists and deep nesting; some are raw text. The
//! number of cases is `GALLEY_FUZZ_CASES` (default 1000, a few seconds); a failure prints the
//! shrunk document to replay.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use galley_api::{router, ApiLimits, AppState};
use galley_domain::Role;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

/// How long one request may take before the target calls it a hang.
const BOUND: Duration = Duration::from_secs(10);

/// The identifiers of the schema: field, argument, type and enum value names.
fn schema_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let sdl = include_str!("../../schema.graphql");
        let mut names: Vec<String> = sdl
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        names
    })
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => proptest::sample::select(schema_names()).prop_map(|s| s.to_owned()),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        1 => "__(typename|schema|type)",
    ]
    .boxed()
}

/// A GraphQL literal value.
fn literal() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999999".to_owned()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        time().prop_map(|t| format!("{t:?}")),
        ".{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        name(),
        "\\$[a-z]{1,3}",
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((name(), inner), 0..5).prop_map(|v| {
                let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
    .boxed()
}

/// Times that have broken date arithmetic, and ordinary ones.
fn time() -> BoxedStrategy<String> {
    prop_oneof![
        2 => (1u32..32).prop_map(|d| format!("+262142-12-{d:02}T23:59:59Z")),
        2 => (1u32..32).prop_map(|d| format!("-262143-01-{d:02}T00:00:00Z")),
        1 => Just("9999-12-31T23:59:59Z".to_owned()),
        1 => Just("1970-01-01T00:00:00Z".to_owned()),
        2 => (1i32..10_000, 1u32..13, 1u32..29, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")),
    ]
    .boxed()
}

/// A selection set, nested a few levels.
fn selection() -> BoxedStrategy<String> {
    let field = (name(), prop::collection::vec((name(), literal()), 0..3))
        .prop_map(|(n, args)| {
            if args.is_empty() {
                n
            } else {
                let args: Vec<String> =
                    args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{n}({})", args.join(", "))
            }
        })
        .boxed();
    let leaf = prop::collection::vec(field.clone(), 1..5)
        .prop_map(|f| f.join(" "))
        .boxed();
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop::collection::vec((field.clone(), prop::option::of(inner)), 1..4).prop_map(|fields| {
            fields
                .into_iter()
                .map(|(f, sub)| match sub {
                    Some(sub) => format!("{f} {{ {sub} }}"),
                    None => f,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
    })
    .boxed()
}

/// A JSON value for a variable.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        time().prop_map(Value::from),
        proptest::sample::select(schema_names()).prop_map(|s| Value::from(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(name(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A variable declaration's type.
fn var_type() -> BoxedStrategy<String> {
    (name(), any::<bool>(), any::<bool>())
        .prop_map(|(t, list, required)| {
            let t = if list { format!("[{t}]") } else { t };
            if required {
                format!("{t}!")
            } else {
                t
            }
        })
        .boxed()
}

/// What a template's variable should hold (and, now and then, does not).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Id,
    Int,
    Time,
    Text,
    Content,
    ArticleFilter,
    EventFilter,
}

/// Real operations of the schema, the deepest way in: their variables are fuzzed.
const TEMPLATES: &[(&str, &[(&str, Kind)])] = &[
    (
        "query($from: DateTime, $to: DateTime, $c: String) { dashboard(from: $from, to: $to, category: $c) { from to statusCounts { status count } publishedPerDay { day count } overdue { articleId headline } reviewers { reviewerId approvals medianTurnaroundSeconds } timeToFirstPublish { count } } }",
        &[("from", Kind::Time), ("to", Kind::Time), ("c", Kind::Text)],
    ),
    (
        "query($f: ArticleFilterInput, $n: Int, $a: String, $t: DateTime, $x: Int!, $y: Int!) { articles(filter: $f, first: $n, after: $a, orderBy: RELEVANCE) { edges { cursor node { id headline bodyHtml history(first: $n) { edges { node { type } } } asOf(at: $t) { version } diff(from: $x, to: $y) { tagsAdded body { unified } } } } pageInfo { endCursor } } }",
        &[("f", Kind::ArticleFilter), ("n", Kind::Int), ("a", Kind::Text), ("t", Kind::Time), ("x", Kind::Int), ("y", Kind::Int)],
    ),
    (
        "query($a: String, $n: Int, $f: EventFilterInput) { events(after: $a, first: $n, filter: $f) { edges { cursor node { position type payload actorUser { name } } } } }",
        &[("a", Kind::Text), ("n", Kind::Int), ("f", Kind::EventFilter)],
    ),
    (
        "query($id: ID!, $v: Int, $t: DateTime) { article(id: $id) { version asOf(version: $v) { version } revisions { number bodyHtml } comments { body } } also: article(id: $id) { asOf(at: $t) { status } } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("t", Kind::Time)],
    ),
    (
        "query($s: String!, $r: ID, $n: Int, $u: ID!) { articleBySlug(slug: $s) { id } reviewQueue(reviewer: $r, first: $n) { edges { node { id } } } user(id: $u) { name } me { name roles } head }",
        &[("s", Kind::Text), ("r", Kind::Id), ("n", Kind::Int), ("u", Kind::Id)],
    ),
    (
        "mutation($c: ContentInput!, $k: String) { createArticle(content: $c, idempotencyKey: $k) { article { id slug } replayed } }",
        &[("c", Kind::Content), ("k", Kind::Text)],
    ),
    (
        "mutation($id: ID!, $v: Int!, $c: ContentInput!) { reviseDraft(articleId: $id, expectedVersion: $v, content: $c) { article { version } } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("c", Kind::Content)],
    ),
    (
        "mutation($id: ID!, $v: Int!, $t: DateTime, $s: String) { publishArticle(articleId: $id, expectedVersion: $v, publishAt: $t, correction: $s) { article { status } } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("t", Kind::Time), ("s", Kind::Text)],
    ),
    (
        "mutation($id: ID!, $v: Int!, $t: DateTime!) { setEmbargo(articleId: $id, expectedVersion: $v, until: $t) { article { embargoUntil } } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("t", Kind::Time)],
    ),
    (
        "mutation($id: ID!, $v: Int!, $r: Int!, $b: String!, $u: ID!) { addReviewComment(articleId: $id, expectedVersion: $v, revision: $r, body: $b) { replayed } assignReviewer(articleId: $id, expectedVersion: $v, reviewerId: $u) { replayed } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("r", Kind::Int), ("b", Kind::Text), ("u", Kind::Id)],
    ),
    (
        "mutation($id: ID!, $v: Int!, $r: String!) { submitForReview(articleId: $id, expectedVersion: $v) { replayed } requestChanges(articleId: $id, expectedVersion: $v, reason: $r) { replayed } unpublishArticle(articleId: $id, expectedVersion: $v, reason: $r) { replayed } restoreRevision(articleId: $id, expectedVersion: $v, revision: $v) { replayed } }",
        &[("id", Kind::Id), ("v", Kind::Int), ("r", Kind::Text)],
    ),
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => ".{0,40}",
        1 => proptest::sample::select(schema_names()).prop_map(|s| s.to_owned()),
        1 => (".{1,4}", 0usize..5_000).prop_map(|(s, n)| s.repeat(n)),
    ]
    .boxed()
}

fn typed(kind: Kind, ids: &[String]) -> BoxedStrategy<Option<Value>> {
    let ids = ids.to_vec();
    let texts = |n| prop::collection::vec(text(), 0..n);
    let fitting = match kind {
        Kind::Id => prop_oneof![
            proptest::sample::select(ids).prop_map(Value::from),
            any::<u128>().prop_map(|n| Value::from(uuid::Uuid::from_u128(n).to_string())),
            text().prop_map(Value::from),
        ]
        .boxed(),
        Kind::Int => prop_oneof![
            (0i64..6).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            Just(Value::from(u64::MAX)),
        ]
        .boxed(),
        Kind::Time => time().prop_map(Value::from).boxed(),
        Kind::Text => text().prop_map(Value::from).boxed(),
        Kind::Content => (text(), text(), texts(300), texts(30), prop::option::of(text()), prop::option::of(text()), prop::option::of(".{0,12}"))
            .prop_map(|(headline, body, tags, byline, slug, category, language)| {
                json!({ "headline": headline, "body": body, "tags": tags, "byline": byline,
                        "slug": slug, "category": category, "language": language })
            })
            .boxed(),
        Kind::ArticleFilter => (prop::option::of(text()), prop::collection::vec("(DRAFT|IN_REVIEW|APPROVED|SCHEDULED|PUBLISHED|ARCHIVED|[A-Z]{1,8})", 0..4), prop::option::of(text()), prop::option::of(text()))
            .prop_map(|(t, status, category, tag)| {
                json!({ "text": t, "status": status, "category": category, "tag": tag })
            })
            .boxed(),
        Kind::EventFilter => texts(6).prop_map(|types| json!({ "types": types })).boxed(),
    };
    // `None`: the variable is left out.
    prop_oneof![6 => fitting.prop_map(Some), 2 => json_value().prop_map(Some), 1 => Just(None)]
        .boxed()
}

fn template_case(ids: &[String]) -> BoxedStrategy<String> {
    let ids = ids.to_vec();
    proptest::sample::select(TEMPLATES)
        .prop_flat_map(move |(query, vars)| {
            let values: Vec<BoxedStrategy<(String, Option<Value>)>> = vars
                .iter()
                .map(|(name, kind)| {
                    let name = (*name).to_owned();
                    typed(*kind, &ids)
                        .prop_map(move |v| (name.clone(), v))
                        .boxed()
                })
                .collect();
            values.prop_map(move |values| {
                let variables: serde_json::Map<String, Value> = values
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, value?)))
                    .collect();
                json!({ "query": query, "variables": variables }).to_string()
            })
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct Case {
    body: String,
    who: usize,
}

fn case(ids: &[String]) -> impl Strategy<Value = Case> {
    let document = (
        prop_oneof![
            Just("query"),
            Just("mutation"),
            Just("subscription"),
            Just("")
        ],
        prop::collection::vec((("[a-z]{1,3}"), var_type()), 0..3),
        selection(),
    )
        .prop_map(|(op, vars, sel)| {
            let decl = if vars.is_empty() || op.is_empty() {
                String::new()
            } else {
                let v: Vec<String> = vars.iter().map(|(n, t)| format!("${n}: {t}")).collect();
                format!("({})", v.join(", "))
            };
            format!("{op}{decl} {{ {sel} }}")
        });
    let variables = prop::collection::btree_map("[a-z]{1,3}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let body = prop_oneof![
        8 => template_case(ids),
        3 => (document, variables).prop_map(|(q, v)| json!({ "query": q, "variables": v }).to_string()),
        1 => (".{0,200}", json_value()).prop_map(|(q, v)| json!({ "query": q, "variables": v }).to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => ".{0,200}",
    ];
    (body, 0usize..4).prop_map(|(body, who)| Case { body, who })
}

#[test]
fn generated_documents_never_crash_hang_or_fail_inside() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = galley_tests::Backend::sqlite();
    let url = backend.url().to_owned();
    let (app, tokens, ids, _shutdown) = runtime.block_on(async {
        let store = galley_storage::testing::connect(&url).await.unwrap();
        let mut tokens = vec![None];
        for (name, role) in [
            ("vic", Role::Viewer),
            ("edith", Role::Editor),
            ("ada", Role::Admin),
        ] {
            let (_, token) = galley::users::add_user(&store, name, &[role]).await.unwrap();
            tokens.push(Some(token));
        }
        let limits = ApiLimits {
            rate_limit_per_second: 0,
            ..ApiLimits::default()
        };
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let app = router(AppState::new(store, limits, rx));
        // A few articles for the operations to find.
        let mut ids = Vec::new();
        for i in 0..4 {
            let create = json!({ "query": "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
                                 "variables": { "c": { "headline": format!("Fuzzed {i}"), "body": "Text." } } });
            let request = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", tokens[2].as_ref().unwrap()))
                .body(Body::from(create.to_string()))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            ids.push(body["data"]["createArticle"]["article"]["id"].as_str().unwrap().to_owned());
        }
        // Every template is a valid document of the schema as it is now (a renamed field
        // would otherwise leave the fuzzer knocking at the door).
        for (query, _) in TEMPLATES {
            let request = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", tokens[3].as_ref().unwrap()))
                .body(Body::from(json!({ "query": query }).to_string()))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            for invalid in ["Unknown", "Cannot query", "Syntax"] {
                assert!(!text.contains(invalid), "template {query} is invalid: {text}");
            }
        }
        (app, tokens, ids, shutdown)
    });

    let cases = std::env::var("GALLEY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let executed = std::sync::atomic::AtomicUsize::new(0);
    let counter = &executed;
    let result = runner.run(&case(&ids), |case| {
        let mut request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/graphql-response+json");
        if let Some(token) = &tokens[case.who] {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Body::from(case.body.clone())).unwrap();
        let app = app.clone();
        runtime.block_on(async move {
            // On a task of its own, so that a request that never yields (the dashboard loop
            // did) holds one worker while the other still fires the timer.
            let response = tokio::time::timeout(BOUND, tokio::spawn(app.oneshot(request)))
                .await
                .map_err(|_| TestCaseError::fail("no answer within the bound"))?
                .map_err(|e| TestCaseError::fail(format!("the request panicked: {e}")))?
                .unwrap();
            let status = response.status();
            let body = tokio::time::timeout(
                BOUND,
                axum::body::to_bytes(response.into_body(), usize::MAX),
            )
            .await
            .map_err(|_| TestCaseError::fail("the body did not end within the bound"))?
            .unwrap();
            let text = String::from_utf8_lossy(&body);
            prop_assert!(
                !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "status {status}: {text}"
            );
            prop_assert!(
                !text.contains("INTERNAL_SERVER_ERROR"),
                "an internal error: {text}"
            );
            if text.contains("\"data\"") {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "fuzz: {cases} cases, {} reached the executor (answered with data)",
        executed.into_inner()
    );
}
