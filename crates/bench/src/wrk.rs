//! The HTTP load generator of the peer stage: wrk (https://github.com/wg/wrk), driven by a Lua
//! script the harness writes for each case, and the parsing of what wrk prints.
//!
//! The script sets the method, path, headers and body; picks a random article per request,
//! or gives each wrk thread one article of its own whose version it tracks from the responses
//! (for writes that need the expected version); and counts every response that is not a 200
//! carrying the expected text and no GraphQL `errors`. `done()` prints that count, so a case
//! whose server answered errors fast never passes for a fast case.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// The marker `done()` prints before the number of bad responses.
const BAD_MARKER: &str = "galley-bench bad responses:";
/// The marker `done()` prints before the first bad response's start.
const SAMPLE_MARKER: &str = "galley-bench first bad response:";

/// Placeholders in a body template, replaced per request by the script.
pub mod placeholder {
    /// A random id from the list (`Pick::Random`) or the thread's own (`Pick::Owned`).
    pub const ID: &str = "@ID@";
    /// The thread's article's own JSON text (its content), inserted as is (`Pick::Owned`).
    pub const CONTENT: &str = "@CONTENT@";
    /// The thread's article version, as the server last reported it (`Pick::Owned`).
    pub const VERSION: &str = "@VERSION@";
    /// That version plus one (`Pick::Owned`).
    pub const NEXT: &str = "@NEXT@";
    /// The current UTC time, RFC 3339 to the second (`Pick::Owned`).
    pub const NOW: &str = "@NOW@";
}

/// How the script chooses what each request is about.
#[derive(Debug, Clone)]
pub enum Pick {
    /// Every request is the same.
    Fixed,
    /// Each request takes a random id from the list (seeded per thread, so both servers get
    /// the same sequence).
    Random(Vec<String>),
    /// Thread `i` works on writer `i` only, starting from its version, and reads the new
    /// version from each response (`"version":N` or `"version":"N"`); needs as many threads
    /// as writers, each with one connection (`wrk -tN -cN`), so one request at a time.
    Owned(Vec<Writer>),
}

/// An article one wrk thread writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// Its id.
    pub id: String,
    /// Its version now.
    pub version: u64,
    /// JSON text the body template embeds for it (its content).
    pub content: String,
}

/// One load: what each request is and what a good response contains.
#[derive(Debug, Clone)]
pub struct Load {
    /// GET or POST.
    pub method: &'static str,
    /// Headers besides Host (and Content-Length, which wrk adds).
    pub headers: Vec<(String, String)>,
    /// The body, with [`placeholder`]s; empty for none.
    pub body: String,
    /// How ids and versions are chosen.
    pub pick: Pick,
    /// Text every good response body contains.
    pub must: String,
}

/// What wrk measured in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second, as wrk reports it.
    pub rate: f64,
    /// Median latency in milliseconds.
    pub p50: f64,
    /// 99th-percentile latency in milliseconds.
    pub p99: f64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Responses that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Responses the script found bad (status, missing text, GraphQL errors).
    pub bad: u64,
    /// The start of the first bad response, if any.
    pub sample: Option<String>,
}

impl Outcome {
    /// Fails unless every request was answered well.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.requests == 0 {
            bail!("wrk completed no request");
        }
        if self.socket_errors > 0 || self.non_2xx > 0 || self.bad > 0 {
            bail!(
                "{} socket errors, {} non-2xx responses, {} bad responses of {}; first bad: {}",
                self.socket_errors,
                self.non_2xx,
                self.bad,
                self.requests,
                self.sample.as_deref().unwrap_or("-")
            );
        }
        Ok(())
    }
}

/// How wrk is run.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `-t`.
    pub threads: usize,
    /// `-c`.
    pub connections: usize,
    /// `-d`, in seconds.
    pub secs: u64,
}

/// Whether wrk is installed.
pub fn available() -> bool {
    crate::appends::which("wrk")
}

