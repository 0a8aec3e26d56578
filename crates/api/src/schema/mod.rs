//! The GraphQL schema: types, queries, mutations and subscriptions, and how it is built.
//!
//! Modules depend one way, from the leaves up (none imports one below it in this list, no two
//! import each other):
//!
//! - leaves: `context` (what resolvers find in the context), `diff` and `markdown` (pure: the
//!   revision diff, bodies as sanitised HTML), `enums` (the shared enums), `durations`;
//! - `args` (argument checks), `inputs` (input objects and list orders), `view` (the one view
//!   of an article's record and content, and the `Content` object);
//! - object types, each with the resolver functions of its fields: `users` (`User`, user
//!   changes), `revision` (`Revision`, `Comment`, `Correction`), `history` (`ArticleSnapshot`,
//!   `RevisionDiff`), `article` (`Article` and `Event`, which lead to each other), `stages`
//!   (`TimeInStage`), `insights` (`Dashboard`, the review queue);
//! - `webhooks` (ADMIN's webhook endpoints: their objects, reads and changes, merged into the
//!   roots);
//! - the roots: `query`, `mutation`, `subscription`, and this module, which builds the schema
//!   (its `Query` and `Mutation` merge the article roots with the webhook ones).

pub mod args;
pub mod article;
pub mod context;
pub mod diff;
pub mod durations;
pub mod enums;
pub mod history;
pub mod inputs;
pub mod insights;
pub mod markdown;
pub mod mutation;
pub mod query;
pub mod revision;
pub mod stages;
pub mod subscription;
pub mod users;
pub mod view;
pub mod webhooks;

use std::collections::HashSet;

use async_graphql::{MergedObject, SDLExportOptions, Schema, SchemaBuilder, ValidationMode};
use galley_storage::Store;
use galley_webhooks::Webhooks;

use crate::ApiLimits;
pub use context::{Loaders, RequestContext};
pub use subscription::Subscription;

/// Reads: articles and their history, the review queue, the event log, the dashboard and
/// (for ADMIN) users and webhook endpoints. Every field needs a token.
#[derive(Debug, Default, MergedObject)]
pub struct Query(query::Query, webhooks::WebhookQuery);

/// Every change: each article mutation is one domain command that appends events to the log,
/// names the version it expects, and may carry an idempotency key; user and webhook
/// mutations (ADMIN) change records beside the log and name the version they expect.
#[derive(Debug, Default, MergedObject)]
pub struct Mutation(mutation::Mutation, webhooks::WebhookMutation);

/// Galley's schema type.
pub type GalleySchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema with the store and the limits in its data. Depth, complexity (lists
/// weighted by `first`) and directives are enforced by the executor; aliases and batches by
/// the transport, before execution. Introspection is disabled when the limits say so.
pub fn build_schema(store: Store, limits: ApiLimits) -> GalleySchema {
    let webhooks = Webhooks::new(limits.webhooks.clone());
    build_with_depth(store, limits.max_depth, limits, webhooks)
}

/// The schemas of one server, sharing its webhooks.
pub(crate) struct Schemas {
    /// Runs every document, fully validated.
    pub(crate) schema: GalleySchema,
    /// Introspection-only documents (see [`build_introspection_schema`]).
    pub(crate) introspection: GalleySchema,
    /// The same as `schema`, validating only what depends on more than the document's text
    /// (depth, complexity, fragment cycles): for a query whose text has already passed full
    /// validation, whose variables are all scalars or enums (see `crate::http::run`).
    pub(crate) validated: GalleySchema,
}

pub(crate) fn build_schemas(store: Store, limits: ApiLimits, webhooks: Webhooks) -> Schemas {
    let introspection_depth = limits.max_depth.max(INTROSPECTION_MAX_DEPTH);
    let depth = limits.max_depth;
    Schemas {
        schema: build_with_depth(store.clone(), depth, limits.clone(), webhooks.clone()),
        validated: build_with(
            store.clone(),
            depth,
            limits.clone(),
            webhooks.clone(),
            ValidationMode::Fast,
        ),
        introspection: build_with_depth(store, introspection_depth, limits, webhooks),
    }
}

/// The input object types of `schema`, from its own SDL: a variable of one of these (or a
/// list of them) is always validated in full, since a parse at execution lets unknown fields
/// through. `None` (an SDL that does not parse, which would be a bug) counts every type as
/// one, so nothing skips full validation.
pub(crate) fn input_object_names(schema: &GalleySchema) -> Option<HashSet<String>> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(schema.sdl()).ok()?;
    let names = doc
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) if matches!(t.node.kind, TypeKind::InputObject(_)) => {
                Some(t.node.name.node.to_string())
            }
            _ => None,
        })
        .collect();
    Some(names)
}

