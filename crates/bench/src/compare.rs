//! The peer stage: Galley next to PostGraphile 4.14.1 on the same PostgreSQL database, the
//! same rows and the same load generator.
//!
//! Galley writes the articles first (the seed article's text, `fixtures/seed-article.md`,
//! under 1,000 headlines, in five categories, with a rotating tag and headline word, every
//! fourth one submitted for review); PostGraphile is then started on that database and serves
//! Galley's own `articles` projection. Every HTTP case runs under wrk (2 threads, 32
//! connections unless the case says otherwise) for a fixed time, Galley and the peer one after
//! the other, in at least two rounds whose order alternates (Galley first in the first round,
//! the peer first in the second, and so on). Before any run, the harness sends each case's
//! request once to each side and checks the answer, and that both sides return the same
//! articles. pgbench's one-row INSERT at one client, before and after, says how busy the
//! machine was. See docs/BENCHMARKS.md.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context as _};
use clap::ValueEnum;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::appends::RawInserts;
use crate::db::{self, Backend, BenchDb, Raw};
use crate::gql::Client;
use crate::peer::{self, Installed};
use crate::report::{self, Row};
use crate::server::Galley;
use crate::wrk::{self, placeholder, Load, Outcome, Pick, Shape, Writer};

/// Sizes and durations of the stage.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    /// Articles Galley writes before the peer starts.
    pub articles: usize,
    /// Seconds each measured wrk run lasts.
    pub secs: u64,
    /// Seconds of one unrecorded wrk run per case and side before the first round (0: none).
    pub warmup_secs: u64,
    /// Measured rounds.
    pub rounds: usize,
    /// Seconds of each pgbench noise run.
    pub noise_secs: u64,
    /// Revisions of the article whose history is read.
    pub history_revisions: u64,
    /// Run every case under wrk; otherwise (smoke) only one case of each kind (random read,
    /// owned write, plain GET), while every case's request is still checked on both sides.
    pub every_case: bool,
    /// Install PostGraphile when it is not in the cache folder (smoke never does).
    pub install: bool,
    /// Measure only the cases whose text contains one of these (all when empty); every
    /// case's request is still checked on both sides.
    pub only: Vec<String>,
}

impl PeerPlan {
    /// The full stage: 10 s per case and side, two rounds (about 6 minutes).
    pub fn full() -> PeerPlan {
        PeerPlan {
            articles: 1_000,
            secs: 10,
            warmup_secs: 2,
            rounds: 2,
            noise_secs: 5,
            history_revisions: 60,
            every_case: true,
            install: true,
            only: Vec::new(),
        }
    }

    /// `peer --quick`: 3 s per case and side, two rounds (about 2 minutes).
    pub fn quick() -> PeerPlan {
        PeerPlan {
            secs: 3,
            warmup_secs: 1,
            noise_secs: 3,
            ..PeerPlan::full()
        }
    }

    /// Smoke: 1 s runs of three cases, one round, no install.
    pub fn smoke() -> PeerPlan {
        PeerPlan {
            articles: 100,
            secs: 1,
            warmup_secs: 0,
            rounds: 1,
            noise_secs: 1,
            history_revisions: 60,
            every_case: false,
            install: false,
            only: Vec::new(),
        }
    }
}

/// How the peer authenticates requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeerAuth {
    /// JWT (`--jwt-secret`; the token's `role` claim is the connecting user), as a deployment
    /// with authentication runs it: every request is a transaction that sets the role and
    /// the claims first.
    Jwt,
    /// No authentication: every request runs as the connecting user.
    None,
}

/// Where the stage gets PostGraphile from and how it runs it.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Sizes and durations.
    pub plan: PeerPlan,
    /// The cache folder PostGraphile is installed in.
    pub dir: std::path::PathBuf,
    /// The peer's authentication.
    pub auth: PeerAuth,
    /// Its Node.js processes.
    pub workers: u32,
}

/// wrk for reads: 2 threads, 32 connections.
const READ_THREADS: usize = 2;
const READ_CONNECTIONS: usize = 32;
/// Clients of the write case, each on its own article (`wrk -t32 -c32`).
const WRITERS: usize = 32;

