//! A minimal dynamic mapping per index: the first value seen for a field fixes its type (string
//! → `text`, or `date` when it looks like one, as Elasticsearch's date detection does; integer →
//! `long`; fraction → `float`; bool → `boolean`; object → `object`), an index template's
//! `mappings.properties` fixes types up front, and a later document whose value cannot go into
//! the field's type is refused, as Elasticsearch refuses it (`document_parsing_exception`). That
//! is what sends a shipper's document to its dead-letter path.
//!
//! The check walks the source with serde's visitor (no `Value` tree is built) and allocates only
//! for fields the mapping does not have yet: cheap enough for hundreds of MB of documents.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// A field's type, as far as the checks here need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Keyword,
    Long,
    Float,
    Boolean,
    Date,
    Object,
    /// A type this double does not check (`ip`, `flattened`, `geo_point`, ...): anything goes.
    Other,
}

impl FieldType {
    /// The Elasticsearch name.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Keyword => "keyword",
            FieldType::Long => "long",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Object => "object",
            FieldType::Other => "other",
        }
    }

    /// The type of a `"type": NAME` in a mapping.
    pub fn from_mapping(name: &str) -> FieldType {
        match name {
            "text" | "match_only_text" => FieldType::Text,
            "keyword" | "constant_keyword" | "wildcard" => FieldType::Keyword,
            "long" | "integer" | "short" | "byte" | "unsigned_long" => FieldType::Long,
            "double" | "float" | "half_float" | "scaled_float" => FieldType::Float,
            "boolean" => FieldType::Boolean,
            "date" | "date_nanos" => FieldType::Date,
            "object" | "nested" => FieldType::Object,
            _ => FieldType::Other,
        }
    }
}

/// Why a document cannot be indexed (all 400s).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("failed to parse: {0}")]
    NotJson(String),
    #[error("failed to parse: the source is not a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Conflict(String),
}

/// The fields of one index and their types (dotted paths: `log.level`).
#[derive(Debug, Default, Clone)]
pub struct Mapping {
    fields: HashMap<Box<str>, FieldType>,
}

/// A document that fits: the fields it adds to the mapping, and whether it has `@timestamp`.
#[derive(Debug)]
pub struct Checked {
    new_fields: Vec<(Box<str>, FieldType)>,
    pub has_timestamp: bool,
}

impl Mapping {
    /// The mapping an index template's `template.mappings` declares (its `properties`, nested
    /// ones and dotted names expanded).
    pub fn from_mappings(mappings: Option<&Value>) -> Mapping {
        let mut mapping = Mapping::default();
        if let Some(Value::Object(props)) = mappings.and_then(|m| m.get("properties")) {
            mapping.add_properties("", props);
        }
        mapping
    }

    fn add_properties(&mut self, prefix: &str, props: &serde_json::Map<String, Value>) {
        for (name, def) in props {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            for (i, _) in path.match_indices('.') {
                self.fields.entry(path[..i].into()).or_insert(FieldType::Object);
            }
            let children = def.get("properties").and_then(Value::as_object);
            let kind = match def.get("type").and_then(Value::as_str) {
                Some(t) => FieldType::from_mapping(t),
                None => FieldType::Object,
            };
            self.fields.insert(path.as_str().into(), kind);
            if let Some(children) = children {
                self.add_properties(&path, children);
            }
        }
    }

    /// The type of a field, if mapped.
    pub fn get(&self, path: &str) -> Option<FieldType> {
        self.fields.get(path).copied()
    }

    /// Maps a field (and its parents as objects), replacing what was there.
    pub fn set(&mut self, path: &str, kind: FieldType) {
        for (i, _) in path.match_indices('.') {
            self.fields.entry(path[..i].into()).or_insert(FieldType::Object);
        }
        self.fields.insert(path.into(), kind);
    }

    /// How many fields are mapped.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Checks a source against the mapping without changing it; `id` is for the reasons.
    pub fn check(&self, source: &[u8], id: &str) -> Result<Checked, Rejection> {
        match source.trim_ascii_start().first() {
            Some(b'{') => {}
            None => return Err(Rejection::NotJson("the document is empty".to_owned())),
            Some(_) => return Err(Rejection::NotAnObject),
        }
        let mut walk = Walk {
            mapping: self,
            id,
            path: String::new(),
            new_fields: Vec::new(),
            conflict: None,
            has_timestamp: false,
        };
        let mut de = serde_json::Deserializer::from_slice(source);
        let parsed = Document(&mut walk).deserialize(&mut de).and_then(|()| de.end());
        if let Some(reason) = walk.conflict {
            return Err(Rejection::Conflict(reason));
        }
        parsed.map_err(|e| Rejection::NotJson(e.to_string()))?;
        Ok(Checked { new_fields: walk.new_fields, has_timestamp: walk.has_timestamp })
    }

