//! Servers in this process (`galley::spawn`, exactly as `galley serve` starts them, on port 0),
//! the test configuration, and users with tokens.

use std::time::Duration;

use galley::{RunningServer, ServerConfig};
use galley_domain::Role;

use crate::{Backend, Client};

/// A configuration for tests: a fast scheduler, a short WebSocket init timeout, a short
/// shutdown grace, and no rate limit nor throttle of failed authentication (tests that
/// exercise them set them).
pub fn test_config(backend: &Backend) -> ServerConfig {
    let mut config = ServerConfig::new(backend.url());
    config.scheduler_interval = Some(Duration::from_millis(100));
    config.limits.ws_init_timeout = Duration::from_millis(500);
    config.limits.rate_limit_per_second = 0;
    config.limits.auth_failure_burst = 0;
    config.shutdown_grace = Duration::from_secs(2);
    config
}

/// Starts a server on `backend` with [`test_config`].
pub async fn start(backend: &Backend) -> RunningServer {
    start_with(test_config(backend)).await
}

/// Starts a server with a configuration.
pub async fn start_with(config: ServerConfig) -> RunningServer {
    galley::telemetry::init_logs(galley::config::LogFormat::Text, "warn");
    galley::spawn(config).await.expect("the server starts")
}

/// A user and their token.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// Their bearer token.
    pub token: String,
}

/// Adds a user with `roles`, as `galley users add` does.
pub async fn add_user(server: &RunningServer, name: &str, roles: &[Role]) -> User {
    let (user, token) = galley::users::add_user(server.store(), name, roles)
        .await
        .expect("the user is added");
    User {
        id: user.id.to_string(),
        name: name.to_owned(),
        token,
    }
}

/// The staff of a newsroom, one user per role, with a client each.
#[derive(Debug)]
pub struct Newsroom {
    /// EDITOR.
    pub editor: Client,
    /// REVIEWER.
    pub reviewer: Client,
    /// PUBLISHER.
    pub publisher: Client,
    /// VIEWER.
    pub viewer: Client,
    /// ADMIN.
    pub admin: Client,
}

impl Newsroom {
    /// Adds edith (EDITOR), rob (REVIEWER), penny (PUBLISHER), vic (VIEWER) and ada (ADMIN).
    pub async fn hire(server: &RunningServer) -> Newsroom {
        let client = |user: User| Client::new(server, Some(user));
        Newsroom {
            editor: client(add_user(server, "edith", &[Role::Editor]).await),
            reviewer: client(add_user(server, "rob", &[Role::Reviewer]).await),
            publisher: client(add_user(server, "penny", &[Role::Publisher]).await),
            viewer: client(add_user(server, "vic", &[Role::Viewer]).await),
            admin: client(add_user(server, "ada", &[Role::Admin]).await),
        }
    }
}
