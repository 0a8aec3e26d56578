//! The README's "Running Galley step by step" block, run as written in a fresh folder: the
//! server started in the background and `galley users add` at once beside it. The only
//! changes are the ones a test must make: the `cargo build` line is dropped (this test's
//! binary is already built), `./target/release/galley` is that binary, and the server listens
//! on a free port (GALLEY_LISTEN, which the block leaves to its default).

use std::process::Command;

/// The shell block under the heading, as the README has it.
fn step_by_step_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("## Running Galley step by step")
        .nth(1)
        .expect("the README has the step-by-step section");
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = start + section[start..].find("```").expect("the block ends");
    section[start..end].to_owned()
}

#[test]
fn the_readme_first_run_works_as_written() {
    let block = step_by_step_block();
    assert!(block.contains("galley serve &"), "{block}");
    assert!(block.contains("users add"), "{block}");
    let binary = env!("CARGO_BIN_EXE_galley");
    let script: String = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("cargo build"))
        .map(|l| l.replace("./target/release/galley", binary))
        .collect::<Vec<_>>()
        .join("\n");
    // Several fresh folders: the race it guards against lost 2 times in 5.
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let full = format!(
            "set -eu\n{script}\n\
             test -n \"$EDITOR\" && test -n \"$REVIEWER\" && test -n \"$PUBLISHER\" && test -n \"$VIEWER\"\n\
             echo \"tokens $EDITOR $VIEWER\"\n\
             kill $! && wait $! || true\n"
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&full)
            .current_dir(dir.path())
            .env("GALLEY_LISTEN", "127.0.0.1:0")
            .env("GALLEY_LOG", "warn")
            .env_remove("GALLEY_DATABASE_URL")
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: exit {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for name in ["edith", "rob", "penny", "vic"] {
            assert!(stdout.contains(name), "round {round}: {stdout}");
        }
        let tokens = stdout
            .lines()
            .find_map(|l| l.strip_prefix("tokens "))
            .expect("the tokens line");
        assert!(
            tokens.split(' ').all(|t| t.starts_with("glly_")),
            "{tokens}"
        );
        assert!(dir.path().join("galley.db").exists());
    }
}
