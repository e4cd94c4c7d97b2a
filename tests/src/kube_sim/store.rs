//! The objects and their history, as etcd and the watch cache keep them: one global,
//! monotonically increasing resourceVersion; every change (ADDED, MODIFIED, DELETED) kept since
//! the compaction point, so a watch can resume from any resourceVersion at or after it and a
//! paginated LIST can be cut from the snapshot at the first page's resourceVersion. Pure but for
//! the broadcast that hands changes to running watches (sent under the same lock that orders
//! them, so a watch that starts never misses or repeats one).

use super::continuation::Continue;
use super::event::{Event, EventUpdate, Key, fill_new};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How many changes a watch may fall behind before it is ended (the API server ends watches
/// that cannot keep up, too).
const WATCH_BUFFER: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change. A DELETED carries the object's last state with the deletion's resourceVersion,
/// as the API server sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub type_: ChangeType,
    pub object: Arc<Event>,
    /// The state before (to roll a snapshot back); `None` for ADDED.
    previous: Option<Arc<Event>>,
}

impl Change {
    pub fn namespace(&self) -> &str {
        &self.object.metadata.namespace
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("events {:?} not found", .0.name)]
    NotFound(Key),
    #[error("events {:?} already exists", .0.name)]
    AlreadyExists(Key),
    /// The resourceVersion (of a watch, an exact LIST or a continue token) was compacted away.
    #[error("too old resource version: {asked} ({oldest})")]
    Expired { asked: u64, oldest: u64 },
    #[error("Too large resource version: {asked}, current: {current}")]
    TooLarge { asked: u64, current: u64 },
    #[error("the event has no name and no namespace")]
    Unnamed,
}

/// Which state a LIST reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAt {
    /// The newest (no resourceVersion, "0", or one not newer than the current one).
    Latest,
    /// Exactly this one (`resourceVersionMatch=Exact`).
    Exact(u64),
    /// At least this one: the newest, unless it is newer than anything written.
    NotOlderThan(u64),
}

/// One page of a LIST.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The snapshot's resourceVersion.
    pub rv: u64,
    pub items: Vec<Arc<Event>>,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Where a watch starts: what it sends first, then what arrives on `live` after `position`.
#[derive(Debug)]
pub struct WatchStart {
    pub backlog: Vec<Change>,
    pub live: broadcast::Receiver<Arc<Change>>,
    /// The resourceVersion everything up to which is in the backlog.
    pub position: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    event: Arc<Event>,
    /// The last create or update: the TTL counts from it, as the API server renews an event's
    /// etcd lease on every write.
    written: Instant,
}