/// The categories articles rotate through; the category case filters by the second.
const CATEGORIES: [&str; 5] = ["News", "Politics", "World", "Business", "Culture"];
/// Words that rotate through the headlines; the text case searches for the first.
const WORDS: [&str; 10] = [
    "harbour", "ferry", "council", "election", "budget", "stadium", "hospital", "school",
    "airport", "museum",
];

/// The seed article of `fixtures/seed-article.md`.
#[derive(Debug)]
struct Seed {
    headline: String,
    standfirst: String,
    body: String,
    tags: Vec<String>,
    byline: Vec<String>,
    language: String,
}

const SEED_FILE: &str = include_str!("../../../fixtures/seed-article.md");

fn seed() -> &'static Seed {
    static SEED: OnceLock<Seed> = OnceLock::new();
    SEED.get_or_init(|| parse_seed(SEED_FILE).expect("fixtures/seed-article.md parses"))
}

/// Reads the front matter (`key: value` lines, values JSON strings or arrays, or bare words)
/// and the Markdown body after it.
fn parse_seed(text: &str) -> anyhow::Result<Seed> {
    let mut parts = text.splitn(3, "---");
    let (_, front, body) = (parts.next(), parts.next(), parts.next());
    let (front, body) = front.zip(body).context("no front matter")?;
    let mut fields: HashMap<&str, Value> = HashMap::new();
    for line in front.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let parsed = if value.starts_with('"') || value.starts_with('[') {
            serde_json::from_str(value).with_context(|| format!("front matter {key}"))?
        } else {
            Value::String(value.to_owned())
        };
        fields.insert(key.trim(), parsed);
    }
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no {key} in the front matter"))
    };
    let list = |key: &str| -> anyhow::Result<Vec<String>> {
        Ok(serde_json::from_value(
            fields.get(key).cloned().context(format!("no {key}"))?,
        )?)
    };
    Ok(Seed {
        headline: text("headline")?,
        standfirst: text("standfirst")?,
        body: body.trim().to_owned(),
        tags: list("tags")?,
        byline: list("byline")?,
        language: text("language")?,
    })
}

/// Article `n`'s content: the seed's text under a headline of its own (slugs are unique), its
/// category, the seed's tags and `desk-{n % 10}`; the body ends with `revision` when given.
fn content(n: usize, revision: Option<&str>) -> Value {
    let s = seed();
    let mut tags = s.tags.clone();
    tags.push(format!("desk-{}", n % 10));
    let body = match revision {
        Some(r) => format!("{}\n\nRevision {r}.", s.body),
        None => s.body.clone(),
    };
    json!({
        "headline": format!("{}: {} edition, item {n}", s.headline, WORDS[n % WORDS.len()]),
        "standfirst": s.standfirst,
        "body": body,
        "category": CATEGORIES[n % CATEGORIES.len()],
        "tags": tags,
        "byline": s.byline,
        "language": s.language,
    })
}

/// The articles Galley wrote.
#[derive(Debug)]
struct Corpus {
    /// Every article id.
    ids: Vec<String>,
    /// Draft articles Galley's write case revises, with their numbers.
    galley_writers: Vec<(String, usize)>,
    /// Other draft articles the peer's write case updates.
    peer_writers: Vec<(String, usize)>,
    /// The article with a long history.
    history: String,
}

const SUBMIT: &str = "mutation($id: ID!, $expected: Int!) { submitForReview(articleId: $id, \
     expectedVersion: $expected) { article { version status } } }";

