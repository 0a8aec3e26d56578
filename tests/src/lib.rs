//! The one end-to-end test kit of Galley: real HTTP and WebSocket against servers that
//! `galley::spawn` starts on port 0, exactly as `galley serve` starts them, each test with its
//! own database; and the `galley` binary itself as a child process.
//!
//! The suites in `tests/tests` and the galley crate's integration tests (through a
//! dev-dependency) share it:
//!
//! - [`Backend`]: a fresh database per test, the workspace's one test backend
//!   (`galley_storage::testing::Backend`, also the storage contract suite's): an SQLite file
//!   always, a fresh PostgreSQL database when `GALLEY_TEST_POSTGRES_URL` is set (skipped with a
//!   notice when not, failing when `GALLEY_REQUIRE_POSTGRES=1`), dropped even when a test fails;
//! - [`on_both_backends!`], which runs one scenario on each;
//! - servers in this process ([`start`], [`start_with`], [`test_config`]), users with tokens
//!   ([`add_user`], [`Newsroom`]);
//! - a GraphQL client over HTTP ([`Client`], [`Reply`]) and a graphql-transport-ws client
//!   ([`Ws`]);
//! - the seed article of `fixtures/seed-article.md` as a `ContentInput` ([`seed_article`], from
//!   the domain's one parser in `galley_domain::testing`) and other articles ([`short_article`],
//!   [`approved_article`]);
//! - the binary as a child process ([`Galley`]: one-shot commands, and `galley serve` waited for
//!   until it listens, killed on drop, its stderr kept for failure messages);
//! - a webhook receiver on 127.0.0.1 that records what it gets and answers as told
//!   ([`receiver::Receiver`]), with the Standard Webhooks check by the specification's own
//!   library ([`receiver::Delivery::verifies`]).
//!
//! Invariants: no test asserts on timing; timeouts ([`GUARD`], [`PROCESS_GUARD`]) only guard
//! against hangs. Every database a test creates is dropped, even when the test fails.

use std::time::Duration;

mod binary;
mod client;
mod content;
pub mod receiver;
mod server;
mod ws;

pub use binary::{Galley, Serve, Serving, LISTENING, PROCESS_GUARD};
pub use client::{
    approved_article, mutation, node_ids, short_article, types, wait_for_article, Client, Reply,
    GRAPHQL_RESPONSE_JSON, PAYLOAD,
};
pub use content::{content_input, parse_article, seed_article};
pub use galley_storage::testing::Backend;
pub use galley_storage::BackendKind;
pub use server::{add_user, start, start_with, test_config, Newsroom, User};
pub use ws::{Received, Ws};

pub use galley;
pub use serde_json;
pub use tokio;

/// How long any single wait may take before the test fails (a hang guard, not a measurement).
pub const GUARD: Duration = Duration::from_secs(20);

/// Runs an async scenario `fn(Backend)` once on SQLite and once on PostgreSQL, as two tests
/// named `<scenario>::on_sqlite` and `<scenario>::on_postgres`. The PostgreSQL test passes
/// with a notice when no server is configured, and fails when `GALLEY_REQUIRE_POSTGRES=1`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$scenario($crate::Backend::sqlite()).await;
            }

            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(backend) = $crate::Backend::postgres().await {
                    super::$scenario(backend).await;
                }
            }
        }
    )+};
}