/// A Lua string literal holding `s` byte for byte.
pub fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Lua script for a load.
pub fn script(load: &Load) -> String {
    let mut s =
        String::from("-- Written by galley-bench for one wrk run; see crates/bench/src/wrk.rs.\n");
    s.push_str(&format!("wrk.method = {}\n", lua_string(load.method)));
    for (name, value) in &load.headers {
        s.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    if !load.body.is_empty() {
        s.push_str(&format!("wrk.body = {}\n", lua_string(&load.body)));
    }
    s.push_str(&format!("local must = {}\n", lua_string(&load.must)));
    match &load.pick {
        Pick::Fixed => s.push_str(
            "local mode = \"fixed\"\nlocal ids = {}\nlocal versions = {}\nlocal contents = {}\n",
        ),
        Pick::Random(ids) => {
            s.push_str("local mode = \"random\"\n");
            s.push_str(&lua_list(ids.iter().map(|id| lua_string(id)), "ids"));
            s.push_str("local versions = {}\nlocal contents = {}\n");
        }
        Pick::Owned(writers) => {
            s.push_str("local mode = \"owned\"\n");
            s.push_str(&lua_list(writers.iter().map(|w| lua_string(&w.id)), "ids"));
            s.push_str(&lua_list(
                writers.iter().map(|w| w.version.to_string()),
                "versions",
            ));
            s.push_str(&lua_list(
                writers.iter().map(|w| lua_string(&w.content)),
                "contents",
            ));
        }
    }
    s.push_str(SCRIPT_BODY);
    s
}

fn lua_list(items: impl Iterator<Item = String>, name: &str) -> String {
    let items: Vec<String> = items.collect();
    format!("local {name} = {{\n  {}\n}}\n", items.join(",\n  "))
}

/// The part of every script that does not depend on the load.
const SCRIPT_BODY: &str = r#"
local threads = {}
local started = 0

-- A replacement text for string.gsub, taken literally.
local function plain(s)
  return (string.gsub(s, "%%", "%%%%"))
end

function setup(thread)
  started = started + 1
  thread:set("index", started)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  sample = ""
  math.randomseed(index * 7919)
  if mode == "owned" then
    if index > #ids then error("more wrk threads than owned articles") end
    template = string.gsub(wrk.body, "@ID@", plain(ids[index]))
    template = string.gsub(template, "@CONTENT@", plain(contents[index]))
    version = versions[index]
  elseif mode == "random" then
    local at = string.find(wrk.body, "@ID@", 1, true)
    before = string.sub(wrk.body, 1, at - 1)
    after = string.sub(wrk.body, at + 4)
  end
end

if mode ~= "fixed" then
  function request()
    if mode == "random" then
      return wrk.format(nil, nil, nil, before .. ids[math.random(#ids)] .. after)
    end
    local b = string.gsub(template, "@VERSION@", tostring(version))
    b = string.gsub(b, "@NEXT@", tostring(version + 1))
    b = string.gsub(b, "@NOW@", os.date("!%Y-%m-%dT%H:%M:%SZ"))
    return wrk.format(nil, nil, nil, b)
  end
end

function response(status, headers, body)
  local good = status == 200 and string.find(body, must, 1, true) ~= nil
    and string.find(body, '"errors"', 1, true) == nil
  if not good then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 400) end
  elseif mode == "owned" then
    local v = string.match(body, '"version":"?(%d+)')
    if v then version = tonumber(v) end
  end
end

function done(summary, latency, requests)
  local total = 0
  local first = ""
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    if first == "" then first = t:get("sample") end
  end
  io.write("galley-bench bad responses: " .. total .. "\n")
  if first ~= "" then
    io.write("galley-bench first bad response: " .. string.gsub(first, "\n", " ") .. "\n")
  end
end
"#;

/// The body of one request as the script would send it (for the harness's own checks before
/// a run): the placeholders filled from `id`, `writer` and the current time.
pub fn render(template: &str, id: &str, writer: Option<&Writer>) -> String {
    let id = writer.map_or(id, |w| w.id.as_str());
    let mut body = template.replace(placeholder::ID, id);
    if let Some(w) = writer {
        body = body
            .replace(placeholder::CONTENT, &w.content)
            .replace(placeholder::VERSION, &w.version.to_string())
            .replace(placeholder::NEXT, &(w.version + 1).to_string())
            .replace(
                placeholder::NOW,
                &chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            );
    }
    body
}

/// Runs wrk with the script at `script_path` against `url` (blocking; call it from
/// `spawn_blocking`) and returns what it measured.
pub fn run(url: &str, script_path: &Path, shape: Shape) -> anyhow::Result<Outcome> {
    let output = Command::new("wrk")
        .args(["-t", &shape.threads.to_string()])
        .args(["-c", &shape.connections.to_string()])
        .args(["-d", &format!("{}s", shape.secs)])
        // A request slower than wrk's default 2 s would be left out of the latencies and
        // counted as a timeout; 10 s keeps every slow answer in the figures.
        .args(["--timeout", "10s"])
        .arg("--latency")
        .arg("-s")
        .arg(script_path)
        .arg(url)
        .output()
        .context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("cannot read wrk's output:\n{stdout}"))
}

/// Reads wrk's `--latency` report and the script's `done()` lines.
pub fn parse(stdout: &str) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let mut in_distribution = false;
    let (mut rate, mut requests, mut p50, mut p99, mut bad) = (None, None, None, None, None);
    for line in stdout.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((pct, value)) = t.split_once('%') {
                match pct.trim() {
                    "50" => p50 = Some(latency_ms(value.trim())?),
                    "99" => p99 = Some(latency_ms(value.trim())?),
                    _ => {}
                }
                continue;
            }
            in_distribution = false;
        }
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rate = Some(v.trim().parse::<f64>().context("Requests/sec")?);
        } else if let Some((n, rest)) = t.split_once(" requests in ") {
            if rest.contains(" read") {
                requests = Some(n.trim().parse::<u64>().context("requests")?);
            }
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    out.socket_errors += n.parse::<u64>().context("socket errors")?;
                }
            }
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            out.non_2xx = v.trim().parse().context("non-2xx responses")?;
        } else if let Some(v) = t.strip_prefix(BAD_MARKER) {
            bad = Some(v.trim().parse::<u64>().context("bad responses")?);
        } else if let Some(v) = t.strip_prefix(SAMPLE_MARKER) {
            out.sample = Some(v.trim().to_owned());
        }
    }
    out.rate = rate.context("no Requests/sec line")?;
    out.requests = requests.context("no \"N requests in\" line")?;
    out.p50 = p50.context("no 50% line (was --latency given?)")?;
    out.p99 = p99.context("no 99% line (was --latency given?)")?;
    out.bad = bad.context("the script's done() printed no count")?;
    Ok(out)
}

