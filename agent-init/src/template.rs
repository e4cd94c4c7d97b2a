//! Templates: which files a set of template directories holds, what each becomes, and how a
//! later directory (an overlay) changes an earlier one. Pure: file contents come in as text.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use calypso::properties::{Document, Line};

use crate::problem::InputProblem;

pub const SUFFIX: &str = ".tmpl";
const PROPERTIES_SUFFIX: &str = ".properties.tmpl";

/// How substituted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `NAME.properties.tmpl` -> `NAME.properties.<ENV>`: read by java.util.Properties.
    Properties,
    /// `*.xml.tmpl`: XML character escaping.
    Xml,
    /// Anything else: values as they are.
    Plain,
}

/// The file a template becomes, or `None` for files that are no templates (no `.tmpl`).
pub fn output_name(template: &str, env: &str) -> Option<String> {
    if let Some(stem) = template.strip_suffix(PROPERTIES_SUFFIX).filter(|s| !s.is_empty()) {
        return Some(format!("{stem}.properties.{env}"));
    }
    template.strip_suffix(SUFFIX).filter(|s| !s.is_empty()).map(str::to_string)
}

pub fn kind(template: &str) -> Kind {
    if template.ends_with(PROPERTIES_SUFFIX) {
        Kind::Properties
    } else if template.ends_with(".xml.tmpl") {
        Kind::Xml
    } else {
        Kind::Plain
    }
}

/// One template file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file name (`calypsosystem.properties.tmpl`).
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// A line of a merged properties template, with the file it came from (for error positions).
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedLine {
    pub line: Line,
    pub path: PathBuf,
}

/// A template after overlays, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// Base lines, each key replaced by the last overlay's entry for it, new keys appended.
    Properties { lines: Vec<SourcedLine> },
    /// The last directory's file, whole.
    Text { kind: Kind, source: Source },
}

/// A template and the file it renders to.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub template: String,
    pub output: String,
    pub body: Template,
    /// One of its files could not be parsed (already reported): checks of the whole file, such
    /// as required keys, would only add noise.
    pub incomplete: bool,
}

/// Merges the templates of every directory (base first, then overlays, in order). Also returns
/// every unparsable file and every key defined twice within one file, so that rendering can
/// still report its own problems alongside.
pub fn merge(dirs: Vec<Vec<Source>>, env: &str) -> (Vec<Planned>, Vec<InputProblem>) {
    let mut by_name: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    for dir in dirs {
        for source in dir {
            by_name.entry(source.name.clone()).or_default().push(source);
        }
    }
    let mut problems = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    for (name, sources) in by_name {
        let Some(output) = output_name(&name, env) else { continue };
        // `a.properties.tmpl` and `a.properties.UAT1.tmpl` would both write a.properties.UAT1.
        if let Some(other) = planned.iter().find(|p| p.output == output) {
            let reason = format!("renders to {output}, as {} does; rename one of them", other.template);
            problems.push(InputProblem::in_file(&sources[0].path, reason));
            continue;
        }
        let before = problems.len();
        let body = match kind(&name) {
            Kind::Properties => Template::Properties { lines: merge_properties(&sources, &mut problems) },
            other => match sources.into_iter().last() {
                Some(source) => Template::Text { kind: other, source },
                None => continue,
            },
        };
        planned.push(Planned { template: name, output, body, incomplete: problems.len() > before });
    }
    (planned, problems)
}

fn merge_properties(sources: &[Source], problems: &mut Vec<InputProblem>) -> Vec<SourcedLine> {
    let mut merged: Vec<SourcedLine> = Vec::new();
    // Key -> its line in `merged` (the first, as a duplicate within one file is an error anyway).
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut seen_base = false;
    for source in sources {
        let doc = match Document::parse(&source.text) {
            Ok(doc) => doc,
            Err(e) => {
                let (line, column) = e.position();
                problems.push(InputProblem::at(&source.path, line, column, e.reason()));
                continue;
            }
        };
        check_duplicates(source, &doc, problems);
        let is_base = !seen_base;
        let mut lines = doc.lines;
        // The empty "line" after a final terminator: the rendered file ends every line with one.
        if matches!(lines.last(), Some(Line::Other { raw, .. }) if raw.is_empty()) {
            lines.pop();
        }
        for line in lines {
            let key = match &line {
                Line::Entry(e) => Some(e.key.clone()),
                // An overlay changes values key by key; its comments and blank lines stay its own.
                Line::Other { .. } if !is_base => continue,
                Line::Other { .. } => None,
            };
            let sourced = SourcedLine { line, path: source.path.clone() };
            match key {
                Some(k) if !is_base && index.contains_key(&k) => merged[index[&k]] = sourced,
                Some(k) => {
                    index.entry(k).or_insert(merged.len());
                    merged.push(sourced);
                }
                None => merged.push(sourced),
            }
        }
        seen_base = true;
    }
    merged
}

