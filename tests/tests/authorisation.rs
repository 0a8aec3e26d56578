//! The authorisation matrix: every mutation × every role. Each pair is either allowed (the
//! command goes through and appends its events) or FORBIDDEN with nothing written (the
//! article's version and the log's head unchanged). Anonymous callers get UNAUTHENTICATED and
//! no data from every operation, over HTTP and WebSocket.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use galley_domain::Role;
use galley_tests::{
    add_user, on_both_backends, short_article, start, Backend, Client, Newsroom, Ws, PAYLOAD,
};
use serde_json::{json, Value};

on_both_backends!(
    every_mutation_is_allowed_to_exactly_its_roles_and_forbidden_ones_write_nothing,
    anonymous_callers_get_unauthenticated_and_no_data,
);

/// The state an article must be in for a mutation to be legal.
#[derive(Debug, Clone, Copy)]
enum Given {
    /// No article (createArticle).
    Nothing,
    /// A fresh draft (version 1).
    Draft,
    /// A draft with two revisions (version 2).
    RevisedDraft,
    /// Submitted (version 2).
    InReview,
    /// Submitted with the desk's reviewer assigned (version 3).
    Assigned,
    /// Approved (version 3).
    Approved,
    /// Scheduled an hour ahead (version 4).
    Scheduled,
    /// Live (version 4).
    Published,
    /// A draft under embargo (version 2).
    Embargoed,
    /// Archived (version 2).
    Archived,
}

/// One row of the matrix.
struct Case {
    mutation: &'static str,
    given: Given,
    /// The roles that may issue it besides ADMIN, who may issue everything.
    allowed: &'static [Role],
}

const CASES: &[Case] = &[
    Case {
        mutation: "createArticle",
        given: Given::Nothing,
        allowed: &[Role::Editor],
    },
    Case {
        mutation: "reviseDraft",
        given: Given::Draft,
        allowed: &[Role::Editor],
    },
    Case {
        mutation: "submitForReview",
        given: Given::Draft,
        allowed: &[Role::Editor],
    },
    Case {
        mutation: "withdrawSubmission",
        given: Given::InReview,
        allowed: &[Role::Editor],
    },
    Case {
        mutation: "assignReviewer",
        given: Given::InReview,
        allowed: &[Role::Editor, Role::Reviewer],
    },
    Case {
        mutation: "unassignReviewer",
        given: Given::Assigned,
        allowed: &[Role::Editor, Role::Reviewer],
    },
    Case {
        mutation: "addReviewComment",
        given: Given::InReview,
        allowed: &[Role::Editor, Role::Reviewer],
    },
    Case {
        mutation: "requestChanges",
        given: Given::InReview,
        allowed: &[Role::Reviewer],
    },
    Case {
        mutation: "approveRevision",
        given: Given::InReview,
        allowed: &[Role::Reviewer],
    },
    Case {
        mutation: "publishArticle",
        given: Given::Approved,
        allowed: &[Role::Publisher],
    },
    Case {
        mutation: "cancelSchedule",
        given: Given::Scheduled,
        allowed: &[Role::Publisher],
    },
    Case {
        mutation: "unpublishArticle",
        given: Given::Published,
        allowed: &[Role::Publisher],
    },
    Case {
        mutation: "setEmbargo",
        given: Given::Draft,
        allowed: &[Role::Editor, Role::Publisher],
    },
    Case {
        mutation: "liftEmbargo",
        given: Given::Embargoed,
        allowed: &[],
    },
    Case {
        mutation: "archiveArticle",
        given: Given::Draft,
        allowed: &[Role::Publisher],
    },
    Case {
        mutation: "restoreArticle",
        given: Given::Archived,
        allowed: &[Role::Publisher],
    },
    Case {
        mutation: "restoreRevision",
        given: Given::RevisedDraft,
        allowed: &[Role::Editor],
    },
];

/// The user mutations (ADMIN only), in an order in which each is legal once, with their
/// arguments after `userId`.
const USER_MUTATIONS: &[(&str, &str)] = &[
    ("setUserRoles", ", roles: [EDITOR]"),
    ("renameUser", ", name: \"tessa\""),
    ("disableUser", ""),
    ("enableUser", ""),
];