/// Deepest nesting of a document that selects only introspection fields (`__schema`,
/// `__type`, `__typename`). graphql-js's `getIntrospectionQuery()`, which GraphiQL, codegen
/// tools and Postman send, nests `ofType` about fourteen levels deep, beyond the default depth
/// limit for ordinary queries; its complexity is still limited as any other document's.
pub const INTROSPECTION_MAX_DEPTH: usize = 24;

/// The schema that runs introspection-only documents: the ordinary one with
/// [`INTROSPECTION_MAX_DEPTH`] as its depth limit (or the ordinary limit when it is higher).
pub fn build_introspection_schema(store: Store, limits: ApiLimits) -> GalleySchema {
    let webhooks = Webhooks::new(limits.webhooks.clone());
    build_with_depth(
        store,
        limits.max_depth.max(INTROSPECTION_MAX_DEPTH),
        limits,
        webhooks,
    )
}

/// The schema builder with descriptions for the types async-graphql generates itself (the
/// connection types, chrono's `DateTime` scalar, whose own text is "Implement the
/// DateTime<Utc> scalar").
fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .override_output_type_description::<article::ArticleConnection>(
            "A page of articles, with the cursors to fetch the next one.",
        )
        .override_output_type_description::<article::EventConnection>(
            "A page of events of the log, with the cursors to fetch the next one.",
        )
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
            "A point in time: an RFC 3339 date and time with an offset, such as \
             2026-03-02T12:00:00Z. Answers are in UTC.",
        )
}

fn build_with_depth(
    store: Store,
    depth: usize,
    limits: ApiLimits,
    webhooks: Webhooks,
) -> GalleySchema {
    build_with(store, depth, limits, webhooks, ValidationMode::Strict)
}

fn build_with(
    store: Store,
    depth: usize,
    limits: ApiLimits,
    webhooks: Webhooks,
    mode: ValidationMode,
) -> GalleySchema {
    let builder = builder()
        .validation_mode(mode)
        .limit_depth(depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(depth.max(32))
        .limit_directives(limits.max_directives);
    let builder = if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder.data(store).data(limits).data(webhooks).finish()
}

/// The schema's SDL, as checked in at the root as schema.graphql. It needs no database.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(SDLExportOptions::new())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn the_input_object_types_are_listed_and_nothing_else() {
        let names = input_object_names(&builder().finish()).expect("the SDL parses");
        for input in ["ArticleFilterInput", "ContentInput", "EventFilterInput"] {
            assert!(names.contains(input), "{input} in {names:?}");
        }
        for other in ["ArticleStatus", "Article", "ID", "Int", "DateTime"] {
            assert!(!names.contains(other), "{other} in {names:?}");
        }
    }

    /// The arguments every mutation on an article (or a user) repeats. async-graphql 7 takes
    /// an argument's `desc` only as a string literal, so each mutation writes the text out;
    /// this keeps the copies one text.
    const SHARED_ARGUMENTS: [&str; 5] = [
        "articleId",
        "expectedVersion",
        "idempotencyKey",
        "userId",
        "content",
    ];

    #[tokio::test]
    async fn an_argument_shared_by_mutations_is_described_the_same_on_each() {
        let schema = builder().finish();
        let response = schema
            .execute("{ __schema { mutationType { fields { name args { name description } } } } }")
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response
            .data
            .into_json()
            .expect("introspection answers JSON");
        let mut descriptions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for field in data["__schema"]["mutationType"]["fields"]
            .as_array()
            .expect("mutation fields")
        {
            // A webhook endpoint's mutations expect the endpoint's own version, and say so.
            if field["name"]
                .as_str()
                .is_some_and(|n| n.contains("Webhook"))
            {
                continue;
            }
            for arg in field["args"].as_array().expect("arguments") {
                let name = arg["name"].as_str().expect("argument name");
                if SHARED_ARGUMENTS.contains(&name) {
                    let description = arg["description"].as_str().unwrap_or_default();
                    descriptions
                        .entry(name.to_owned())
                        .or_default()
                        .insert(description.to_owned());
                }
            }
        }
        assert_eq!(
            descriptions.keys().map(String::as_str).collect::<Vec<_>>(),
            {
                let mut names = SHARED_ARGUMENTS.to_vec();
                names.sort_unstable();
                names
            },
            "every shared argument is used"
        );
        for (name, texts) in descriptions {
            assert_eq!(
                texts.len(),
                1,
                "{name} is described in several ways: {texts:?}"
            );
        }
    }
}
