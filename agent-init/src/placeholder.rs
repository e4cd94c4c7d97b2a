//! The placeholder language of templates: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`,
//! `${secret:KEY}`, and `$${` for a literal `${`. Pure: text in, segments with positions out,
//! every syntax error with its line and column.

use std::fmt;

/// A position in a template, 1-based, columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What a placeholder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `${NAME}`: the variable; an error when unset.
    Var { name: String },
    /// `${NAME:-default}`: the variable, or `default` when unset or empty.
    Default { name: String, default: String },
    /// `${NAME:?message}`: the variable; an error saying `message` when unset or empty.
    Required { name: String, message: String },
    /// `${secret:KEY}`: the contents of the secrets directory's file KEY.
    Secret { key: String },
}

impl fmt::Display for Placeholder {
    /// How the template wrote it (defaults and messages included: they are not secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::Var { name } => write!(f, "${{{name}}}"),
            Placeholder::Default { name, default } => write!(f, "${{{name}:-{default}}}"),
            Placeholder::Required { name, message } => write!(f, "${{{name}:?{message}}}"),
            Placeholder::Secret { key } => write!(f, "${{secret:{key}}}"),
        }
    }
}

/// A piece of template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text as written (with `$${` already turned into `${`).
    Literal(String),
    Placeholder {
        placeholder: Placeholder,
        at: Pos,
    },
}

/// A syntax error at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Pos,
    pub reason: String,
}

const FORMS: &str = "expected ${NAME}, ${NAME:-default}, ${NAME:?message} or ${secret:KEY}";

/// Splits `text` into literals and placeholders. `start` is where `text` begins in its file, so
/// positions are the file's. Every error is collected; parsing resumes after a bad placeholder.
pub fn parse(text: &str, start: Pos) -> Result<Vec<Segment>, Vec<SyntaxError>> {
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut pos = start;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("$${") {
            literal.push_str("${");
            pos.column += 3;
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix("${") {
            let at = pos;
            let Some(close) = after.find(['}', '\n', '\r']).filter(|&i| after[i..].starts_with('}')) else {
                errors.push(SyntaxError { at, reason: "unterminated placeholder: no } on this line".into() });
                // The rest of the line cannot be trusted; resume on the next one.
                let skip = after.find(['\n', '\r']).map_or(after.len(), |i| i);
                advance(&mut pos, &rest[..2 + skip]);
                rest = &after[skip..];
                continue;
            };
            let body = &after[..close];
            match placeholder(body) {
                Ok(p) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Placeholder { placeholder: p, at });
                }
                Err(reason) => errors.push(SyntaxError { at, reason }),
            }
            advance(&mut pos, &rest[..close + 3]);
            rest = &after[close + 1..];
            continue;
        }
        // `\r\n` is one line break: take it whole.
        let len = if rest.starts_with("\r\n") { 2 } else { c.len_utf8() };
        literal.push_str(&rest[..len]);
        advance(&mut pos, &rest[..len]);
        rest = &rest[len..];
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    if errors.is_empty() { Ok(segments) } else { Err(errors) }
}

/// Moves `pos` over `text`. `\r\n` counts as one line break, as do `\r` and `\n` alone.
fn advance(pos: &mut Pos, text: &str) {
    let mut prev_cr = false;
    for c in text.chars() {
        match c {
            '\n' if prev_cr => {}
            '\n' | '\r' => {
                pos.line += 1;
                pos.column = 1;
            }
            _ => pos.column += 1,
        }
        prev_cr = c == '\r';
    }
}

/// The inside of `${...}`.
fn placeholder(body: &str) -> Result<Placeholder, String> {
    if body.is_empty() {
        return Err(format!("empty placeholder; {FORMS}"));
    }
    if let Some(key) = body.strip_prefix("secret:") {
        return if is_secret_key(key) {
            Ok(Placeholder::Secret { key: key.to_string() })
        } else {
            Err(format!(
                "{key:?} is not a secret key (letters, digits, '-', '_' and '.', not starting with '..')"
            ))
        };
    }
    let name_end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    let (name, tail) = body.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{body:?} does not start with a variable name; {FORMS}"));
    }
    let name = name.to_string();
    if tail.is_empty() {
        Ok(Placeholder::Var { name })
    } else if let Some(default) = tail.strip_prefix(":-") {
        Ok(Placeholder::Default { name, default: default.to_string() })
    } else if let Some(message) = tail.strip_prefix(":?") {
        Ok(Placeholder::Required { name, message: message.to_string() })
    } else {
        Err(format!("unsupported placeholder ${{{body}}}; {FORMS}"))
    }
}

/// A Kubernetes Secret key: `[-._a-zA-Z0-9]+`; never a path or the kubelet's `..data`.
fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with("..")
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Pos = Pos { line: 1, column: 1 };

    fn var(name: &str) -> Placeholder {
        Placeholder::Var { name: name.into() }
    }

    #[test]
    fn every_form() {
        let s = parse("a${X}b${Y:-d e}${Z:?say why}${secret:db-pass.txt}$${lit}$5$", START).expect("valid");
        assert_eq!(
            s,
            vec![
                Segment::Literal("a".into()),
                Segment::Placeholder { placeholder: var("X"), at: Pos { line: 1, column: 2 } },
                Segment::Literal("b".into()),
                Segment::Placeholder {
                    placeholder: Placeholder::Default { name: "Y".into(), default: "d e".into() },
                    at: Pos { line: 1, column: 7 }
                },
                Segment::Placeholder {
                    placeholder: Placeholder::Required { name: "Z".into(), message: "say why".into() },
                    at: Pos { line: 1, column: 16 }
                },
                Segment::Placeholder {
                    placeholder: Placeholder::Secret { key: "db-pass.txt".into() },
                    at: Pos { line: 1, column: 29 }
                },
                Segment::Literal("${lit}$5$".into()),
            ]
        );
    }

    #[test]
    fn positions_follow_lines() {
        let s = parse("x\\\n  ${A}\r\n${B}", Pos { line: 7, column: 5 }).expect("valid");
        let at: Vec<Pos> = s
            .iter()
            .filter_map(|s| match s {
                Segment::Placeholder { at, .. } => Some(*at),
                Segment::Literal(_) => None,
            })
            .collect();
        assert_eq!(at, [Pos { line: 8, column: 3 }, Pos { line: 9, column: 1 }]);
    }

    #[test]
    fn every_error_with_its_position() {
        let errors = parse("${}\n${1X} ${A:=b} ${secret:../x}\n${OPEN\n${B}", START).expect_err("invalid");
        let got: Vec<(String, &str)> = errors.iter().map(|e| (e.at.to_string(), e.reason.as_str())).collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0].0, "1:1");
        assert!(got[0].1.starts_with("empty placeholder"));
        assert_eq!(got[1].0, "2:1");
        assert!(got[1].1.contains("does not start with a variable name"));
        assert_eq!(got[2].0, "2:7");
        assert!(got[2].1.starts_with("unsupported placeholder ${A:=b}"));
        assert_eq!(got[3].0, "2:15");
        assert!(got[3].1.contains("is not a secret key"));
        assert_eq!((got[4].0.as_str(), got[4].1), ("3:1", "unterminated placeholder: no } on this line"));
    }

    #[test]
    fn display_round_trips() {
        for text in ["${A}", "${A:-x y}", "${A:?why}", "${secret:k}"] {
            let s = parse(text, START).expect("valid");
            let Segment::Placeholder { placeholder, .. } = &s[0] else { panic!("{s:?}") };
            assert_eq!(placeholder.to_string(), text);
        }
    }
}
