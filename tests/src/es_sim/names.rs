//! Index and data stream names as Elasticsearch validates them when it auto-creates a target
//! (`MetadataCreateIndexService.validateIndexOrAliasName`), and the wildcard patterns of index
//! templates and read APIs.

/// Characters an index name must not contain.
const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

/// The longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The reason a name is invalid (the `reason` of `invalid_index_name_exception`), or `None`.
pub fn invalid_index_name(name: &str) -> Option<String> {
    let why = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name != name.to_lowercase() {
        "must be lowercase".to_owned()
    } else if name.contains(FORBIDDEN) {
        "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #, :]".to_owned()
    } else if name.starts_with(['-', '_', '+']) {
        "must not start with '_', '-', or '+'".to_owned()
    } else if name == "." || name == ".." {
        "must not be '.' or '..'".to_owned()
    } else if name.starts_with(".ds-") {
        "must not start with '.ds-': that prefix is for data streams' backing indices".to_owned()
    } else if name.len() > MAX_NAME_BYTES {
        format!("index name is too long, ({} > {MAX_NAME_BYTES})", name.len())
    } else {
        return None;
    };
    Some(format!("Invalid index name [{name}], {why}"))
}

/// Whether `name` matches a pattern with `*` wildcards (`logs-*-*`).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = rest.split_last().map_or(("", &[][..]), |(l, m)| (*l, m));
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Whether `name` matches an expression of read APIs: comma-separated patterns, `_all` or `*`
/// for everything, `-pattern` to exclude.
pub fn expression_match(expression: &str, name: &str) -> bool {
    let mut matched = false;
    for part in expression.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(excluded) = part.strip_prefix('-').filter(|_| matched) {
            if wildcard_match(excluded, name) {
                matched = false;
            }
        } else if part == "_all" || wildcard_match(part, name) {
            matched = true;
        }
    }
    matched
}

/// Whether the expression names targets by pattern (so that none matching is not an error).
pub fn is_pattern(expression: &str) -> bool {
    expression.contains(['*', ',']) || expression == "_all"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in ["logs-calypso.engineserver-uat", "a", ".hidden", "x_y+z", &"a".repeat(255)] {
            assert_eq!(invalid_index_name(name), None, "{name}");
        }
    }

    #[test]
    fn invalid_names_say_why() {
        for (name, why) in [
            ("Logs", "must be lowercase"),
            ("-x", "must not start with '_', '-', or '+'"),
            ("_x", "must not start with"),
            ("+x", "must not start with"),
            (".ds-logs-a-b-2024.01.01-000001", "'.ds-'"),
            ("a b", "must not contain"),
            ("a*", "must not contain"),
            ("a:b", "must not contain"),
            ("", "must not be empty"),
            ("..", "must not be '.' or '..'"),
        ] {
            let reason = invalid_index_name(name).unwrap_or_else(|| panic!("{name:?} is invalid"));
            assert!(reason.starts_with(&format!("Invalid index name [{name}], ")), "{reason}");
            assert!(reason.contains(why), "{name:?}: {reason}");
        }
        let long = "a".repeat(256);
        assert!(invalid_index_name(&long).is_some_and(|r| r.contains("too long, (256 > 255)")));
        let multibyte = "é".repeat(128);
        assert!(invalid_index_name(&multibyte).is_some(), "bytes, not characters");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("logs-*-*", "logs-calypso.engineserver-uat"));
        assert!(!wildcard_match("logs-*-*", "logs-calypso"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("logs", "logs"));
        assert!(!wildcard_match("logs", "logs2"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXbYcd"));
        assert!(!wildcard_match("ab*ba", "aba"), "the two ends must not overlap");
    }

    #[test]
    fn expressions() {
        assert!(expression_match("logs-*,-logs-x-*", "logs-a-b"));
        assert!(!expression_match("logs-*,-logs-x-*", "logs-x-b"));
        assert!(expression_match("_all", "x"));
        assert!(expression_match("a,b", "b"));
        assert!(!expression_match("a,b", "c"));
        assert!(is_pattern("logs-*") && is_pattern("a,b") && !is_pattern("logs-a-b"));
    }
}
