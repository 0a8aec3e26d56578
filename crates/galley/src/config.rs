//! The command line and its configuration. Every flag has an environment variable, so a
//! container is configured without arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use galley_api::ApiLimits;
use galley_webhooks::{AddressPolicy, WebhookConfig};

use crate::connections::ConnectionLimits;

/// Galley: an event-sourced editorial workflow service.
#[derive(Debug, Parser)]
#[command(name = "galley", version, about)]
pub struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The database: an SQLite URL (sqlite://path?mode=rwc) or a PostgreSQL one (postgres://…).
    /// Its value is never printed by --help: a URL may hold a password.
    #[arg(
        long,
        env = "GALLEY_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://galley.db?mode=rwc",
        global = true
    )]
    pub database_url: String,
    /// Most database connections in the pool.
    #[arg(
        long,
        env = "GALLEY_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,
    /// Longest any one database call (statement, begin, commit) may take, in milliseconds;
    /// past it the call fails and the API answers 503 SERVICE_UNAVAILABLE. PostgreSQL also
    /// enforces it as statement_timeout.
    #[arg(
        long,
        env = "GALLEY_DATABASE_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub database_statement_timeout_ms: u64,
    /// Longest a request waits for a pool connection, opening a new one included (the
    /// connect timeout), in milliseconds.
    #[arg(
        long,
        env = "GALLEY_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub database_acquire_timeout_ms: u64,
    /// Log format.
    #[arg(long, env = "GALLEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, in tracing-subscriber's EnvFilter syntax.
    #[arg(long, env = "GALLEY_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// How logs are written (always to stderr; stdout belongs to command output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
// Parsed once at start-up: the size of `serve`'s many flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: GraphQL over HTTP and WebSocket, health, metrics and the scheduler.
    Serve(ServeArgs),
    /// Apply pending database migrations.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage console sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Rebuild or verify the projections from the event log.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Export or import the event log as NDJSON.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Ask a running server whether it is ready (GET URL/readyz; exit 0 when it answers 200):
    /// the container HEALTHCHECK, with no shell or curl in the image.
    Probe(ProbeArgs),
}

/// `galley probe` options.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The server's base URL (http:// only; it is meant for the loopback address).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Probe /healthz (the process answers) instead of /readyz (the database answers too).
    #[arg(long)]
    pub live: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// `galley users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; prints their first token alone on the last line of stdout.
    Add {
        /// A unique name.
        name: String,
        /// A role (viewer, editor, reviewer, publisher, admin); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List users (name, id, roles, added, and "disabled" for a disabled user).
    List,
    /// Replace a user's roles.
    Roles {
        /// The user's name.
        name: String,
        /// A role (viewer, editor, reviewer, publisher, admin); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Rename a user.
    Rename {
        /// The user's name.
        name: String,
        /// The new, unique name.
        new_name: String,
    },
    /// Disable a user: their tokens stop working; their history stays theirs.
    Disable {
        /// The user's name.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's name.
        name: String,
    },
    /// Every change to a user, oldest first.
    History {
        /// The user's name.
        name: String,
    },
    /// Set or change a user's console password, read from standard input (one line; not
    /// echoed on a terminal). Ends the user's console sessions.
    Passwd {
        /// The user's name.
        name: String,
    },
}

/// `galley sessions …`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every console session of a user (they must sign in again).
    Revoke {
        /// The user's name.
        name: String,
    },
}

/// `galley tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Add another token for a user; prints it alone on the last line of stdout.
    Add {
        /// The user's name.
        name: String,
    },
    /// Revoke every token of a user.
    Revoke {
        /// The user's name.
        name: String,
    },
}

/// `galley projections …`
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Drop every projection and replay the whole log into it.
    Rebuild,
    /// Rebuild into a scratch copy and report differences (exit code 1 when there are any).
    Verify,
}

