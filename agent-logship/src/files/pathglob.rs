//! Path globs as users write them in `AGENT_LOGSHIP_PATHS` / `AGENT_LOGSHIP_EXCLUDE`: `*` is any
//! run of characters within one path component, `?` any one character, `**` as a whole component
//! any number of directories (zero included). Case-sensitive, like Linux file names. Pure.

use std::path::{Path, PathBuf};

/// One glob, split into the directory it starts from (no wildcard in it) and the components after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    /// The longest leading directory without wildcards: where scanning and watching start.
    pub base: PathBuf,
    /// The remaining components (at least one).
    pub rest: Vec<String>,
    /// Whether `**` appears (the base must be watched recursively).
    pub recursive: bool,
}

/// The glob as written (normalised: `.` components and doubled slashes gone).
impl std::fmt::Display for PathGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.base.join(self.rest.join("/")).display())
    }
}

impl PathGlob {
    /// Parses an absolute or relative glob; `None` for an empty one.
    pub fn parse(glob: &str) -> Option<PathGlob> {
        let glob = glob.trim();
        if glob.is_empty() {
            return None;
        }
        let mut base = if glob.starts_with('/') { PathBuf::from("/") } else { PathBuf::from(".") };
        let parts: Vec<&str> = glob.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        let first_wild = parts.iter().position(|c| has_wildcard(c)).unwrap_or(parts.len().saturating_sub(1));
        for c in &parts[..first_wild] {
            base.push(c);
        }
        let rest: Vec<String> = parts[first_wild..].iter().map(|c| (*c).to_owned()).collect();
        if rest.is_empty() {
            return None;
        }
        let recursive = rest.iter().any(|c| c == "**");
        Some(PathGlob { base, rest, recursive })
    }

    /// Whether `path` (as produced by scanning from `base`) matches the glob.
    pub fn matches(&self, path: &Path) -> bool {
        let Ok(tail) = path.strip_prefix(&self.base) else { return false };
        let names: Vec<String> = tail.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let rest: Vec<&str> = self.rest.iter().map(String::as_str).collect();
        match_components(&rest, &names)
    }
}

/// Whether a component holds a wildcard.
pub fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?'])
}

/// Components against components, `**` spanning zero or more of them.
pub fn match_components(pattern: &[&str], names: &[&str]) -> bool {
    match pattern.split_first() {
        None => names.is_empty(),
        Some((&"**", rest)) => (0..=names.len()).any(|skip| match_components(rest, &names[skip..])),
        Some((p, rest)) => match names.split_first() {
            Some((n, names)) => match_name(p, n) && match_components(rest, names),
            None => false,
        },
    }
}

/// One component: `*` any run (never a `/`, components have none), `?` any one character.
/// Greedy with a retry of the last star: linear in practice.
pub fn match_name(pattern: &str, name: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(c) if *c == '?' || *c == t[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_rest() {
        let g = PathGlob::parse("/var/log/calypso/*.log").expect("glob");
        assert_eq!(g.base, PathBuf::from("/var/log/calypso"));
        assert_eq!(g.rest, vec!["*.log"]);
        assert!(!g.recursive);
        let g = PathGlob::parse("/var/log/**/x?.log*").expect("glob");
        assert_eq!(g.base, PathBuf::from("/var/log"));
        assert!(g.recursive);
        let g = PathGlob::parse("/tmp/a.log").expect("glob");
        assert_eq!((g.base, g.rest), (PathBuf::from("/tmp"), vec!["a.log".to_owned()]));
        assert_eq!(PathGlob::parse("  "), None);
    }

    #[test]
    fn displayed_as_written_normalised() {
        for (written, shown) in [
            ("/var/log/calypso/*.log", "/var/log/calypso/*.log"),
            ("/var//log/./**/x?.log*", "/var/log/**/x?.log*"),
        ] {
            assert_eq!(PathGlob::parse(written).expect("glob").to_string(), shown);
        }
    }

    #[test]
    fn matching() {
        let g = PathGlob::parse("/l/*.log*").expect("glob");
        assert!(g.matches(Path::new("/l/app.log")));
        assert!(g.matches(Path::new("/l/app.log.1")));
        assert!(!g.matches(Path::new("/l/sub/app.log")));
        assert!(!g.matches(Path::new("/l/app.txt")));
        let g = PathGlob::parse("/l/**/*.log").expect("glob");
        assert!(g.matches(Path::new("/l/app.log")));
        assert!(g.matches(Path::new("/l/a/b/app.log")));
        assert!(!g.matches(Path::new("/m/app.log")));
        assert!(match_name("a?c*", "abcdef"));
        assert!(!match_name("a?c", "ac"));
        assert!(!match_name("*.LOG", "x.log"), "case-sensitive");
    }
}