    /// Adds the fields a checked document brought.
    pub fn apply(&mut self, checked: Checked) {
        for (path, kind) in checked.new_fields {
            self.fields.entry(path).or_insert(kind);
        }
    }
}

/// The kind of a value in a document.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Str(&'a str),
    Long,
    Float,
    Bool,
    Object,
}

struct Walk<'m> {
    mapping: &'m Mapping,
    id: &'m str,
    /// The dotted path of the value being visited.
    path: String,
    new_fields: Vec<(Box<str>, FieldType)>,
    conflict: Option<String>,
    has_timestamp: bool,
}

impl Walk<'_> {
    fn observe<E: de::Error>(&mut self, kind: Kind<'_>) -> Result<(), E> {
        if self.path == "@timestamp" && !matches!(kind, Kind::Object) {
            self.has_timestamp = true;
        }
        let path = self.path.as_str();
        let existing = self
            .mapping
            .get(path)
            .or_else(|| self.new_fields.iter().find(|(p, _)| **p == *path).map(|(_, t)| *t));
        let Some(field) = existing else {
            self.new_fields.push((path.into(), dynamic_type(kind)));
            return Ok(());
        };
        match incompatibility(field, kind, path, self.id) {
            None => Ok(()),
            Some(reason) => {
                self.conflict = Some(reason);
                Err(E::custom("mapping conflict"))
            }
        }
    }

    fn conflict<E: de::Error>(&mut self, reason: String) -> E {
        self.conflict = Some(reason);
        E::custom("mapping conflict")
    }
}

fn dynamic_type(kind: Kind<'_>) -> FieldType {
    match kind {
        Kind::Str(s) if looks_like_date(s) => FieldType::Date,
        Kind::Str(_) => FieldType::Text,
        Kind::Long => FieldType::Long,
        Kind::Float => FieldType::Float,
        Kind::Bool => FieldType::Boolean,
        Kind::Object => FieldType::Object,
    }
}

/// Why a value cannot go into a field of type `field`, as Elasticsearch words it; `None` when
/// it can (numbers and booleans go into strings, numeric strings into numbers: coercion).
fn incompatibility(field: FieldType, kind: Kind<'_>, path: &str, id: &str) -> Option<String> {
    let fits = match (field, kind) {
        (FieldType::Other, _) | (FieldType::Object, Kind::Object) => true,
        (FieldType::Object, _) => {
            let leaf = path.rsplit('.').next().unwrap_or(path);
            return Some(format!(
                "object mapping for [{path}] tried to parse field [{leaf}] as object, but found a concrete value"
            ));
        }
        (_, Kind::Object) => false,
        (FieldType::Text | FieldType::Keyword, _) => true,
        (FieldType::Long | FieldType::Float, Kind::Long | Kind::Float) => true,
        (FieldType::Long | FieldType::Float, Kind::Str(s)) => s.trim().parse::<f64>().is_ok(),
        (FieldType::Boolean, Kind::Bool) => true,
        (FieldType::Boolean, Kind::Str(s)) => matches!(s, "true" | "false" | ""),
        (FieldType::Date, Kind::Str(s)) => looks_like_date(s),
        (FieldType::Date, Kind::Long | Kind::Float) => true,
        _ => false,
    };
    (!fits).then(|| {
        format!("failed to parse field [{path}] of type [{}] in document with id '{id}'", field.name())
    })
}

