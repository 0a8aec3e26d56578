//! GraphQL over HTTP (the GraphQL-over-HTTP specification): media type negotiation, the CSRF
//! rules (no mutation from GET, no POST that is not JSON), batches refused, document limits,
//! authentication and rate limiting, then execution.

use std::collections::HashMap;
use std::time::Instant;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::Positioned;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::auth::{self, Principal};
use crate::documents::{Documents, Parsed};
use crate::error::{ApiError, ErrorCode};
use crate::schema::{Loaders, RequestContext};
use crate::{AppState, ClientAddr, REQUEST_ID_HEADER};

/// The media type of the GraphQL-over-HTTP specification.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The response media type the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// application/graphql-response+json: request errors are 4xx.
    GraphqlResponse,
    /// application/json: the legacy type; every well-formed request gets 200.
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Negotiates from the Accept header; `None` when nothing acceptable is offered. A missing
/// header is treated as application/json, as the specification asks.
pub fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let mut json = false;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match media.as_str() {
            GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphqlResponse),
            APPLICATION_JSON | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    json.then_some(MediaType::Json)
}

/// A response made outside the executor: errors only, never `data`.
pub fn error_response(
    status: StatusCode,
    media: MediaType,
    errors: &[ApiError],
    request_id: Option<&str>,
) -> Response {
    let body = serde_json::json!({
        "errors": errors.iter().map(|e| e.to_json(request_id)).collect::<Vec<_>>()
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    response
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// A request rejected before execution, with its HTTP status.
#[derive(Debug)]
pub struct Rejection {
    /// The HTTP status.
    pub status: StatusCode,
    /// The errors.
    pub errors: Vec<ApiError>,
    /// Extra headers (Allow, Retry-After, WWW-Authenticate).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Rejection {
    fn new(status: StatusCode, error: ApiError) -> Rejection {
        Rejection {
            status,
            errors: vec![error],
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Rejection {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn into_response(self, media: MediaType, request_id: Option<&str>) -> Response {
        let mut response = error_response(self.status, media, &self.errors, request_id);
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// A parsed and checked request, ready to execute.
pub struct Prepared {
    /// The request with its parsed document set.
    pub request: async_graphql::Request,
    /// The operation's type.
    pub kind: OperationType,
    /// The first root field, for metrics labels (bounded by the schema).
    pub root_field: String,
    /// Whether the operation selects only introspection fields at its root, so that it may
    /// run with the introspection depth limit.
    pub introspection_only: bool,
    /// The operation's depth not counting `ofType` levels (fragments followed): what the
    /// ordinary depth limit applies to when it runs on the introspection schema.
    pub depth_without_of_type: usize,
    /// The document as kept (see [`crate::documents::Parsed::is_validated`]).
    pub parsed: std::sync::Arc<Parsed>,
}

/// Parses the document, picks the operation and checks the limits the executor does not
/// enforce itself (aliases). Parse failures are BAD_REQUEST; the executor reports validation.
pub fn prepare(
    mut request: async_graphql::Request,
    max_aliases: usize,
    documents: &Documents,
) -> Result<Prepared, Rejection> {
    let parsed = documents
        .get_or_parse(&request.query, |text| {
            let doc = async_graphql::parser::parse_query(text)?;
            let aliases = count_aliases(&doc);
            Ok(Parsed::new(doc, aliases))
        })
        .map_err(|e: async_graphql::parser::Error| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                bad_request(format!("the document does not parse: {e}")),
            )
        })?;
    let doc = &parsed.doc;
    let Some(operation) = select_operation(doc, request.operation_name.as_deref()) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            bad_request(match &request.operation_name {
                Some(name) => format!("the document has no operation named {name:?}"),
                None => "the document has several operations; name one in operationName".to_owned(),
            }),
        ));
    };
    let kind = operation.node.ty;
    let root_field = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "fragment".to_owned());
    let introspection_only = is_introspection_only(&operation.node.selection_set.node);
    let depth_without_of_type = if introspection_only {
        depth_without_of_type(doc, &operation.node.selection_set.node)
    } else {
        0
    };
    let aliases = parsed.aliases;
    if aliases > max_aliases {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            bad_request(format!(
                "the document has {aliases} aliases; at most {max_aliases} are allowed"
            )),
        ));
    }
    request.set_parsed_query(doc.clone());
    Ok(Prepared {
        request,
        kind,
        root_field,
        introspection_only,
        depth_without_of_type,
        parsed,
    })
}

