//! Users as history: every change to a user is a row of `user_changes`, an append-only log
//! of its own beside the article log, and the `users` table is its projection
//! (docs/adr/0003-users-as-history.md).
//!
//! Why a log of its own: the article log's streams, positions, feed and projections are all
//! about articles, and a user is not one; mixing user streams into it would make every article
//! reader skip them. What the two logs share is the rule: nothing updates or deletes a row,
//! the projection is a function of the rows, `galley events export` carries both, and an
//! import restores both. Secrets are never part of it: tokens stay in `api_tokens`, which is
//! neither exported nor rebuilt.
//!
//! Changes are numbered `seq` 1, 2, 3 … in commit order: SQLite has one writer; on PostgreSQL
//! every change first takes a transaction-scoped advisory lock. Every change empties the token
//! cache (a cached lookup carries the user's name and roles and whether they may act), and on
//! PostgreSQL notifies the other processes as a revocation does.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use galley_domain::{Role, UserId};
use serde::{Deserialize, Serialize};

use super::cache::{TokenCache, TOKENS_CHANNEL};
use super::rows::{decode_user, name_taken, USER_COLUMNS};
use crate::backend::{args, to_u64, Db, Row, Tx};
use crate::error::StoreError;
use crate::model::UserRecord;

/// The advisory lock key that serialises user changes on PostgreSQL ("galleyus").
const PG_LOCK_KEY: i64 = 0x6761_6c6c_6579_7573;

/// Longest user name, in characters.
pub const USER_NAME_MAX_CHARS: usize = 64;

/// What happened to a user. The variant name is the stored `change_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all_fields = "camelCase")]
pub enum UserChange {
    /// The user was added with a name and roles.
    UserAdded {
        /// The unique display name.
        name: String,
        /// The roles held.
        roles: Vec<Role>,
    },
    /// The user's roles were replaced.
    UserRolesChanged {
        /// The roles held from now on.
        roles: Vec<Role>,
    },
    /// The user was renamed.
    UserRenamed {
        /// The new unique display name.
        name: String,
    },
    /// The user was disabled: their tokens authenticate no one.
    UserDisabled {},
    /// A disabled user was enabled again.
    UserEnabled {},
}

impl UserChange {
    /// The stored type string.
    pub fn change_type(&self) -> &'static str {
        match self {
            UserChange::UserAdded { .. } => "UserAdded",
            UserChange::UserRolesChanged { .. } => "UserRolesChanged",
            UserChange::UserRenamed { .. } => "UserRenamed",
            UserChange::UserDisabled {} => "UserDisabled",
            UserChange::UserEnabled {} => "UserEnabled",
        }
    }

    fn payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map
                .remove("payload")
                .unwrap_or_else(|| serde_json::json!({})),
            _ => serde_json::json!({}),
        }
    }

    fn from_stored(change_type: &str, payload: serde_json::Value) -> Result<Self, StoreError> {
        serde_json::from_value(serde_json::json!({ "type": change_type, "payload": payload }))
            .map_err(|e| StoreError::Corrupt(format!("user change {change_type}: {e}")))
    }
}

/// One row of the user log, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChangeRecord {
    /// The change's number, from 1, in commit order.
    pub seq: u64,
    /// The user changed.
    pub user_id: UserId,
    /// What changed.
    #[serde(flatten)]
    pub change: UserChange,
    /// Who changed it (an ADMIN, or [`UserId::SYSTEM`] for the command line).
    pub actor: UserId,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

/// The user a change leaves, from the user before it (`None` before `UserAdded`).
fn apply(
    before: Option<UserRecord>,
    user_id: UserId,
    change: &UserChange,
    at: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    let missing = || StoreError::NotFound;
    Ok(match change {
        UserChange::UserAdded { name, roles } => {
            if before.is_some() {
                return Err(StoreError::Invalid {
                    field: "userId".to_owned(),
                    message: "is taken by another user".to_owned(),
                });
            }
            UserRecord {
                id: user_id,
                name: name.clone(),
                roles: roles.clone(),
                created_at: at,
                disabled_at: None,
            }
        }
        UserChange::UserRolesChanged { roles } => UserRecord {
            roles: roles.clone(),
            ..before.ok_or_else(missing)?
        },
        UserChange::UserRenamed { name } => UserRecord {
            name: name.clone(),
            ..before.ok_or_else(missing)?
        },
        UserChange::UserDisabled {} => UserRecord {
            disabled_at: Some(at),
            ..before.ok_or_else(missing)?
        },
        UserChange::UserEnabled {} => UserRecord {
            disabled_at: None,
            ..before.ok_or_else(missing)?
        },
    })
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// A valid user name, trimmed: 1 to [`USER_NAME_MAX_CHARS`] printable characters.
pub fn check_user_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > USER_NAME_MAX_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name",
            format!("must be 1 to {USER_NAME_MAX_CHARS} printable characters"),
        ));
    }
    Ok(name)
}

