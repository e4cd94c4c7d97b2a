//! Credentials out of what is stored: every record and Event message is masked before it becomes
//! a document, so that nothing downstream (the `_id`, the batch, Elasticsearch, a dead letter,
//! the Events spool) ever holds a secret the rules know.
//!
//! What a credential looks like is [`agent_core::redact::find`]'s business, shared with every
//! agent's own masking; here are the users' extra patterns (`AGENT_LOGSHIP_REDACT_PATTERNS`),
//! the structural walk of JSON lines, and the counts by rule for `/metrics`. A secret is replaced
//! by [`MASK`]; every other byte stays as it was. A text without credentials is not copied.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use agent_core::redact::{self, Rule};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What a secret is replaced with in stored documents.
pub const MASK: &str = "<redacted>";

/// The most extra patterns: each one is a scan of every record.
pub const MAX_PATTERNS: usize = 32;

/// The largest compiled pattern, in bytes (regex-lite's measure): `[A-Za-z0-9/+]{40}` takes
/// 2.7 KB, `[a-z]{100}X` 4.1 KB; `[a-z]{1000}X` (40 KB) would cost seconds per MiB of log.
pub const MAX_PATTERN_SIZE: usize = 4200;

/// Which rules masked something, a bit each: the built-in rules in [`Rule::ALL`] order, then the
/// patterns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fired(u64);

impl Fired {
    fn rule(rule: Rule) -> Fired {
        Fired(1 << (rule as u32))
    }

    fn pattern(i: usize) -> Fired {
        Fired(1 << (Rule::ALL.len() + i))
    }

    fn any(self) -> bool {
        self.0 != 0
    }
}

impl std::ops::BitOrAssign for Fired {
    fn bitor_assign(&mut self, other: Fired) {
        self.0 |= other.0;
    }
}

/// The rules in force: the built-in ones and the user's patterns, with how many documents each
/// masked something in. Shared by the files source, the Events source and `/metrics`.
pub struct Redactor {
    patterns: Vec<regex_lite::Regex>,
    /// Per rule, built-in first ([`Fired`]'s order): documents it masked something in.
    counts: Box<[AtomicU64]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor").field("patterns", &self.patterns.len()).finish_non_exhaustive()
    }
}

impl Redactor {
    /// The built-in rules and `patterns` (at most [`MAX_PATTERNS`]; the settings check that).
    pub fn new(patterns: Vec<regex_lite::Regex>) -> Redactor {
        let patterns: Vec<_> = patterns.into_iter().take(MAX_PATTERNS).collect();
        let counts = (0..Rule::ALL.len() + patterns.len()).map(|_| AtomicU64::new(0)).collect();
        Redactor { patterns, counts }
    }