/// `galley events …`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Write every event, oldest first, one JSON object per line.
    Export {
        /// The file to write (stdout when absent).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Append events exported by `events export` into an empty database.
    Import {
        /// The file to read (stdin when absent).
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
}

/// `galley serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, env = "GALLEY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Do not run migrations on start.
    #[arg(long, env = "GALLEY_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Largest request body in bytes.
    #[arg(long, env = "GALLEY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest an HTTP request may take, in seconds.
    #[arg(long, env = "GALLEY_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Deepest query nesting.
    #[arg(long, env = "GALLEY_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Highest query complexity (lists weighted by `first`).
    #[arg(long, env = "GALLEY_MAX_COMPLEXITY", default_value_t = 10_000)]
    pub max_complexity: usize,
    /// Most aliases in one document.
    #[arg(long, env = "GALLEY_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// Most directives on one field.
    #[arg(long, env = "GALLEY_MAX_DIRECTIVES", default_value_t = 10)]
    pub max_directives: usize,
    /// Parsed GraphQL documents kept by their text, so that a document sent again is not
    /// parsed again (0: parse every request). Only documents of at most 4 KiB are kept, and
    /// 64 KiB of text in all.
    #[arg(long, env = "GALLEY_DOCUMENTS_KEPT", default_value_t = galley_api::DOCUMENTS_KEPT)]
    pub documents_kept: usize,
    /// Largest page size (`first`).
    #[arg(long, env = "GALLEY_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: u32,
    /// Requests per second per user (0 disables the limit).
    #[arg(long, env = "GALLEY_RATE_LIMIT_PER_SECOND", default_value_t = 50)]
    pub rate_limit_per_second: u32,
    /// Requests a user may make at once.
    #[arg(long, env = "GALLEY_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,
    /// Seconds a successful token lookup is reused without asking the database (0 disables
    /// the cache). A revocation through this server, or any revocation on PostgreSQL, applies
    /// at once; on SQLite, `galley tokens revoke` from another process applies within this.
    #[arg(long, env = "GALLEY_TOKEN_CACHE_SECS", default_value_t = 5)]
    pub token_cache_secs: u64,
    /// Pages of article lists (read without bodies) kept for the log head they were read at
    /// (0 keeps none). Every list still reads the head from the database, so a write on any
    /// replica shows in the next list.
    #[arg(long, env = "GALLEY_LIST_CACHE_PAGES", default_value_t = galley_storage::LIST_CACHE_PAGES)]
    pub list_cache_pages: usize,
    /// SQLite only: the page cache of each database connection, in MiB (0: SQLite's default,
    /// 2 MiB); memory grows only as pages are read.
    #[arg(long, env = "GALLEY_SQLITE_CACHE_MIB", default_value_t = 0)]
    pub sqlite_cache_mib: u32,
    /// SQLite only: how much of the database file each connection reads through a memory
    /// map, in MiB (0: none, every page is copied in by a system call). The map is address
    /// space, not memory: the pages are the operating system's file cache, shared by all
    /// connections.
    #[arg(long, env = "GALLEY_SQLITE_MMAP_MIB", default_value_t = galley_storage::SQLITE_MMAP_MIB)]
    pub sqlite_mmap_mib: u32,
    /// Milliseconds the search indexer waits after a write before it indexes, so that one
    /// pass gathers the revisions of that time (at least 1): about how far text search lags
    /// behind a quiet log. Every replica runs an indexer; one at a time does a pass.
    #[arg(long, env = "GALLEY_SEARCH_INDEX_DELAY_MS", default_value_t = 50)]
    pub search_index_delay_ms: u64,
    /// Seconds a WebSocket may wait before connection_init (then closed with 4408).
    #[arg(long, env = "GALLEY_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,
    /// Milliseconds between scheduler runs.
    #[arg(long, env = "GALLEY_SCHEDULER_INTERVAL_MS", default_value_t = 1000)]
    pub scheduler_interval_ms: u64,
    /// Do not run the scheduler in this process.
    #[arg(long, env = "GALLEY_NO_SCHEDULER")]
    pub no_scheduler: bool,
    /// Serve /metrics without a token (for a scraper on a private network).
    #[arg(long, env = "GALLEY_PUBLIC_METRICS")]
    pub public_metrics: bool,
    /// Also serve /metrics, without a token, on this address (e.g. 0.0.0.0:9090): for a
    /// scraper on a port the load balancer does not expose. Nothing else is served there.
    #[arg(long, env = "GALLEY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Refuse introspection (`__schema`, `__type`).
    #[arg(long, env = "GALLEY_NO_INTROSPECTION")]
    pub no_introspection: bool,
    /// Serve the GraphiQL IDE page at /graphiql (its assets load from unpkg.com). Default:
    /// on for an SQLite database, off for PostgreSQL.
    #[arg(long, env = "GALLEY_GRAPHIQL", num_args = 0..=1, default_missing_value = "true")]
    pub graphiql: Option<bool>,
    /// An origin whose browser pages may call the API (CORS), e.g. https://desk.example.org;
    /// repeat, or comma-separate in the variable. None by default: CORS is off.
    #[arg(long = "cors-allowed-origin", env = "GALLEY_CORS_ALLOWED_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<String>,
    /// Seconds to wait for WebSocket connections to close on shutdown.
    /// How long a console session lasts after sign-in, in hours.
    #[arg(long, env = "GALLEY_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u64,
    /// Mark the console's session cookie `Secure` (set this when clients reach Galley over
    /// HTTPS, e.g. behind a TLS proxy).
    #[arg(long, env = "GALLEY_SECURE_COOKIES")]
    pub secure_cookies: bool,
    #[arg(long, env = "GALLEY_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Seconds an idempotency key is remembered (at least; it is pruned soon after). A key used
    /// again later names a new command.
    #[arg(long, env = "GALLEY_IDEMPOTENCY_RETENTION_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_retention_secs: u64,
    /// Seconds a request's head may take to arrive once the server waits for one (on a new
    /// connection and between keep-alive requests); then the connection is closed.
    #[arg(long, env = "GALLEY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds an HTTP connection may stay idle after a response before it is closed.
    #[arg(long, env = "GALLEY_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 5)]
    pub keep_alive_timeout_secs: u64,
    /// Most HTTP connections open at once (0: derived from the open-file limit). At the cap
    /// the idlest connection is closed to make room; if none is idle the new one is answered
    /// 503 with Retry-After.
    #[arg(long, env = "GALLEY_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Most WebSocket connections open at once, those waiting for connection_init included
    /// (0: derived from the open-file limit); an upgrade over it is answered 503.
    #[arg(long, env = "GALLEY_MAX_WEBSOCKETS", default_value_t = 0)]
    pub max_websockets: usize,
    /// Most operations running on one WebSocket connection; a subscribe over it gets an
    /// error message (BAD_REQUEST).
    #[arg(
        long,
        env = "GALLEY_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_subscriptions_per_connection: usize,
    /// Failed authentications one client address may make at once before further failures
    /// are answered 429 with Retry-After (0 disables the throttle). Valid tokens are never
    /// throttled.
    #[arg(long, env = "GALLEY_AUTH_FAILURE_BURST", default_value_t = 30)]
    pub auth_failure_burst: u32,
    /// Failed authentications per minute an address earns back.
    #[arg(long, env = "GALLEY_AUTH_FAILURES_PER_MINUTE", default_value_t = 60)]
    pub auth_failures_per_minute: u32,
    /// Most client addresses whose failures are remembered (beyond it they share one budget).
    #[arg(
        long,
        env = "GALLEY_AUTH_FAILURE_MAX_ADDRESSES",
        default_value_t = 10_000
    )]
    pub auth_failure_max_addresses: usize,
    /// Milliseconds /readyz waits for the database before answering 503.
    #[arg(long, env = "GALLEY_READY_TIMEOUT_MS", default_value_t = 2_000)]
    pub ready_timeout_ms: u64,
    /// Do not dispatch webhooks in this process (endpoints are still managed here; another
    /// replica delivers).
    #[arg(long, env = "GALLEY_NO_WEBHOOK_DISPATCH")]
    pub no_webhook_dispatch: bool,
    /// Accept http:// webhook urls, not only https:// (for receivers on a trusted network).
    #[arg(long, env = "GALLEY_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,
    /// A network (CIDR, e.g. 10.0.0.0/8 or 127.0.0.1/32) webhooks may reach although it is
    /// loopback, private, link-local or otherwise special, which are refused by default
    /// (server-side request forgery); repeat, or comma-separate in the variable.
    #[arg(long = "webhook-allow-network", env = "GALLEY_WEBHOOK_ALLOW_NETWORKS",
          value_delimiter = ',', value_parser = parse_network)]
    pub webhook_allow_networks: Vec<ipnet::IpNet>,
    /// Milliseconds a webhook delivery may take to connect (TCP and TLS).
    #[arg(
        long,
        env = "GALLEY_WEBHOOK_CONNECT_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub webhook_connect_timeout_ms: u64,
    /// Milliseconds a webhook delivery may take in all (the answer's first kilobyte included).
    #[arg(long, env = "GALLEY_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Milliseconds the first retry of a failed delivery waits at most; each next retry up to
    /// twice as long (a random time from zero to that bound).
    #[arg(long, env = "GALLEY_WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
    pub webhook_retry_base_ms: u64,
    /// Milliseconds no retry waits longer than.
    #[arg(long, env = "GALLEY_WEBHOOK_RETRY_CAP_MS", default_value_t = 600_000)]
    pub webhook_retry_cap_ms: u64,
    /// Seconds an endpoint's deliveries may keep failing, without a success, before it is
    /// DISABLED until an admin resumes it.
    #[arg(
        long,
        env = "GALLEY_WEBHOOK_DISABLE_AFTER_SECS",
        default_value_t = 259_200
    )]
    pub webhook_disable_after_secs: u64,
    /// Milliseconds between a replica's looks for webhook endpoints nobody dispatches (the
    /// longest a dead replica's endpoints wait to be taken over).
    #[arg(long, env = "GALLEY_WEBHOOK_SCAN_INTERVAL_MS", default_value_t = 2_000)]
    pub webhook_scan_interval_ms: u64,
}

