//! The checked-in schema.graphql is the API's contract; it must be what the code produces.

#[test]
fn the_checked_in_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema.graphql");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = galley_api::sdl();
    assert!(
        checked_in == generated,
        "schema.graphql is stale; regenerate it with:\n\n    cargo run -p galley -- schema > schema.graphql\n"
    );
}