/// Roles as stored: sorted, distinct, at least one.
fn check_roles(roles: &[Role]) -> Result<Vec<Role>, StoreError> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(invalid("roles", "at least one role is required"));
    }
    Ok(roles)
}

/// A change as it will be stored: names trimmed and checked, roles sorted; and the refusals
/// that depend on the user's state (disabling a disabled user…).
fn normalise(change: UserChange, before: Option<&UserRecord>) -> Result<UserChange, StoreError> {
    Ok(match change {
        UserChange::UserAdded { name, roles } => UserChange::UserAdded {
            name: check_user_name(&name)?.to_owned(),
            roles: check_roles(&roles)?,
        },
        UserChange::UserRolesChanged { roles } => UserChange::UserRolesChanged {
            roles: check_roles(&roles)?,
        },
        UserChange::UserRenamed { name } => {
            let name = check_user_name(&name)?.to_owned();
            if before.is_some_and(|u| u.name == name) {
                return Err(invalid("name", "is the user's name already"));
            }
            UserChange::UserRenamed { name }
        }
        UserChange::UserDisabled {} => {
            if before.is_some_and(|u| u.disabled_at.is_some()) {
                return Err(invalid("userId", "is disabled already"));
            }
            UserChange::UserDisabled {}
        }
        UserChange::UserEnabled {} => {
            if before.is_some_and(|u| u.disabled_at.is_none()) {
                return Err(invalid("userId", "is not disabled"));
            }
            UserChange::UserEnabled {}
        }
    })
}

async fn user_by_id(tx: &mut Tx, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    tx.exec()
        .fetch_optional(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
            &args![id.as_uuid()],
        )
        .await?
        .as_ref()
        .map(decode_user)
        .transpose()
}

/// Writes the projection row of `user` (inserting it when `insert`).
async fn write_user(tx: &mut Tx, user: &UserRecord, insert: bool) -> Result<(), StoreError> {
    let roles: Vec<&str> = user.roles.iter().map(Role::as_str).collect();
    let sql = if insert {
        "INSERT INTO users (id, name, roles, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5)"
    } else {
        "UPDATE users SET name = $2, roles = $3, created_at = $4, disabled_at = $5 WHERE id = $1"
    };
    tx.exec()
        .execute(
            sql,
            &args![
                user.id.as_uuid(),
                user.name.as_str(),
                serde_json::json!(roles),
                user.created_at,
                user.disabled_at
            ],
        )
        .await
        .map_err(name_taken)?;
    Ok(())
}

/// Takes the user log's lock (PostgreSQL) and returns the last `seq`.
async fn lock_log(tx: &mut Tx) -> Result<u64, StoreError> {
    tx.lock_until_commit(PG_LOCK_KEY).await?;
    let row = tx
        .exec()
        .fetch_one("SELECT MAX(seq) AS seq FROM user_changes", &[])
        .await?;
    Ok(row.get::<Option<i64>>("seq")?.map(to_u64).unwrap_or(0))
}

async fn insert_change(tx: &mut Tx, record: &UserChangeRecord) -> Result<(), StoreError> {
    tx.exec()
        .execute(
            "INSERT INTO user_changes (seq, user_id, change_type, payload, actor, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &args![
                record.seq,
                record.user_id.as_uuid(),
                record.change.change_type(),
                record.change.payload(),
                record.actor.as_uuid(),
                record.recorded_at
            ],
        )
        .await?;
    Ok(())
}

/// Records a change inside `tx` and writes its projection; the caller commits (and then
/// empties the token cache).
pub(crate) async fn record(
    tx: &mut Tx,
    user_id: UserId,
    change: UserChange,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    // Microseconds, as PostgreSQL keeps them, so what is returned is what is read back.
    let now = crate::backend::dialect::to_micros(now);
    let last = lock_log(tx).await?;
    let before = user_by_id(tx, user_id).await?;
    if before.is_none() && !matches!(change, UserChange::UserAdded { .. }) {
        return Err(StoreError::NotFound);
    }
    let change = normalise(change, before.as_ref())?;
    let insert = before.is_none();
    let user = apply(before, user_id, &change, now)?;
    write_user(tx, &user, insert).await?;
    insert_change(
        tx,
        &UserChangeRecord {
            seq: last + 1,
            user_id,
            change,
            actor,
            recorded_at: now,
        },
    )
    .await?;
    // Every process's listener empties its token cache when this commits.
    tx.notify(TOKENS_CHANNEL, "").await?;
    Ok(user)
}