/// The webhook mutations: ADMIN's alone, like the user mutations. Each is tried on an endpoint
/// id that does not exist, so that a role allowed through would meet NOT_FOUND (or, for
/// creation, a refused url), never a change; the webhooks suite covers what ADMIN does.
const WEBHOOK_MUTATIONS: &[(&str, &str)] = &[
    (
        "createWebhookEndpoint",
        "(endpoint: { url: \"https://10.0.0.1/\" }) { secret }",
    ),
    (
        "updateWebhookEndpoint",
        "(id: $w, expectedVersion: 1, description: \"x\") { id }",
    ),
    (
        "pauseWebhookEndpoint",
        "(id: $w, expectedVersion: 1) { id }",
    ),
    (
        "resumeWebhookEndpoint",
        "(id: $w, expectedVersion: 1) { id }",
    ),
    (
        "deleteWebhookEndpoint",
        "(id: $w, expectedVersion: 1) { id }",
    ),
    (
        "rotateWebhookSecret",
        "(id: $w, expectedVersion: 1) { secret }",
    ),
    (
        "rewindWebhookEndpoint",
        "(id: $w, expectedVersion: 1, position: 0) { id }",
    ),
    (
        "skipWebhookDelivery",
        "(id: $w, expectedVersion: 1, position: 1) { id }",
    ),
    ("redeliverWebhookEvent", "(id: $w, position: 1) { outcome }"),
];

/// The staff that prepares articles, separate from the users under test so that no tested
/// user is an author (which would make an approval a SELF_APPROVAL instead).
struct Desk {
    editor: Client,
    reviewer: Client,
    publisher: Client,
    /// Makes every headline, and so every slug, unique.
    counter: AtomicUsize,
}

