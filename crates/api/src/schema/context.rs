//! What resolvers find in the GraphQL context: the store and limits (schema-wide), and the
//! caller, the request id and the loaders (per request).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Context;
use galley_domain::{ArticleId, UserId};
use galley_storage::{ArticleRecord, Store, StoreError, UserRecord};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorCode};
use crate::ApiLimits;

/// Per-request data: who calls, under which request id, and the request's loaders (so the
/// caches never outlive a request and never serve stale data to a later one).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The authenticated caller.
    pub principal: Principal,
    /// The x-request-id of the HTTP request or WebSocket upgrade.
    pub request_id: Option<String>,
}

/// Batches user lookups (authors, reviewers, actors) into one query per request tick.
#[derive(Debug)]
pub struct UserLoader(pub Store);

impl Loader<UserId> for UserLoader {
    type Value = UserRecord;
    type Error = Arc<StoreError>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, UserRecord>, Self::Error> {
        let users = self.0.users_by_ids(keys).await.map_err(Arc::new)?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// Batches article lookups (an event's article) into one query per request tick.
#[derive(Debug)]
pub struct ArticleLoader(pub Store);

impl Loader<ArticleId> for ArticleLoader {
    type Value = ArticleRecord;
    type Error = Arc<StoreError>;

    async fn load(
        &self,
        keys: &[ArticleId],
    ) -> Result<HashMap<ArticleId, ArticleRecord>, Self::Error> {
        let articles = self.0.articles_by_ids(keys).await.map_err(Arc::new)?;
        Ok(articles.into_iter().map(|a| (a.id, a)).collect())
    }
}

/// The loaders of one request.
pub struct Loaders {
    /// Users by id.
    pub users: DataLoader<UserLoader>,
    /// Articles by id.
    pub articles: DataLoader<ArticleLoader>,
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaders").finish_non_exhaustive()
    }
}

impl Loaders {
    /// Fresh loaders for one request.
    pub fn new(store: &Store) -> Loaders {
        Loaders {
            users: DataLoader::new(UserLoader(store.clone()), tokio::spawn),
            articles: DataLoader::new(ArticleLoader(store.clone()), tokio::spawn),
        }
    }
}

/// Shorthands for resolvers.
pub trait ContextExt {
    /// The store.
    fn store(&self) -> &Store;
    /// The configured limits.
    fn limits(&self) -> &ApiLimits;
    /// The caller, or UNAUTHENTICATED (the transports reject anonymous callers before any
    /// resolver runs; this is the second lock on the door).
    fn principal(&self) -> Result<&Principal, ApiError>;
    /// The request id, if any.
    fn request_id(&self) -> Option<&str>;
    /// The request's loaders.
    fn loaders(&self) -> &Loaders;
}

impl ContextExt for Context<'_> {
    fn store(&self) -> &Store {
        self.data_unchecked::<Store>()
    }

    fn limits(&self) -> &ApiLimits {
        self.data_unchecked::<ApiLimits>()
    }

    fn principal(&self) -> Result<&Principal, ApiError> {
        self.data_opt::<RequestContext>()
            .map(|r| &r.principal)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "authentication required"))
    }

    fn request_id(&self) -> Option<&str> {
        self.data_opt::<RequestContext>()
            .and_then(|r| r.request_id.as_deref())
    }

    fn loaders(&self) -> &Loaders {
        self.data_unchecked::<Loaders>()
    }
}