/// Writes the corpus through Galley's API.
async fn seed_corpus(client: &Client, plan: &PeerPlan) -> anyhow::Result<Corpus> {
    anyhow::ensure!(
        plan.articles >= 100,
        "the peer stage needs at least 100 articles"
    );
    let mut made: Vec<(String, u64)> = Vec::with_capacity(plan.articles);
    let numbers: Vec<usize> = (0..plan.articles).collect();
    for chunk in numbers.chunks(16) {
        let calls = chunk
            .iter()
            .map(|&n| client.create_article(content(n, None)));
        for result in futures::future::join_all(calls).await {
            made.push(result.context("createArticle")?);
        }
    }
    for chunk in numbers.chunks(16) {
        let calls = chunk.iter().filter(|&&n| n % 4 == 0).map(|&n| {
            let (id, version) = &made[n];
            client.request(SUBMIT, json!({ "id": id, "expected": version }))
        });
        for result in futures::future::join_all(calls).await {
            result.context("submitForReview")?;
        }
    }
    let mut drafts = numbers
        .iter()
        .filter(|&&n| n % 4 != 0)
        .map(|&n| (made[n].0.clone(), n));
    let galley_writers: Vec<_> = drafts.by_ref().take(WRITERS).collect();
    let peer_writers: Vec<_> = drafts.by_ref().take(WRITERS).collect();
    let (history, n) = drafts.next().context("too few articles")?;
    let mut version = made[n].1;
    for r in 0..plan.history_revisions {
        let payload = client
            .revise_draft(&history, version, content(n, Some(&r.to_string())))
            .await
            .context("reviseDraft (history)")?;
        version = payload["article"]["version"]
            .as_u64()
            .context("reviseDraft returned no version")?;
    }
    client.search_indexed().await?;
    Ok(Corpus {
        ids: made.into_iter().map(|(id, _)| id).collect(),
        galley_writers,
        peer_writers,
        history,
    })
}

/// One side of a case: where the requests go, what they are, and where the answer's result
/// is (a JSON pointer; empty for a plain-text answer).
#[derive(Debug, Clone)]
struct Side {
    url: String,
    load: Load,
    result: &'static str,
    /// Ids of the writers (`Pick::Owned`), whose versions are read from the database before
    /// each run, and their numbers.
    writers: Vec<(String, usize)>,
}

/// One measured case.
#[derive(Debug, Clone)]
struct Case {
    /// The case's text in the table.
    name: String,
    shape: Shape,
    galley: Side,
    peer: Option<Side>,
    /// Run under wrk in smoke mode too.
    smoke: bool,
}

/// Who answers (the index of its results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Galley = 0,
    Peer = 1,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Galley => "galley",
            Who::Peer => "peer",
        }
    }
}

