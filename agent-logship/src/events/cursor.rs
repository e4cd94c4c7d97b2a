//! The list-then-watch protocol as a state machine, without IO: which request comes next, how
//! long to wait before it, and which occurrences were already taken.
//!
//! LIST (page by page, `limit` + `continue`) gives the state and a resourceVersion; WATCH from
//! it gives the changes; a watch the server ends (its `timeoutSeconds`) is resumed from the last
//! resourceVersion seen (bookmarks keep it fresh when nothing happens). Relist when that
//! version is gone (410) and when watches keep answering empty at once — the Events trap: an API
//! server may answer a watch from a compacted version with an empty 200 instead of a 410, and a
//! client that simply reconnects spins forever without ever seeing an event again. Every
//! unproductive answer lengthens the wait before the next request, so nothing ever busy-loops.

use std::collections::HashMap;
use std::time::Duration;

/// The next request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A LIST page: after the page whose `continue` token this is, or the first.
    List { next: Option<String> },
    /// A WATCH from this resourceVersion.
    Watch { from: String },
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A LIST page: the list's resourceVersion and the next page's token (none on the last).
    Page { resource_version: Option<String>, next: Option<String> },
    /// A watch stream ended: how many lines it carried (events and bookmarks), the last
    /// resourceVersion among them, and whether it ended early (long before the timeout asked
    /// for: the server closed it).
    WatchEnded { lines: usize, last: Option<String>, early: bool },
    /// 410 Gone (an HTTP answer or a watch `ERROR`): the version or the token is too old.
    Gone,
    /// Anything else: no connection, 401/403/5xx, a stream cut off. Tried again from where it
    /// was, after a wait.
    Failed,
}

/// Why a LIST starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relist {
    /// 410: the watch's resourceVersion or the list's continue token was compacted away.
    Gone,
    /// Several watches in a row answered empty at once (the Events trap).
    EmptyWatches,
}

impl Relist {
    pub fn as_str(self) -> &'static str {
        match self {
            Relist::Gone => "gone",
            Relist::EmptyWatches => "empty_watches",
        }
    }
}

/// What to do after an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// Wait this long before the next request (zero after a productive one).
    pub wait: Duration,
    /// The next request starts a new LIST, for this reason.
    pub relist: Option<Relist>,
}

/// The waits: `min` after the first unproductive answer, doubling up to `max`; a relist after
/// `empty_watches` empty answers in a row.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub min: Duration,
    pub max: Duration,
    pub empty_watches: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing { min: Duration::from_millis(500), max: Duration::from_secs(30), empty_watches: 3 }
    }
}

#[derive(Debug)]
pub struct Cursor {
    request: Request,
    /// The version of the LIST being paged (its first page's).
    listed: Option<String>,
    /// Unproductive answers since the last productive watch (sets the wait). A LIST does not
    /// end the trouble: a server that answers every watch from a fresh list with a 410 or an
    /// empty 200 must see us relist less and less often, not every half second.
    trouble: u32,
    /// Empty early watch answers in a row.
    empty: u32,
    pacing: Pacing,
}