/// `strict_date_optional_time`: `yyyy-MM-dd`, optionally `THH:mm[:ss[.fraction]]` and a zone
/// (`Z`, `+HH:mm`, `+HHmm`, `+HH`).
pub fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10))
    {
        return false;
    }
    let mut rest = &b[10..];
    if rest.is_empty() {
        return true;
    }
    if rest[0] != b'T' {
        return false;
    }
    rest = &rest[1..];
    let two = |r: &[u8]| r.len() >= 2 && r[..2].iter().all(u8::is_ascii_digit);
    if !two(rest) {
        return false;
    }
    rest = &rest[2..];
    for _ in 0..2 {
        if rest.first() == Some(&b':') && two(&rest[1..]) {
            rest = &rest[3..];
        }
    }
    if rest.first() == Some(&b'.') || rest.first() == Some(&b',') {
        let n = rest[1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    match rest {
        [] | [b'Z'] => true,
        [b'+' | b'-', zone @ ..] => {
            let zone: Vec<u8> = zone.iter().copied().filter(|&c| c != b':').collect();
            (zone.len() == 2 || zone.len() == 4) && zone.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// The whole document (an object).
struct Document<'a, 'm>(&'a mut Walk<'m>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(Fields(self.0))
    }
}

/// The fields of an object at the walk's path.
struct Fields<'a, 'm>(&'a mut Walk<'m>);

impl<'de> Visitor<'de> for Fields<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        // Elasticsearch's JSON parser refuses a key twice in one object (since 6.0).
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!("Duplicate field '{key}'")));
            }
            seen.push(key.clone());
            if key.trim().is_empty() || key.split('.').any(str::is_empty) {
                let shown =
                    if walk.path.is_empty() { key.to_string() } else { format!("{}.{key}", walk.path) };
                return Err(walk.conflict(format!("field name cannot be an empty string: [{shown}]")));
            }
            let base = walk.path.len();
            if base > 0 {
                walk.path.push('.');
            }
            // A dotted name is a path of objects: `{"log.level": x}` is `{"log": {"level": x}}`.
            let start = walk.path.len();
            for (i, _) in key.match_indices('.') {
                walk.path.push_str(&key[..i]);
                walk.observe::<A::Error>(Kind::Object)?;
                walk.path.truncate(start);
            }
            walk.path.push_str(&key);
            map.next_value_seed(Field(&mut *walk))?;
            walk.path.truncate(base);
        }
        Ok(())
    }
}

/// A field name, borrowed from the source unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One value at the walk's path.
struct Field<'a, 'm>(&'a mut Walk<'m>);