/// The request documents of both sides, and the cases built from them.
fn cases(corpus: &Corpus, galley: (&str, &str), peer: (&str, Option<&str>)) -> Vec<Case> {
    let (galley_base, galley_token) = galley;
    let (peer_base, peer_token) = peer;
    let headers = |token: Option<&str>| {
        let mut h = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ];
        if let Some(t) = token {
            h.push(("Authorization".to_owned(), format!("Bearer {t}")));
        }
        h
    };
    let post = |base: &str, token: Option<&str>, query: &str, variables: Value, pick: Pick| {
        let body = json!({ "query": query, "variables": variables })
            .to_string()
            // Numbers and embedded JSON are placeholders outside strings.
            .replace(
                &format!("\"{}\"", placeholder::VERSION),
                placeholder::VERSION,
            )
            .replace(
                &format!("\"{}\"", placeholder::CONTENT),
                placeholder::CONTENT,
            );
        (
            format!("{base}/graphql"),
            Load {
                method: "POST",
                headers: headers(token),
                body,
                pick,
                must: String::new(),
            },
        )
    };
    let side = |(url, mut load): (String, Load), must: &str, result: &'static str| {
        load.must = must.to_owned();
        Side {
            url,
            load,
            result,
            writers: Vec::new(),
        }
    };
    let g = |query: &str, vars: Value, pick: Pick, must: &str, result: &'static str| {
        side(
            post(galley_base, Some(galley_token), query, vars, pick),
            must,
            result,
        )
    };
    let p = |query: &str, vars: Value, pick: Pick, must: &str, result: &'static str| {
        side(post(peer_base, peer_token, query, vars, pick), must, result)
    };
    let random = || Pick::Random(corpus.ids.clone());
    let id_var = json!({ "id": placeholder::ID });
    let reads = Shape {
        threads: READ_THREADS,
        connections: READ_CONNECTIONS,
        secs: 0,
    };
    let list = |galley_args: &str, peer_args: &str| {
        (
            format!("query {{ articles(first: 50{galley_args}) {{ nodes {{ id headline status updatedAt }} }} }}"),
            format!(
                "query {{ allArticles(first: 50, orderBy: [UPDATED_AT_DESC, ID_DESC]{peer_args}) \
                 {{ nodes {{ id headline status updatedAt }} }} }}"
            ),
        )
    };
    let alone = "Galley alone";
    let mut out = Vec::new();

    out.push(Case {
        name: "one article by id (id headline body status updatedAt)".into(),
        shape: reads,
        galley: g(
            "query($id: ID!) { article(id: $id) { id headline body status updatedAt } }",
            id_var.clone(),
            random(),
            "\"headline\"",
            "/data/article",
        ),
        peer: Some(p(
            "query($id: UUID!) { articleById(id: $id) { id headline body status updatedAt } }",
            id_var.clone(),
            random(),
            "\"headline\"",
            "/data/articleById",
        )),
        smoke: true,
    });
    for (name, galley_args, peer_args) in [
        (
            "50-item list, newest first (id headline status updatedAt)",
            "",
            "",
        ),
        (
            "50-item list, status IN_REVIEW",
            ", filter: { status: [IN_REVIEW] }",
            ", condition: { status: \"IN_REVIEW\" }",
        ),
        (
            "50-item list, category Politics",
            ", filter: { category: \"Politics\" }",
            ", condition: { category: \"Politics\" }",
        ),
    ] {
        let (gq, pq) = list(galley_args, peer_args);
        out.push(Case {
            name: name.into(),
            shape: reads,
            galley: g(
                &gq,
                json!({}),
                Pick::Fixed,
                "\"nodes\"",
                "/data/articles/nodes",
            ),
            peer: Some(p(
                &pq,
                json!({}),
                Pick::Fixed,
                "\"nodes\"",
                "/data/allArticles/nodes",
            )),
            smoke: false,
        });
    }
    for (name, args) in [
        (
            format!("50-item list, tag desk-3 ({alone}: the default schema cannot filter through article_tags)"),
            ", filter: { tag: \"desk-3\" }",
        ),
        (
            format!("50-item list, text \"harbour\" ({alone}: text search needs article_search)"),
            ", filter: { text: \"harbour\" }",
        ),
    ] {
        let (gq, _) = list(args, "");
        out.push(Case {
            name,
            shape: reads,
            galley: g(&gq, json!({}), Pick::Fixed, "\"nodes\"", "/data/articles/nodes"),
            peer: None,
            smoke: false,
        });
    }
    out.push(Case {
        name: format!(
            "history page, first 50 events (position version type recordedAt) ({alone}: no event log)"
        ),
        shape: reads,
        galley: g(
            "query($id: ID!) { article(id: $id) { history(first: 50) { nodes { position version \
             type recordedAt } } } }",
            json!({ "id": corpus.history }),
            Pick::Fixed,
            "\"recordedAt\"",
            "/data/article/history/nodes",
        ),
        peer: None,
        smoke: false,
    });

    // Writes: each wrk thread revises its own article, sending the version it last saw.
    let revise = "mutation($id: ID!, $expected: Int!, $content: ContentInput!) { \
                  reviseDraft(articleId: $id, expectedVersion: $expected, content: $content) { \
                  article { id version } } }";
    let update = "mutation($id: UUID!, $patch: ArticlePatch!) { updateArticleById(input: \
                  { id: $id, articlePatch: $patch }) { article { id version } } }";
    let mut galley_write = g(
        revise,
        json!({ "id": placeholder::ID, "expected": placeholder::VERSION, "content": placeholder::CONTENT }),
        Pick::Owned(Vec::new()),
        "\"version\"",
        "/data/reviseDraft/article",
    );
    galley_write.writers = corpus.galley_writers.clone();
    let mut peer_write = p(
        update,
        json!({ "id": placeholder::ID, "patch": placeholder::CONTENT }),
        Pick::Owned(Vec::new()),
        "\"version\"",
        "/data/updateArticleById/article",
    );
    peer_write.writers = corpus.peer_writers.clone();
    out.push(Case {
        name: format!("revise own article, {WRITERS} clients (wrk -t{WRITERS} -c{WRITERS})"),
        shape: Shape {
            threads: WRITERS,
            connections: WRITERS,
            secs: 0,
        },
        galley: galley_write,
        peer: Some(peer_write),
        smoke: true,
    });

    out.push(Case {
        name: "authenticated { __typename }".into(),
        shape: reads,
        galley: g(
            "{ __typename }",
            json!({}),
            Pick::Fixed,
            "\"Query\"",
            "/data/__typename",
        ),
        peer: Some(p(
            "{ __typename }",
            json!({}),
            Pick::Fixed,
            "\"Query\"",
            "/data/__typename",
        )),
        smoke: false,
    });
    out.push(Case {
        name: format!("GET /healthz ({alone}: PostGraphile has no such route)"),
        shape: reads,
        galley: Side {
            url: format!("{galley_base}/healthz"),
            load: Load {
                method: "GET",
                headers: Vec::new(),
                body: String::new(),
                pick: Pick::Fixed,
                must: "ok".into(),
            },
            result: "",
            writers: Vec::new(),
        },
        peer: None,
        smoke: true,
    });
    out
}