impl Cursor {
    /// Starts with a LIST.
    pub fn new(pacing: Pacing) -> Self {
        Cursor { request: Request::List { next: None }, listed: None, trouble: 0, empty: 0, pacing }
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Takes the outcome of [`Cursor::request`] and says what comes next.
    pub fn on(&mut self, outcome: Outcome) -> Next {
        match (std::mem::replace(&mut self.request, Request::List { next: None }), outcome) {
            (Request::List { .. }, Outcome::Page { resource_version, next }) => {
                // Every page of a list is the same snapshot: the first page's version is its.
                if self.listed.is_none() {
                    self.listed = resource_version.filter(|v| !v.is_empty());
                }
                match (next.filter(|n| !n.is_empty()), self.listed.take()) {
                    (Some(next), listed) => {
                        self.listed = listed;
                        self.request = Request::List { next: Some(next) };
                        Next { wait: Duration::ZERO, relist: None }
                    }
                    (None, Some(from)) => {
                        self.request = Request::Watch { from };
                        Next { wait: Duration::ZERO, relist: None }
                    }
                    // A list without a resourceVersion cannot be watched from: list again.
                    (None, None) => self.trouble(Request::List { next: None }, None),
                }
            }
            (Request::Watch { from }, Outcome::WatchEnded { lines, last, early }) => {
                let from = last.filter(|v| !v.is_empty()).unwrap_or(from);
                if lines > 0 {
                    self.empty = 0;
                }
                if !early {
                    self.empty = 0;
                    self.request = Request::Watch { from };
                    return self.calm();
                }
                if lines > 0 {
                    // Cut short but productive (a proxy that closes long requests, a restarted
                    // API server): resume after the short wait, and the trouble is over — a
                    // growing wait here would leave us blind between watches for no reason.
                    self.trouble = 0;
                    self.request = Request::Watch { from };
                    return Next { wait: self.pacing.min, relist: None };
                }
                self.empty += 1;
                if self.empty >= self.pacing.empty_watches {
                    self.empty = 0;
                    return self.relist(Relist::EmptyWatches);
                }
                // Ended at once with nothing: resume, but not at once (a server that ends every
                // watch at once must not make us hammer it).
                self.trouble(Request::Watch { from }, None)
            }
            (_, Outcome::Gone) => self.relist(Relist::Gone),
            (request, Outcome::Failed) => self.trouble(request, None),
            // An outcome that does not answer the request made (a bug at the edge): start over.
            (_, _) => self.relist(Relist::Gone),
        }
    }

    fn relist(&mut self, why: Relist) -> Next {
        self.listed = None;
        self.trouble(Request::List { next: None }, Some(why))
    }

    fn calm(&mut self) -> Next {
        self.trouble = 0;
        Next { wait: Duration::ZERO, relist: None }
    }

    fn trouble(&mut self, request: Request, relist: Option<Relist>) -> Next {
        self.request = request;
        self.trouble = self.trouble.saturating_add(1);
        let doublings = (self.trouble - 1).min(16);
        let wait = self.pacing.min.saturating_mul(1 << doublings).min(self.pacing.max);
        Next { wait, relist }
    }
}

/// The occurrences already taken, per Event uid: a relist (which repeats every Event still
/// there) or a repeated MODIFIED does not ship them again. Bounded by the Events that exist: a
/// DELETED one is forgotten, and so is one a completed relist no longer shows.
#[derive(Debug, Default)]
pub struct Taken {
    /// uid -> (highest occurrence taken, the list generation it was last seen in).
    events: HashMap<String, (u64, u64)>,
    generation: u64,
}

impl Taken {
    /// Whether occurrence `n` of `uid` is new (then it is recorded as taken).
    pub fn take(&mut self, uid: &str, n: u64) -> bool {
        let generation = self.generation;
        match self.events.get_mut(uid) {
            Some((taken, seen)) => {
                *seen = generation;
                if n > *taken {
                    *taken = n;
                    true
                } else {
                    false
                }
            }
            None => {
                self.events.insert(uid.to_owned(), (n, generation));
                true
            }
        }
    }

    /// The Event is gone (DELETED): its uid is never used again.
    pub fn forget(&mut self, uid: &str) {
        self.events.remove(uid);
    }

    /// A LIST starts: what it does not show by [`Taken::list_done`] is gone.
    pub fn list_started(&mut self) {
        self.generation += 1;
    }

    /// The LIST's last page was read: forgets the Events it did not show.
    pub fn list_done(&mut self) {
        let generation = self.generation;
        self.events.retain(|_, (_, seen)| *seen == generation);
    }

    /// How many Events it keeps (tests: that gone ones are forgotten).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests;