    /// Every rule's name (`url_userinfo` ..., then `pattern_1` ...) and its count, for `/metrics`.
    pub fn counts(&self) -> Vec<(String, u64)> {
        let names = Rule::ALL
            .iter()
            .map(|r| r.name().to_owned())
            .chain((1..=self.patterns.len()).map(|i| format!("pattern_{i}")));
        names.zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed))).collect()
    }

    /// A hash of the rules: the built-in rules' version and every pattern. Kept with the files
    /// checkpoint, to say at a start that the rules changed since the last.
    pub fn digest(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        h.update(&redact::RULES_VERSION.to_le_bytes());
        for p in &self.patterns {
            h.update(&(p.as_str().len() as u64).to_le_bytes());
            h.update(p.as_str().as_bytes());
        }
        h.digest()
    }

    /// `text` with every credential masked, or `None` when it holds none.
    pub fn text(&self, text: &str) -> Option<String> {
        self.text_from(text, redact::starts(text.as_bytes()))
    }

    /// [`Redactor::text`], with what [`redact::starts`] told of this text.
    fn text_from(&self, text: &str, starts: redact::Starts) -> Option<String> {
        let (masked, fired) = self.mask(text, starts);
        self.count(fired);
        masked
    }

    /// A log record's bytes (log4j, CRI, or a JSON line that is not an object) with every
    /// credential masked, or `None`. Bytes that are not UTF-8 are read as the encoder does
    /// (invalid sequences replaced): a masked record is UTF-8.
    pub fn bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.bytes_from(bytes, redact::starts(bytes))
    }

    /// [`Redactor::bytes`] for a record that begins with a date and time the framing has
    /// checked already (its record-start check): some 6 % of masking's cost, not paid twice.
    pub fn dated_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.bytes_from(bytes, redact::starts_dated(bytes))
    }

    fn bytes_from(&self, bytes: &[u8], starts: redact::Starts) -> Option<Vec<u8>> {
        // Most records: nothing a rule starts from, told without decoding them.
        if self.patterns.is_empty() && !starts.any() {
            return None;
        }
        let masked = match std::str::from_utf8(bytes) {
            Ok(text) => self.text_from(text, starts),
            // The replacement characters moved every byte after them: looked at again.
            Err(_) => self.text(&String::from_utf8_lossy(bytes)),
        };
        masked.map(String::into_bytes)
    }

    /// A JSON log line with every credential masked, or `None`. An object is masked field by
    /// field: a string, number or array under a key that names a secret (`password`,
    /// `"db":{"token":..}`; everything below such a key) is replaced whole, and every other
    /// string is masked as text. The line is then written again (as the encoder would write its
    /// fields anyway). A line that is not a JSON object is masked as text (it is stored as the
    /// message). Finding nothing costs one scan of the line, without building it.
    pub fn json_line(&self, line: &[u8]) -> Option<Vec<u8>> {
        let mut scan = Scan { redactor: self, fired: Fired::default() };
        let mut de = serde_json::Deserializer::from_slice(line);
        let object = (&mut scan).deserialize(&mut de).and_then(|is_object| de.end().map(|()| is_object));
        if !matches!(object, Ok(true)) {
            return self.bytes(line);
        }
        if !scan.fired.any() {
            return None;
        }
        self.count(scan.fired);
        // The scan read an object, so this does too; were it ever not so, the line would still
        // be masked, as text.
        let masked = serde_json::from_slice::<Map<String, Value>>(line).ok().and_then(|mut obj| {
            for (key, value) in obj.iter_mut() {
                self.mask_value(value, redact::is_secret_key(key));
            }
            serde_json::to_vec(&obj).ok()
        });
        masked.or_else(|| self.bytes(line))
    }

    fn mask_value(&self, value: &mut Value, secret: bool) {
        match value {
            Value::String(_) | Value::Number(_) if secret => *value = Value::String(MASK.to_owned()),
            Value::String(s) => {
                // Counted by the scan that found it.
                if let (Some(masked), _) = self.mask(s, redact::starts(s.as_bytes())) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_value(v, secret)),
            Value::Object(fields) => {
                for (key, v) in fields.iter_mut() {
                    self.mask_value(v, secret || redact::is_secret_key(key));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// `text` masked (`None`: nothing to mask), and the rules that fired; not counted. `starts`
    /// is what [`redact::starts`] told of `text`.
    fn mask(&self, text: &str, starts: redact::Starts) -> (Option<String>, Fired) {
        let (masks, fired) = self.find(text, starts);
        (fired.any().then(|| redact::replace(text, masks, MASK)), fired)
    }

    /// The ranges to mask in `text` and the rules that found them. Allocates nothing when there
    /// are none.
    fn find(&self, text: &str, starts: redact::Starts) -> (Vec<Range<usize>>, Fired) {
        let mut fired = Fired::default();
        let mut masks = Vec::new();
        redact::find_into(text, starts, &mut masks, |rule, _| fired |= Fired::rule(rule));
        for (i, p) in self.patterns.iter().enumerate() {
            let before = masks.len();
            let nonempty = |r: &Range<usize>| !r.is_empty();
            if p.captures_len() > 1 {
                // The first group when it took part, else the whole match.
                masks.extend(
                    p.captures_iter(text)
                        .filter_map(|c| c.get(1).or_else(|| c.get(0)))
                        .map(|m| m.range())
                        .filter(nonempty),
                );
            } else {
                masks.extend(p.find_iter(text).map(|m| m.range()).filter(nonempty));
            }
            if masks.len() > before {
                fired |= Fired::pattern(i);
            }
        }
        (masks, fired)
    }

    fn count(&self, fired: Fired) {
        for (i, c) in self.counts.iter().enumerate() {
            if fired.0 & (1 << i) != 0 {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The scan of a JSON line: whether it is an object, and what masking it would need, read with
/// serde_json's own parser (so it agrees with the encoder on what a JSON object is) but without
/// building the object: strings without escapes are borrowed, not copied.
struct Scan<'r> {
    redactor: &'r Redactor,
    fired: Fired,
}

impl<'de> DeserializeSeed<'de> for &mut Scan<'_> {
    /// Whether the line is an object.
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(Top(self))
    }
}

/// The line's top level: only an object is a JSON record.
struct Top<'s, 'r>(&'s mut Scan<'r>);

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        Field { scan: self.0, secret: false }.visit_map(map).map(|()| true)
    }

    // Anything else is not an object: the caller masks the line as text.
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// A value inside the object; `secret` when a key above it names a secret.
struct Field<'s, 'r> {
    scan: &'s mut Scan<'r>,
    secret: bool,
}

impl Field<'_, '_> {
    fn secret_scalar<E>(self) -> Result<(), E> {
        if self.secret {
            self.scan.fired |= Fired::rule(Rule::SecretValue);
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Field<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.secret {
            return self.secret_scalar();
        }
        let (_, fired) = self.scan.redactor.find(s, redact::starts(s.as_bytes()));
        self.scan.fired |= fired;
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.secret_scalar()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.secret_scalar()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.secret_scalar()
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Field { scan: &mut *self.scan, secret: self.secret })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(secret_key) = map.next_key_seed(Key)? {
            map.next_value_seed(Field { scan: &mut *self.scan, secret: self.secret || secret_key })?;
        }
        Ok(())
    }
}

/// A key: whether it names a secret.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(redact::is_secret_key(key))
    }
}

#[cfg(test)]
mod tests;
