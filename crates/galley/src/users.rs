//! Users and tokens, as library calls: `galley users add` and tests use the same functions.

use chrono::Utc;
use galley_api::auth::{generate_token, hash_token};
use galley_domain::{Role, UserId};
use galley_storage::{Store, StoreError, UserChange, UserRecord};
use uuid::Uuid;

/// Longest user name, in characters.
const NAME_MAX_CHARS: usize = 64;

fn check_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > NAME_MAX_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(StoreError::Invalid {
            field: "name".to_owned(),
            message: format!("must be 1 to {NAME_MAX_CHARS} printable characters"),
        });
    }
    Ok(name)
}

/// Adds a user with the given roles and returns them with their first token. The token is
/// shown only here; the store keeps its hash.
pub async fn add_user(
    store: &Store,
    name: &str,
    roles: &[Role],
) -> Result<(UserRecord, String), StoreError> {
    let name = check_name(name)?;
    if roles.is_empty() {
        return Err(StoreError::Invalid {
            field: "role".to_owned(),
            message: "at least one role is required".to_owned(),
        });
    }
    let token = generate_token();
    let user = store
        .create_user(
            UserId::from_uuid(Uuid::now_v7()),
            name,
            roles,
            &hash_token(&token),
            Utc::now(),
        )
        .await?;
    Ok((user, token))
}

/// Adds another token for an existing user.
pub async fn add_token(store: &Store, name: &str) -> Result<(UserRecord, String), StoreError> {
    let token = generate_token();
    let user = store
        .add_token(check_name(name)?, &hash_token(&token), Utc::now())
        .await?;
    Ok((user, token))
}

/// Records a change to the user named `name`, made from the command line (by the system).
pub async fn change_user(
    store: &Store,
    name: &str,
    change: UserChange,
) -> Result<UserRecord, StoreError> {
    let user = store
        .user_by_name(check_name(name)?)
        .await?
        .ok_or(StoreError::NotFound)?;
    store
        .change_user(user.id, change, UserId::SYSTEM, Utc::now())
        .await
}

/// Parses role names given on the command line ("editor", "REVIEWER").
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>, galley_domain::DomainError> {
    names.iter().map(|n| n.parse()).collect()
}

/// Sets a user's console password (Argon2id), ending their console sessions.
pub async fn set_password(
    store: &Store,
    name: &str,
    password: &str,
) -> Result<UserRecord, StoreError> {
    let hash = galley_api::session::hash_password(password).map_err(|e| StoreError::Invalid {
        field: "password".to_owned(),
        message: e.message().to_owned(),
    })?;
    store
        .set_password_hash(check_name(name)?, &hash, Utc::now())
        .await
}

/// Reads a new password: from the terminal without echo (asked twice) when standard input is
/// one, else the first line of standard input (so a script can pipe it).
pub fn read_password(name: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New console password for {name}: "))?;
        let again = rpassword::prompt_password("Repeat it: ")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(galley_api::session::PASSWORD_MAX_BYTES as u64 + 2)
        .read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
