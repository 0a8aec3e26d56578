//! graphql-http's GraphQL-over-HTTP server audits and graphql-js's view of schema.graphql,
//! run by node (tests/graphql-audit/audit.mjs) against a real server on both backends.
//!
//! The script's packages are installed with `npm ci` in tests/graphql-audit when missing.
//! Skipped with a notice when node is not installed (or the packages cannot be installed),
//! unless GALLEY_REQUIRE_NODE=1 (CI), where that fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use galley_domain::Role;
use galley_tests::{add_user, on_both_backends, start, Backend};

on_both_backends!(the_graphql_over_http_audits_pass_and_the_schema_file_is_the_live_one);

fn audit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql-audit")
}

fn modules_installed() -> bool {
    audit_dir().join("node_modules/graphql-http").is_dir()
        && audit_dir().join("node_modules/graphql").is_dir()
}

/// Installs the audit's packages from its lock file with `npm ci` when they are missing, once
/// per test binary (the two backends' tests run at once).
fn install_modules() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if modules_installed() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(audit_dir())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("npm ci failed in {}", audit_dir().display());
        }
    });
}

/// Whether node and the installed packages are there (installing them with npm when node
/// is); panics when they are not and GALLEY_REQUIRE_NODE=1.
fn node_ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node {
        install_modules();
    }
    let modules = modules_installed();
    if node && modules {
        return true;
    }
    let why = if node {
        "tests/graphql-audit/node_modules is missing and npm ci could not install it"
    } else {
        "node is not installed"
    };
    if std::env::var("GALLEY_REQUIRE_NODE").as_deref() == Ok("1") {
        panic!("GALLEY_REQUIRE_NODE=1 but {why}");
    }
    eprintln!("skipping the GraphQL audits: {why}");
    false
}

async fn the_graphql_over_http_audits_pass_and_the_schema_file_is_the_live_one(backend: Backend) {
    if !node_ready() {
        return;
    }
    let server = start(&backend).await;
    let user = add_user(&server, "audrey", &[Role::Viewer]).await;
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let graphql_url = server.graphql_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("audit.mjs")
            .current_dir(audit_dir())
            .env("GALLEY_URL", graphql_url)
            .env("GALLEY_TOKEN", &user.token)
            .env("GALLEY_SCHEMA", schema)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "audit failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("audits: "), "{stdout}");
    assert!(stdout.contains("equals the live introspection"), "{stdout}");
    assert!(
        stdout.contains("every type and argument has a description"),
        "{stdout}"
    );
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}
