//! `filter_path`, the response filtering every Elasticsearch and OpenSearch REST API accepts
//! (`?filter_path=took,hits.hits._id,-_shards`). Pure: a parsed filter, a JSON value in, the
//! filtered value out.
//!
//! The semantics are those of Elasticsearch's own implementation, read from its source rather
//! than guessed (elastic/elasticsearch, `libs/x-content`: `FilterPath` (the trie),
//! `FilterPathBasedFilter` (the Jackson `TokenFilter`), `JsonXContentGenerator` (how the two
//! filters are chained), `server/.../rest/AbstractRestChannel` (how the parameter is split), and
//! the cases of `FilterPathGeneratorFilteringTests`, which the unit tests below replay):
//!
//! - The parameter is split on commas, each filter trimmed, empty ones dropped; a filter starting
//!   with `-` excludes, the others include. No filter at all means no filtering.
//! - A filter is a path of segments split on `.`; `\.` is a literal dot inside a segment.
//! - A segment matches a field name exactly, or as a glob when it contains `*` (`*` matches any
//!   run of characters, so `*` is any one field and `st*` a prefix). A segment that is exactly
//!   `**` matches **one or more** levels: `FilterPath.matches` reaches the `**` node through its
//!   parent's glob children, so `**.state` does not match a top-level `state`.
//! - Arrays are transparent: the filter that applies to an array applies to each element.
//! - Inclusion: a field whose path matches a whole filter is kept with everything under it; a
//!   field on the way to a match is kept only for what it ends up containing; everything else is
//!   dropped. Scalars met before a filter's end are dropped. **Objects and arrays that end up
//!   empty are dropped, array elements included**: `POST /_bulk?filter_path=items.*.error`
//!   answers only the failed items (`docs/reference/docs/bulk.asciidoc`, "Example with failed
//!   actions", a tested doc snippet), and `{"errors":false}` alone when nothing failed.
//! - Exclusion: a field whose path matches a whole filter is dropped with everything under it;
//!   others are kept; objects and arrays on the way to an exclusion that end up empty are
//!   dropped. (Elasticsearch 8.16 and later keep those that were empty to begin with,
//!   elastic/elasticsearch#112250; 8.15, which es-sim plays, and OpenSearch 2 drop them.)
//! - Both: the inclusions, then the exclusions, as the generators are chained. (The reference
//!   says exclusions first; for the results that makes no difference.)
//! - The root object is always written: a filter that matches nothing answers `{}`.
//! - Error answers (`{"error":{...},"status":N}`) are never filtered: `newErrorBuilder()`
//!   disables filtering, in Elasticsearch 7 and 8 and in OpenSearch. Bulk items that failed are
//!   not error answers; they are filtered like the rest.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A parsed `filter_path` parameter.
#[derive(Debug, Clone)]
pub struct FilterPath {
    include: Option<Node>,
    exclude: Option<Node>,
}

/// A node of the filter trie; the root matches nothing itself.
#[derive(Debug, Clone, Default)]
struct Node {
    /// A filter ends here: a field that reaches this node matches.
    end: bool,
    /// This node's segment is exactly `**`: it stays active at every level below.
    double_wildcard: bool,
    terms: HashMap<String, Node>,
    globs: Vec<(String, Node)>,
}

/// What one field name does to the filters active where it is.
enum Step<'a> {
    /// It matches a whole filter.
    Match,
    /// It is on the way to a match: these nodes apply below it.
    Partial(Vec<&'a Node>),
    NoMatch,
}

impl FilterPath {
    /// Parses the parameter's value; `None` when it holds no filter (then nothing is filtered).
    pub fn parse(param: &str) -> Option<FilterPath> {
        let filters: Vec<&str> = param.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        if filters.is_empty() {
            return None;
        }
        let (exclude, include): (Vec<&str>, Vec<&str>) =
            filters.into_iter().partition(|f| f.starts_with('-'));
        let exclude: Vec<&str> = exclude.iter().map(|f| &f[1..]).collect();
        Some(FilterPath { include: compile(&include), exclude: compile(&exclude) })
    }

