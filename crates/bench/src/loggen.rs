//! A generator of valid event logs, written as the NDJSON that `galley events export` writes
//! and `galley events import` reads (one `StoredEvent` envelope per line).
//!
//! Articles follow the newsroom workflow (created, revised, submitted, assigned, commented,
//! sent back, revised, resubmitted, approved, published), and many are open at once so their
//! events interleave in the log as they do in a real newsroom. One long-running article (a
//! live blog: revise, submit, approve, publish, over and over) grows beside them up to a set
//! number of events. Payloads are built from the domain's own types, so they are exactly what
//! the server would have written.

use std::collections::VecDeque;
use std::io::Write;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use galley_domain::{
    ArticleContent, ArticleId, CommentId, ContentDraft, EventData, PublishTrigger, RevisionNumber,
    UserId, SCHEMA_VERSION,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::stats::Rng;

/// How many ordinary articles are in progress at once.
const OPEN_ARTICLES: usize = 64;

/// One article being written.
#[derive(Debug)]
struct Stream {
    id: ArticleId,
    number: u64,
    version: u64,
    revision: u32,
    live: Option<u32>,
    /// The remaining steps of its script, next first.
    script: VecDeque<Step>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Create,
    Revise,
    Submit,
    Assign,
    Comment,
    RequestChanges,
    Approve,
    Publish,
}

/// Generates a log continuing from a position, in chunks.
#[derive(Debug)]
pub struct LogGen {
    rng: Rng,
    position: u64,
    clock: DateTime<Utc>,
    editor: UserId,
    reviewer: UserId,
    next_number: u64,
    open: Vec<Stream>,
    /// The live blog, and how many more events it gets.
    big: Stream,
    big_left: u64,
    /// Ids of finished ordinary articles (up to a bound), for history reads.
    finished: Vec<ArticleId>,
}

impl LogGen {
    /// A generator for a log whose head is `head`, with one article that will receive
    /// `big_events` events spread over the next `big_spread` events of the log.
    pub fn new(head: u64, big_events: u64, seed: u64) -> LogGen {
        let mut g = LogGen {
            rng: Rng::new(seed),
            position: head,
            clock: Utc::now() - ChronoDuration::days(30),
            editor: UserId::from_uuid(Uuid::now_v7()),
            reviewer: UserId::from_uuid(Uuid::now_v7()),
            next_number: 0,
            open: Vec::new(),
            big: Stream {
                id: ArticleId::from_uuid(Uuid::now_v7()),
                number: u64::MAX,
                version: 0,
                revision: 0,
                live: None,
                script: VecDeque::new(),
            },
            big_left: big_events,
            finished: Vec::new(),
        };
        g.big.number = g.take_number();
        g
    }

    fn take_number(&mut self) -> u64 {
        self.next_number += 1;
        self.next_number
    }

    /// The log head after everything generated so far.
    pub fn head(&self) -> u64 {
        self.position
    }

    /// The live blog's id and how many events it has so far.
    pub fn big(&self) -> (ArticleId, u64) {
        (self.big.id, self.big.version)
    }

    /// Ids of some finished ordinary articles.
    pub fn finished(&self) -> &[ArticleId] {
        &self.finished
    }

    /// Writes `count` events; the live blog gets its events spread so that it is complete
    /// when the log reaches `big_complete_at`.
    pub fn write(
        &mut self,
        count: u64,
        big_complete_at: u64,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        for _ in 0..count {
            let left_in_log = big_complete_at.saturating_sub(self.position).max(1);
            let big_turn = self.big_left > 0
                && (self.big_left >= left_in_log || self.rng.below(left_in_log) < self.big_left);
            let line = if big_turn {
                self.big_left -= 1;
                let step = big_step(self.big.version);
                let mut s = std::mem::replace(&mut self.big, placeholder());
                let line = self.emit(&mut s, step);
                self.big = s;
                line
            } else {
                self.ordinary()
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// The next event of a randomly chosen open ordinary article (opening one when needed).
    fn ordinary(&mut self) -> Value {
        while self.open.len() < OPEN_ARTICLES {
            let number = self.take_number();
            let script = self.ordinary_script();
            self.open.push(Stream {
                id: ArticleId::from_uuid(Uuid::now_v7()),
                number,
                version: 0,
                revision: 0,
                live: None,
                script,
            });
        }
        let i = self.rng.below(self.open.len() as u64) as usize;
        let mut s = self.open.swap_remove(i);
        let step = s.script.pop_front().unwrap_or(Step::Revise);
        let line = self.emit(&mut s, step);
        if s.script.is_empty() {
            if self.finished.len() < 10_000 {
                self.finished.push(s.id);
            }
        } else {
            self.open.push(s);
        }
        line
    }

    /// The workflow of an ordinary article: 9 to 17 events.
    fn ordinary_script(&mut self) -> VecDeque<Step> {
        use Step::*;
        let mut script = VecDeque::from([Create]);
        for _ in 0..self.rng.below(6) {
            script.push_back(Revise);
        }
        script.extend([
            Submit,
            Assign,
            Comment,
            RequestChanges,
            Revise,
            Submit,
            Approve,
            Publish,
        ]);
        for _ in 0..self.rng.below(4) {
            script.push_back(Revise);
        }
        script
    }

    /// Builds one event of stream `s` and advances it.
    fn emit(&mut self, s: &mut Stream, step: Step) -> Value {
        let data = match step {
            Step::Create => {
                s.revision = 1;
                EventData::ArticleCreated {
                    article_id: s.id,
                    revision: RevisionNumber(1),
                    content: article_content(s.number, 1),
                }
            }
            Step::Revise => {
                s.revision += 1;
                EventData::DraftRevised {
                    revision: RevisionNumber(s.revision),
                    content: article_content(s.number, s.revision),
                }
            }
            Step::Submit => EventData::SubmittedForReview {
                revision: RevisionNumber(s.revision),
            },
            Step::Assign => EventData::ReviewerAssigned {
                reviewer: self.reviewer,
            },
            Step::Comment => EventData::ReviewCommentAdded {
                comment_id: CommentId::from_uuid(Uuid::now_v7()),
                revision: RevisionNumber(s.revision),
                body: "The second paragraph needs a source for the operator's figures.".to_owned(),
            },
            Step::RequestChanges => EventData::ChangesRequested {
                revision: RevisionNumber(s.revision),
                reason: "Attribute the crew estimate before this runs.".to_owned(),
            },
            Step::Approve => EventData::RevisionApproved {
                revision: RevisionNumber(s.revision),
            },
            Step::Publish => {
                let previous = s.live.replace(s.revision);
                EventData::ArticlePublished {
                    revision: RevisionNumber(s.revision),
                    previous_live: previous.map(RevisionNumber),
                    correction: None,
                    trigger: PublishTrigger::Now,
                }
            }
        };
        let actor = match step {
            Step::Assign | Step::Comment | Step::RequestChanges | Step::Approve => self.reviewer,
            _ => self.editor,
        };
        s.version += 1;
        self.position += 1;
        self.clock += ChronoDuration::milliseconds(10);
        json!({
            "eventId": Uuid::now_v7(),
            "articleId": s.id,
            "version": s.version,
            "position": self.position,
            "type": data.event_type(),
            "schemaVersion": SCHEMA_VERSION,
            "payload": data.payload(),
            "actor": actor,
            "correlationId": Uuid::now_v7(),
            "causationId": null,
            "requestId": null,
            "recordedAt": self.clock,
        })
    }
}

/// The live blog's cycle: created, then revise, submit, approve, publish, again and again.
fn big_step(version: u64) -> Step {
    if version == 0 {
        return Step::Create;
    }
    match (version - 1) % 4 {
        0 => Step::Revise,
        1 => Step::Submit,
        2 => Step::Approve,
        _ => Step::Publish,
    }
}

fn placeholder() -> Stream {
    Stream {
        id: ArticleId::from_uuid(Uuid::nil()),
        number: 0,
        version: 0,
        revision: 0,
        live: None,
        script: VecDeque::new(),
    }
}

/// The content of revision `revision` of article `number`: the same shape and size as what
/// the harness sends through the API.
pub fn article_content(number: u64, revision: u32) -> ArticleContent {
    ArticleContent::new(ContentDraft {
        headline: format!("Harbour council votes on the night ferry, item {number}"),
        standfirst: "The vote follows months of complaints from shift workers about the last \
                     crossing leaving before the late shift ends."
            .to_owned(),
        body: crate::gql::body(u64::from(revision)),
        slug: None,
        category: Some("local".to_owned()),
        tags: vec!["transport".to_owned(), "council".to_owned()],
        byline: vec!["Bench Reporter".to_owned()],
        language: Some("en".to_owned()),
    })
    .expect("the generated content is valid")
}

/// The payload of a typical `DraftRevised` event, for the raw-INSERT baseline.
pub fn draft_revised_payload() -> Value {
    EventData::DraftRevised {
        revision: RevisionNumber(2),
        content: article_content(1, 2),
    }
    .payload()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_contiguous_and_versions_count_per_article() {
        let mut g = LogGen::new(7, 40, 1);
        let mut out = Vec::new();
        g.write(200, 200, &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 200);
        let mut versions = std::collections::HashMap::new();
        for (i, e) in lines.iter().enumerate() {
            assert_eq!(e["position"].as_u64().unwrap(), 8 + i as u64);
            let v = versions.entry(e["articleId"].to_string()).or_insert(0u64);
            *v += 1;
            assert_eq!(e["version"].as_u64().unwrap(), *v);
            if *v == 1 {
                assert_eq!(e["type"], "ArticleCreated");
            }
            EventData::from_stored(e["type"].as_str().unwrap(), 1, e["payload"].clone()).unwrap();
        }
        assert_eq!(g.big().1, 40);
        assert_eq!(g.head(), 207);
    }
}
