//! Reading the inputs: the template directories (ConfigMap mounts) and the secrets directory (a
//! Secret mount). Both are read through the kubelet's `..data` symlinks like any file.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::problem::InputProblem;
use crate::render::Values;
use crate::template::{SUFFIX, Source};

/// The `*.tmpl` files of one directory, sorted by name. Hidden entries (the kubelet's `..data`,
/// `..2026_11_21...`) and other files are skipped. A directory that cannot be listed is an
/// error; a template that is not UTF-8 is a problem of its own.
pub fn read_templates(dir: &Path) -> io::Result<Result<Vec<Source>, Vec<InputProblem>>> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        match name.to_str() {
            Some(n) if !n.starts_with('.') && n.ends_with(SUFFIX) => names.push(n.to_string()),
            _ => {}
        }
    }
    names.sort();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let path = dir.join(&name);
        // One unreadable template (a dangling link, a directory) is its own problem.
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                problems.push(InputProblem::in_file(&path, format!("cannot read: {e}")));
                continue;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => sources.push(Source { name, path, text }),
            Err(e) => problems.push(InputProblem::in_file(
                &path,
                format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            )),
        }
    }
    Ok(if problems.is_empty() { Ok(sources) } else { Err(problems) })
}

/// Environment values and the secrets directory.
#[derive(Debug, Clone, Default)]
pub struct EnvAndSecrets {
    pub vars: HashMap<String, String>,
    /// Variables set to something that is not UTF-8 (not in `vars`).
    pub not_utf8: HashSet<String>,
    pub secrets_dir: Option<PathBuf>,
}

impl Values for EnvAndSecrets {
    fn var(&self, name: &str) -> Result<Option<String>, String> {
        if self.not_utf8.contains(name) {
            return Err("is not UTF-8 text".into());
        }
        Ok(self.vars.get(name).cloned())
    }

    fn secret(&self, key: &str) -> Result<Option<String>, String> {
        let Some(dir) = &self.secrets_dir else {
            return Err("no secrets directory: set AGENT_INIT_SECRETS_DIR".into());
        };
        let bytes = match std::fs::read(dir.join(key)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {}", dir.join(key).display(), e.kind())),
        };
        let mut text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
        // Secrets made with `kubectl create secret --from-file` often end in a newline.
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_skip_hidden_and_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in
            [("b.properties.tmpl", "B=1"), ("a.xml.tmpl", "<a/>"), ("..data", ""), ("README", "x")]
        {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        std::fs::write(dir.path().join("bad.tmpl"), b"\xff").expect("write");
        std::os::unix::fs::symlink("nowhere", dir.path().join("dangling.tmpl")).expect("symlink");
        let problems = read_templates(dir.path()).expect("listed").expect_err("bad UTF-8");
        assert!(problems[0].to_string().ends_with("bad.tmpl: not UTF-8 text (invalid byte at offset 0)"));
        assert!(
            problems[1].to_string().contains("dangling.tmpl: cannot read: No such file"),
            "{}",
            problems[1]
        );
        std::fs::remove_file(dir.path().join("bad.tmpl")).expect("rm");
        std::fs::remove_file(dir.path().join("dangling.tmpl")).expect("rm");
        let names: Vec<String> =
            read_templates(dir.path()).expect("listed").expect("valid").into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a.xml.tmpl", "b.properties.tmpl"]);
        assert!(read_templates(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn secrets_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw"), "s3cret\n\n").expect("write");
        std::fs::write(dir.path().join("crlf"), "x\r\n").expect("write");
        std::fs::write(dir.path().join("bin"), b"\xff\xfe").expect("write");
        let v = EnvAndSecrets { secrets_dir: Some(dir.path().to_path_buf()), ..EnvAndSecrets::default() };
        assert_eq!(v.secret("pw"), Ok(Some("s3cret\n".into())));
        assert_eq!(v.secret("crlf"), Ok(Some("x".into())));
        assert_eq!(v.secret("none"), Ok(None));
        assert_eq!(v.secret("bin"), Err("is not UTF-8 text".into()));
        let none = EnvAndSecrets { not_utf8: HashSet::from(["X".to_string()]), ..EnvAndSecrets::default() };
        assert!(none.secret("pw").unwrap_err().contains("AGENT_INIT_SECRETS_DIR"));
        assert_eq!(none.var("X"), Err("is not UTF-8 text".into()));
        assert_eq!(none.var("Y"), Ok(None));
    }
}