    /// The answer as Elasticsearch would write it with this filter. A root that is not an object
    /// (es-sim's Elasticsearch API answers none) is left as it is.
    pub fn apply(&self, body: Value) -> Value {
        let Value::Object(mut map) = body else { return body };
        if let Some(root) = &self.include {
            map = filter_object(map, &[root], true);
        }
        if let Some(root) = &self.exclude {
            map = filter_object(map, &[root], false);
        }
        Value::Object(map)
    }
}

/// The trie of a set of filters, as `FilterPath.compile` builds it; `None` for no filters.
fn compile(filters: &[&str]) -> Option<Node> {
    if filters.is_empty() {
        return None;
    }
    let mut root = Build::default();
    for filter in filters {
        let filter = filter.trim();
        if !filter.is_empty() {
            root.insert(filter);
        }
    }
    Some(root.freeze(""))
}

#[derive(Default)]
struct Build {
    end: bool,
    children: BTreeMap<String, Build>,
}

impl Build {
    fn insert(&mut self, filter: &str) {
        match split(filter) {
            Some((field, rest)) => {
                let child = self.children.entry(field).or_default();
                // A shorter filter already ends here and keeps everything below.
                if !child.end {
                    child.insert(rest);
                }
            }
            None => {
                self.children.insert(unescape(filter), Build { end: true, children: BTreeMap::new() });
            }
        }
    }

    fn freeze(self, segment: &str) -> Node {
        let mut node = Node {
            end: self.end,
            double_wildcard: segment == "**",
            terms: HashMap::new(),
            globs: Vec::new(),
        };
        for (name, child) in self.children {
            let frozen = child.freeze(&name);
            if name.contains('*') {
                node.globs.push((name, frozen));
            } else {
                node.terms.insert(name, frozen);
            }
        }
        node
    }
}

/// The first segment (unescaped) and the rest, at the first `.` not preceded by `\`; `None`
/// when the filter is one segment. A `.` in first position does not split (as in
/// Elasticsearch).
fn split(filter: &str) -> Option<(String, &str)> {
    let bytes = filter.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' if i > 0 => return Some((unescape(&filter[..i]), &filter[i + 1..])),
            b'.' => return None,
            b'\\' if bytes.get(i + 1) == Some(&b'.') => i += 2,
            _ => i += 1,
        }
    }
    None
}

fn unescape(segment: &str) -> String {
    segment.replace("\\.", ".")
}

/// `FilterPath.matches` over every active node.
fn step<'a>(nodes: &[&'a Node], name: &str) -> Step<'a> {
    let mut next = Vec::new();
    for node in nodes {
        if let Some(child) = node.terms.get(name) {
            if child.end {
                return Step::Match;
            }
            next.push(child);
        }
        for (pattern, child) in &node.globs {
            if glob(pattern, name) {
                if child.end {
                    return Step::Match;
                }
                next.push(child);
            }
        }
        if node.double_wildcard {
            next.push(*node);
        }
    }
    if next.is_empty() { Step::NoMatch } else { Step::Partial(next) }
}

fn filter_object(map: Map<String, Value>, nodes: &[&Node], inclusive: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in map {
        match step(nodes, &name) {
            Step::Match if inclusive => {
                out.insert(name, value);
            }
            Step::NoMatch if !inclusive => {
                out.insert(name, value);
            }
            Step::Partial(next) => {
                if let Some(value) = filter_value(value, &next, inclusive) {
                    out.insert(name, value);
                }
            }
            Step::Match | Step::NoMatch => {}
        }
    }
    out
}

