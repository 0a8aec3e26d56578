//! Users: the `User` object and how resolvers load users (batched by the request's loader),
//! and users as history, for ADMIN: changing a user's roles, renaming, disabling and enabling
//! (each recorded in the store's user log), and reading a user's changes.

use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use galley_domain::{Role, UserId};
use galley_storage::{StoreError, UserChange, UserChangeRecord, UserRecord};

use crate::error::{ApiError, ApiResult};
use crate::schema::args::parse_id;
use crate::schema::context::ContextExt;
use crate::schema::enums::GqlRole;

/// A user of the API.
#[derive(Debug, Clone)]
pub struct User(pub UserRecord);

/// A person with an account: their name and roles.
#[Object]
impl User {
    /// The user's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// A unique display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The roles held.
    async fn roles(&self) -> Vec<GqlRole> {
        self.0.roles.iter().copied().map(GqlRole::from).collect()
    }
    /// When the user was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Whether the user is disabled (their tokens authenticate no one; their history stays
    /// theirs).
    async fn disabled(&self) -> bool {
        self.0.disabled_at.is_some()
    }
    /// When the user was disabled, while they are.
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
    /// Every change to the user (added, roles, renames, disabling), oldest first (ADMIN).
    #[graphql(complexity = "10 * child_complexity")]
    async fn changes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserChangeEntry>> {
        Ok(changes(ctx, self.0.id).await?)
    }
}

/// Loads users by id in one batch, keeping the order of `ids` and skipping unknown ones.
pub(crate) async fn load_users(ctx: &Context<'_>, ids: &[UserId]) -> ApiResult<Vec<User>> {
    let found = ctx
        .loaders()
        .users
        .load_many(ids.iter().copied())
        .await
        .map_err(ApiError::from_shared)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(User))
        .collect())
}

/// Loads one user by id (`None` for the system actor or an unknown id).
pub(crate) async fn load_user(ctx: &Context<'_>, id: UserId) -> ApiResult<Option<User>> {
    if id.is_system() {
        return Ok(None);
    }
    Ok(ctx
        .loaders()
        .users
        .load_one(id)
        .await
        .map_err(ApiError::from_shared)?
        .map(User))
}

/// Most changes `User.changes` returns.
pub(crate) const MAX_USER_CHANGES: u32 = 1_000;

/// Records `change` to the user `user_id` as the calling ADMIN.
pub(crate) async fn change_user(
    ctx: &Context<'_>,
    what: &str,
    user_id: &ID,
    change: UserChange,
) -> ApiResult<User> {
    let principal = ctx.principal()?;
    principal.require(Role::Admin, what)?;
    let id: UserId = parse_id("userId", user_id)?;
    if id.is_system() {
        return Err(ApiError::validation("userId", "is the system, not a user"));
    }
    // An ADMIN cannot lock themselves out (the command line can still change anyone).
    let locks_out = match &change {
        UserChange::UserDisabled {} => true,
        UserChange::UserRolesChanged { roles } => !roles.contains(&Role::Admin),
        _ => false,
    };
    if id == principal.user.id && locks_out {
        return Err(ApiError::validation(
            "userId",
            "is the caller: an ADMIN cannot disable themselves or drop their own ADMIN role",
        ));
    }
    let user = ctx
        .store()
        .change_user(id, change, principal.user.id, Utc::now())
        .await
        .map_err(|e| match e {
            // A refused change is the caller's input (a taken name, no role…).
            StoreError::Invalid { field, message } => ApiError::validation(field, message),
            other => ApiError::from(other),
        })?;
    Ok(User(user))
}

/// A user's changes, oldest first (ADMIN).
pub(crate) async fn changes(ctx: &Context<'_>, user: UserId) -> ApiResult<Vec<UserChangeEntry>> {
    ctx.principal()?.require(Role::Admin, "User.changes")?;
    let changes = ctx
        .store()
        .user_changes(0, MAX_USER_CHANGES, Some(user))
        .await?;
    Ok(changes.into_iter().map(UserChangeEntry).collect())
}

/// One change to a user, as recorded.
#[derive(Debug, Clone)]
pub struct UserChangeEntry(UserChangeRecord);

/// One recorded change to a user (added, roles changed, renamed, disabled, enabled): who made
/// it and when. User changes are history, like the article log.
#[Object(name = "UserChange")]
impl UserChangeEntry {
    /// The change's number in the user log, from 1.
    async fn seq(&self) -> u64 {
        self.0.seq
    }
    /// UserAdded, UserRolesChanged, UserRenamed, UserDisabled or UserEnabled.
    #[graphql(name = "type")]
    async fn change_type(&self) -> &str {
        self.0.change.change_type()
    }
    /// The name the change gave (UserAdded, UserRenamed).
    async fn name(&self) -> Option<&str> {
        match &self.0.change {
            UserChange::UserAdded { name, .. } | UserChange::UserRenamed { name } => Some(name),
            _ => None,
        }
    }
    /// The roles the change gave (UserAdded, UserRolesChanged).
    async fn roles(&self) -> Option<Vec<GqlRole>> {
        match &self.0.change {
            UserChange::UserAdded { roles, .. } | UserChange::UserRolesChanged { roles } => {
                Some(roles.iter().copied().map(GqlRole::from).collect())
            }
            _ => None,
        }
    }
    /// Who made it (the system id for the command line).
    async fn actor(&self) -> ID {
        ID(self.0.actor.to_string())
    }
    /// The ADMIN who made it; null for the command line.
    async fn actor_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.actor).await?)
    }
    /// When.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}