/// Whether the values a request gives its variables can skip the validation a kept query's
/// text has passed: every variable's type names a scalar or an enum (`input_object` says
/// which names are input objects), and every value is present and non-null where its type
/// says so, items of lists included. A scalar or enum value of the wrong kind is refused
/// where the executor reads it; nullness it may not see (a non-null variable given to a
/// nullable argument), so it is checked here.
fn variables_fit(
    declared: &[Positioned<async_graphql::parser::types::VariableDefinition>],
    values: &async_graphql::Variables,
    input_object: impl Fn(&str) -> bool,
) -> bool {
    use async_graphql::parser::types::{BaseType, Type};
    use async_graphql::Value;
    fn fits(ty: &Type, value: Option<&Value>, input_object: &dyn Fn(&str) -> bool) -> bool {
        match value {
            None | Some(Value::Null) => ty.nullable,
            Some(value) => match (&ty.base, value) {
                (BaseType::Named(name), _) => !input_object(name.as_str()),
                (BaseType::List(item), Value::List(items)) => {
                    items.iter().all(|v| fits(item, Some(v), input_object))
                }
                // A single value where a list is declared is coerced to a list of one.
                (BaseType::List(item), v) => fits(item, Some(v), input_object),
            },
        }
    }
    declared.iter().map(|def| &def.node).all(|def| {
        let given = values.get(&def.name.node);
        let value = given.or_else(|| def.default_value.as_ref().map(|d| &d.node));
        fits(&def.var_type.node, value, &input_object)
    })
}

/// The depth of a selection set where `ofType` fields do not add a level, following fragment
/// spreads (each fragment measured once; a spread of a fragment being measured, a cycle that
/// validation refuses later, counts nothing). Linear in the document.
fn depth_without_of_type(doc: &ExecutableDocument, root: &SelectionSet) -> usize {
    fn walk<'a>(
        doc: &'a ExecutableDocument,
        set: &'a SelectionSet,
        memo: &mut HashMap<&'a str, Option<usize>>,
    ) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    let own = usize::from(f.node.name.node.as_str() != "ofType");
                    own + walk(doc, &f.node.selection_set.node, memo)
                }
                Selection::InlineFragment(f) => walk(doc, &f.node.selection_set.node, memo),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match memo.get(name) {
                        Some(Some(depth)) => *depth,
                        Some(None) => 0,
                        None => {
                            let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node)
                            else {
                                return 0;
                            };
                            memo.insert(name, None);
                            let depth = walk(doc, &fragment.node.selection_set.node, memo);
                            memo.insert(name, Some(depth));
                            depth
                        }
                    }
                }
            })
            .max()
            .unwrap_or(0)
    }
    walk(doc, root, &mut HashMap::new())
}

/// True when every root selection is a field named `__schema`, `__type` or `__typename`
/// (directly, not through a fragment spread) and at least one is `__schema` or `__type`.
fn is_introspection_only(root: &SelectionSet) -> bool {
    let mut introspects = false;
    for item in &root.items {
        let Selection::Field(field) = &item.node else {
            return false;
        };
        match field.node.name.node.as_str() {
            "__schema" | "__type" => introspects = true,
            "__typename" => {}
            _ => return false,
        }
    }
    introspects
}

fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<async_graphql::parser::types::OperationDefinition>> {
    use async_graphql::parser::types::DocumentOperations;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

/// Every alias in the document, fragments included (an alias flood is cheap to send and
/// expensive to resolve, and the complexity limit alone counts it only once per fragment).
fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn in_set(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + in_set(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => in_set(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations
        .iter()
        .map(|(_, op)| in_set(&op.node.selection_set.node))
        .sum::<usize>()
        + doc
            .fragments
            .values()
            .map(|f| in_set(&f.node.selection_set.node))
            .sum::<usize>()
}

/// The Retry-After header for a wait, in whole seconds (at least one).
fn retry_after(wait: std::time::Duration) -> HeaderValue {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    HeaderValue::from_str(&secs.to_string()).unwrap_or(HeaderValue::from_static("1"))
}

/// The rejection of an authentication that did not succeed: 401 with WWW-Authenticate for a
/// missing or unknown token (429 with Retry-After once the client address has spent its
/// failure budget), 503 with Retry-After when the database is unavailable.
pub(crate) fn auth_rejection(state: &AppState, client: ClientAddr, e: ApiError) -> Rejection {
    match e.code() {
        ErrorCode::Unauthenticated => match state.inner.failures.failed(client.0) {
            Ok(()) => Rejection::new(StatusCode::UNAUTHORIZED, e)
                .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            Err(wait) => {
                metrics::counter!("galley_auth_failures_throttled_total").increment(1);
                Rejection::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ApiError::new(
                        ErrorCode::RateLimited,
                        format!(
                            "too many failed authentications from this address; retry after {} ms",
                            wait.as_millis().max(1)
                        ),
                    ),
                )
                .with_header(header::RETRY_AFTER, retry_after(wait))
            }
        },
        ErrorCode::ServiceUnavailable => Rejection::new(StatusCode::SERVICE_UNAVAILABLE, e)
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        _ => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Authenticates a request that carries no `Authorization` header by its console session
/// cookie and CSRF header (`None` when it has no session cookie either), and takes one request
/// from the user's bucket.
pub async fn authorise_session(
    state: &AppState,
    client: ClientAddr,
    headers: &HeaderMap,
) -> Option<Result<Principal, Rejection>> {
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let principal = match crate::session::authenticate_request(state.store(), headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) if e.code() == ErrorCode::Forbidden => {
            return Some(Err(Rejection::new(StatusCode::FORBIDDEN, e)));
        }
        Err(e) => return Some(Err(auth_rejection(state, client, e))),
    };
    Some(take_request(state, principal))
}

/// Takes one request from the user's bucket.
fn take_request(state: &AppState, principal: Principal) -> Result<Principal, Rejection> {
    if let Err(wait) = state.inner.limiter.check(principal.id()) {
        metrics::counter!("galley_rate_limited_total").increment(1);
        return Err(
            Rejection::new(StatusCode::TOO_MANY_REQUESTS, auth::rate_limited(wait))
                .with_header(header::RETRY_AFTER, retry_after(wait)),
        );
    }
    Ok(principal)
}

/// Authenticates the request's bearer token.
pub(crate) async fn authenticate(
    state: &AppState,
    client: ClientAddr,
    authorization: Option<&str>,
) -> Result<Principal, Rejection> {
    let token = authorization.and_then(auth::bearer_token);
    auth::authenticate(state.store(), token)
        .await
        .map_err(|e| auth_rejection(state, client, e))
}

/// Authenticates the request's bearer token and takes one request from the user's bucket.
pub async fn authorise(
    state: &AppState,
    client: ClientAddr,
    authorization: Option<&str>,
) -> Result<Principal, Rejection> {
    let principal = authenticate(state, client, authorization).await?;
    take_request(state, principal)
}

/// `GET /graphql`: queries only.
pub async fn graphql_get(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let request_id = request_id(&headers);
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = (|| {
        let query = params
            .get("query")
            .ok_or_else(|| bad_request("the query parameter is required"))?;
        let mut request = async_graphql::Request::new(query.clone());
        if let Some(name) = params.get("operationName").filter(|n| !n.is_empty()) {
            request = request.operation_name(name.clone());
        }
        if let Some(vars) = params.get("variables").filter(|v| !v.is_empty()) {
            let vars: serde_json::Value = serde_json::from_str(vars)
                .map_err(|e| bad_request(format!("variables is not JSON: {e}")))?;
            request = request.variables(async_graphql::Variables::from_json(vars));
        }
        Ok::<_, ApiError>(request)
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return Rejection::new(StatusCode::BAD_REQUEST, e)
                .into_response(media, request_id.as_deref())
        }
    };
    run(
        state,
        client,
        Method::GET,
        &headers,
        request,
        media,
        request_id,
    )
    .await
}

/// `POST /graphql`: a single JSON request.
pub async fn graphql_post(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = request_id(&headers);
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let reject = |status: StatusCode, message: String| {
        Rejection::new(status, bad_request(message)).into_response(media, request_id.as_deref())
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != APPLICATION_JSON {
        // Only JSON: a form or text/plain POST is a "simple" request a browser sends across
        // origins without a preflight, so accepting it would allow cross-site mutations.
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the request body must be application/json, not {content_type:?}"),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the request body exceeds {} bytes",
                    state.limits().body_limit_bytes
                )
            } else {
                e.body_text()
            };
            return reject(status, message);
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            )
        }
    };
    if value.is_array() {
        return reject(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported; send one operation per request".to_owned(),
        );
    }
    if !value.get("query").is_some_and(serde_json::Value::is_string) {
        // A missing or misspelt query is an invalid parameter (400 for every media type),
        // not a document that fails to parse.
        return reject(
            StatusCode::BAD_REQUEST,
            "the body must have a query, a string".to_owned(),
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("the body is not a GraphQL request: {e}"),
            )
        }
    };
    run(
        state,
        client,
        Method::POST,
        &headers,
        request,
        media,
        request_id,
    )
    .await
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        MediaType::Json,
        &[bad_request(format!(
            "accept {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"
        ))],
        None,
    )
}