/// A value below a field on the way to a match; `None` when nothing of it is written.
fn filter_value(value: Value, nodes: &[&Node], inclusive: bool) -> Option<Value> {
    match value {
        Value::Object(map) => {
            let out = filter_object(map, nodes, inclusive);
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> =
                items.into_iter().filter_map(|item| filter_value(item, nodes, inclusive)).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        scalar => (!inclusive).then_some(scalar),
    }
}

/// Elasticsearch's `Glob.globMatch`: `*` matches any run of characters, nothing else is special.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was and what it has swallowed so far, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filtered(body: &str, filter: &str) -> Value {
        let body: Value = serde_json::from_str(&body.replace('\'', "\"")).expect("valid JSON");
        FilterPath::parse(filter).expect("a filter").apply(body)
    }

    fn expect(body: &str, filter: &str, expected: &str) {
        let expected: Value = serde_json::from_str(&expected.replace('\'', "\"")).expect("valid JSON");
        assert_eq!(filtered(body, filter), expected, "filter_path={filter}");
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*", "anything"));
        assert!(glob("st*", "state"));
        assert!(!glob("st*", "ts"));
        assert!(glob("*2", "f2"));
        assert!(!glob("*2", "f21"));
        assert!(glob("f*o", "foooo"));
        assert!(glob("f*o", "fo"));
        assert!(!glob("f*o", "boo"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(glob("**", "x"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn no_filter_means_no_filtering() {
        assert!(FilterPath::parse("").is_none());
        assert!(FilterPath::parse(" , ,").is_none());
        // Only an empty exclusion: it excludes nothing.
        assert_eq!(filtered("{'a':1}", "-"), json!({"a": 1}));
    }

    // The cases of elastic/elasticsearch FilterPathGeneratorFilteringTests, on its sample. Where
    // that test (which filters with a bare Jackson generator) expects an empty output, the REST
    // layer writes the root object anyway: `{}`.
    const SAMPLE: &str = "{'a':0,'b':true,'c':'c_value','d':[0,1,2],'e':[{'f1':'f1_value','f2':'f2_value'},\
                          {'g1':'g1_value','g2':'g2_value'}],'h':{'i':{'j':{'k':{'l':'l_value'}}}}}";
    const H: &str = "{'h':{'i':{'j':{'k':{'l':'l_value'}}}}}";

    #[test]
    fn elasticsearch_inclusive_cases() {
        expect(SAMPLE, "a", "{'a':0}");
        expect(SAMPLE, "b", "{'b':true}");
        expect(SAMPLE, "c", "{'c':'c_value'}");
        expect(SAMPLE, "d", "{'d':[0,1,2]}");
        expect(SAMPLE, "e", "{'e':[{'f1':'f1_value','f2':'f2_value'},{'g1':'g1_value','g2':'g2_value'}]}");
        expect(SAMPLE, "h", H);
        expect(SAMPLE, "z", "{}");
        expect(SAMPLE, "e.f1", "{'e':[{'f1':'f1_value'}]}");
        expect(SAMPLE, "e.f2", "{'e':[{'f2':'f2_value'}]}");
        expect(SAMPLE, "e.f*", "{'e':[{'f1':'f1_value','f2':'f2_value'}]}");
        expect(SAMPLE, "e.*2", "{'e':[{'f2':'f2_value'},{'g2':'g2_value'}]}");
        for f in [
            "h.i",
            "h.i.j",
            "h.i.j.k",
            "h.i.j.k.l",
            "h.*",
            "*.i",
            "*.i.j",
            "h.*.j",
            "h.i.*",
            "*.i.j.k",
            "h.*.j.k",
            "h.i.*.k",
            "h.i.j.*",
            "*.i.j.k.l",
            "h.*.j.k.l",
            "h.i.*.k.l",
            "h.i.j.*.l",
            "h.i.j.k.*",
            "h.*.j.*.l",
            "**.l",
            "h.i.j.k.l,h.i.j.k.l.m",
            "h.i.j.k.l.m,h.i.j.k.l",
        ] {
            expect(SAMPLE, f, H);
        }
        expect(SAMPLE, "**.*2", "{'e':[{'f2':'f2_value'},{'g2':'g2_value'}]}");
        expect(SAMPLE, "a,b,c,d,e.f1,e.f2,e.g1,e.g2,h.i.j.k.l", SAMPLE);
    }

    #[test]
    fn elasticsearch_exclusive_cases() {
        let without = |removed: &[&str]| {
            let mut all: Value = serde_json::from_str(&SAMPLE.replace('\'', "\"")).expect("valid");
            for r in removed {
                all.as_object_mut().expect("object").remove(*r);
            }
            all
        };
        for key in ["a", "b", "c", "d", "e", "h"] {
            assert_eq!(filtered(SAMPLE, &format!("-{key}")), without(&[key]), "-{key}");
        }
        assert_eq!(filtered(SAMPLE, "-z"), without(&[]));
        let e_rest = |e: Value| {
            let mut v = without(&[]);
            v["e"] = e;
            v
        };
        assert_eq!(
            filtered(SAMPLE, "-e.f1"),
            e_rest(json!([{"f2": "f2_value"}, {"g1": "g1_value", "g2": "g2_value"}]))
        );
        assert_eq!(
            filtered(SAMPLE, "-e.f2"),
            e_rest(json!([{"f1": "f1_value"}, {"g1": "g1_value", "g2": "g2_value"}]))
        );
        assert_eq!(filtered(SAMPLE, "-e.f*"), e_rest(json!([{"g1": "g1_value", "g2": "g2_value"}])));
        assert_eq!(filtered(SAMPLE, "-e.*2"), e_rest(json!([{"f1": "f1_value"}, {"g1": "g1_value"}])));
        // Every filter that reaches l empties h, which is then dropped.
        for f in ["-h.i", "-h.i.j.k.l", "-h.*", "-*.i", "-h.*.j.*.l", "-**.l", "-h.i.j.k.l,-h.i.j.k.l.m"] {
            assert_eq!(filtered(SAMPLE, f), without(&["h"]), "{f}");
        }
        assert_eq!(
            filtered(SAMPLE, "-**.*2"),
            e_rest(json!([{"f1": "f1_value"}, {"g1": "g1_value"}])),
            "** goes through arrays"
        );
        expect(SAMPLE, "-a,-b,-c,-d,-e.f1,-e.f2,-e.g1,-e.g2,-h.i.j.k.l", "{}");
    }

    #[test]
    fn escaped_dots_match_dotted_names() {
        let body = "{'a':0,'b.c':'value','b':{'c':'c_value'}}";
        expect(body, "b.c", "{'b':{'c':'c_value'}}");
        expect(body, "b\\.c", "{'b.c':'value'}");
        expect(body, "-b.c", "{'a':0,'b.c':'value'}");
        expect(body, "-b\\.c", "{'a':0,'b':{'c':'c_value'}}");
    }

    #[test]
    fn double_wildcard_is_one_level_or_more() {
        expect("{'state':1,'x':{'state':2}}", "**.state", "{'x':{'state':2}}");
        expect("{'state':1,'x':{'state':2}}", "**", "{'state':1,'x':{'state':2}}");
        expect("{'a':{'state':1,'b':{'c':{'state':2}}}}", "a.**.state", "{'a':{'b':{'c':{'state':2}}}}");
    }

    // The examples of the reference page, "Response filtering" (common options).
    #[test]
    fn reference_examples() {
        let search = "{'took':3,'timed_out':false,'_shards':{'total':1,'successful':1,'skipped':0,'failed':0},\
                      'hits':{'total':{'value':1,'relation':'eq'},'max_score':1.6375021,\
                      'hits':[{'_index':'twitter','_id':'0','_score':1.6375021,'_source':{'title':'Book #1','rating':200.1}}]}}";
        expect(
            search,
            "took,hits.hits._id,hits.hits._score",
            "{'took':3,'hits':{'hits':[{'_id':'0','_score':1.6375021}]}}",
        );
        expect(search, "hits.hits._source.title", "{'hits':{'hits':[{'_source':{'title':'Book #1'}}]}}");

        let state = "{'cluster_name':'c','metadata':{'cluster_uuid':'u','indices':{\
                     'twitter':{'state':'open','settings':{'index':{'number_of_shards':'1'}},'mappings':{}},\
                     'logstash-2016.01':{'state':'open','settings':{}}}},\
                     'routing_table':{'indices':{'twitter':{'shards':{'0':[\
                     {'state':'STARTED','primary':true,'node':'n1'},{'state':'UNASSIGNED','primary':false,'node':null}]}}}}}";
        expect(
            state,
            "metadata.indices.*.stat*",
            "{'metadata':{'indices':{'twitter':{'state':'open'},'logstash-2016.01':{'state':'open'}}}}",
        );
        expect(
            state,
            "routing_table.indices.**.state",
            "{'routing_table':{'indices':{'twitter':{'shards':{'0':[{'state':'STARTED'},{'state':'UNASSIGNED'}]}}}}}",
        );
        expect(
            state,
            "metadata.indices.*.state,-metadata.indices.logstash-*",
            "{'metadata':{'indices':{'twitter':{'state':'open'}}}}",
        );
        expect(
            "{'count':5,'_shards':{'total':1,'successful':1,'skipped':0,'failed':0}}",
            "-_shards",
            "{'count':5}",
        );
    }

    // elastic/elasticsearch docs/reference/docs/bulk.asciidoc, "Example with failed actions":
    // with `items.*.error`, the items that did not fail are gone from the array.
    #[test]
    fn bulk_items_without_a_match_are_dropped() {
        let bulk = "{'took':486,'errors':true,'items':[\
            {'update':{'_index':'index1','_id':'5','status':404,'error':{'type':'document_missing_exception','reason':'[5]: document missing','index_uuid':'u','shard':'0','index':'index1'}}},\
            {'update':{'_index':'index1','_id':'6','status':404,'error':{'type':'document_missing_exception','reason':'[6]: document missing','index_uuid':'u','shard':'0','index':'index1'}}},\
            {'create':{'_index':'index1','_id':'7','_version':1,'result':'created','_shards':{'total':2,'successful':1,'failed':0},'_seq_no':0,'_primary_term':1,'status':201}}]}";
        expect(
            bulk,
            "items.*.error",
            "{'items':[\
             {'update':{'error':{'type':'document_missing_exception','reason':'[5]: document missing','index_uuid':'u','shard':'0','index':'index1'}}},\
             {'update':{'error':{'type':'document_missing_exception','reason':'[6]: document missing','index_uuid':'u','shard':'0','index':'index1'}}}]}",
        );
        expect(
            bulk,
            "errors,items.*.status,items.*.error.type",
            "{'errors':true,'items':[\
             {'update':{'status':404,'error':{'type':'document_missing_exception'}}},\
             {'update':{'status':404,'error':{'type':'document_missing_exception'}}},\
             {'create':{'status':201}}]}",
        );
        let ok = "{'took':1,'errors':false,'items':[{'create':{'_index':'i','_id':'1','status':201}}]}";
        expect(ok, "errors,items.*.error", "{'errors':false}");
        expect(ok, " items.*.error ", "{}");
    }

    #[test]
    fn scalars_nulls_and_empty_containers() {
        // Inclusion: a scalar before the filter's end is dropped, so is what ends up empty.
        expect("{'a':[1,{'b':2},null,[{'b':3}]]}", "a.b", "{'a':[{'b':2},[{'b':3}]]}");
        expect("{'a':{'b':null}}", "a.b", "{'a':{'b':null}}");
        expect("{'a':{},'b':[]}", "a,b", "{'a':{},'b':[]}");
        expect("{'a':{},'b':[]}", "a.x,b.x", "{}");
        // Exclusion: scalars stay; what the exclusion empties goes.
        expect("{'a':[1,{'b':2}]}", "-a.b", "{'a':[1]}");
        expect("{'a':[{'b':2}],'c':{}}", "-a.b", "{'c':{}}");
        // Combined: inclusions, then exclusions.
        expect("{'a':{'x':1,'y':2},'b':3}", "a,-a.x", "{'a':{'y':2}}");
        expect("{'a':{'x':1},'b':3}", "a,-a.x", "{}");
    }
}
