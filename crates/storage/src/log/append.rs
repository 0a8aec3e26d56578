//! Appending to the log: the events, the idempotency key of each command that appended them,
//! and the new head, gathered in memory and written set-based with the projections' rows (see
//! `crate::projections::Rows::flush`), in the batch's one transaction.

use galley_domain::ArticleId;

use super::NOTIFY_CHANNEL;
use crate::backend::{args, Arg, Col, Part, Tx};
use crate::model::StoredEvent;

const EVENT_COLS: [Col; 12] = [
    ("position", "bigint"),
    ("event_id", "uuid"),
    ("article_id", "uuid"),
    ("version", "bigint"),
    ("event_type", "text"),
    ("schema_version", "bigint"),
    ("payload", "jsonb"),
    ("actor", "uuid"),
    ("correlation_id", "uuid"),
    ("causation_id", "uuid"),
    ("request_id", "text"),
    ("recorded_at", "timestamptz"),
];

const KEY_COLS: [Col; 6] = [
    ("key", "text"),
    ("fingerprint", "text"),
    ("article_id", "uuid"),
    ("first_position", "bigint"),
    ("last_position", "bigint"),
    ("created_at", "timestamptz"),
];

/// What a set of commands appends to the log.
#[derive(Debug, Default)]
pub(crate) struct LogRows {
    events: Vec<Vec<Arg>>,
    keys: Vec<Vec<Arg>>,
    /// The new head of the log, when the set appends events.
    head: Option<u64>,
    /// The store whose writer appends (see [`LogRows::origin`]).
    origin: Option<String>,
}

/// [`LogRows`] as statements: `rows` go with the projections' first group; `head` depends on
/// nothing else and goes with whichever group is last.
pub(crate) struct LogParts {
    pub(crate) rows: Vec<Part>,
    pub(crate) head: Vec<Part>,
}

impl LogRows {
    /// An event to insert into the log (the live path and import; rebuild reads them).
    pub(crate) fn event(&mut self, e: &StoredEvent) {
        self.events.push(Vec::from(args![
            e.position,
            e.event_id,
            e.article_id.as_uuid(),
            e.version.0,
            e.event_type.as_str(),
            i64::from(e.schema_version),
            e.payload.clone(),
            e.actor.as_uuid(),
            e.correlation_id,
            e.causation_id,
            e.request_id.clone(),
            e.recorded_at,
        ]));
    }

    /// An idempotency key and the positions its command appended.
    pub(crate) fn key(
        &mut self,
        key: &str,
        fingerprint: &str,
        article: ArticleId,
        first: &StoredEvent,
        last: &StoredEvent,
    ) {
        self.keys.push(Vec::from(args![
            key,
            fingerprint,
            article.as_uuid(),
            first.position,
            last.position,
            first.recorded_at,
        ]));
    }

    /// Moves the head of the log to `position` with the set's writes (and, on PostgreSQL,
    /// notifies the listeners, at commit).
    pub(crate) fn head(&mut self, position: u64) {
        self.head = Some(position);
    }

    /// Names the store whose writer appends these rows in the notification (`<head>
    /// <origin>`), so that its own listener can leave the commit to the writer, which hands
    /// the events to its feed itself (`crate::feed::Feed::committed`). Without one (import)
    /// the notification is the head alone, and every listener rings for it.
    pub(crate) fn origin(&mut self, origin: &str) {
        self.origin = Some(origin.to_owned());
    }

    /// The statements that write these rows.
    pub(crate) fn into_parts(self, tx: &Tx) -> LogParts {
        let names = |cols: &[Col]| cols.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
        let insert = |table: &'static str, cols: &[Col], rows: Vec<Vec<Arg>>| {
            let list = names(cols);
            Part::new(cols, rows, move |u| {
                format!("INSERT INTO {table} ({list}) SELECT {list} FROM {u}")
            })
        };
        let rows = vec![
            insert("events", &EVENT_COLS, self.events),
            insert("idempotency_keys", &KEY_COLS, self.keys),
        ];
        let mut head = Vec::new();
        if let Some(position) = self.head {
            head.push(Part::new(
                &[("head", "bigint")],
                vec![args![position].into()],
                |u| format!("UPDATE log_head SET position = u.head FROM {u}"),
            ));
            // Delivered to every listener at commit, never before; a doorbell only.
            let payload = match &self.origin {
                Some(origin) => format!("{position} {origin}"),
                None => position.to_string(),
            };
            head.extend(tx.notify_part(NOTIFY_CHANNEL, &payload));
        }
        LogParts { rows, head }
    }
}
