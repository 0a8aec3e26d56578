//! The commands of the `galley` binary, as one library function.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use galley_storage::{EventFilter, Store, StoreOptions, StoredEvent};

use crate::config::{
    Cli, Command, EventsCommand, GlobalArgs, ProjectionsCommand, ServerConfig, TokensCommand,
    UsersCommand,
};
use crate::server::redact;
use crate::users;

/// Events per page when exporting, and per append when importing.
const CHUNK: u32 = 1_000;

/// Runs a parsed command line. Command output goes to stdout; logs go to stderr.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => {
            crate::server::serve(ServerConfig::from_args(&global, &args)).await?;
        }
        Command::Schema => print!("{}", galley_api::sdl()),
        Command::Migrate => {
            let store = connect(&global, false).await?;
            store.migrate().await.context("migration failed")?;
            println!("migrations applied to {}", redact(&global.database_url));
            store.close().await;
        }
        Command::Users(cmd) => {
            let store = connect(&global, true).await?;
            match cmd {
                UsersCommand::Add { name, roles } => {
                    let roles = users::parse_roles(&roles)?;
                    let (user, token) = users::add_user(&store, &name, &roles).await?;
                    println!(
                        "added user {} ({}) with roles {}; their token follows and is shown only once",
                        user.name,
                        user.id,
                        roles_text(&user.roles)
                    );
                    println!("{token}");
                }
                UsersCommand::List => {
                    for user in store.users().await? {
                        println!(
                            "{}\t{}\t{}\t{}",
                            user.name,
                            user.id,
                            roles_text(&user.roles),
                            user.created_at.to_rfc3339()
                        );
                    }
                }
            }
            store.close().await;
        }
        Command::Tokens(cmd) => {
            let store = connect(&global, true).await?;
            match cmd {
                TokensCommand::Add { name } => {
                    let (user, token) = users::add_token(&store, &name).await?;
                    println!(
                        "added a token for {}; it follows and is shown only once",
                        user.name
                    );
                    println!("{token}");
                }
                TokensCommand::Revoke { name } => {
                    let n = store.revoke_tokens(&name, chrono::Utc::now()).await?;
                    println!("revoked {n} token(s) of {name}");
                }
            }
            store.close().await;
        }
        Command::Projections(cmd) => {
            let store = connect(&global, true).await?;
            let code = match cmd {
                ProjectionsCommand::Rebuild => {
                    let n = store.rebuild_projections().await?;
                    println!("rebuilt projections from {n} event(s)");
                    ExitCode::SUCCESS
                }
                ProjectionsCommand::Verify => {
                    let diffs = store.verify_projections().await?;
                    for d in &diffs {
                        println!("{}\t{}\t{}", d.table, d.key, d.detail);
                    }
                    if diffs.is_empty() {
                        println!("projections match the log");
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "{} difference(s) between the projections and the log",
                            diffs.len()
                        );
                        ExitCode::FAILURE
                    }
                }
            };
            store.close().await;
            return Ok(code);
        }
        Command::Probe(args) => return Ok(crate::probe::run(&args).await),
        Command::Events(cmd) => {
            let store = connect(&global, true).await?;
            match cmd {
                EventsCommand::Export { output } => {
                    let n = match output {
                        Some(path) => {
                            let file = std::fs::File::create(&path)
                                .with_context(|| format!("cannot create {}", path.display()))?;
                            export(&store, std::io::BufWriter::new(file)).await?
                        }
                        None => export(&store, std::io::stdout().lock()).await?,
                    };
                    eprintln!("exported {n} event(s)");
                }
                EventsCommand::Import { input } => {
                    let n = match input {
                        Some(path) => {
                            let file = std::fs::File::open(&path)
                                .with_context(|| format!("cannot open {}", path.display()))?;
                            import(&store, BufReader::new(file)).await?
                        }
                        None => import(&store, std::io::stdin().lock()).await?,
                    };
                    println!("imported {n} event(s)");
                }
            }
            store.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn connect(global: &GlobalArgs, migrate: bool) -> anyhow::Result<Store> {
    Store::connect(&StoreOptions {
        url: global.database_url.clone(),
        max_connections: global.database_max_connections.min(4),
        migrate,
        ..StoreOptions::default()
    })
    .await
    .with_context(|| format!("cannot open the database {}", redact(&global.database_url)))
}

fn roles_text(roles: &[galley_domain::Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes every event as NDJSON, oldest first; returns how many.
pub async fn export(store: &Store, mut out: impl Write) -> anyhow::Result<u64> {
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = store
            .read_all(after, CHUNK, &EventFilter::default())
            .await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in &page {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// Reads NDJSON written by [`export`] and appends it as it was; returns how many events.
pub async fn import(store: &Store, input: impl BufRead) -> anyhow::Result<u64> {
    let mut batch: Vec<StoredEvent> = Vec::with_capacity(CHUNK as usize);
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: StoredEvent = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an exported event", i + 1))?;
        batch.push(event);
        if batch.len() == CHUNK as usize {
            n += store.import_events(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        n += store.import_events(&batch).await?;
    }
    Ok(n)
}
