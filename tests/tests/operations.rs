//! What an operator and standard tools need, over real HTTP on both backends: the
//! introspection query GraphiQL and codegen tools send at the default limits (while ordinary
//! deep queries stay refused), introspection turned off, the GraphiQL page behind its flag,
//! CORS preflights, the GraphQL-over-HTTP status codes for application/json clients, and
//! /metrics with HELP text, process and build metrics, on the separate metrics listener too.

use galley_domain::Role;
use galley_tests::{add_user, start, start_with, test_config, Backend, Client, GUARD};
use serde_json::{json, Value};

galley_tests::on_both_backends!(
    standard_introspection_runs_at_the_default_limits_and_can_be_turned_off,
    the_graphiql_page_is_served_only_when_enabled,
    cors_preflights_are_answered_for_configured_origins_only,
    json_clients_get_200_for_documents_that_do_not_parse_or_validate,
    metrics_have_help_process_and_build_info_and_a_tokenless_listener,
);

/// graphql-js's `getIntrospectionQuery()` (descriptions, directives, deprecated fields and
/// input values, the seven-level `ofType` chain of its TypeRef fragment): what GraphiQL,
/// Apollo codegen, Postman and graphql-inspector send.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

async fn post(client: &Client, accept: &str, query: &str) -> (u16, Value) {
    let res = tokio::time::timeout(
        GUARD,
        client
            .request()
            .header("accept", accept)
            .json(&json!({ "query": query }))
            .send(),
    )
    .await
    .expect("an answer in time")
    .expect("sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn standard_introspection_runs_at_the_default_limits_and_can_be_turned_off(backend: Backend) {
    let server = start(&backend).await;
    let client = Client::new(
        &server,
        Some(add_user(&server, "ivy", &[Role::Viewer]).await),
    );
    let (status, body) = post(
        &client,
        "application/graphql-response+json",
        INTROSPECTION_QUERY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Article"), "{body}");
    assert_eq!(body["data"]["__schema"]["mutationType"]["name"], "Mutation");

    // The depth limit still protects ordinary queries: an introspection field beside an
    // ordinary one does not lift it, and neither does a deep ordinary query alone.
    let deep = "{ me { name } __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } }";
    let (status, body) = post(&client, "application/graphql-response+json", deep).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nested too deep"),
        "{body}"
    );
    // Nor do lists nested inside introspection: only `ofType` chains go past the limit.
    let fan_out = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } } } }";
    let (status, body) = post(&client, "application/graphql-response+json", fan_out).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nested too deep"),
        "{body}"
    );
    server.shutdown().await.unwrap();

    // Turned off: __schema and __type are refused; ordinary queries still run.
    let mut config = test_config(&backend);
    config.limits.introspection = false;
    let server = start_with(config).await;
    let client = Client::new(
        &server,
        Some(add_user(&server, "ivo", &[Role::Viewer]).await),
    );
    let (_, body) = post(
        &client,
        "application/graphql-response+json",
        INTROSPECTION_QUERY,
    )
    .await;
    assert!(body["data"]["__schema"].is_null(), "{body}");
    let (status, body) = post(
        &client,
        "application/graphql-response+json",
        "{ me { name } }",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["name"], "ivo");
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn the_graphiql_page_is_served_only_when_enabled(backend: Backend) {
    let server = start(&backend).await;
    let url = format!("{}{}", server.http_url(), galley_api::GRAPHIQL_PATH);
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 404, "off unless enabled");
    server.shutdown().await.unwrap();

    let mut config = test_config(&backend);
    config.limits.graphiql = true;
    let server = start_with(config).await;
    let url = format!("{}{}", server.http_url(), galley_api::GRAPHIQL_PATH);
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let page = res.text().await.unwrap();
    assert!(page.contains("graphiql"), "{page}");
    assert!(page.contains("/graphql"), "the page points at the endpoint");
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn cors_preflights_are_answered_for_configured_origins_only(backend: Backend) {
    let preflight = |url: String, origin: &'static str| async move {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap()
    };
    // Off by default: no CORS header at all.
    let server = start(&backend).await;
    let res = preflight(server.graphql_url(), "https://desk.example.org").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    server.shutdown().await.unwrap();

    let mut config = test_config(&backend);
    config.limits.cors_allowed_origins = vec!["https://desk.example.org".to_owned()];
    let server = start_with(config).await;
    let res = preflight(server.graphql_url(), "https://desk.example.org").await;
    assert!(res.status().is_success(), "{}", res.status());
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(
        header("access-control-allow-origin"),
        "https://desk.example.org"
    );
    assert!(header("access-control-allow-methods").contains("post"));
    assert!(header("access-control-allow-headers").contains("authorization"));
    assert!(header("access-control-allow-headers").contains("content-type"));
    assert!(res
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    // Another origin gets no permission.
    let res = preflight(server.graphql_url(), "https://evil.example.net").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // The actual request from the allowed origin carries the header too.
    let user = add_user(&server, "cora", &[Role::Viewer]).await;
    let res = reqwest::Client::new()
        .post(server.graphql_url())
        .header("origin", "https://desk.example.org")
        .bearer_auth(&user.token)
        .json(&json!({ "query": "{ me { name } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://desk.example.org")
    );
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn json_clients_get_200_for_documents_that_do_not_parse_or_validate(backend: Backend) {
    let server = start(&backend).await;
    let client = Client::new(
        &server,
        Some(add_user(&server, "jo", &[Role::Viewer]).await),
    );
    for document in ["{", "{ 8f31403dfe404bccbb0e835f2629c6a7 }", "{ notAField }"] {
        let (status, body) = post(&client, "application/json", document).await;
        assert_eq!(status, 200, "{document}: {body}");
        assert!(body.get("data").is_none(), "{document}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body}"
        );
        // The same document under the specification's own media type is a 400.
        let (status, _) = post(&client, "application/graphql-response+json", document).await;
        assert_eq!(status, 400, "{document}");
    }
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

async fn metrics_have_help_process_and_build_info_and_a_tokenless_listener(backend: Backend) {
    let mut config = test_config(&backend);
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    let server = start_with(config).await;
    let user = add_user(&server, "mo", &[Role::Viewer]).await;
    let client = Client::new(&server, Some(user.clone()));
    client.ok("{ me { name } }", json!({})).await;

    // The main listener still wants a token.
    let res = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let addr = server
        .metrics_addr()
        .expect("the metrics listener is bound");
    let res = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "no token on the metrics listener");
    let text = res.text().await.unwrap();
    for help in [
        "# HELP http_requests_total ",
        "# HELP graphql_operations_total ",
        "# HELP galley_build_info ",
        "# HELP process_resident_memory_bytes ",
        "# HELP galley_search_index_lag_events ",
    ] {
        assert!(text.contains(help), "missing {help:?} in\n{text}");
    }
    // How far the search index has got, sampled at the scrape. Other servers in this test
    // process share the recorder, so only that the samples are there is asserted, not this
    // server's figures.
    let gauge = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} sample in\n{text}"))
    };
    assert!(gauge("galley_search_index_lag_events") >= 0.0);
    assert!(gauge("galley_search_index_position") >= 0.0);
    let build = format!(
        "galley_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build), "{text}");
    let rss = text
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("a resident memory sample");
    assert!(rss > 0.0);
    // Only /metrics is served there.
    let res = reqwest::get(format!("http://{addr}/graphql"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
