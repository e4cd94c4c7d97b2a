//! Rendering: every placeholder resolved from env values, defaults and secrets, escaped for the
//! file's reader, every problem collected. Pure: values come through [`Values`].

use std::path::Path;

use calypso::properties::{Document, Line, ascii_only, escape_value};

use crate::placeholder::{self, Placeholder, Pos, Segment};
use crate::problem::InputProblem;
use crate::secret_vars::SecretVars;
use crate::template::{Kind, Planned, SourcedLine, Template};

/// Shown instead of a secret value by `--print`.
pub const REDACTED: &str = "<redacted>";

/// Where placeholders get their values.
pub trait Values {
    /// An environment value; `Err` with a reason (never the value) when it cannot be used.
    fn var(&self, name: &str) -> Result<Option<String>, String>;
    /// A secret's text; `Ok(None)` when there is no such secret; `Err` with a reason (never
    /// the value) when it cannot be used.
    fn secret(&self, key: &str) -> Result<Option<String>, String>;
}

/// Where one placeholder's value came from, for `--check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Env,
    Default,
    Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// As written: `${DBURL}`, `${secret:db-password}`.
    pub placeholder: String,
    pub origin: Origin,
    /// Whether the value is secret: a `${secret:KEY}`, or a variable named like a secret
    /// (its default too: a default password is still a password).
    pub secret: bool,
    /// `path:line:column`.
    pub at: String,
}

/// One output file, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub output: String,
    /// The file's contents.
    pub text: String,
    /// The same with every secret value replaced by [`REDACTED`].
    pub redacted: String,
    /// Whether any secret value is in it (it is then written 0600): a `${secret:KEY}`, or a
    /// variable whose name is in [`SecretVars`].
    pub has_secret: bool,
    /// The keys of a properties file, in order; empty for other kinds.
    pub keys: Vec<String>,
    pub resolutions: Vec<Resolution>,
}

impl Rendered {
    pub fn mode(&self) -> u32 {
        if self.has_secret { 0o600 } else { 0o640 }
    }
}

/// A key that must be present, with a non-empty value, in the properties files whose output name
/// starts with `file_prefix` (in every one when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub file_prefix: Option<String>,
    pub key: String,
}

/// The keys Calypso cannot start without.
pub fn built_in_requirements() -> Vec<Requirement> {
    ["DRIVER", "DBURL", "DBUSER", "DBPASSWORD"]
        .into_iter()
        .map(|key| Requirement { file_prefix: Some("calypsosystem.properties".into()), key: key.into() })
        .collect()
}

