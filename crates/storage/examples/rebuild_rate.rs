//! Measures `Store::rebuild_projections` (events replayed per second) on an existing database.
//!
//! ```text
//! cargo run --release -p galley-storage --example rebuild_rate -- <database url>
//! ```
//!
//! The database should be a scratch one: the projections are dropped and rebuilt.

use std::time::Instant;

use galley_storage::{Store, StoreOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: rebuild_rate <database url>");
        std::process::exit(2);
    };
    let store = Store::connect(&StoreOptions {
        url,
        max_connections: 4,
        migrate: true,
        ..StoreOptions::default()
    })
    .await?;
    let start = Instant::now();
    let events = store.rebuild_projections().await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rebuilt from {events} events in {secs:.2}s = {:.0} events/s",
        events as f64 / secs
    );
    store.close().await;
    Ok(())
}
