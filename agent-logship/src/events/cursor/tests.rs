use super::*;

const MS: Duration = Duration::from_millis(1);

fn cursor() -> Cursor {
    Cursor::new(Pacing { min: 500 * MS, max: 4000 * MS, empty_watches: 3 })
}

fn page(rv: &str, next: Option<&str>) -> Outcome {
    Outcome::Page { resource_version: Some(rv.into()), next: next.map(Into::into) }
}

fn ended(lines: usize, last: Option<&str>, early: bool) -> Outcome {
    Outcome::WatchEnded { lines, last: last.map(Into::into), early }
}

fn watch(from: &str) -> Request {
    Request::Watch { from: from.into() }
}

const CALM: Next = Next { wait: Duration::ZERO, relist: None };

#[test]
fn lists_page_by_page_then_watches_from_the_lists_version() {
    let mut c = cursor();
    assert_eq!(*c.request(), Request::List { next: None });
    assert_eq!(c.on(page("100", Some("tok1"))), CALM);
    assert_eq!(*c.request(), Request::List { next: Some("tok1".into()) });
    // Later pages carry the same snapshot's version; the first page's is the one watched from.
    assert_eq!(c.on(page("100", Some("tok2"))), CALM);
    assert_eq!(c.on(page("100", Some(""))), CALM, "an empty token is the last page");
    assert_eq!(*c.request(), watch("100"));
}

#[test]
fn a_watch_ended_by_its_timeout_resumes_at_once_from_the_last_version_seen() {
    let mut c = cursor();
    c.on(page("100", None));
    assert_eq!(c.on(ended(4, Some("140"), false)), CALM);
    assert_eq!(*c.request(), watch("140"));
    // Nothing happened and no bookmark came: the same version again, still at once.
    assert_eq!(c.on(ended(0, None, false)), CALM);
    assert_eq!(*c.request(), watch("140"));
}

#[test]
fn a_410_relists_and_repeated_ones_wait_longer_each_time_up_to_the_cap() {
    let mut c = cursor();
    c.on(page("100", None));
    let mut waits = Vec::new();
    for _ in 0..6 {
        let next = c.on(Outcome::Gone);
        assert_eq!(next.relist, Some(Relist::Gone));
        assert_eq!(*c.request(), Request::List { next: None });
        waits.push(next.wait.as_millis());
        // The relist itself succeeds; only a productive watch ends the trouble.
        assert_eq!(c.on(page("100", None)), CALM);
    }
    assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000]);
    assert_eq!(c.on(ended(1, Some("101"), false)), CALM);
    assert_eq!(c.on(Outcome::Gone).wait.as_millis(), 500);
}

#[test]
fn an_expired_continue_token_starts_the_list_over() {
    let mut c = cursor();
    c.on(page("100", Some("tok1")));
    let next = c.on(Outcome::Gone);
    assert_eq!(next.relist, Some(Relist::Gone));
    assert_eq!(*c.request(), Request::List { next: None });
    // The new list's version is taken, not the expired one's.
    c.on(page("250", None));
    assert_eq!(*c.request(), watch("250"));
}

#[test]
fn empty_answers_at_once_back_off_then_relist_never_spinning() {
    let mut c = cursor();
    c.on(page("100", None));
    let a = c.on(ended(0, None, true));
    let b = c.on(ended(0, None, true));
    assert_eq!((a.wait.as_millis(), a.relist), (500, None));
    assert_eq!((b.wait.as_millis(), b.relist), (1000, None));
    assert_eq!(*c.request(), watch("100"));
    let third = c.on(ended(0, None, true));
    assert_eq!((third.wait.as_millis(), third.relist), (2000, Some(Relist::EmptyWatches)));
    assert_eq!(*c.request(), Request::List { next: None });
    // The relist goes on at once, but the trouble is not over: the next empty answer waits
    // longer still. A productive watch ends it.
    assert_eq!(c.on(page("300", None)), CALM);
    assert_eq!(c.on(ended(0, None, true)).wait.as_millis(), 4000);
    assert_eq!(c.on(ended(3, Some("310"), false)), CALM);
    assert_eq!(c.on(ended(0, None, true)).wait.as_millis(), 500);
}

#[test]
fn a_watch_ended_early_with_events_resumes_after_the_short_wait_and_resets_the_empty_count() {
    let mut c = cursor();
    c.on(page("100", None));
    c.on(ended(0, None, true));
    c.on(ended(0, None, true));
    let next = c.on(ended(2, Some("120"), true));
    assert_eq!(
        next,
        Next { wait: 500 * MS, relist: None },
        "never at once, never longer than the short wait"
    );
    // Cut short again and again, but productive each time: the wait does not grow.
    assert_eq!(c.on(ended(1, Some("121"), true)).wait, 500 * MS);
    assert_eq!(*c.request(), watch("121"));
    // The empty count started over: two more empty answers do not relist yet.
    assert_eq!(c.on(ended(0, None, true)).relist, None);
    assert_eq!(c.on(ended(0, None, true)).relist, None);
    assert_eq!(c.on(ended(0, None, true)).relist, Some(Relist::EmptyWatches));
}

#[test]
fn failures_retry_the_same_request_after_a_growing_wait() {
    let mut c = cursor();
    c.on(page("100", Some("tok1")));
    assert_eq!(c.on(Outcome::Failed).wait.as_millis(), 500);
    assert_eq!(*c.request(), Request::List { next: Some("tok1".into()) });
    assert_eq!(c.on(Outcome::Failed).wait.as_millis(), 1000);
    c.on(page("100", None));
    assert_eq!(c.on(Outcome::Failed), Next { wait: 2000 * MS, relist: None });
    assert_eq!(*c.request(), watch("100"));
}

#[test]
fn a_list_without_a_version_is_listed_again() {
    let mut c = cursor();
    let next = c.on(Outcome::Page { resource_version: None, next: None });
    assert_eq!(*c.request(), Request::List { next: None });
    assert_eq!(next.wait.as_millis(), 500);
}

#[test]
fn taken_occurrences_are_not_taken_twice_and_gone_events_are_forgotten() {
    let mut t = Taken::default();
    t.list_started();
    assert!(t.take("a", 1));
    assert!(!t.take("a", 1), "a relist or a repeated MODIFIED");
    assert!(t.take("a", 5), "a later occurrence");
    assert!(!t.take("a", 3), "an older state seen late");
    assert!(t.take("b", 1));
    t.list_done();
    assert_eq!(t.kept(), 2);
    t.forget("b");
    assert!(t.take("b", 1) && t.kept() == 2, "forgotten: its uid is new again");
    // A relist that no longer shows "a" forgets it; "b" is shown and kept.
    t.list_started();
    assert!(!t.take("b", 1));
    t.list_done();
    assert_eq!(t.kept(), 1);
    assert!(t.take("a", 5), "forgotten");
}