/// Renders every planned file, or reports every problem in all of them. The values of
/// `${secret:KEY}` and of variables named in `secret_vars` are secret.
pub fn render_all(
    planned: &[Planned],
    values: &impl Values,
    require: &[Requirement],
    secret_vars: &SecretVars,
) -> Result<Vec<Rendered>, Vec<InputProblem>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for p in planned {
        let mut r =
            Renderer { values, secret_vars, problems: &mut problems, file: Rendered::empty(&p.output) };
        match &p.body {
            Template::Properties { lines } => r.properties(lines, if p.incomplete { &[] } else { require }),
            Template::Text { kind, source } => r.text(*kind, &source.path, &source.text),
        }
        out.push(r.file);
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

impl Rendered {
    fn empty(output: &str) -> Self {
        Rendered {
            output: output.to_string(),
            text: String::new(),
            redacted: String::new(),
            has_secret: false,
            keys: Vec::new(),
            resolutions: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.redacted.push_str(text);
    }
}

struct Renderer<'a, V> {
    values: &'a V,
    secret_vars: &'a SecretVars,
    problems: &'a mut Vec<InputProblem>,
    file: Rendered,
}

impl<V: Values> Renderer<'_, V> {
    fn properties(&mut self, lines: &[SourcedLine], require: &[Requirement]) {
        // Per key: whether its rendered value is known to be non-empty (a value whose placeholders
        // failed counts as unknown, not as empty: its problem is already reported).
        let mut rendered_values: Vec<(String, bool)> = Vec::new();
        let problems_at_start = self.problems.len();
        for SourcedLine { line, path } in lines {
            match line {
                Line::Other { raw, .. } => self.file.push(&ascii_only(raw)),
                Line::Entry(entry) => {
                    if let Some(col) = find_placeholder(&entry.head) {
                        let reason = "placeholders are not allowed in keys";
                        self.problems.push(InputProblem::at(path, entry.line, col, reason));
                    }
                    // The template's own escapes must be ones Java accepts (`C:\users` is not).
                    if let Err(e) = entry.value() {
                        let (line, column) = e.position();
                        self.problems.push(InputProblem::at(path, line, column, e.reason()));
                    }
                    self.file.push(&ascii_only(&entry.head));
                    let start = Pos { line: entry.value_line(), column: entry.value_column };
                    let (text_before, problems_before) = (self.file.text.len(), self.problems.len());
                    self.segments(path, &entry.value_raw, start, Escape::Properties);
                    let filled = self.file.text.len() > text_before || self.problems.len() > problems_before;
                    rendered_values.push((entry.key.clone(), filled));
                    self.file.keys.push(entry.key.clone());
                }
            }
            self.file.push("\n");
        }
        // Belt and braces: what is written must load (unless a reported problem explains why not).
        if self.problems.len() == problems_at_start
            && let Err(e) = Document::parse(&self.file.text).and_then(|d| d.pairs())
        {
            let reason = format!("{}: the rendered file does not load: {e}", self.file.output);
            self.problems.push(InputProblem::general(reason));
        }
        for req in require {
            if req.file_prefix.as_deref().is_some_and(|prefix| !self.file.output.starts_with(prefix)) {
                continue;
            }
            let reason = match rendered_values.iter().rev().find(|(k, _)| *k == req.key) {
                None => format!("required key {} is missing", req.key),
                Some((_, false)) => format!("required key {} is empty", req.key),
                Some(_) => continue,
            };
            self.problems.push(InputProblem::general(format!("{}: {reason}", self.file.output)));
        }
    }

    fn text(&mut self, kind: Kind, path: &Path, text: &str) {
        let escape = if kind == Kind::Xml { Escape::Xml } else { Escape::Plain };
        self.segments(path, text, Pos { line: 1, column: 1 }, escape);
    }

    /// Renders template text, escaping values (and, for properties, literals) as `escape` says.
    fn segments(&mut self, path: &Path, text: &str, start: Pos, escape: Escape) {
        let value_start = self.file.text.len();
        let segments = match placeholder::parse(text, start) {
            Ok(s) => s,
            Err(errors) => {
                for e in errors {
                    self.problems.push(InputProblem::at(path, e.at.line, e.at.column, e.reason));
                }
                return;
            }
        };
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Literal(s) => {
                    let next_is_placeholder =
                        matches!(segments.get(i + 1), Some(Segment::Placeholder { .. }));
                    if escape == Escape::Properties && next_is_placeholder && ends_in_open_escape(s) {
                        let Some(Segment::Placeholder { at, .. }) = segments.get(i + 1) else { continue };
                        let reason = "a backslash right before a placeholder would escape the value's first \
                                      character; write \\\\ for a backslash, $${ for a literal ${";
                        self.problems.push(InputProblem::at(path, at.line, at.column, reason));
                    }
                    let literal = if escape == Escape::Properties { ascii_only(s) } else { s.clone() };
                    self.file.push(&literal);
                }
                Segment::Placeholder { placeholder, at } => {
                    let Some((value, origin)) = self.resolve(placeholder, path, *at) else { continue };
                    let secret = match placeholder {
                        Placeholder::Secret { .. } => true,
                        Placeholder::Var { name }
                        | Placeholder::Default { name, .. }
                        | Placeholder::Required { name, .. } => self.secret_vars.matches(name),
                    };
                    let escaped = match escape {
                        Escape::Properties => {
                            escape_value(&value, java_skips_whitespace_here(&self.file.text[value_start..]))
                        }
                        Escape::Xml => match xml_escape(&value) {
                            Ok(x) => x,
                            Err(reason) => {
                                // For a secret the reason would name the character: part of it.
                                let reason = if secret {
                                    "the secret value holds a character that cannot be written in XML \
                                     1.0 (a control character)"
                                        .to_string()
                                } else {
                                    reason.to_string()
                                };
                                self.problems.push(InputProblem::at(
                                    path,
                                    at.line,
                                    at.column,
                                    format!("{placeholder}: {reason}"),
                                ));
                                continue;
                            }
                        },
                        Escape::Plain => value,
                    };
                    self.file.text.push_str(&escaped);
                    if secret {
                        self.file.has_secret = true;
                        self.file.redacted.push_str(REDACTED);
                    } else {
                        self.file.redacted.push_str(&escaped);
                    }
                    let at = format!("{}:{at}", path.display());
                    self.file.resolutions.push(Resolution {
                        placeholder: placeholder.to_string(),
                        origin,
                        secret,
                        at,
                    });
                }
            }
        }
    }

    fn resolve(&mut self, p: &Placeholder, path: &Path, at: Pos) -> Option<(String, Origin)> {
        let problem = |reason: String| InputProblem::at(path, at.line, at.column, reason);
        let var = |name: &str| self.values.var(name).map_err(|why| format!("variable {name} {why}"));
        let set = |name: &str| var(name).map(|v| v.filter(|v| !v.is_empty()));
        let found = match p {
            Placeholder::Var { name } => match var(name) {
                Ok(Some(v)) => Ok((v, Origin::Env)),
                Ok(None) => Err(format!("variable {name} is not set")),
                Err(why) => Err(why),
            },
            Placeholder::Default { name, default } => {
                set(name).map(|v| v.map_or_else(|| (default.clone(), Origin::Default), |v| (v, Origin::Env)))
            }
            Placeholder::Required { name, message } => match set(name) {
                Ok(Some(v)) => Ok((v, Origin::Env)),
                Ok(None) => Err(format!("{name}: {message}")),
                Err(why) => Err(why),
            },
            Placeholder::Secret { key } => match self.values.secret(key) {
                Ok(Some(v)) => Ok((v, Origin::Secret)),
                Ok(None) => Err(format!("secret {key} not found")),
                Err(why) => Err(format!("secret {key}: {why}")),
            },
        };
        found.map_err(|reason| self.problems.push(problem(reason))).ok()
    }
}