/// The content a writer sends: Galley's `ContentInput`, or the peer's `ArticlePatch` with the
/// same text plus the new version and `updatedAt` (what Galley's projection gets too).
fn writer_content(who: Who, n: usize) -> String {
    let mut c = content(n, Some(placeholder::NEXT));
    if who == Who::Peer {
        c["version"] = json!(placeholder::NEXT);
        c["updatedAt"] = json!(placeholder::NOW);
    }
    c.to_string()
}

/// The side's load with the writers' current versions from the database.
async fn current_load(side: &Side, who: Who, pool: &sqlx::PgPool) -> anyhow::Result<Load> {
    let mut load = side.load.clone();
    if let Pick::Owned(_) = load.pick {
        let ids: Vec<Uuid> = side
            .writers
            .iter()
            .map(|(id, _)| Uuid::parse_str(id))
            .collect::<Result<_, _>>()?;
        let rows: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT id, version FROM articles WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(pool)
                .await?;
        let versions: HashMap<Uuid, i64> = rows.into_iter().collect();
        let mut writers = Vec::with_capacity(ids.len());
        for (uuid, (id, n)) in ids.iter().zip(&side.writers) {
            let version = *versions
                .get(uuid)
                .context("a writer's article is missing")?;
            writers.push(Writer {
                id: id.clone(),
                version: u64::try_from(version)?,
                content: writer_content(who, *n),
            });
        }
        load.pick = Pick::Owned(writers);
    }
    Ok(load)
}

/// Sends one request of the side's load and returns the result it points at, after checking
/// the answer as the script does.
async fn probe(http: &reqwest::Client, side: &Side, load: &Load) -> anyhow::Result<Value> {
    let (id, writer) = match &load.pick {
        Pick::Fixed => ("", None),
        Pick::Random(ids) => (ids.first().map_or("", String::as_str), None),
        Pick::Owned(writers) => ("", writers.first()),
    };
    let mut request = if load.method == "GET" {
        http.get(&side.url)
    } else {
        http.post(&side.url)
            .body(wrk::render(&load.body, id, writer))
    };
    for (name, value) in &load.headers {
        request = request.header(name, value);
    }
    let resp = request.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if status != reqwest::StatusCode::OK || !text.contains(&load.must) {
        bail!("HTTP {status}, expected {:?} in: {text:.400}", load.must);
    }
    if side.result.is_empty() {
        return Ok(Value::String(text));
    }
    let body: Value = serde_json::from_str(&text).context("the answer is not JSON")?;
    if let Some(errors) = body.get("errors") {
        bail!("GraphQL errors: {errors}");
    }
    let result = body
        .pointer(side.result)
        .cloned()
        .with_context(|| format!("no {} in {text:.400}", side.result))?;
    let empty = result.is_null() || result.as_array().is_some_and(Vec::is_empty);
    anyhow::ensure!(!empty, "{} is empty: {text:.400}", side.result);
    Ok(result)
}

