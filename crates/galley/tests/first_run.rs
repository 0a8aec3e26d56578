//! The first run on a fresh SQLite file, as the README has it: several processes migrating
//! the same new file at once must all succeed (they serialise on a lock beside the database).

use galley_tests::{Backend, Galley};

fn galley(url: &str, args: &[&str]) -> std::process::Child {
    Galley::new(env!("CARGO_BIN_EXE_galley"), url).spawn(args)
}

#[test]
fn two_migrators_and_a_users_add_on_one_fresh_file_all_succeed() {
    // Several rounds, each on a fresh file: the race it guards against lost about half the
    // time without the lock.
    for round in 0..5 {
        let backend = Backend::sqlite();
        let url = backend.url();
        let children = vec![
            galley(url, &["migrate"]),
            galley(url, &["migrate"]),
            galley(
                url,
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
        let list = Galley::new(env!("CARGO_BIN_EXE_galley"), url).run(&["users", "list"]);
        assert!(list.status.success());
        assert!(String::from_utf8_lossy(&list.stdout).contains(&format!("alice{round}")));
    }
}
