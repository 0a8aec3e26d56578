//! Parsed GraphQL documents, kept by their text.
//!
//! Clients send the same few documents over and over: a desk polls the same lists, an
//! integration sends one mutation with new variables each time. Parsing is the costliest
//! fixed step of a request after the network, so a document that parses is kept with the
//! alias count `prepare` checks, and a later request with the same text takes a copy of the
//! parsed tree instead of parsing it again.
//!
//! The cache is bounded three ways: by entries, by the size of one document, and by the
//! text of all the documents it keeps (see [`TEXT_KEPT`]).
//! Documents that fail to parse are never kept. A client sending a fresh document with
//! every request only turns entries over, at one parse per request, as without the cache.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// How many documents are kept at most.
pub const DOCUMENTS_KEPT: usize = 256;
/// The largest document kept, in bytes of text; a larger one is parsed every time.
pub const LARGEST_KEPT: usize = 4 * 1024;
/// The text of all kept documents together, in bytes. A parsed tree can be about a hundred
/// times its text (a 4 KiB document of two-byte fields is some 2,000 nodes), so this bounds
/// the cache's memory to a few MiB whatever clients send.
pub const TEXT_KEPT: usize = 64 * 1024;

/// A document that parsed, with what `prepare` counts in it.
#[derive(Debug)]
pub struct Parsed {
    /// The parsed document.
    pub doc: ExecutableDocument,
    /// Its aliases, in every operation and fragment.
    pub aliases: usize,
    /// A query of this text has run under full validation without an error (see
    /// `crate::http::run`): what validation settles from the text alone holds for it.
    validated: AtomicBool,
}

impl Parsed {
    /// A document just parsed.
    pub fn new(doc: ExecutableDocument, aliases: usize) -> Parsed {
        Parsed {
            doc,
            aliases,
            validated: AtomicBool::new(false),
        }
    }

    /// Whether a query of this text has passed full validation.
    pub fn is_validated(&self) -> bool {
        self.validated.load(Ordering::Relaxed)
    }

    /// Records that a query of this text passed full validation.
    pub fn mark_validated(&self) {
        self.validated.store(true, Ordering::Relaxed);
    }
}

/// The kept documents (see the module documentation).
#[derive(Debug)]
pub struct Documents {
    kept: Option<Mutex<Kept>>,
}

#[derive(Debug)]
struct Kept {
    entries: LruCache<Box<str>, Arc<Parsed>>,
    /// The text bytes of the kept entries.
    text: usize,
}

impl Documents {
    /// Keeps up to `entries` documents; 0 keeps none, so every request parses.
    pub fn new(entries: usize) -> Documents {
        Documents {
            kept: NonZeroUsize::new(entries).map(|n| {
                Mutex::new(Kept {
                    entries: LruCache::new(n),
                    text: 0,
                })
            }),
        }
    }

    /// The parsed document for `text`: the kept one, or `parse`'s result, kept when it is
    /// `Ok` and small enough. `parse` runs outside the lock.
    pub fn get_or_parse<E>(
        &self,
        text: &str,
        parse: impl FnOnce(&str) -> Result<Parsed, E>,
    ) -> Result<Arc<Parsed>, E> {
        let Some(kept) = &self.kept else {
            return parse(text).map(Arc::new);
        };
        if let Some(found) = lock(kept).entries.get(text) {
            return Ok(Arc::clone(found));
        }
        let parsed = Arc::new(parse(text)?);
        if text.len() <= LARGEST_KEPT {
            let mut kept = lock(kept);
            if let Some((old, _)) = kept.entries.push(text.into(), Arc::clone(&parsed)) {
                // The same text, parsed meanwhile by another request, or the entry the
                // entry count pushed out.
                kept.text -= old.len();
            }
            kept.text += text.len();
            while kept.text > TEXT_KEPT {
                let Some((old, _)) = kept.entries.pop_lru() else {
                    break;
                };
                kept.text -= old.len();
            }
        }
        Ok(parsed)
    }

    /// How many documents are kept now, and their text in bytes.
    #[cfg(test)]
    fn kept(&self) -> (usize, usize) {
        self.kept.as_ref().map_or((0, 0), |k| {
            let k = lock(k);
            (k.entries.len(), k.text)
        })
    }
}

/// The lock never guards a half-made change (every update completes or leaves the entry
/// out), so a panic elsewhere while it was held leaves nothing to repair.
fn lock(kept: &Mutex<Kept>) -> std::sync::MutexGuard<'_, Kept> {
    kept.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, async_graphql::parser::Error> {
        Ok(Parsed::new(async_graphql::parser::parse_query(text)?, 0))
    }

    #[test]
    fn a_document_is_parsed_once_and_then_served_from_memory() {
        let docs = Documents::new(4);
        let mut parses = 0;
        let mut counted = |t: &str| {
            parses += 1;
            parse(t)
        };
        let first = docs.get_or_parse("{ head }", &mut counted).unwrap();
        let again = docs.get_or_parse("{ head }", &mut counted).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(parses, 1);
        assert_eq!(docs.kept(), (1, "{ head }".len()));
    }

    #[test]
    fn failures_large_documents_and_a_zero_capacity_are_never_kept() {
        let docs = Documents::new(4);
        assert!(docs.get_or_parse("{ head", parse).is_err());
        let large = format!("{{ {} }}", "head ".repeat(LARGEST_KEPT / 5 + 1));
        assert!(large.len() > LARGEST_KEPT);
        docs.get_or_parse(&large, parse).unwrap();
        assert_eq!(docs.kept(), (0, 0));

        let none = Documents::new(0);
        let a = none.get_or_parse("{ head }", parse).unwrap();
        let b = none.get_or_parse("{ head }", parse).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(none.kept(), (0, 0));
    }

    #[test]
    fn the_least_recently_used_document_goes_first_by_count_and_by_text() {
        let docs = Documents::new(2);
        docs.get_or_parse("{ a }", parse).unwrap();
        docs.get_or_parse("{ b }", parse).unwrap();
        // Using `a` makes `b` the oldest, so `c` pushes `b` out.
        docs.get_or_parse("{ a }", parse).unwrap();
        docs.get_or_parse("{ c }", parse).unwrap();
        assert_eq!(docs.kept(), (2, 10));
        let mut parsed_again = false;
        docs.get_or_parse("{ b }", |t| {
            parsed_again = true;
            parse(t)
        })
        .unwrap();
        assert!(parsed_again, "b was pushed out");

        // By text: documents just under the largest kept fill the text budget, and the
        // oldest go as new ones come.
        let docs = Documents::new(DOCUMENTS_KEPT);
        let doc = |i: usize| format!("{{ f{i:04}: head {} }}", " ".repeat(LARGEST_KEPT - 20));
        let per = doc(0).len();
        for i in 0..(TEXT_KEPT / per + 5) {
            docs.get_or_parse(&doc(i), parse).unwrap();
        }
        let (count, text) = docs.kept();
        assert!(text <= TEXT_KEPT, "{text} bytes kept");
        assert_eq!(count, TEXT_KEPT / per);
        assert_eq!(text, count * per);
    }
}