/// Both sides answered alike: the same articles in the same order, with the same text.
fn same_answer(galley: &Value, peer: &Value) -> anyhow::Result<()> {
    fn key(v: &Value) -> Vec<String> {
        let one = |v: &Value| {
            ["id", "headline", "body", "status"]
                .iter()
                .map(|f| v.get(*f).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        };
        match v {
            Value::Array(items) => items.iter().map(one).collect(),
            Value::Object(_) => vec![one(v)],
            other => vec![other.to_string()],
        }
    }
    let (g, p) = (key(galley), key(peer));
    if g != p {
        bail!(
            "Galley and the peer answer differently: {} against {} items, first difference {:?}",
            g.len(),
            p.len(),
            g.iter().zip(&p).find(|(a, b)| a != b)
        );
    }
    Ok(())
}

/// Runs the stage (or prints why it does not) and appends its rows; `Ok(true)` when it ran.
pub async fn run(
    config: &PeerConfig,
    bin: &Path,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<bool> {
    let skip = |notes: &mut Vec<String>, why: String| {
        eprintln!("bench: peer: skipped: {why}");
        notes.push(format!("peer stage skipped: {why}"));
        Ok(false)
    };
    if !wrk::available() {
        return skip(notes, "wrk is not on PATH (apt-get install wrk)".into());
    }
    if !peer::node_available() {
        return skip(notes, "Node.js (node and npm) is not on PATH".into());
    }
    let installed = match Installed::find(&config.dir) {
        Some(found) => found,
        None if config.plan.install => {
            let dir = config.dir.clone();
            tokio::task::spawn_blocking(move || Installed::install(&dir)).await??
        }
        None => {
            let why = format!(
                "PostGraphile {} is not in {} (a `galley-bench peer` run installs it)",
                peer::VERSION,
                config.dir.display()
            );
            return skip(notes, why);
        }
    };
    let db = BenchDb::create(Backend::Postgres).await?;
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(stage(
        config, &installed, bin, &db, rows, notes,
    )))
    .await;
    let removed = db.remove().await;
    match result {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    removed?;
    Ok(true)
}

async fn stage(
    config: &PeerConfig,
    installed: &Installed,
    bin: &Path,
    db: &BenchDb,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let plan = &config.plan;
    let backend = db.backend.name();
    // The same transport on both sides: node-postgres connects without TLS unless told to,
    // while sqlx prefers TLS when the server offers it (this machine's does), so Galley is
    // told not to either, unless the URL names an sslmode of its own.
    let galley = Galley {
        bin: bin.to_path_buf(),
        database_url: db::plaintext_unless_set(&db.url),
        log_path: db.scratch("server.log"),
    };
    let server = galley.serve().await?;
    let token = galley.add_admin("bench")?;
    let client = Client::new(server.addr, &token)?;
    eprintln!("bench: peer: Galley writes {} articles", plan.articles);
    let corpus = seed_corpus(&client, plan).await?;
    let Raw::Pg(pool) = db.raw(4).await? else {
        bail!("the peer stage runs on PostgreSQL only");
    };
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await?;
    // A secret for this run only (the random bits of two UUIDv7s).
    let secret = format!("{}{}", Uuid::now_v7().simple(), Uuid::now_v7().simple());
    let peer_token = match config.auth {
        PeerAuth::Jwt => Some(installed.jwt(&role, &secret)?),
        PeerAuth::None => None,
    };
    let jwt = peer_token.as_deref().map(|t| (secret.as_str(), t));
    let peer = installed
        .start(
            &db.url,
            jwt,
            config.workers,
            &db.scratch("postgraphile.log"),
        )
        .await?;
    eprintln!(
        "bench: peer: {} ready in {:.1} s (pid {})",
        peer::NAME,
        peer.startup.as_secs_f64(),
        peer.pid()
    );
    let galley_base = format!("http://{}", server.addr);
    let peer_base = format!("http://{}", peer.addr);
    let cases = cases(
        &corpus,
        (&galley_base, &token),
        (&peer_base, peer_token.as_deref()),
    );

    // Every case's request, once per side, before anything is timed.
    let http = reqwest::Client::new();
    for case in &cases {
        let g = probe(
            &http,
            &case.galley,
            &current_load(&case.galley, Who::Galley, &pool).await?,
        )
        .await
        .with_context(|| format!("{}: Galley's answer", case.name))?;
        if let Some(side) = &case.peer {
            let p = probe(&http, side, &current_load(side, Who::Peer, &pool).await?)
                .await
                .with_context(|| format!("{}: the peer's answer", case.name))?;
            if !matches!(side.load.pick, Pick::Owned(_)) {
                same_answer(&g, &p).with_context(|| case.name.clone())?;
            }
        }
    }
    eprintln!("bench: peer: every case answers alike on both sides");

    let inserts = RawInserts::prepare(db, &Raw::Pg(pool.clone())).await?;
    let noise_before = inserts.run(1, plan.noise_secs).await?;

    let measured: Vec<&Case> = cases
        .iter()
        .filter(|c| plan.every_case || c.smoke)
        .filter(|c| plan.only.is_empty() || plan.only.iter().any(|o| c.name.contains(o.as_str())))
        .collect();
    anyhow::ensure!(
        !measured.is_empty(),
        "no case of the peer stage matches --peer-cases {:?}",
        plan.only
    );
    let run = |case: &Case, who: Who, secs: u64| {
        let side = match who {
            Who::Galley => case.galley.clone(),
            Who::Peer => case.peer.clone().expect("a peer side"),
        };
        let shape = Shape { secs, ..case.shape };
        let script_path = db.scratch(&format!("wrk-{}.lua", who.name()));
        let pool = pool.clone();
        async move {
            let load = current_load(&side, who, &pool).await?;
            std::fs::write(&script_path, wrk::script(&load))?;
            let url = side.url.clone();
            let outcome =
                tokio::task::spawn_blocking(move || wrk::run(&url, &script_path, shape)).await??;
            tokio::time::sleep(wrk::SETTLE).await;
            outcome.check()?;
            anyhow::Ok(outcome)
        }
    };
    let sides = |case: &Case, round: usize| -> Vec<Who> {
        match (&case.peer, round % 2) {
            (None, _) => vec![Who::Galley],
            (Some(_), 0) => vec![Who::Galley, Who::Peer],
            (Some(_), _) => vec![Who::Peer, Who::Galley],
        }
    };
    if plan.warmup_secs > 0 {
        eprintln!(
            "bench: peer: warm-up, {} s per case and side",
            plan.warmup_secs
        );
        for case in &measured {
            for who in sides(case, 0) {
                run(case, who, plan.warmup_secs)
                    .await
                    .with_context(|| format!("warm-up: {} ({})", case.name, who.name()))?;
            }
        }
    }
    let mut results: Vec<[Vec<Outcome>; 2]> = vec![[Vec::new(), Vec::new()]; measured.len()];
    for round in 0..plan.rounds {
        for (i, case) in measured.iter().enumerate() {
            for who in sides(case, round) {
                let outcome = run(case, who, plan.secs).await.with_context(|| {
                    format!("round {}: {} ({})", round + 1, case.name, who.name())
                })?;
                eprintln!(
                    "bench: peer: round {}: {} ({}): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                    round + 1,
                    case.name,
                    who.name(),
                    outcome.rate,
                    outcome.p50,
                    outcome.p99
                );
                results[i][who as usize].push(outcome);
            }
        }
    }
    let noise_after = inserts.run(1, plan.noise_secs).await?;
    let noise_label = inserts.label();
    inserts.finish(&Raw::Pg(pool.clone())).await?;
    pool.close().await;
    peer.stop();
    server.stop()?;

    let mut baseline = match config.auth {
        PeerAuth::Jwt => format!("{} (JWT", peer::NAME),
        PeerAuth::None => format!("{} (no auth", peer::NAME),
    };
    if config.workers > 1 {
        baseline.push_str(&format!(", {} workers", config.workers));
    }
    baseline.push(')');
    for (case, [galley, peer]) in measured.iter().zip(&results) {
        rows.push(case_row(backend, &case.name, galley, peer, &baseline));
    }
    for (when, m) in [("before", &noise_before), ("after", &noise_after)] {
        rows.push(Row::measured(
            backend,
            "peer",
            &format!(
                "machine noise: one-row INSERT, 1 client, {} s, {when} the peer stage",
                plan.noise_secs
            ),
            m,
            "tx/s",
        ));
    }
    notes.push(format!(
        "peer stage: {} articles written by Galley (the seed article's {}-byte body), its \
         articles table served by both; wrk \
         -t{READ_THREADS} -c{READ_CONNECTIONS} (writes -t{WRITERS} -c{WRITERS}) --latency, {} s \
         per case and side, {} round(s) alternating which side goes first; ranges are the \
         lowest and highest round; machine noise: {} at 1 client {} tx/s before, {} tx/s after",
        plan.articles,
        seed().body.len(),
        plan.secs,
        plan.rounds,
        noise_label,
        noise_before.rate().round(),
        noise_after.rate().round(),
    ));
    Ok(())
}

/// The table row of one case: Galley's rounds, the peer's, and the per-round ratio of their
/// throughputs.
fn case_row(
    backend: &str,
    case: &str,
    galley: &[Outcome],
    peer: &[Outcome],
    baseline: &str,
) -> Row {
    let rates = |o: &[Outcome]| o.iter().map(|o| o.rate).collect::<Vec<_>>();
    let p50s = |o: &[Outcome]| o.iter().map(|o| o.p50).collect::<Vec<_>>();
    let p99s = |o: &[Outcome]| o.iter().map(|o| o.p99).collect::<Vec<_>>();
    let mut row = Row {
        backend: backend.to_owned(),
        stage: "peer".to_owned(),
        case: case.to_owned(),
        value: report::rate_span(&rates(galley), "req/s"),
        p50: report::ms_span(&p50s(galley)),
        p99: report::ms_span(&p99s(galley)),
        ..Row::default()
    };
    if !peer.is_empty() {
        let ratios: Vec<f64> = galley
            .iter()
            .zip(peer)
            .filter(|(_, p)| p.rate > 0.0)
            .map(|(g, p)| g.rate / p.rate)
            .collect();
        row.baseline = baseline.to_owned();
        row.base_value = report::rate_span(&rates(peer), "req/s");
        row.base_p50 = report::ms_span(&p50s(peer));
        row.base_p99 = report::ms_span(&p99s(peer));
        row.ratio = report::ratio_span(&ratios);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_article_parses() {
        let s = seed();
        assert_eq!(s.headline, "NATO DENIES SERBIA AN ARMY PRESENCE IN KOSOVO");
        assert_eq!(s.tags.len(), 8);
        assert_eq!(s.byline, ["Tristan Vanheuckelom"]);
        assert_eq!(s.language, "en");
        assert!(s.body.starts_with("The NATO-led Kosovo Force"));
        assert!(s.body.len() > 2_500, "{}", s.body.len());
        assert!(!s.body.contains("---"));
    }

    #[test]
    fn articles_rotate_category_tag_and_headline_word() {
        let a = content(12, None);
        assert_eq!(a["category"], "World");
        assert!(a["headline"].as_str().unwrap().contains("edition, item 12"));
        assert_eq!(a["tags"].as_array().unwrap().last().unwrap(), "desk-2");
        let revised = content(12, Some("@NEXT@"));
        assert!(revised["body"]
            .as_str()
            .unwrap()
            .ends_with("Revision @NEXT@."));
        assert_eq!(revised["headline"], a["headline"]);
    }

    #[test]
    fn the_peer_writes_the_same_content_plus_version_and_time() {
        let g: Value = serde_json::from_str(&writer_content(Who::Galley, 5)).unwrap();
        let p: Value = serde_json::from_str(&writer_content(Who::Peer, 5)).unwrap();
        assert_eq!(g["body"], p["body"]);
        assert_eq!(p["version"], placeholder::NEXT);
        assert_eq!(p["updatedAt"], placeholder::NOW);
        assert!(g.get("version").is_none());
    }

    #[test]
    fn answers_compare_by_id_and_text() {
        let a = json!([{ "id": "1", "headline": "h", "status": "DRAFT", "updatedAt": "x" }]);
        let b = json!([{ "id": "1", "headline": "h", "status": "DRAFT", "updatedAt": "y" }]);
        same_answer(&a, &b).unwrap();
        let c = json!([{ "id": "2", "headline": "h", "status": "DRAFT" }]);
        assert!(same_answer(&a, &c).is_err());
        assert!(same_answer(&a, &json!([])).is_err());
    }

    #[test]
    fn a_row_shows_both_sides_and_the_ratio_per_round() {
        let o = |rate: f64, p99: f64| Outcome {
            requests: 1,
            rate,
            p50: p99 / 2.0,
            p99,
            ..Outcome::default()
        };
        let row = case_row(
            "postgres",
            "one article",
            &[o(6000.0, 10.0), o(5000.0, 12.0)],
            &[o(2000.0, 30.0), o(2500.0, 25.0)],
            "peer",
        );
        assert_eq!(row.value, "5000–6000 req/s");
        assert_eq!(row.p99, "10.0–12.0 ms");
        assert_eq!(row.base_value, "2000–2500 req/s");
        assert_eq!(row.ratio, "2.00–3.00");
        let alone = case_row("postgres", "healthz", &[o(50_000.0, 2.0)], &[], "peer");
        assert_eq!(alone.baseline, "");
        assert_eq!(alone.ratio, "");
    }
}