/// File descriptors kept out of the connection caps: the database pool, the SQLite files,
/// the listener, logs.
const RESERVED_FILES: u64 = 128;

/// The open-file limit (soft), or `None` where it cannot be read.
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The default caps of HTTP and WebSocket connections: what the open-file limit allows (half
/// each, after [`RESERVED_FILES`]), at most 4096 each. A server that accepted more sockets
/// than it has descriptors would fail `accept` and stop answering /healthz.
pub fn default_connection_caps() -> (usize, usize) {
    let files = open_file_limit().unwrap_or(1024);
    let each = (files.saturating_sub(RESERVED_FILES) / 2).clamp(16, 4096);
    let each = usize::try_from(each).unwrap_or(4096);
    (each, each)
}

/// Everything `spawn` needs to start a server. Tests build it with [`ServerConfig::new`] and
/// adjust fields; `galley serve` builds it from the command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The database URL.
    pub database_url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Run migrations on start.
    pub migrate: bool,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Request and document limits.
    pub limits: ApiLimits,
    /// How often the scheduler runs; `None` runs none.
    pub scheduler_interval: Option<Duration>,
    /// How long shutdown waits for WebSocket connections to close.
    pub shutdown_grace: Duration,
    /// How long a successful token lookup is reused (zero: not cached).
    pub token_cache_ttl: Duration,
    /// How many list pages are kept per log head (zero: none).
    pub list_cache_pages: usize,
    /// SQLite's page cache per connection in KiB (zero: SQLite's default).
    pub sqlite_cache_kib: u32,
    /// How much of the SQLite file is memory-mapped, in MiB (zero: none).
    pub sqlite_mmap_mib: u32,
    /// How the search indexer runs.
    pub search_indexer: galley_storage::IndexerOptions,
    /// How long idempotency keys are remembered before they are pruned.
    pub idempotency_retention: Duration,
    /// The deadline of every database call.
    pub database_statement_timeout: Duration,
    /// The longest wait for a pool connection (connecting included).
    pub database_acquire_timeout: Duration,
    /// The HTTP connection limits.
    pub connections: ConnectionLimits,
    /// Where to serve /metrics without a token, besides the main listener; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl ServerConfig {
    /// Defaults for a database, listening on a free port of 127.0.0.1.
    pub fn new(database_url: impl Into<String>) -> ServerConfig {
        let (max_connections, max_websockets) = default_connection_caps();
        ServerConfig {
            database_url: database_url.into(),
            max_connections: 16,
            migrate: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: ApiLimits {
                max_websockets,
                ..ApiLimits::default()
            },
            scheduler_interval: Some(Duration::from_secs(1)),
            shutdown_grace: Duration::from_secs(10),
            token_cache_ttl: galley_storage::TOKEN_CACHE_TTL,
            list_cache_pages: galley_storage::LIST_CACHE_PAGES,
            sqlite_cache_kib: 0,
            sqlite_mmap_mib: galley_storage::SQLITE_MMAP_MIB,
            search_indexer: galley_storage::IndexerOptions::default(),
            idempotency_retention: galley_api::scheduler::IDEMPOTENCY_RETENTION,
            database_statement_timeout: galley_storage::STATEMENT_TIMEOUT,
            database_acquire_timeout: galley_storage::ACQUIRE_TIMEOUT,
            connections: ConnectionLimits {
                max_connections,
                ..ConnectionLimits::default()
            },
            metrics_listen: None,
        }
    }

    /// The configuration `galley serve` runs with.
    pub fn from_args(global: &GlobalArgs, args: &ServeArgs) -> ServerConfig {
        let (auto_connections, auto_websockets) = default_connection_caps();
        let or_auto = |value: usize, auto: usize| if value == 0 { auto } else { value };
        ServerConfig {
            database_url: global.database_url.clone(),
            max_connections: global.database_max_connections,
            migrate: !args.no_migrate,
            listen: args.listen,
            limits: ApiLimits {
                body_limit_bytes: args.body_limit_bytes,
                max_depth: args.max_depth,
                max_complexity: args.max_complexity,
                max_aliases: args.max_aliases,
                max_directives: args.max_directives,
                documents_kept: args.documents_kept,
                default_page_size: 20.min(args.max_page_size),
                max_page_size: args.max_page_size,
                request_timeout: Duration::from_secs(args.request_timeout_secs),
                rate_limit_per_second: args.rate_limit_per_second,
                rate_limit_burst: args.rate_limit_burst,
                ws_init_timeout: Duration::from_secs(args.ws_init_timeout_secs),
                public_metrics: args.public_metrics,
                max_websockets: or_auto(args.max_websockets, auto_websockets),
                max_subscriptions_per_connection: args.max_subscriptions_per_connection.max(1),
                auth_failure_burst: args.auth_failure_burst,
                auth_failures_per_minute: args.auth_failures_per_minute,
                auth_failure_max_addresses: args.auth_failure_max_addresses,
                ready_timeout: Duration::from_millis(args.ready_timeout_ms.max(1)),
                session_ttl: Duration::from_secs(args.session_hours.clamp(1, 24 * 366) * 3600),
                secure_cookies: args.secure_cookies,
                sign_in: ApiLimits::default().sign_in,
                introspection: !args.no_introspection,
                graphiql: args
                    .graphiql
                    .unwrap_or_else(|| global.database_url.trim().starts_with("sqlite:")),
                cors_allowed_origins: args.cors_allowed_origins.clone(),
                webhooks: WebhookConfig {
                    dispatch: !args.no_webhook_dispatch,
                    allow_http: args.webhook_allow_http,
                    addresses: AddressPolicy {
                        allow: args.webhook_allow_networks.clone(),
                    },
                    connect_timeout: Duration::from_millis(args.webhook_connect_timeout_ms.max(1)),
                    timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
                    retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
                    retry_cap: Duration::from_millis(args.webhook_retry_cap_ms.max(1)),
                    disable_after: Duration::from_secs(args.webhook_disable_after_secs),
                    scan_interval: Duration::from_millis(args.webhook_scan_interval_ms.max(10)),
                },
            },
            scheduler_interval: (!args.no_scheduler)
                .then(|| Duration::from_millis(args.scheduler_interval_ms.max(10))),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            token_cache_ttl: Duration::from_secs(args.token_cache_secs),
            list_cache_pages: args.list_cache_pages,
            sqlite_cache_kib: args.sqlite_cache_mib.saturating_mul(1024),
            sqlite_mmap_mib: args.sqlite_mmap_mib,
            search_indexer: galley_storage::IndexerOptions {
                delay: Duration::from_millis(args.search_index_delay_ms.max(1)),
                ..galley_storage::IndexerOptions::default()
            },
            idempotency_retention: Duration::from_secs(args.idempotency_retention_secs),
            database_statement_timeout: Duration::from_millis(
                global.database_statement_timeout_ms.max(1),
            ),
            database_acquire_timeout: Duration::from_millis(
                global.database_acquire_timeout_ms.max(1),
            ),
            connections: ConnectionLimits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
                keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout_secs.max(1)),
                max_connections: or_auto(args.max_connections, auto_connections),
            },
            metrics_listen: args.metrics_listen,
        }
    }
}