impl<'de> DeserializeSeed<'de> for Field<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.observe(Kind::Bool)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.observe(Kind::Long)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.observe(Kind::Long)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.observe(Kind::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.observe(Kind::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // null: no value, no mapping (as in Elasticsearch).
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // An array is its elements, each checked against the same field.
        while seq.next_element_seed(Field(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.observe::<A::Error>(Kind::Object)?;
        if self.0.mapping.get(&self.0.path) == Some(FieldType::Other) {
            // A type this double does not model (`flattened`, ...): its inside is not mapped.
            while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        Fields(self.0).visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(mapping: &mut Mapping, doc: &str) -> Result<bool, Rejection> {
        let checked = mapping.check(doc.as_bytes(), "id1")?;
        let ts = checked.has_timestamp;
        mapping.apply(checked);
        Ok(ts)
    }

    #[test]
    fn the_first_value_fixes_the_type() {
        let mut m = Mapping::default();
        index(&mut m, r#"{"message":"hi","n":1,"f":1.5,"ok":true,"log":{"level":"INFO"},"nothing":null}"#)
            .expect("fits");
        assert_eq!(m.get("message"), Some(FieldType::Text));
        assert_eq!(m.get("n"), Some(FieldType::Long));
        assert_eq!(m.get("f"), Some(FieldType::Float));
        assert_eq!(m.get("ok"), Some(FieldType::Boolean));
        assert_eq!(m.get("log"), Some(FieldType::Object));
        assert_eq!(m.get("log.level"), Some(FieldType::Text));
        assert_eq!(m.get("nothing"), None, "null maps nothing");
        // Coercions Elasticsearch does.
        index(&mut m, r#"{"message":42,"n":"7","f":2,"ok":"false","log.level":"WARN"}"#).expect("coerced");
    }

    #[test]
    fn an_object_where_a_string_was_is_refused() {
        let mut m = Mapping::default();
        index(&mut m, r#"{"error":"boom"}"#).expect("fits");
        let e = index(&mut m, r#"{"error":{"message":"boom"}}"#).expect_err("conflict");
        assert_eq!(
            e,
            Rejection::Conflict(
                "failed to parse field [error] of type [text] in document with id 'id1'".into()
            )
        );
        assert_eq!(m.get("error.message"), None, "a refused document maps nothing");
    }

    #[test]
    fn a_string_where_an_object_was_is_refused() {
        let mut m = Mapping::default();
        index(&mut m, r#"{"log":{"level":"INFO"}}"#).expect("fits");
        let e = index(&mut m, r#"{"log":"INFO"}"#).expect_err("conflict");
        assert!(
            e.to_string().starts_with("object mapping for [log] tried to parse field [log] as object"),
            "{e}"
        );
        let e = index(&mut m, r#"{"log.level":{"x":1}}"#).expect_err("object into text");
        assert!(e.to_string().contains("[log.level] of type [text]"), "{e}");
        let e = index(&mut m, r#"{"log":{"level":[ "a", {"b":1} ]}}"#).expect_err("array element");
        assert!(matches!(e, Rejection::Conflict(_)), "{e:?}");
    }

    #[test]
    fn dotted_names_are_object_paths() {
        let mut m = Mapping::default();
        index(&mut m, r#"{"kubernetes.pod.name":"p"}"#).expect("fits");
        assert_eq!(m.get("kubernetes"), Some(FieldType::Object));
        assert_eq!(m.get("kubernetes.pod"), Some(FieldType::Object));
        let e = index(&mut m, r#"{"kubernetes":"flat"}"#).expect_err("object");
        assert!(matches!(e, Rejection::Conflict(_)));
        let e = index(&mut m, r#"{"a..b":1}"#).expect_err("empty segment");
        assert!(e.to_string().contains("empty string"), "{e}");
    }

    #[test]
    fn numbers_booleans_and_dates_refuse_what_they_cannot_hold() {
        let mut m = Mapping::default();
        index(&mut m, r#"{"n":1,"b":true,"t":"2024-05-01T12:00:00.123Z"}"#).expect("fits");
        assert_eq!(m.get("t"), Some(FieldType::Date), "date detection");
        for doc in
            [r#"{"n":"abc"}"#, r#"{"n":true}"#, r#"{"b":1}"#, r#"{"b":"yes"}"#, r#"{"t":"not a date"}"#]
        {
            assert!(matches!(m.check(doc.as_bytes(), "x"), Err(Rejection::Conflict(_))), "{doc}");
        }
        m.check(br#"{"t":1714564800000}"#, "x").expect("epoch millis");
    }

    #[test]
    fn template_mappings_fix_types_up_front() {
        let mappings = serde_json::json!({"properties": {
            "@timestamp": {"type": "date"},
            "log": {"properties": {"level": {"type": "keyword"}}},
            "error.stack_trace": {"type": "wildcard"},
            "host": {"type": "flattened"}
        }});
        let m = Mapping::from_mappings(Some(&mappings));
        assert_eq!(m.get("@timestamp"), Some(FieldType::Date));
        assert_eq!(m.get("log"), Some(FieldType::Object));
        assert_eq!(m.get("log.level"), Some(FieldType::Keyword));
        assert_eq!(m.get("error"), Some(FieldType::Object));
        assert_eq!(m.get("host"), Some(FieldType::Other));
        assert!(m.check(br#"{"@timestamp":"yesterday"}"#, "x").is_err());
        assert!(m.check(br#"{"host":{"anything":[1,"a"]}}"#, "x").is_ok());
        assert!(m.check(br#"{"@timestamp":"2024-05-01"}"#, "x").is_ok_and(|c| c.has_timestamp));
        assert!(m.check(br#"{"@timestamp":null}"#, "x").is_ok_and(|c| !c.has_timestamp));
    }

    #[test]
    fn broken_sources() {
        let m = Mapping::default();
        assert!(matches!(m.check(b"{\"a\":", "x"), Err(Rejection::NotJson(_))));
        assert!(matches!(m.check(b"{} {}", "x"), Err(Rejection::NotJson(_))), "trailing data");
        let Err(Rejection::NotJson(why)) = m.check(br#"{"a":{"b":1,"b":2}}"#, "x") else {
            panic!("a key twice")
        };
        assert!(why.starts_with("Duplicate field 'b'"), "{why}");
        assert!(m.check(br#"{"a.b":1,"a":{"c":2}}"#, "x").is_ok(), "a dotted name and an object merge");
        assert!(matches!(m.check(b"", "x"), Err(Rejection::NotJson(_))));
        assert_eq!(m.check(b"[1]", "x").map(|_| ()), Err(Rejection::NotAnObject));
        assert!(m.check("{\"caf\\u00e9\":\"x\"}".as_bytes(), "x").is_ok(), "escaped names");
    }

    #[test]
    fn dates() {
        for ok in [
            "2024-05-01",
            "2024-05-01T12:00",
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.123+02:00",
            "2024-05-01T12:00:00,5-0130",
        ] {
            assert!(looks_like_date(ok), "{ok}");
        }
        for bad in [
            "2024-05-01 12:00:00",
            "2024-5-01",
            "x2024-05-01",
            "2024-05-01T",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12Q",
        ] {
            assert!(!looks_like_date(bad), "{bad}");
        }
    }
}
