//! The `galley` binary's commands, run as a newcomer would run them.

use std::process::Output;

use galley_tests::{seed_article, test_config, Backend, Client, Galley, Reply};
use serde_json::json;

fn galley(url: &str, args: &[&str]) -> Output {
    Galley::new(env!("CARGO_BIN_EXE_galley"), url).run(args)
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn schema_prints_the_sdl() {
    let out = galley("sqlite::memory:", &["schema"]);
    assert!(stdout(&out).contains("type Mutation"));
}

#[test]
fn help_never_prints_the_database_password() {
    let url = "postgres://galley:S3cret-pw@db.internal:5432/galley";
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["users", "add", "--help"],
    ] {
        let out = stdout(&galley(url, args));
        assert!(out.contains("GALLEY_DATABASE_URL"), "{out}");
        assert!(
            !out.contains("S3cret-pw"),
            "{args:?} printed the secret: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_tokens_export_import_and_verify_work_from_the_command_line() {
    let source = Backend::sqlite();
    let url = source.url().to_owned();
    stdout(&galley(&url, &["migrate"]));

    // users add prints the token alone on the last line.
    let out = stdout(&galley(
        &url,
        &[
            "users", "add", "edith", "--role", "editor", "--role", "reviewer",
        ],
    ));
    let token = out.lines().last().unwrap().to_owned();
    assert!(token.starts_with("glly_") && !token.contains(' '), "{out}");
    let listed = stdout(&galley(&url, &["users", "list"]));
    assert!(
        listed.contains("edith") && listed.contains("EDITOR,REVIEWER"),
        "{listed}"
    );
    let refused = galley(&url, &["users", "add", "nobody", "--role", "janitor"]);
    assert!(!refused.status.success());

    // The token works against a server on the same database.
    let server = galley::spawn(test_config(&source)).await.unwrap();
    let client = Client::with_token(&server, &token);
    let me = client.ok("{ me { name } }", json!({})).await;
    assert_eq!(me["me"]["name"], "edith");
    client
        .ok(
            "mutation($c: ContentInput!) { createArticle(content: $c) { article { id } } }",
            json!({"c": seed_article()}),
        )
        .await;
    server.shutdown().await.unwrap();

    // A second token, then revoking every token.
    let second = stdout(&galley(&url, &["tokens", "add", "edith"]));
    assert!(second.lines().last().unwrap().starts_with("glly_"));
    assert!(stdout(&galley(&url, &["tokens", "revoke", "edith"])).contains("revoked 2"));

    // Projections verify clean and rebuild.
    assert!(stdout(&galley(&url, &["projections", "verify"])).contains("match"));
    stdout(&galley(&url, &["projections", "rebuild"]));

    // Export, import into a fresh database, and the projections agree.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    let file = file.to_str().unwrap();
    stdout(&galley(&url, &["events", "export", "--output", file]));
    let exported = std::fs::read_to_string(file).unwrap();
    // The user log first (edith's addition), then the event; never a token.
    assert_eq!(exported.lines().count(), 2, "{exported}");
    assert!(exported
        .lines()
        .next()
        .unwrap()
        .starts_with("{\"userChange\""));
    assert!(exported.contains("\"type\":\"ArticleCreated\""));
    assert!(!exported.contains("glly_") && !exported.contains("token"));
    let target = Backend::sqlite();
    let imported = stdout(&galley(
        target.url(),
        &["events", "import", "--input", file],
    ));
    assert!(imported.contains("imported 1"), "{imported}");
    assert!(stdout(&galley(target.url(), &["projections", "verify"])).contains("match"));
    let again = galley(target.url(), &["events", "export"]);
    assert_eq!(stdout(&again), exported);
    // The people travel with the log: same name, id and roles.
    assert_eq!(
        stdout(&galley(target.url(), &["users", "list"])),
        stdout(&galley(&url, &["users", "list"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_changes_from_the_command_line_are_history_and_disabling_stops_tokens() {
    let backend = Backend::sqlite();
    let url = backend.url().to_owned();
    stdout(&galley(&url, &["migrate"]));
    let out = stdout(&galley(
        &url,
        &["users", "add", "rob", "--role", "reviewer"],
    ));
    let token = out.lines().last().unwrap().to_owned();

    let roles = stdout(&galley(
        &url,
        &[
            "users", "roles", "rob", "--role", "editor", "--role", "reviewer",
        ],
    ));
    assert!(roles.contains("EDITOR,REVIEWER"), "{roles}");
    assert!(stdout(&galley(&url, &["users", "rename", "rob", "robert"])).contains("robert"));
    assert!(!galley(&url, &["users", "rename", "rob", "x"])
        .status
        .success());
    assert!(
        !galley(&url, &["users", "roles", "robert", "--role", "janitor"])
            .status
            .success()
    );

    let server = galley::spawn(test_config(&backend)).await.unwrap();
    let client = Client::with_token(&server, &token);
    let me = client.ok("{ me { name roles } }", json!({})).await;
    assert_eq!(
        me["me"],
        json!({"name": "robert", "roles": ["EDITOR", "REVIEWER"]})
    );

    stdout(&galley(&url, &["users", "disable", "robert"]));
    assert!(!galley(&url, &["users", "disable", "robert"])
        .status
        .success());
    let listed = stdout(&galley(&url, &["users", "list"]));
    assert!(listed.trim_end().ends_with("disabled"), "{listed}");
    // A server beside the command line (SQLite, another process) refuses the token once its
    // cached lookup expires (GALLEY_TOKEN_CACHE_SECS, 5 s by default): wait for it, bounded.
    let mut refused = false;
    for _ in 0..100 {
        let Reply { body, .. } = client.post("{ me { name } }", json!({})).await;
        if body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "a disabled user's token still works");
    server.shutdown().await.unwrap();

    stdout(&galley(&url, &["users", "enable", "robert"]));
    let history = stdout(&galley(&url, &["users", "history", "robert"]));
    let types: Vec<&str> = history
        .lines()
        .map(|l| l.split('\t').nth(2).unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "UserAdded",
            "UserRolesChanged",
            "UserRenamed",
            "UserDisabled",
            "UserEnabled"
        ],
        "{history}"
    );
    assert!(stdout(&galley(&url, &["projections", "verify"])).contains("match"));
}

/// Runs the binary with `input` piped to its standard input.
fn galley_with_stdin(url: &str, args: &[&str], input: &str) -> Output {
    Galley::new(env!("CARGO_BIN_EXE_galley"), url).run_with_stdin(args, input)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_passwd_reads_the_password_from_stdin_and_sessions_revoke_ends_sessions() {
    let backend = Backend::sqlite();
    let url = backend.url().to_owned();
    stdout(&galley(
        &url,
        &["users", "add", "rob", "--role", "reviewer"],
    ));
    let out = stdout(&galley_with_stdin(
        &url,
        &["users", "passwd", "rob"],
        "a-long-enough-password\n",
    ));
    assert!(out.contains("set the console password of rob"), "{out}");
    // Too short, or for nobody: refused, nothing changed.
    assert!(
        !galley_with_stdin(&url, &["users", "passwd", "rob"], "short\n")
            .status
            .success()
    );
    assert!(!galley_with_stdin(
        &url,
        &["users", "passwd", "nobody"],
        "a-long-enough-password\n"
    )
    .status
    .success());

    // The stored hash is Argon2id and the password verifies against it.
    let store = galley_storage::Store::connect(&galley_storage::StoreOptions {
        url: url.clone(),
        ..galley_storage::StoreOptions::default()
    })
    .await
    .unwrap();
    let credentials = store.credentials("rob").await.unwrap().unwrap();
    let hash = credentials.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(galley_api::session::verify_password(
        "a-long-enough-password",
        Some(&hash)
    ));
    let user = credentials.user;
    let now = chrono::Utc::now();
    store
        .create_session("a-hash", user.id, now, now + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(store
        .user_by_session_hash("a-hash", now)
        .await
        .unwrap()
        .is_some());
    store.close().await;
    let out = stdout(&galley(&url, &["sessions", "revoke", "rob"]));
    assert!(out.contains("ended 1 console session(s) of rob"), "{out}");
}