fn check_duplicates(source: &Source, doc: &Document, problems: &mut Vec<InputProblem>) {
    let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &doc.lines {
        if let Line::Entry(e) = line {
            if let Some(first) = first_seen.get(e.key.as_str()) {
                problems.push(InputProblem::at(
                    &source.path,
                    e.line,
                    1,
                    format!("duplicate key {:?} (first at line {first})", e.key),
                ));
            } else {
                first_seen.insert(&e.key, e.line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(dir: &str, name: &str, text: &str) -> Source {
        Source { name: name.into(), path: PathBuf::from(format!("{dir}/{name}")), text: text.into() }
    }

    #[test]
    fn output_names() {
        assert_eq!(
            output_name("calypsosystem.properties.tmpl", "UAT1").as_deref(),
            Some("calypsosystem.properties.UAT1")
        );
        assert_eq!(output_name("log4j2.xml.tmpl", "UAT1").as_deref(), Some("log4j2.xml"));
        assert_eq!(output_name("jvm.options.tmpl", "UAT1").as_deref(), Some("jvm.options"));
        assert_eq!(output_name("README.md", "UAT1"), None);
        assert_eq!(output_name(".tmpl", "UAT1"), None);
        assert_eq!(kind("log4j2.xml.tmpl"), Kind::Xml);
        assert_eq!(kind("a.properties.tmpl"), Kind::Properties);
        assert_eq!(kind("jvm.options.tmpl"), Kind::Plain);
    }

    fn rendered_keys(p: &Planned) -> Vec<(String, String)> {
        let Template::Properties { lines } = &p.body else { panic!("not properties") };
        lines
            .iter()
            .filter_map(|l| match &l.line {
                Line::Entry(e) => Some((e.key.clone(), e.value_raw.clone())),
                Line::Other { .. } => None,
            })
            .collect()
    }

    #[test]
    fn overlays_replace_key_by_key_keeping_base_order_and_comments() {
        let base = src("base", "c.properties.tmpl", "# base\nA=1\nB=2\n\n# db\nC=3\n");
        let uat = src("uat", "c.properties.tmpl", "# uat comment\nC=30\nD=40\nA=10\n");
        let plain_base = src("base", "jvm.options.tmpl", "-Xmx1g\n");
        let plain_uat = src("uat", "jvm.options.tmpl", "-Xmx8g\n");
        let (planned, problems) = merge(vec![vec![base, plain_base], vec![uat, plain_uat]], "UAT");
        assert!(problems.is_empty());
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].output, "c.properties.UAT");
        assert_eq!(
            rendered_keys(&planned[0]),
            [("A", "10"), ("B", "2"), ("C", "30"), ("D", "40")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let Template::Properties { lines } = &planned[0].body else { panic!() };
        assert!(matches!(&lines[0].line, Line::Other { raw, .. } if raw == "# base"));
        assert_eq!(lines[1].path, PathBuf::from("uat/c.properties.tmpl"), "A comes from the overlay");
        let Template::Text { source, .. } = &planned[1].body else { panic!() };
        assert_eq!(source.text, "-Xmx8g\n", "other files are replaced whole");
    }

    #[test]
    fn two_templates_for_one_output_are_an_error() {
        let a = src("base", "a.properties.tmpl", "A=1\n");
        let b = src("base", "a.properties.X.tmpl", "A=2\n");
        let (planned, problems) = merge(vec![vec![a, b]], "X");
        assert_eq!(planned.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "base/a.properties.tmpl: renders to a.properties.X, as a.properties.X.tmpl does; rename one of them"
        );
    }

    #[test]
    fn unparsable_overlay_is_located_and_marks_the_file_incomplete() {
        let base = src("base", "c.properties.tmpl", "A=1\n");
        let uat = src("uat", "c.properties.tmpl", "ok=1\nk\\u12=x\n");
        let (planned, problems) = merge(vec![vec![base], vec![uat]], "X");
        assert_eq!(problems[0].to_string(), "uat/c.properties.tmpl:2:2: malformed \\uXXXX escape");
        assert!(planned[0].incomplete);
    }

    #[test]
    fn duplicates_within_one_file_are_errors() {
        let t = src("base", "c.properties.tmpl", "A=1\nB=2\nA=3\n");
        let (_, problems) = merge(vec![vec![t]], "X");
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "base/c.properties.tmpl:3:1: duplicate key \"A\" (first at line 1)"
        );
    }
}
