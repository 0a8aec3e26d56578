//! The doorbell: rung after every commit this process makes and, on PostgreSQL, for every
//! append any process notifies. It carries the newest head this process knows of, and how
//! often it was rung without one: a reader that already holds every event up to the head
//! (the shared tail, given this process's own commits by the writer) need not read, and an
//! unconditional ring always makes it read. A lost, late or duplicated ring can delay an
//! event but never lose, duplicate or reorder one.

use tokio::sync::watch;

use crate::model::Position;

/// What the doorbell carries.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bell {
    /// The newest head this process has seen committed.
    pub(crate) head: Position,
    /// Set when the store closes; subscribers end.
    pub(crate) closed: bool,
    /// How many unconditional rings there were ([`Doorbell::ring`]): appends may have been
    /// missed, so the log must be read whatever the head says.
    pub(crate) rings: u64,
}

/// The doorbell itself.
#[derive(Debug)]
pub(crate) struct Doorbell {
    bell: watch::Sender<Bell>,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            bell: watch::Sender::new(Bell::default()),
        }
    }

    /// Rings for a head that is newer than any seen so far.
    pub(crate) fn bump(&self, head: Position) {
        self.bell.send_if_modified(|bell| {
            if head > bell.head {
                bell.head = head;
                true
            } else {
                false
            }
        });
    }

    /// Rings unconditionally, for when appends may have been missed.
    pub(crate) fn ring(&self) {
        self.bell.send_modify(|bell| bell.rings += 1);
    }

    pub(crate) fn close(&self) {
        self.bell.send_modify(|bell| bell.closed = true);
    }

    pub(crate) fn listen(&self) -> watch::Receiver<Bell> {
        self.bell.subscribe()
    }
}