async fn run(
    state: AppState,
    client: ClientAddr,
    method: Method,
    headers: &HeaderMap,
    request: async_graphql::Request,
    media: MediaType,
    request_id: Option<String>,
) -> Response {
    let rid = request_id.as_deref();
    let prepared = match prepare(request, state.limits().max_aliases, state.documents()) {
        Ok(p) => p,
        Err(mut r) => {
            // A document that does not parse (or names no operation, or floods aliases) is a
            // request error: 400 under application/graphql-response+json, but 200 for a
            // client that accepts only application/json, as the GraphQL-over-HTTP
            // specification asks (audits 572B and FDE2).
            if media == MediaType::Json {
                r.status = StatusCode::OK;
            }
            return r.into_response(media, rid);
        }
    };
    let operation = crate::access_log::Operation {
        kind: operation_kind(prepared.kind),
        name: prepared.request.operation_name.clone(),
    };
    let mut response = execute(state, client, method, headers, prepared, media, request_id).await;
    response.extensions_mut().insert(operation);
    response
}

/// Runs a prepared request: the method and authentication checks, then the executor.
async fn execute(
    state: AppState,
    client: ClientAddr,
    method: Method,
    headers: &HeaderMap,
    prepared: Prepared,
    media: MediaType,
    request_id: Option<String>,
) -> Response {
    let rid = request_id.as_deref();
    if method == Method::GET && prepared.kind != OperationType::Query {
        return Rejection::new(
            StatusCode::METHOD_NOT_ALLOWED,
            bad_request("only queries may be sent with GET; send mutations with POST"),
        )
        .with_header(header::ALLOW, HeaderValue::from_static("POST"))
        .into_response(media, rid);
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match authorise_session(&state, client, headers).await {
        Some(result) => result,
        None => authorise(&state, client, authorization).await,
    };
    let principal = match principal {
        Ok(p) => p,
        Err(r) => return r.into_response(media, rid),
    };
    if prepared.kind == OperationType::Subscription {
        return Rejection::new(
            StatusCode::BAD_REQUEST,
            bad_request("subscriptions are served over WebSocket at /graphql/ws"),
        )
        .into_response(media, rid);
    }
    let kind = operation_kind(prepared.kind);
    let root_field = prepared.root_field;
    let introspection_only = prepared.introspection_only;
    let depth_without_of_type = prepared.depth_without_of_type;
    let with_context = |request: async_graphql::Request| {
        request
            .data(RequestContext {
                principal: principal.clone(),
                request_id: request_id.clone(),
            })
            .data(Loaders::new(state.store()))
    };
    let request = with_context(prepared.request);
    let span = tracing::info_span!(
        "graphql",
        operation = kind,
        field = %root_field,
        user = %principal.user.name,
    );
    let start = Instant::now();
    // The higher depth limit is for `ofType` chains only (single objects, no fan-out): the
    // rest of the document stays within the ordinary limit, so lists nested through
    // `fields { type { fields … } }` cannot grow deeper than in any other query.
    let introspection =
        introspection_only && kind == "query" && depth_without_of_type <= state.limits().max_depth;
    // Validation settles most of what it checks from the text alone, and a query of a kept
    // text that passed it once is run with only the checks that text cannot settle (depth,
    // complexity, fragment cycles). What else depends on the request is its variables'
    // values: their nullness is checked here (`variables_fit`), scalars and enums again where
    // the executor reads them, and an answer with any error is replaced by a fully validated
    // run's (a query, so running it again changes nothing); a variable of an input object
    // type, whose parse would let an unknown field through, always means full validation.
    // Mutations always get it.
    let parsed = &prepared.parsed;
    let known = kind == "query"
        && !introspection
        && parsed.is_validated()
        && select_operation(&parsed.doc, request.operation_name.as_deref()).is_some_and(|op| {
            variables_fit(&op.node.variable_definitions, &request.variables, |t| {
                state.is_input_object(t)
            })
        });
    let response = if known {
        // What a second, fully validated run needs (the executor takes the request).
        let mut again =
            async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
        again.operation_name = request.operation_name.clone();
        let response = state
            .validated_schema()
            .execute(request)
            .instrument(span.clone())
            .await;
        if response.errors.is_empty() {
            response
        } else {
            let mut again = with_context(again);
            again.set_parsed_query(parsed.doc.clone());
            state.schema().execute(again).instrument(span).await
        }
    } else if introspection {
        state
            .introspection_schema()
            .execute(request)
            .instrument(span)
            .await
    } else {
        let response = state.schema().execute(request).instrument(span).await;
        if kind == "query" && response.errors.is_empty() {
            parsed.mark_validated();
        }
        response
    };
    // The common case, an answer without errors, is serialised once, straight from the
    // executor's value; one with errors is shaped first (codes, request ids, status).
    let direct = if response.errors.is_empty() {
        serde_json::to_string(&response).ok()
    } else {
        None
    };
    let (mut status, body, outcome, unavailable) = match direct {
        Some(body) => (StatusCode::OK, body, "ok", false),
        None => {
            let (status, body, outcome) = shape_response(response, media, rid);
            // The database is unavailable: the one answer for every path is 503 with
            // Retry-After, whatever the media type (nothing was done, the client should
            // retry).
            let unavailable = body["errors"].as_array().is_some_and(|errors| {
                errors.iter().any(|e| {
                    e["extensions"]["code"].as_str() == Some(ErrorCode::ServiceUnavailable.as_str())
                })
            });
            (status, body.to_string(), outcome, unavailable)
        }
    };
    if unavailable {
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    let labels = [
        ("type", kind.to_owned()),
        ("field", state.field_label(&root_field)),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("graphql_operations_total", &labels).increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    if unavailable {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The operation type as a label.
pub fn operation_kind(kind: OperationType) -> &'static str {
    match kind {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// Turns an executor response into the HTTP status and JSON body. A response with errors and
/// no data whose errors have no path is a request error (validation, limits): it carries no
/// `data`, its errors get BAD_REQUEST, and under application/graphql-response+json it is a 400.
/// Internal errors get the request id.
pub fn shape_response(
    response: async_graphql::Response,
    media: MediaType,
    request_id: Option<&str>,
) -> (StatusCode, serde_json::Value, &'static str) {
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| serde_json::json!({}));
    let object = body.as_object_mut();
    let mut outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    if let Some(object) = object {
        if let Some(errors) = object.get_mut("errors").and_then(|e| e.as_array_mut()) {
            for error in errors {
                decorate_error(error, request_error, request_id);
            }
        }
        if request_error {
            object.remove("data");
            outcome = "rejected";
        }
    }
    let status = if request_error && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, body, outcome)
}

/// Adds the code to an error without one and the request id to an internal one.
pub fn decorate_error(
    error: &mut serde_json::Value,
    request_error: bool,
    request_id: Option<&str>,
) {
    let Some(error) = error.as_object_mut() else {
        return;
    };
    // async-graphql reports a value of the wrong type for an argument or variable (from
    // `InputValueError`), and a variable the request left out, with these messages, without
    // a code and with the field's path.
    let message_is_callers = error
        .get("message")
        .and_then(|m| m.as_str())
        .is_some_and(|m| {
            m.starts_with("Failed to parse")
                || m.starts_with("Invalid value")
                || m.starts_with("Expected input type")
                || (m.starts_with("Variable ") && m.ends_with(" is not defined."))
        });
    let ext = error
        .entry("extensions")
        .or_insert_with(|| serde_json::json!({}));
    let Some(ext) = ext.as_object_mut() else {
        return;
    };
    if !ext.contains_key("code") {
        // Argument coercion failures are the caller's, whatever stage reports them.
        let code = if request_error || message_is_callers {
            ErrorCode::BadRequest
        } else {
            ErrorCode::InternalServerError
        };
        ext.insert("code".into(), code.as_str().into());
    }
    if ext.get("code").and_then(|c| c.as_str()) == Some(ErrorCode::InternalServerError.as_str()) {
        if let Some(id) = request_id {
            ext.insert("requestId".into(), id.into());
        }
        if !request_error {
            // An error without our code came from inside the executor; its message might
            // hold internals, so it is replaced, and logged here with the request id.
            let message = error.get("message").cloned().unwrap_or_default();
            if message != "internal server error" {
                tracing::error!(
                    request_id = request_id.unwrap_or("-"),
                    error = %message,
                    "an operation failed without an error code; masked"
                );
            }
            error.insert("message".into(), "internal server error".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn graphql_response_json_is_preferred_when_accepted() {
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }

    #[test]
    fn an_uncoded_field_error_is_masked_and_names_the_request() {
        let mut error = serde_json::json!({"message": "pool timed out: secret", "path": ["x"]});
        decorate_error(&mut error, false, Some("req-9"));
        assert_eq!(error["message"], "internal server error");
        assert_eq!(error["extensions"]["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(error["extensions"]["requestId"], "req-9");
    }

    #[test]
    fn a_request_error_gets_bad_request_and_keeps_its_message() {
        let mut error = serde_json::json!({"message": "Unknown field \"nope\""});
        decorate_error(&mut error, true, Some("req-9"));
        assert_eq!(error["extensions"]["code"], "BAD_REQUEST");
        assert!(error["message"].as_str().unwrap().contains("nope"));
        assert!(error["extensions"].get("requestId").is_none());
    }

    #[test]
    fn of_type_levels_do_not_count_towards_the_introspection_depth() {
        let doc = async_graphql::parser::parse_query(
            "{ __schema { types { ...T } } } fragment T on __Type { ofType { ofType { ofType { name } } } fields { name } }",
        )
        .unwrap();
        let root = match &doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => {
                &op.node.selection_set.node
            }
            _ => unreachable!(),
        };
        // __schema, types, then fields+name (2) beats the ofType chain's name (1).
        assert_eq!(depth_without_of_type(&doc, root), 4);
        let cyclic = async_graphql::parser::parse_query(
            "{ __schema { types { ...A } } } fragment A on __Type { fields { type { ...A } } }",
        )
        .unwrap();
        let root = match &cyclic.operations {
            async_graphql::parser::types::DocumentOperations::Single(op) => {
                &op.node.selection_set.node
            }
            _ => unreachable!(),
        };
        assert_eq!(depth_without_of_type(&cyclic, root), 4);
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: me { id } b: me { n: name } ...F } fragment F on Query { c: me { id } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&doc), 4);
    }
}
