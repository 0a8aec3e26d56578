//! The first run on a fresh SQLite file, as the README has it: several processes migrating
//! the same new file at once must all succeed (they serialise on a lock beside the database).

use std::process::{Command, Stdio};

fn galley(url: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_galley"))
        .args(args)
        .env("GALLEY_DATABASE_URL", url)
        .env("GALLEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the galley binary runs")
}

#[test]
fn two_migrators_and_a_users_add_on_one_fresh_file_all_succeed() {
    // Several rounds, each on a fresh file: the race it guards against lost about half the
    // time without the lock.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("galley.db").display()
        );
        let children = vec![
            galley(&url, &["migrate"]),
            galley(&url, &["migrate"]),
            galley(
                &url,
                &["users", "add", &format!("alice{round}"), "--role", "admin"],
            ),
        ];
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: exit {:?}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = Command::new(env!("CARGO_BIN_EXE_galley"))
            .args(["users", "list"])
            .env("GALLEY_DATABASE_URL", &url)
            .env("GALLEY_LOG", "warn")
            .output()
            .unwrap();
        assert!(list.status.success());
        assert!(String::from_utf8_lossy(&list.stdout).contains(&format!("alice{round}")));
    }
}