fn decode_change(row: &Row) -> Result<UserChangeRecord, StoreError> {
    let change_type: String = row.get("change_type")?;
    Ok(UserChangeRecord {
        seq: to_u64(row.get("seq")?),
        user_id: UserId::from_uuid(row.get("user_id")?),
        change: UserChange::from_stored(&change_type, row.json("payload")?)?,
        actor: UserId::from_uuid(row.get("actor")?),
        recorded_at: row.get("recorded_at")?,
    })
}

const CHANGE_COLUMNS: &str = "seq, user_id, change_type, payload, actor, recorded_at";

/// Every user as the user log leaves them.
async fn fold_all(tx: &mut Tx) -> Result<BTreeMap<UserId, UserRecord>, StoreError> {
    let mut users: BTreeMap<UserId, UserRecord> = BTreeMap::new();
    let rows = tx
        .exec()
        .fetch_all(
            &format!("SELECT {CHANGE_COLUMNS} FROM user_changes ORDER BY seq"),
            &[],
        )
        .await?;
    for row in &rows {
        let c = decode_change(row)?;
        let before = users.remove(&c.user_id);
        let after = apply(before, c.user_id, &c.change, c.recorded_at)?;
        users.insert(c.user_id, after);
    }
    Ok(users)
}

/// Rewrites every `users` row from the user log (rows are updated or added, never deleted:
/// tokens refer to them).
pub(crate) async fn rebuild(tx: &mut Tx) -> Result<(), StoreError> {
    for user in fold_all(tx).await?.values() {
        match user_by_id(tx, user.id).await? {
            Some(row) if row == *user => {}
            row => write_user(tx, user, row.is_none()).await?,
        }
    }
    Ok(())
}

/// Every `users` row, for verify.
pub(crate) async fn dump(
    tx: &mut Tx,
    out: &mut BTreeMap<(String, String), String>,
) -> Result<(), StoreError> {
    for row in tx
        .exec()
        .fetch_all(&format!("SELECT {USER_COLUMNS} FROM users u"), &[])
        .await?
    {
        let u = decode_user(&row)?;
        out.insert(("users".to_owned(), u.id.to_string()), format!("{u:?}"));
    }
    Ok(())
}

/// See [`crate::Store::change_user`].
pub(crate) async fn change_user(
    db: &Db,
    tokens: &TokenCache,
    user_id: UserId,
    change: UserChange,
    actor: UserId,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    if matches!(change, UserChange::UserAdded { .. }) {
        return Err(invalid("change", "a user is added with a first token"));
    }
    let (mut tx, _) = db.begin_write(false).await?;
    let user = record(&mut tx, user_id, change, actor, now).await?;
    tx.commit().await?;
    tokens.clear();
    Ok(user)
}

/// See [`crate::Store::user_changes`].
pub(crate) async fn user_changes(
    db: &Db,
    after: u64,
    limit: u32,
    user: Option<UserId>,
) -> Result<Vec<UserChangeRecord>, StoreError> {
    let mut args = Vec::from(args![after, i64::from(limit)]);
    let mut only = "";
    if let Some(u) = user {
        args.extend(args![u.as_uuid()]);
        only = " AND user_id = $3";
    }
    db.reader()
        .fetch_all(
            &format!(
                "SELECT {CHANGE_COLUMNS} FROM user_changes WHERE seq > $1{only} \
                 ORDER BY seq LIMIT $2"
            ),
            &args,
        )
        .await?
        .iter()
        .map(decode_change)
        .collect()
}

/// See [`crate::Store::import_user_changes`].
pub(crate) async fn import_user_changes(
    db: &Db,
    tokens: &TokenCache,
    changes: &[UserChangeRecord],
) -> Result<u64, StoreError> {
    let (mut tx, _) = db.begin_write(false).await?;
    let mut last = lock_log(&mut tx).await?;
    for c in changes {
        if c.seq != last + 1 {
            return Err(invalid(
                "seq",
                format!(
                    "user change {} does not continue the user log at {}",
                    c.seq,
                    last + 1
                ),
            ));
        }
        let before = user_by_id(&mut tx, c.user_id).await?;
        let insert = before.is_none();
        let user = apply(before, c.user_id, &c.change, c.recorded_at)?;
        write_user(&mut tx, &user, insert).await?;
        insert_change(&mut tx, c).await?;
        last = c.seq;
    }
    tx.commit().await?;
    tokens.clear();
    Ok(changes.len() as u64)
}
