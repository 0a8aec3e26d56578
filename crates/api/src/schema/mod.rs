//! The GraphQL schema: types, queries, mutations and subscriptions, and how it is built.

pub mod context;
pub mod diff;
pub mod history;
pub mod insights;
pub mod mutation;
pub mod query;
pub mod stages;
pub mod subscription;
pub mod types;
pub mod users;

use async_graphql::{SDLExportOptions, Schema};
use galley_storage::Store;

use crate::ApiLimits;
pub use context::{Loaders, RequestContext};
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

/// The complexity of a list field: its children's, once per item of a page of `first` (20 when
/// absent). Named by the `complexity` attribute of every paginated field.
pub(crate) fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(20).max(1)).unwrap_or(1);
    items
        .saturating_mul(child_complexity)
        .min(u32::MAX as usize)
}

/// Galley's schema type.
pub type GalleySchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema with the store and the limits in its data. Depth, complexity (lists
/// weighted by `first`) and directives are enforced by the executor; aliases and batches by
/// the transport, before execution.
pub fn build_schema(store: Store, limits: ApiLimits) -> GalleySchema {
    Schema::build(Query, Mutation, Subscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(limits.max_depth.max(32))
        .limit_directives(limits.max_directives)
        .data(store)
        .data(limits)
        .finish()
}

/// The schema's SDL, as checked in at the root as schema.graphql. It needs no database.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription)
        .finish()
        .sdl_with_options(SDLExportOptions::new())
}