/// A network in CIDR notation; a bare address is the network of that one address.
fn parse_network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{value:?} is not a network: write it as 10.0.0.0/8 or 127.0.0.1/32"))
}

/// A CORS origin: `scheme://host[:port]`, nothing after it (a browser's Origin header never
/// has a path), and not `*` (requests carry bearer tokens).
fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{value:?} is not an origin: it must start with https:// or http://")
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) || !rest.is_ascii() {
        return Err(format!(
            "{value:?} is not an origin: scheme://host[:port], without a path or wildcard"
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn serve_config(args: &[&str]) -> ServerConfig {
        let cli = Cli::try_parse_from(args).expect("the arguments parse");
        let Command::Serve(serve) = &cli.command else {
            panic!("not serve");
        };
        ServerConfig::from_args(&cli.global, serve)
    }

    #[test]
    fn the_cache_flags_reach_the_store_options() {
        let config = serve_config(&["galley", "serve"]);
        assert_eq!(config.list_cache_pages, galley_storage::LIST_CACHE_PAGES);
        assert_eq!(config.sqlite_cache_kib, 0, "SQLite's own default");
        assert_eq!(config.sqlite_mmap_mib, 2048);
        assert_eq!(config.limits.documents_kept, galley_api::DOCUMENTS_KEPT);
        assert_eq!(
            config.search_indexer.delay,
            galley_storage::IndexerOptions::default().delay
        );
        let config = serve_config(&[
            "galley",
            "serve",
            "--list-cache-pages",
            "0",
            "--sqlite-cache-mib",
            "64",
            "--search-index-delay-ms",
            "250",
            "--sqlite-mmap-mib",
            "0",
            "--documents-kept",
            "0",
        ]);
        assert_eq!(config.list_cache_pages, 0);
        assert_eq!(config.sqlite_cache_kib, 64 * 1024);
        assert_eq!(config.search_indexer.delay, Duration::from_millis(250));
        assert_eq!(config.sqlite_mmap_mib, 0);
        assert_eq!(config.limits.documents_kept, 0);
        assert!(config.search_indexer.enabled);
    }
}
