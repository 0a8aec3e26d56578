//! The console in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/console.mjs) plays the newsroom story against real servers, as three people
//! at once, with axe-core checking each main view, on SQLite and on PostgreSQL with two
//! replicas (the reviewer on the other one). Screenshots land in
//! target/console-screenshots/<backend>/.
//!
//! Skipped with a notice when Chromium or Node.js is missing, unless
//! `GALLEY_REQUIRE_BROWSER=1` (as in CI), which makes their absence a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use galley::RunningServer;
use galley_domain::Role;
use galley_tests::{add_user, seed_article, start, Backend, Client, User};
use serde_json::json;

const PASSWORD: &str = "newsroom-console-test";

fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("GALLEY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Whether the browser tests can run here; panics when they must and cannot.
fn browser_available() -> bool {
    let required = std::env::var("GALLEY_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = match (chromium().exists(), node) {
        (true, true) => return true,
        (false, _) => format!("no Chromium at {}", chromium().display()),
        (_, false) => "no node on PATH".to_owned(),
    };
    assert!(
        !required,
        "GALLEY_REQUIRE_BROWSER=1 but {missing} (apt-get install -y chromium nodejs npm)"
    );
    eprintln!("notice: skipping the console's browser tests: {missing}");
    false
}

/// Installs playwright-core and axe-core from the lock file when node_modules is missing.
fn npm_ci() {
    // Once per test binary: the two backends' tests run at once, and two `npm ci` in one
    // folder would race.
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(install_packages);
}

fn install_packages() {
    let dir = browser_dir();
    if dir.join("node_modules/playwright-core").exists()
        && dir.join("node_modules/axe-core").exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .expect("npm runs");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

async fn staff(server: &RunningServer) -> Vec<User> {
    let mut users = Vec::new();
    let staff: [(&str, &[Role]); 7] = [
        ("edith", &[Role::Editor]),
        ("eddie", &[Role::Editor]),
        ("rob", &[Role::Reviewer]),
        ("penny", &[Role::Publisher]),
        ("vic", &[Role::Viewer]),
        ("rita", &[Role::Editor, Role::Reviewer]),
        ("ada", &[Role::Admin]),
    ];
    for (name, roles) in staff {
        users.push(add_user(server, name, roles).await);
        galley::users::set_password(server.store(), name, PASSWORD)
            .await
            .expect("the password is set");
    }
    users
}

/// Runs the story script; returns the article id it reports.
async fn play(a: &RunningServer, b: &RunningServer, label: &str) -> String {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/console-screenshots")
        .join(label);
    let script = browser_dir().join("console.mjs");
    let seed = seed_article().to_string();
    let (url_a, url_b) = (a.http_url(), b.http_url());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("GALLEY_URL_A", url_a)
            .env("GALLEY_URL_B", url_b)
            .env("GALLEY_SEED", seed)
            .env("GALLEY_SCREENSHOTS", &shots)
            .env("GALLEY_PASSWORD", PASSWORD)
            .env("GALLEY_CHROMIUM", chromium())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser story failed on {label}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STORY COMPLETE "))
        .unwrap_or_else(|| panic!("no STORY COMPLETE line:\n{stdout}"))
        .trim()
        .to_owned();
    assert!(
        stdout.contains("axe: dashboard: ") && stdout.contains("0 serious or critical"),
        "{stdout}"
    );
    id
}

/// What the browser did, read back through the API: the whole story is in the log.
async fn check_the_log(server: &RunningServer, viewer: &User, id: &str) {
    let client = Client::new(server, Some(viewer.clone()));
    let data = client
        .ok(
            r#"query($id: ID!) { article(id: $id) { status liveRevision revisionNumber
                comments { body author { name } }
                history(first: 50) { edges { node { type payload actorUser { name } } } } } }"#,
            json!({ "id": id }),
        )
        .await;
    let article = &data["article"];
    // Revision 3 is live; revision 1, restored as revision 4, is the working draft.
    assert_eq!(article["status"], "DRAFT");
    assert_eq!(article["liveRevision"], 3);
    assert_eq!(article["revisionNumber"], 4);
    assert_eq!(article["comments"][0]["author"]["name"], "rob");
    let events: Vec<(String, String)> = article["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["type"].as_str().unwrap().to_owned(),
                e["node"]["actorUser"]["name"]
                    .as_str()
                    .unwrap_or("system")
                    .to_owned(),
            )
        })
        .collect();
    let has = |t: &str, who: &str| events.iter().any(|(a, b)| a == t && b == who);
    assert!(has("ChangesRequested", "rob"), "{events:?}");
    assert!(has("RevisionApproved", "rob"), "{events:?}");
    assert!(has("ArticlePublished", "penny"), "{events:?}");
    assert!(has("DraftRevised", "edith"), "{events:?}");
    assert!(has("RevisionRestored", "edith"), "{events:?}");
    // The second editor's save was refused: only edith ever revised.
    assert!(!events.iter().any(|(_, who)| who == "eddie"), "{events:?}");
    // Nobody acted as the viewer.
    assert!(!events.iter().any(|(_, who)| who == "vic"), "{events:?}");
    let correction = article["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["type"] == "ArticlePublished")
        .filter_map(|e| e["node"]["payload"]["correction"].as_str())
        .next();
    assert_eq!(
        correction,
        Some("An earlier version did not say when KFOR spoke.")
    );

    // The publishing desk's article went through every publishing action.
    client.search_indexed().await;
    let data = client
        .ok(
            r#"{ articles(filter: {text: "Rita wrote herself"}) { nodes { status
                history(first: 50) { edges { node { type actorUser { name } } } } } } }"#,
            json!({}),
        )
        .await;
    let other = &data["articles"]["nodes"][0];
    assert_eq!(other["status"], "DRAFT", "{other}");
    let types: Vec<(&str, &str)> = other["history"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["type"].as_str().unwrap(),
                e["node"]["actorUser"]["name"].as_str().unwrap_or("system"),
            )
        })
        .collect();
    for expected in [
        ("RevisionApproved", "rob"),
        ("PublicationScheduled", "penny"),
        ("ScheduleCancelled", "penny"),
        ("EmbargoSet", "edith"),
        ("EmbargoLifted", "ada"),
        ("ArticlePublished", "penny"),
        ("ArticleUnpublished", "penny"),
        ("ArticleArchived", "penny"),
        ("ArticleRestored", "penny"),
    ] {
        assert!(
            types.contains(&expected),
            "{expected:?} missing from {types:?}"
        );
    }
    // Rita's own approval was refused: she never approved anything.
    assert!(!types.contains(&("RevisionApproved", "rita")), "{types:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newsroom_story_in_the_browser_on_sqlite() {
    if !browser_available() {
        return;
    }
    npm_ci();
    let backend = Backend::sqlite();
    let server = start(&backend).await;
    let users = staff(&server).await;
    let id = play(&server, &server, "sqlite").await;
    check_the_log(&server, &users[4], &id).await;
    server.shutdown().await.unwrap();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newsroom_story_in_the_browser_on_two_postgres_replicas() {
    if !browser_available() {
        return;
    }
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    npm_ci();
    let a = start(&backend).await;
    let b = start(&backend).await;
    let users = staff(&a).await;
    let id = play(&a, &b, "postgres").await;
    check_the_log(&b, &users[4], &id).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    backend.cleanup().await;
}