/// A wrk duration (`812.00us`, `4.72ms`, `1.02s`, `1.50m`, `2.00h`) in milliseconds.
pub fn latency_ms(text: &str) -> anyhow::Result<f64> {
    let units = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1_000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    for (suffix, factor) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            let v: f64 = number
                .trim()
                .parse()
                .with_context(|| format!("not a duration: {text}"))?;
            return Ok(v * factor);
        }
    }
    bail!("not a duration: {text}")
}

/// A short pause after a run, so requests the server was still finishing when wrk closed
/// its connections are done before the harness looks at the database.
pub const SETTLE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1.0's report with `--latency`, followed by the script's `done()` lines.
    const REPORT: &str = "Running 10s test @ http://127.0.0.1:39133/graphql
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.02ms    2.11ms  30.47ms   80.12%
    Req/Sec     3.21k   312.45     4.01k    70.00%
  Latency Distribution
     50%  812.00us
     75%    5.92ms
     90%    7.33ms
     99%    1.02s
  64012 requests in 10.01s, 45.12MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   6395.12
Transfer/sec:      4.51MB
galley-bench bad responses: 7
galley-bench first bad response: 200 {\"errors\":[{\"message\":\"no\"}]}
";

    #[test]
    fn the_report_gives_rate_percentiles_and_every_error_count() {
        let out = parse(REPORT).unwrap();
        assert_eq!(out.requests, 64012);
        assert_eq!(out.rate, 6395.12);
        assert!((out.p50 - 0.812).abs() < 1e-9, "{}", out.p50);
        assert_eq!(out.p99, 1020.0);
        assert_eq!(out.socket_errors, 3);
        assert_eq!(out.non_2xx, 5);
        assert_eq!(out.bad, 7);
        assert_eq!(
            out.sample.as_deref(),
            Some(r#"200 {"errors":[{"message":"no"}]}"#)
        );
        assert!(out.check().is_err());
    }

    #[test]
    fn a_clean_run_passes_the_check() {
        let clean = "  Latency Distribution\n     50%    4.72ms\n     75%    5.92ms\n     \
                     90%    7.33ms\n     99%   12.29ms\n  64012 requests in 10.01s, 45.12MB \
                     read\nRequests/sec:   6395.12\nTransfer/sec:      4.51MB\n\
                     galley-bench bad responses: 0\n";
        let out = parse(clean).unwrap();
        assert_eq!((out.p50, out.p99), (4.72, 12.29));
        assert_eq!((out.socket_errors, out.non_2xx, out.bad), (0, 0, 0));
        out.check().unwrap();
    }

    #[test]
    fn a_report_without_latencies_or_count_is_rejected() {
        let no_latency = "  64012 requests in 10.01s, 45.12MB read\nRequests/sec:   6395.12\n\
                          galley-bench bad responses: 0\n";
        assert!(parse(no_latency).is_err());
        let no_count = REPORT.replace("galley-bench bad responses: 7\n", "");
        assert!(parse(&no_count).is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(latency_ms("250.00us").unwrap(), 0.25);
        assert_eq!(latency_ms("3.50ms").unwrap(), 3.5);
        assert_eq!(latency_ms("2.00s").unwrap(), 2000.0);
        assert_eq!(latency_ms("1.50m").unwrap(), 90_000.0);
        assert!(latency_ms("12").is_err());
        assert!(latency_ms("fast").is_err());
    }

    #[test]
    fn a_rendered_body_fills_every_placeholder() {
        let w = Writer {
            id: "a1".into(),
            version: 4,
            content: r#"{"body":"r@NEXT@"}"#.into(),
        };
        let body = render(
            r#"{"id":"@ID@","expected":@VERSION@,"content":@CONTENT@,"at":"@NOW@"}"#,
            "ignored",
            Some(&w),
        );
        assert!(body.starts_with(r#"{"id":"a1","expected":4,"content":{"body":"r5"},"at":"20"#));
        assert!(!body.contains('@'), "{body}");
        assert_eq!(render(r#"{"id":"@ID@"}"#, "x", None), r#"{"id":"x"}"#);
    }

    #[test]
    fn lua_strings_keep_every_byte() {
        assert_eq!(lua_string("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\1é\"");
    }

    #[test]
    fn the_script_carries_the_load() {
        let load = Load {
            method: "POST",
            headers: vec![("Authorization".into(), "Bearer t".into())],
            body: r#"{"query":"q","variables":{"id":"@ID@","v":@VERSION@}}"#.into(),
            pick: Pick::Owned(vec![
                Writer {
                    id: "a1".into(),
                    version: 3,
                    content: "{\"h\":\"x\"}".into(),
                },
                Writer {
                    id: "a2".into(),
                    version: 9,
                    content: "{}".into(),
                },
            ]),
            must: "\"version\"".into(),
        };
        let s = script(&load);
        assert!(s.contains("wrk.method = \"POST\""));
        assert!(s.contains("wrk.headers[\"Authorization\"] = \"Bearer t\""));
        assert!(s.contains(
            r#"wrk.body = "{\"query\":\"q\",\"variables\":{\"id\":\"@ID@\",\"v\":@VERSION@}}""#
        ));
        assert!(s.contains("local mode = \"owned\""));
        assert!(s.contains("local ids = {\n  \"a1\",\n  \"a2\"\n}"));
        assert!(s.contains("local versions = {\n  3,\n  9\n}"));
        assert!(s.contains("local contents = {\n  \"{\\\"h\\\":\\\"x\\\"}\",\n  \"{}\"\n}"));
        assert!(s.contains("function done("));
    }
}