#[derive(Debug)]
pub struct Store {
    rv: u64,
    /// Every resourceVersion below this one answers 410.
    compacted: u64,
    objects: BTreeMap<Key, Stored>,
    /// The changes after `compacted`, oldest first.
    history: VecDeque<Arc<Change>>,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

fn in_scope(namespace: Option<&str>, key: &Key) -> bool {
    namespace.is_none_or(|ns| key.namespace == ns)
}

impl Store {
    /// Starts at resourceVersion 1 (as a fresh cluster has written something before any event).
    pub fn new() -> Store {
        Store {
            rv: 1,
            compacted: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            changes: broadcast::Sender::new(WATCH_BUFFER),
        }
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch or a continue token may still name.
    pub fn oldest(&self) -> u64 {
        self.compacted
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Event>> {
        self.objects.get(key).map(|s| s.event.clone())
    }

    /// Every current event, ordered by namespace/name.
    pub fn all(&self, namespace: Option<&str>) -> Vec<Arc<Event>> {
        self.objects.iter().filter(|(k, _)| in_scope(namespace, k)).map(|(_, s)| s.event.clone()).collect()
    }

    fn record(&mut self, type_: ChangeType, object: Arc<Event>, previous: Option<Arc<Event>>) {
        let change = Arc::new(Change { rv: self.rv, type_, object, previous });
        self.history.push_back(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Creates an event; the server fills what the API server fills ([`fill_new`]).
    pub fn create(&mut self, event: Event, now: Instant) -> Result<Arc<Event>, StoreError> {
        let mut event = fill_new(event, None);
        if event.metadata.namespace.is_empty() {
            return Err(StoreError::Unnamed);
        }
        let key = event.key();
        if self.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists(key));
        }
        self.rv += 1;
        event.metadata.resource_version = self.rv.to_string();
        let event = Arc::new(event);
        self.objects.insert(key, Stored { event: event.clone(), written: now });
        self.record(ChangeType::Added, event.clone(), None);
        Ok(event)
    }

    pub fn update(
        &mut self,
        key: &Key,
        update: &EventUpdate,
        now: Instant,
    ) -> Result<Arc<Event>, StoreError> {
        let stored = self.objects.get_mut(key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        let previous = stored.event.clone();
        let mut event = (*previous).clone();
        update.apply(&mut event);
        self.rv += 1;
        event.metadata.resource_version = self.rv.to_string();
        let event = Arc::new(event);
        *stored = Stored { event: event.clone(), written: now };
        self.record(ChangeType::Modified, event.clone(), Some(previous));
        Ok(event)
    }

    pub fn delete(&mut self, key: &Key) -> Result<Arc<Event>, StoreError> {
        let stored = self.objects.remove(key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        self.rv += 1;
        let mut last = (*stored.event).clone();
        last.metadata.resource_version = self.rv.to_string();
        let last = Arc::new(last);
        self.record(ChangeType::Deleted, last.clone(), Some(stored.event));
        Ok(last)
    }

    /// Deletes (with a DELETED each) every event not written for `ttl`; returns how many.
    pub fn expire(&mut self, now: Instant, ttl: Duration) -> usize {
        let old: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.written) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &old {
            let _ = self.delete(key);
        }
        old.len()
    }

    /// Compacts at the current resourceVersion: every older one answers 410 from now on.
    pub fn compact(&mut self) -> u64 {
        self.compacted = self.rv;
        self.history.clear();
        self.rv
    }

    fn check_not_compacted(&self, rv: u64) -> Result<(), StoreError> {
        if rv < self.compacted {
            return Err(StoreError::Expired { asked: rv, oldest: self.compacted });
        }
        Ok(())
    }

    /// The events of `namespace` (all when `None`) as they were at `rv` (not compacted).
    fn snapshot(&self, namespace: Option<&str>, rv: u64) -> BTreeMap<Key, Arc<Event>> {
        let mut state: BTreeMap<Key, Arc<Event>> = self
            .objects
            .iter()
            .filter(|(k, _)| in_scope(namespace, k))
            .map(|(k, s)| (k.clone(), s.event.clone()))
            .collect();
        for change in self.history.iter().rev().take_while(|c| c.rv > rv) {
            let key = change.object.key();
            if !in_scope(namespace, &key) {
                continue;
            }
            match &change.previous {
                None => state.remove(&key),
                Some(previous) => state.insert(key, previous.clone()),
            };
        }
        state
    }

    /// One page of a LIST: from the snapshot the continue token names, else the one `at` asks
    /// for; at most `limit` items (all when `None` or 0), ordered by namespace/name.
    pub fn list(
        &self,
        namespace: Option<&str>,
        at: ListAt,
        limit: Option<usize>,
        from: Option<&Continue>,
    ) -> Result<Page, StoreError> {
        let rv = match (from, at) {
            (Some(c), _) => {
                self.check_not_compacted(c.rv)?;
                c.rv
            }
            (None, ListAt::Latest) => self.rv,
            (None, ListAt::Exact(rv)) => {
                self.check_not_compacted(rv)?;
                if rv > self.rv {
                    return Err(StoreError::TooLarge { asked: rv, current: self.rv });
                }
                rv
            }
            (None, ListAt::NotOlderThan(rv)) => {
                if rv > self.rv {
                    return Err(StoreError::TooLarge { asked: rv, current: self.rv });
                }
                self.rv
            }
        };
        let snapshot = if rv == self.rv { None } else { Some(self.snapshot(namespace, rv)) };
        let after = from.map(|c| &c.after);
        let candidates: Box<dyn Iterator<Item = (&Key, &Arc<Event>)>> = match &snapshot {
            Some(s) => Box::new(s.iter()),
            None => Box::new(
                self.objects.iter().filter(|(k, _)| in_scope(namespace, k)).map(|(k, s)| (k, &s.event)),
            ),
        };
        let mut rest = candidates.filter(|(k, _)| after.is_none_or(|a| *k > a)).peekable();
        let limit = limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < limit {
            let Some((key, event)) = rest.next() else { break };
            items.push(event.clone());
            last = Some(key.clone());
        }
        let remaining = rest.count() as u64;
        let continue_token = match last {
            Some(after) if remaining > 0 => Some(Continue { rv, after }.encode()),
            _ => None,
        };
        let remaining = continue_token.as_ref().map(|_| remaining);
        Ok(Page { rv, items, continue_token, remaining })
    }

    /// Starts a watch: from `rv` (the changes strictly after it; 410 when compacted away), or,
    /// without one, with a synthetic ADDED for every current event, then the live changes.
    pub fn watch(&self, namespace: Option<&str>, rv: Option<u64>) -> Result<WatchStart, StoreError> {
        let live = self.changes.subscribe();
        let backlog: Vec<Change> = match rv {
            None => self
                .all(namespace)
                .into_iter()
                .map(|object| Change { rv: self.rv, type_: ChangeType::Added, object, previous: None })
                .collect(),
            Some(rv) => {
                self.check_not_compacted(rv)?;
                self.history
                    .iter()
                    .filter(|c| c.rv > rv && namespace.is_none_or(|ns| c.namespace() == ns))
                    .map(|c| (**c).clone())
                    .collect()
            }
        };
        Ok(WatchStart { backlog, live, position: rv.map_or(self.rv, |rv| rv.max(self.rv)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_sim::event::ObjectReference;

    fn event(ns: &str, name: &str) -> Event {
        let mut e = Event {
            involved_object: ObjectReference { kind: "Pod".into(), name: "p".into(), ..Default::default() },
            ..Default::default()
        };
        e.metadata.namespace = ns.into();
        e.metadata.name = name.into();
        e
    }

    fn names(page: &Page) -> Vec<String> {
        page.items.iter().map(|e| e.key().to_string()).collect()
    }

    fn key(ns: &str, name: &str) -> Key {
        Key { namespace: ns.into(), name: name.into() }
    }

    #[test]
    fn resource_versions_grow_and_objects_carry_them() {
        let mut s = Store::new();
        let now = Instant::now();
        let a = s.create(event("ns", "a"), now).unwrap();
        let b = s.update(&key("ns", "a"), &EventUpdate::default(), now).unwrap();
        let c = s.delete(&key("ns", "a")).unwrap();
        let rvs: Vec<&str> = [&a, &b, &c].iter().map(|e| e.metadata.resource_version.as_str()).collect();
        assert_eq!(rvs, ["2", "3", "4"]);
        assert_eq!((b.count, c.count), (2, 2), "DELETED carries the last state");
        assert_eq!(s.create(event("ns", "b"), now).map(|_| ()), Ok(()));
        assert_eq!(
            s.create(event("ns", "b"), now).map(|_| ()),
            Err(StoreError::AlreadyExists(key("ns", "b")))
        );
        assert_eq!(s.delete(&key("ns", "zz")).map(|_| ()), Err(StoreError::NotFound(key("ns", "zz"))));
    }

    #[test]
    fn pages_come_from_the_first_pages_snapshot() {
        let mut s = Store::new();
        let now = Instant::now();
        for name in ["e", "a", "c", "d", "b"] {
            s.create(event("ns", name), now).unwrap();
        }
        s.create(event("other", "x"), now).unwrap();
        let first = s.list(Some("ns"), ListAt::Latest, Some(2), None).unwrap();
        assert_eq!(names(&first), ["ns/a", "ns/b"]);
        assert_eq!(first.remaining, Some(3));
        let snapshot_rv = first.rv;
        // Changes after the first page do not show in the next ones.
        s.delete(&key("ns", "c")).unwrap();
        s.create(event("ns", "bb"), now).unwrap();
        s.update(&key("ns", "d"), &EventUpdate { count: Some(9), ..Default::default() }, now).unwrap();
        let token = Continue::decode(first.continue_token.as_deref().unwrap()).unwrap();
        let second = s.list(Some("ns"), ListAt::Latest, Some(2), Some(&token)).unwrap();
        assert_eq!(
            (names(&second), second.rv, second.remaining),
            (vec!["ns/c".into(), "ns/d".into()], snapshot_rv, Some(1))
        );
        assert_eq!(second.items[1].count, 1);
        let token = Continue::decode(second.continue_token.as_deref().unwrap()).unwrap();
        let third = s.list(Some("ns"), ListAt::Latest, Some(2), Some(&token)).unwrap();
        assert_eq!((names(&third), third.continue_token, third.remaining), (vec!["ns/e".into()], None, None));
        // All namespaces, ordered by namespace then name, latest state.
        let all = s.list(None, ListAt::Latest, None, None).unwrap();
        assert_eq!(names(&all), ["ns/a", "ns/b", "ns/bb", "ns/d", "ns/e", "other/x"]);
        // After a compaction the token is too old.
        s.compact();
        assert_eq!(
            s.list(Some("ns"), ListAt::Latest, Some(2), Some(&token)),
            Err(StoreError::Expired { asked: snapshot_rv, oldest: s.resource_version() })
        );
    }

    #[test]
    fn exact_and_not_older_than() {
        let mut s = Store::new();
        let now = Instant::now();
        s.create(event("ns", "a"), now).unwrap();
        let at = s.resource_version();
        s.create(event("ns", "b"), now).unwrap();
        assert_eq!(names(&s.list(None, ListAt::Exact(at), None, None).unwrap()), ["ns/a"]);
        assert_eq!(names(&s.list(None, ListAt::NotOlderThan(at), None, None).unwrap()), ["ns/a", "ns/b"]);
        assert!(matches!(
            s.list(None, ListAt::NotOlderThan(99), None, None),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn watches_resume_after_a_resource_version_until_compacted() {
        let mut s = Store::new();
        let now = Instant::now();
        s.create(event("ns", "a"), now).unwrap();
        let from = s.resource_version();
        s.create(event("other", "b"), now).unwrap();
        s.update(&key("ns", "a"), &EventUpdate::default(), now).unwrap();
        let w = s.watch(Some("ns"), Some(from)).unwrap();
        let got: Vec<(u64, &str)> = w.backlog.iter().map(|c| (c.rv, c.type_.as_str())).collect();
        assert_eq!(got, [(4, "MODIFIED")]);
        let w = s.watch(None, None).unwrap();
        assert_eq!(w.backlog.len(), 2);
        assert!(w.backlog.iter().all(|c| c.type_ == ChangeType::Added));
        let mut w = s.watch(None, Some(s.resource_version())).unwrap();
        s.delete(&key("ns", "a")).unwrap();
        let live = w.live.try_recv().unwrap();
        assert_eq!((live.rv, live.type_), (5, ChangeType::Deleted));
        s.compact();
        assert_eq!(
            s.watch(None, Some(from)).map(|_| ()).unwrap_err(),
            StoreError::Expired { asked: from, oldest: 5 }
        );
        assert!(s.watch(None, Some(5)).is_ok(), "the compaction point itself is fine");
    }

    #[test]
    fn the_ttl_counts_from_the_last_write() {
        let mut s = Store::new();
        let t0 = Instant::now();
        s.create(event("ns", "old"), t0).unwrap();
        s.create(event("ns", "renewed"), t0).unwrap();
        s.update(&key("ns", "renewed"), &EventUpdate::default(), t0 + Duration::from_secs(50)).unwrap();
        assert_eq!(s.expire(t0 + Duration::from_secs(60), Duration::from_secs(60)), 1);
        assert_eq!(s.all(None).iter().map(|e| e.metadata.name.clone()).collect::<Vec<_>>(), ["renewed"]);
    }
}
