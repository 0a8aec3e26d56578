//! The commands of the `galley` binary, as one library function.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use galley_storage::{EventFilter, Store, StoreOptions, StoredEvent, UserChange, UserChangeRecord};

use crate::config::{
    Cli, Command, EventsCommand, GlobalArgs, ProjectionsCommand, ServerConfig, SessionsCommand,
    TokensCommand, UsersCommand,
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
                UsersCommand::Passwd { name } => {
                    let password = users::read_password(&name)?;
                    let user = users::set_password(&store, &name, &password).await?;
                    println!(
                        "set the console password of {}; their console sessions are ended",
                        user.name
                    );
                }
                UsersCommand::List => {
                    for user in store.users().await? {
                        println!(
                            "{}\t{}\t{}\t{}{}",
                            user.name,
                            user.id,
                            roles_text(&user.roles),
                            user.created_at.to_rfc3339(),
                            if user.disabled_at.is_some() {
                                "\tdisabled"
                            } else {
                                ""
                            }
                        );
                    }
                }
                UsersCommand::Roles { name, roles } => {
                    let roles = users::parse_roles(&roles)?;
                    let change = UserChange::UserRolesChanged { roles };
                    let user = users::change_user(&store, &name, change).await?;
                    println!(
                        "{} now has the roles {}",
                        user.name,
                        roles_text(&user.roles)
                    );
                }
                UsersCommand::Rename { name, new_name } => {
                    let change = UserChange::UserRenamed { name: new_name };
                    let user = users::change_user(&store, &name, change).await?;
                    println!("renamed {name} to {}", user.name);
                }
                UsersCommand::Disable { name } => {
                    let user =
                        users::change_user(&store, &name, UserChange::UserDisabled {}).await?;
                    println!("disabled {}; their tokens no longer work", user.name);
                }
                UsersCommand::Enable { name } => {
                    let user =
                        users::change_user(&store, &name, UserChange::UserEnabled {}).await?;
                    println!("enabled {}", user.name);
                }
                UsersCommand::History { name } => {
                    let user = store
                        .user_by_name(&name)
                        .await?
                        .ok_or(galley_storage::StoreError::NotFound)?;
                    for c in store.user_changes(0, u32::MAX, Some(user.id)).await? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            c.seq,
                            c.recorded_at.to_rfc3339(),
                            c.change.change_type(),
                            serde_json::to_string(&c.change)?,
                            c.actor
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
        Command::Sessions(SessionsCommand::Revoke { name }) => {
            let store = connect(&global, true).await?;
            let n = store.revoke_sessions(&name, chrono::Utc::now()).await?;
            println!("ended {n} console session(s) of {name}");
            store.close().await;
        }
        Command::Projections(cmd) => {
            let store = connect(&global, true).await?;
            let code = match cmd {
                ProjectionsCommand::Rebuild => {
                    let n = store.rebuild_projections().await?;
                    analyze(&store).await?;
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
                    eprintln!("indexing the imported events for search");
                    let index = store.index_search().await?;
                    analyze(&store).await?;
                    println!(
                        "imported {n} event(s); search indexed up to position {}",
                        index.checkpoint
                    );
                }
            }
            store.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Updates the planner statistics after a bulk write (see [`Store::analyze`]), saying so.
async fn analyze(store: &Store) -> anyhow::Result<()> {
    if store
        .analyze()
        .await
        .context("cannot update the planner statistics")?
    {
        eprintln!("updated the database's planner statistics (ANALYZE)");
    }
    Ok(())
}

async fn connect(global: &GlobalArgs, migrate: bool) -> anyhow::Result<Store> {
    Store::connect(&StoreOptions {
        url: global.database_url.clone(),
        max_connections: global.database_max_connections.min(4),
        migrate,
        statement_timeout: std::time::Duration::from_millis(
            global.database_statement_timeout_ms.max(1),
        ),
        acquire_timeout: std::time::Duration::from_millis(
            global.database_acquire_timeout_ms.max(1),
        ),
        // A command runs briefly; what it must index it indexes itself (import), and a
        // server's indexer does the rest.
        search_indexer: galley_storage::IndexerOptions {
            enabled: false,
            ..galley_storage::IndexerOptions::default()
        },
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

/// The key of an export line that holds a change of the user log rather than an event.
const USER_CHANGE_KEY: &str = "userChange";

/// Writes the user log (each change a line `{"userChange": …}`; never a token), then every
/// event, as NDJSON, oldest first; returns how many events.
pub async fn export(store: &Store, mut out: impl Write) -> anyhow::Result<u64> {
    let mut after = 0;
    loop {
        let page = store.user_changes(after, CHUNK, None).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for change in page {
            serde_json::to_writer(&mut out, &serde_json::json!({ USER_CHANGE_KEY: change }))?;
            out.write_all(b"\n")?;
        }
    }
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

/// Reads NDJSON written by [`export`] and appends it as it was (the user log first, then the
/// events); returns how many events.
pub async fn import(store: &Store, input: impl BufRead) -> anyhow::Result<u64> {
    let mut batch: Vec<StoredEvent> = Vec::with_capacity(CHUNK as usize);
    let mut changes: Vec<UserChangeRecord> = Vec::new();
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if line.trim_start().starts_with("{\"userChange\"") {
            if n > 0 || !batch.is_empty() {
                anyhow::bail!("line {}: user changes come before every event", i + 1);
            }
            let mut line: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("line {} is not JSON", i + 1))?;
            let change: UserChangeRecord = serde_json::from_value(line[USER_CHANGE_KEY].take())
                .with_context(|| format!("line {} is not an exported user change", i + 1))?;
            changes.push(change);
            if changes.len() == CHUNK as usize {
                store.import_user_changes(&changes).await?;
                changes.clear();
            }
            continue;
        }
        if !changes.is_empty() {
            store.import_user_changes(&changes).await?;
            changes.clear();
        }
        let event: StoredEvent = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an exported event", i + 1))?;
        batch.push(event);
        if batch.len() == CHUNK as usize {
            n += store.import_events(&batch).await?;
            batch.clear();
        }
    }
    if !changes.is_empty() {
        store.import_user_changes(&changes).await?;
    }
    if !batch.is_empty() {
        n += store.import_events(&batch).await?;
    }
    Ok(n)
}