impl Desk {
    fn headline(&self) -> String {
        format!(
            "Matrix story {}",
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// An article in the given state: its id and version.
    async fn prepare(&self, given: Given) -> Option<(String, u64)> {
        let later = |hours| (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339();
        let (editor, reviewer, publisher) = (&self.editor, &self.reviewer, &self.publisher);
        let id = match given {
            Given::Nothing => return None,
            _ => editor.create(short_article(&self.headline())).await,
        };
        let version = match given {
            Given::Nothing => unreachable!(),
            Given::Draft => 1,
            Given::RevisedDraft => {
                editor
                    .mutate("reviseDraft", &id, 1, &content_arg(&self.headline()))
                    .await;
                2
            }
            Given::InReview => {
                editor.mutate("submitForReview", &id, 1, "").await;
                2
            }
            Given::Assigned => {
                editor.mutate("submitForReview", &id, 1, "").await;
                let assignee = format!(", reviewerId: \"{}\"", reviewer.user().id);
                editor.mutate("assignReviewer", &id, 2, &assignee).await;
                3
            }
            Given::Approved | Given::Scheduled | Given::Published => {
                editor.mutate("submitForReview", &id, 1, "").await;
                reviewer
                    .mutate("approveRevision", &id, 2, ", revision: 1")
                    .await;
                match given {
                    Given::Approved => 3,
                    Given::Scheduled => {
                        let at = format!(", publishAt: \"{}\"", later(1));
                        publisher.mutate("publishArticle", &id, 3, &at).await;
                        4
                    }
                    _ => {
                        publisher.mutate("publishArticle", &id, 3, "").await;
                        4
                    }
                }
            }
            Given::Embargoed => {
                let until = format!(", until: \"{}\"", later(24));
                editor.mutate("setEmbargo", &id, 1, &until).await;
                2
            }
            Given::Archived => {
                publisher.mutate("archiveArticle", &id, 1, "").await;
                2
            }
        };
        Some((id, version))
    }
}

fn content_arg(headline: &str) -> String {
    format!(", content: {{headline: \"{headline}\", body: \"Revised text.\"}}")
}

/// The document of a case's mutation with legal arguments, and its variables.
fn operation(
    case: &Case,
    article: Option<&(String, u64)>,
    desk: &Desk,
    reviewer_id: &str,
) -> (String, Value) {
    let until = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let args = match case.mutation {
        "createArticle" => {
            let query = format!(
                "mutation {{ createArticle(content: {{headline: \"{}\", body: \"Text.\"}}) {{ {PAYLOAD} }} }}",
                desk.headline()
            );
            return (query, json!({}));
        }
        "reviseDraft" => content_arg(&desk.headline()),
        "assignReviewer" | "unassignReviewer" => format!(", reviewerId: \"{reviewer_id}\""),
        "addReviewComment" => ", revision: 1, body: \"A note.\"".to_owned(),
        "requestChanges" | "unpublishArticle" | "liftEmbargo" => {
            ", reason: \"A reason.\"".to_owned()
        }
        "approveRevision" | "restoreRevision" => ", revision: 1".to_owned(),
        "setEmbargo" => format!(", until: \"{until}\""),
        _ => String::new(),
    };
    let (id, version) = article.expect("an article");
    (
        galley_tests::mutation(case.mutation, &args),
        json!({ "id": id, "v": version }),
    )
}

fn role_name(role: Role) -> &'static str {
    role.as_str()
}

async fn every_mutation_is_allowed_to_exactly_its_roles_and_forbidden_ones_write_nothing(
    backend: Backend,
) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let desk = Desk {
        editor: Client::new(
            &server,
            Some(add_user(&server, "sam", &[Role::Editor]).await),
        ),
        reviewer: Client::new(
            &server,
            Some(add_user(&server, "rhea", &[Role::Reviewer]).await),
        ),
        publisher: Client::new(
            &server,
            Some(add_user(&server, "pat", &[Role::Publisher]).await),
        ),
        counter: AtomicUsize::new(0),
    };
    let assignee = desk.reviewer.user().id.clone();
    let roles: [(Role, &Client); 5] = [
        (Role::Viewer, &staff.viewer),
        (Role::Editor, &staff.editor),
        (Role::Reviewer, &staff.reviewer),
        (Role::Publisher, &staff.publisher),
        (Role::Admin, &staff.admin),
    ];
    assert_eq!(
        roles.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        Role::ALL,
        "every role is tested"
    );

    // The matrix covers every mutation of the schema: a new one must get a row.
    let schema = staff
        .viewer
        .ok(
            "{ __type(name: \"Mutation\") { fields { name } } }",
            json!({}),
        )
        .await;
    let in_schema: BTreeSet<&str> = schema["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let in_matrix: BTreeSet<&str> = CASES
        .iter()
        .map(|c| c.mutation)
        .chain(USER_MUTATIONS.iter().map(|(m, _)| *m))
        .chain(WEBHOOK_MUTATIONS.iter().map(|(m, _)| *m))
        .collect();
    assert_eq!(in_matrix, in_schema);

    // The webhook mutations are ADMIN's alone.
    let nobody = "01900000-0000-7000-8000-000000000000";
    for (mutation, rest) in WEBHOOK_MUTATIONS {
        let uses_id = rest.contains("$w");
        let query = if uses_id {
            format!("mutation($w: ID!) {{ {mutation}{rest} }}")
        } else {
            format!("mutation {{ {mutation}{rest} }}")
        };
        let variables = if uses_id {
            json!({ "w": nobody })
        } else {
            json!({})
        };
        for (role, client) in roles {
            let reply = client.post(&query, variables.clone()).await;
            let expected = match (role, uses_id) {
                (Role::Admin, true) => "NOT_FOUND",
                (Role::Admin, false) => "VALIDATION_FAILED",
                _ => "FORBIDDEN",
            };
            assert_eq!(
                reply.code(),
                Some(expected),
                "{mutation} as {role}: {}",
                reply.body
            );
        }
    }

    // The user mutations are ADMIN's alone; a refusal records no change.
    let target = add_user(&server, "tess", &[Role::Viewer]).await.id;
    let changes = |client: &Client| {
        let client = client.clone();
        let target = target.clone();
        async move {
            client
                .ok(
                    "query($u: ID!) { user(id: $u) { changes { seq } } }",
                    json!({ "u": target }),
                )
                .await["user"]["changes"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    for (mutation, args) in USER_MUTATIONS {
        let query = format!("mutation($u: ID!) {{ {mutation}(userId: $u{args}) {{ name }} }}");
        for (role, client) in roles {
            let before = changes(&staff.admin).await;
            let reply = client.post(&query, json!({ "u": target })).await;
            if role == Role::Admin {
                assert!(
                    reply.body.get("errors").is_none(),
                    "{mutation}: {}",
                    reply.body
                );
                assert_eq!(changes(&staff.admin).await, before + 1, "{mutation}");
            } else {
                assert_eq!(
                    reply.code(),
                    Some("FORBIDDEN"),
                    "{mutation}: {}",
                    reply.body
                );
                assert_eq!(changes(&staff.admin).await, before, "{mutation}");
            }
        }
    }

    let mut outcomes: Vec<String> = Vec::new();
    for case in CASES {
        // The refusals first, all on one article in the right state: FORBIDDEN because of the
        // role, never because of the article.
        let shared = desk.prepare(case.given).await;
        for (role, client) in roles {
            let allowed = role == Role::Admin || case.allowed.contains(&role);
            if allowed {
                continue;
            }
            let head = staff.admin.head().await;
            let (query, variables) = operation(case, shared.as_ref(), &desk, &assignee);
            let reply = client.post(&query, variables).await;
            let context = format!("{} as {}: {}", case.mutation, role_name(role), reply.body);
            assert_eq!(reply.status, 200, "{context}");
            assert_eq!(reply.code(), Some("FORBIDDEN"), "{context}");
            assert_eq!(
                reply.body["errors"][0]["path"],
                json!([case.mutation]),
                "{context}"
            );
            assert_eq!(reply.body["data"], Value::Null, "{context}");
            assert_eq!(staff.admin.head().await, head, "nothing written: {context}");
            if let Some((id, version)) = &shared {
                assert_eq!(
                    staff.admin.article(id).await["version"],
                    *version,
                    "{context}"
                );
            }
            outcomes.push(format!("{} {} FORBIDDEN", case.mutation, role_name(role)));
        }
        // Then each allowed role, on an article of its own.
        for (role, client) in roles {
            let allowed = role == Role::Admin || case.allowed.contains(&role);
            if !allowed {
                continue;
            }
            let article = desk.prepare(case.given).await;
            let head = staff.admin.head().await;
            let (query, variables) = operation(case, article.as_ref(), &desk, &assignee);
            let data = client.ok(&query, variables).await;
            let payload = &data[case.mutation];
            let appended = payload["events"].as_array().unwrap().len() as u64;
            let context = format!("{} as {}: {payload}", case.mutation, role_name(role));
            assert!(appended >= 1, "{context}");
            assert_eq!(staff.admin.head().await, head + appended, "{context}");
            let version = article.as_ref().map_or(0, |(_, v)| *v);
            assert_eq!(
                payload["article"]["version"],
                version + appended,
                "{context}"
            );
            for event in payload["events"].as_array().unwrap() {
                assert_eq!(event["actor"], client.user().id.as_str(), "{context}");
            }
            outcomes.push(format!("{} {} allowed", case.mutation, role_name(role)));
        }
    }
    assert_eq!(outcomes.len(), CASES.len() * Role::ALL.len());

    // Reads: every role reads articles and the feed; only ADMIN lists users.
    for (role, client) in roles {
        let data = client
            .ok(
                "{ me { roles } head articles(first: 5) { nodes { id } } events(first: 5) { nodes { position } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["me"]["roles"], json!([role_name(role)]));
        let reply = client.post("{ users { name } }", json!({})).await;
        if role == Role::Admin {
            assert!(reply.body.get("errors").is_none(), "{}", reply.body);
            assert!(reply.body["data"]["users"].as_array().unwrap().len() >= 8);
        } else {
            assert_eq!(reply.code(), Some("FORBIDDEN"), "{}", reply.body);
            assert_eq!(reply.body["data"], Value::Null);
        }
    }

    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn anonymous_callers_get_unauthenticated_and_no_data(backend: Backend) {
    let server = start(&backend).await;
    let staff = Newsroom::hire(&server).await;
    let desk = Desk {
        editor: staff.editor.clone(),
        reviewer: staff.reviewer.clone(),
        publisher: staff.publisher.clone(),
        counter: AtomicUsize::new(0),
    };
    let published = desk.prepare(Given::Published).await.unwrap();
    let head = staff.viewer.head().await;
    let anonymous = Client::new(&server, None);

    // Every mutation, with arguments that would be legal for the right role.
    for case in CASES {
        let (query, variables) =
            operation(case, Some(&published), &desk, &staff.reviewer.user().id);
        let reply = anonymous.post(&query, variables).await;
        assert_eq!(reply.status, 401, "{}: {}", case.mutation, reply.body);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{}", reply.body);
        assert!(reply.body.get("data").is_none(), "{}", reply.body);
    }
    // Every query, over POST and GET, introspection included.
    let (id, _) = &published;
    for query in [
        format!("{{ article(id: \"{id}\") {{ headline body }} }}"),
        "{ articleBySlug(slug: \"matrix-story-0\") { headline } }".to_owned(),
        "{ articles { nodes { headline } } }".to_owned(),
        "{ events { nodes { type payload } } }".to_owned(),
        "{ head }".to_owned(),
        "{ me { name } }".to_owned(),
        "{ users { name } }".to_owned(),
        format!("{{ user(id: \"{}\") {{ name }} }}", staff.editor.user().id),
        "{ __schema { types { name } } }".to_owned(),
        "{ __typename }".to_owned(),
    ] {
        let reply = anonymous.post(&query, json!({})).await;
        assert_eq!(reply.status, 401, "{query}: {}", reply.body);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{}", reply.body);
        assert!(reply.body.get("data").is_none(), "{}", reply.body);
        let reply = anonymous
            .send(anonymous.get().query(&[("query", query.as_str())]))
            .await;
        assert_eq!(reply.status, 401, "GET {query}: {}", reply.body);
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"));
        assert!(reply.body.get("data").is_none(), "{}", reply.body);
    }
    // /metrics, which holds no article data, needs a token too; /healthz and /readyz do not.
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.http_url())).send();
    assert_eq!(get("/metrics").await.unwrap().status(), 401);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    // WebSocket: subscribing without connection_init closes with 4401; an init without a
    // token closes with 4403. No event is ever sent.
    let subscription = "subscription { events(after: 0) { type payload } }";
    let mut ws = Ws::connect(&server).await;
    ws.subscribe("1", subscription, json!({})).await;
    assert_eq!(ws.recv().await, Err(4401));
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(ws.recv().await, Err(4403));
    let mut ws = Ws::connect(&server).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.recv().await, Err(4403));

    assert_eq!(staff.viewer.head().await, head, "nothing written");
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