/// The column of the first `${` that is not `$${`, if any.
fn find_placeholder(text: &str) -> Option<usize> {
    let mut prev_dollar = false;
    for (col, (i, c)) in text.char_indices().enumerate() {
        if c == '$' && text[i..].starts_with("${") && !prev_dollar {
            return Some(col + 1);
        }
        prev_dollar = c == '$';
    }
    None
}

/// How a file's values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// java.util.Properties; the template's literals are made ASCII-only too.
    Properties,
    Xml,
    Plain,
}

/// Whether Java skips white space at this point of a value: at its start (all placeholders so
/// far rendered empty) or right after a continuation line break. A value starting with a space
/// must escape it there, or the space is lost.
fn java_skips_whitespace_here(value_so_far: &str) -> bool {
    let tail = value_so_far.rsplit('\n').next().unwrap_or_default();
    let after_continuation = value_so_far.contains('\n');
    tail.chars().all(|c| matches!(c, ' ' | '\t' | '\x0c')) && (after_continuation || tail.is_empty())
}

/// Whether properties text ends in an odd number of backslashes: an escape still open, which
/// would swallow whatever comes next.
fn ends_in_open_escape(literal: &str) -> bool {
    literal.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// A character that XML 1.0 cannot hold, not even as a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("U+{:04X} cannot be written in XML 1.0", *.0 as u32)]
pub struct NotXml(pub char);

/// Escapes text for XML content and attribute values. Control characters other than tab, line
/// feed and carriage return cannot be written in XML 1.0 at all, not even as references.
pub fn xml_escape(s: &str) -> Result<String, NotXml> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() && (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return Err(NotXml(c));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Source, merge};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    #[derive(Default)]
    struct Map {
        vars: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
    }

    impl Values for Map {
        fn var(&self, name: &str) -> Result<Option<String>, String> {
            Ok(self.vars.get(name).cloned())
        }
        fn secret(&self, key: &str) -> Result<Option<String>, String> {
            Ok(self.secrets.get(key).cloned())
        }
    }

    fn values(vars: &[(&str, &str)], secrets: &[(&str, &str)]) -> Map {
        let m = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Map { vars: m(vars), secrets: m(secrets) }
    }

    fn render(
        files: &[(&str, &str)],
        v: &Map,
        require: &[Requirement],
    ) -> Result<Vec<Rendered>, Vec<String>> {
        let sources = files
            .iter()
            .map(|(n, t)| Source {
                name: n.to_string(),
                path: PathBuf::from(format!("t/{n}")),
                text: t.to_string(),
            })
            .collect();
        let (planned, problems) = merge(vec![sources], "UAT1");
        assert!(problems.is_empty(), "{problems:?}");
        render_all(&planned, v, require, &SecretVars::default())
            .map_err(|p| p.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn properties_values_are_escaped_and_secrets_redacted() {
        let v = values(&[("DIR", "C:\\new\\dir"), ("SP", " lead"), ("EMPTY", "")], &[("pw", "p=ss:#!é")]);
        let tmpl =
            "# comment é\nPATH=${DIR}\nS=${SP}\nT=x${SP}\nPW = ${secret:pw}\nD=${NOPE:-def}\nE=${EMPTY}\n";
        let r = render(&[("a.properties.tmpl", tmpl)], &v, &[]).expect("renders");
        assert_eq!(r[0].output, "a.properties.UAT1");
        assert_eq!(
            r[0].text,
            "# comment \\u00E9\nPATH=C\\:\\\\new\\\\dir\nS=\\ lead\nT=x lead\nPW = p\\=ss\\:\\#\\!\\u00E9\nD=def\nE=\n"
        );
        assert!(r[0].redacted.contains("PW = <redacted>\n") && !r[0].redacted.contains("p\\=ss"));
        assert!(r[0].has_secret);
        assert_eq!(r[0].mode(), 0o600);
        assert_eq!(r[0].keys, ["PATH", "S", "T", "PW", "D", "E"]);
        let origins: Vec<Origin> = r[0].resolutions.iter().map(|r| r.origin).collect();
        assert_eq!(
            origins,
            [Origin::Env, Origin::Env, Origin::Env, Origin::Secret, Origin::Default, Origin::Env]
        );
    }

    #[test]
    fn xml_and_plain() {
        let v = values(&[("LVL", "<debug & \"more\">")], &[]);
        let r =
            render(&[("log4j2.xml.tmpl", "<L v=\"${LVL}\"/>"), ("jvm.options.tmpl", "-Dx=${LVL}")], &v, &[])
                .expect("renders");
        assert_eq!(r[0].output, "jvm.options");
        assert_eq!(r[0].text, "-Dx=<debug & \"more\">");
        assert_eq!(r[1].text, "<L v=\"&lt;debug &amp; &quot;more&quot;&gt;\"/>");
        assert_eq!(xml_escape("tab\tok\n"), Ok("tab\tok\n".into()));
        assert_eq!(
            xml_escape("a\u{1}").map_err(|e| e.to_string()),
            Err("U+0001 cannot be written in XML 1.0".into())
        );
        assert!(!r[1].has_secret);
    }

    #[test]
    fn every_problem_at_once_with_positions_and_no_values() {
        let v = values(&[("SECRETISH", "hunter2")], &[]);
        let files = [
            (
                "calypsosystem.properties.tmpl",
                "DRIVER=${A}\nDBURL=${B:?the JDBC URL is needed}\nDBUSER=\nX${K}=1\n",
            ),
            ("jvm.options.tmpl", "-X ${secret:nope} ${bad-name}"),
        ];
        let problems = render(&files, &v, &built_in_requirements()).expect_err("invalid");
        assert_eq!(
            problems,
            [
                "t/calypsosystem.properties.tmpl:1:8: variable A is not set",
                "t/calypsosystem.properties.tmpl:2:7: B: the JDBC URL is needed",
                "t/calypsosystem.properties.tmpl:4:2: placeholders are not allowed in keys",
                "calypsosystem.properties.UAT1: required key DBUSER is empty",
                "calypsosystem.properties.UAT1: required key DBPASSWORD is missing",
                "t/jvm.options.tmpl:1:19: unsupported placeholder ${bad-name}; expected ${NAME}, ${NAME:-default}, ${NAME:?message} or ${secret:KEY}",
            ]
        );
    }

    #[test]
    fn leading_spaces_survive_wherever_java_skips_white_space() {
        let v = values(&[("SP", " lead"), ("E", "")], &[]);
        let tmpl = "A=x\\\n  ${SP}\nB=${E}${SP}\nC=${E:-}${SP}\nD=x${SP}\n";
        let r = render(&[("a.properties.tmpl", tmpl)], &v, &[]).expect("renders");
        assert_eq!(r[0].text, "A=x\\\n  \\ lead\nB=\\ lead\nC=\\ lead\nD=x lead\n");
    }

    #[test]
    fn template_escapes_must_load() {
        let v = values(&[("V", "u12")], &[]);
        let problems = render(&[("a.properties.tmpl", "HOME=C:\\users\\x\nA=\\${V}\nB=\\\\${V}\n")], &v, &[])
            .expect_err("invalid");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0], "t/a.properties.tmpl:1:8: malformed \\uXXXX escape");
        assert!(problems[1].starts_with("t/a.properties.tmpl:2:4: a backslash right before a placeholder"));
    }

    #[test]
    fn xml_refuses_control_characters() {
        let v = values(&[("X", "a\u{1}b")], &[]);
        let problems = render(&[("l.xml.tmpl", "<a>${X}</a>")], &v, &[]).expect_err("invalid");
        assert_eq!(problems, ["t/l.xml.tmpl:1:4: ${X}: U+0001 cannot be written in XML 1.0"]);
    }

    #[test]
    fn variables_named_like_secrets_are_secret() {
        let v = values(&[("DB_PASSWORD", "hunter2"), ("DBURL", "jdbc:x"), ("X", "a\u{1}")], &[]);
        let files = [
            ("a.properties.tmpl", "URL=${DBURL}\nPW=${DB_PASSWORD}\n"),
            ("b.tmpl", "${api_token:-changeme}"),
            ("c.tmpl", "${DBURL}"),
        ];
        let r = render(&files, &v, &[]).expect("renders");
        assert_eq!(r[0].text, "URL=jdbc\\:x\nPW=hunter2\n");
        assert_eq!(r[0].redacted, "URL=jdbc\\:x\nPW=<redacted>\n");
        assert_eq!((r[0].mode(), r[1].mode(), r[2].mode()), (0o600, 0o600, 0o640));
        assert_eq!(r[1].redacted, "<redacted>", "a default of a secret variable is secret too");
        let secret: Vec<bool> = r[0].resolutions.iter().map(|r| r.secret).collect();
        assert_eq!(secret, [false, true]);
        assert_eq!(r[0].resolutions[1].origin, Origin::Env);

        // An error about a secret value does not show any of it, not even the bad character.
        let v = values(&[("DB_PASSWORD", "hunter2\u{1}"), ("X", "a\u{1}")], &[]);
        let problems =
            render(&[("l.xml.tmpl", "<a p=\"${DB_PASSWORD}\">${X}</a>")], &v, &[]).expect_err("invalid");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("t/l.xml.tmpl:1:7: ${DB_PASSWORD}: the secret value holds"));
        assert!(!problems[0].contains("U+0001") && !problems[0].contains("hunter2"), "{problems:?}");
        assert_eq!(problems[1], "t/l.xml.tmpl:1:23: ${X}: U+0001 cannot be written in XML 1.0");

        // Other patterns: the defaults no longer apply.
        let (planned, _) = merge(
            vec![vec![Source {
                name: "p.tmpl".into(),
                path: "t/p.tmpl".into(),
                text: "${DB_PASSWORD}${PIN}".into(),
            }]],
            "UAT1",
        );
        let only_pin = SecretVars::new(["pin"]).expect("valid");
        let v = values(&[("DB_PASSWORD", "shown"), ("PIN", "1234")], &[]);
        let r = render_all(&planned, &v, &[], &only_pin).expect("renders");
        assert_eq!(r[0].redacted, "shown<redacted>");
    }

    #[test]
    fn missing_secret_is_named() {
        let problems = render(&[("j.tmpl", "${secret:db}")], &values(&[], &[]), &[]).expect_err("invalid");
        assert_eq!(problems, ["t/j.tmpl:1:1: secret db not found"]);
    }

    #[test]
    fn user_requirements_by_prefix() {
        let req = [Requirement { file_prefix: Some("calypsouser".into()), key: "CLIENTUSER".into() }];
        let files = [("calypsouser.properties.tmpl", "A=1\n"), ("other.properties.tmpl", "A=1\n")];
        let problems = render(&files, &values(&[], &[]), &req).expect_err("invalid");
        assert_eq!(problems, ["calypsouser.properties.UAT1: required key CLIENTUSER is missing"]);
    }

    #[test]
    fn literal_dollar_brace() {
        let r = render(&[("a.tmpl", "$${HOME} ${X}")], &values(&[("X", "1")], &[]), &[]).expect("renders");
        assert_eq!(r[0].text, "${HOME} 1");
        assert_eq!(find_placeholder("a$${b}"), None);
        assert_eq!(find_placeholder("ab${c}"), Some(3));
    }
}
