//! The `users` rows: their columns, their decoding, and the lookups every part of auth shares.

use std::str::FromStr;

use galley_domain::{Role, UserId};

use crate::backend::{args, is_unique_violation, Exec, Row};
use crate::error::StoreError;
use crate::model::UserRecord;

/// The columns of `users u`, in the order [`decode_user`] reads them.
pub(crate) const USER_COLUMNS: &str = "u.id, u.name, u.roles, u.created_at, u.disabled_at";

pub(crate) fn decode_user(row: &Row) -> Result<UserRecord, StoreError> {
    let roles: Vec<String> = row.json("roles")?;
    Ok(UserRecord {
        id: UserId::from_uuid(row.get("id")?),
        name: row.get("name")?,
        roles: roles
            .iter()
            .map(|r| Role::from_str(r))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt(format!("stored role: {e}")))?,
        created_at: row.get("created_at")?,
        disabled_at: row.get("disabled_at")?,
    })
}

pub(crate) fn name_taken(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Invalid {
            field: "name".to_owned(),
            message: "is taken by another user".to_owned(),
        }
    } else {
        StoreError::Backend(e)
    }
}

/// The user with this name.
pub(crate) async fn user_by_name(
    mut exec: Exec<'_>,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    exec.fetch_optional(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"),
        &args![name],
    )
    .await?
    .as_ref()
    .map(decode_user)
    .transpose()
}
