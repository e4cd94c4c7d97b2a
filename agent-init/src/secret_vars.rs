//! Which environment variables hold secrets. A Secret's key handed to the container as an
//! environment variable (`valueFrom.secretKeyRef`, the most common way) is as secret as a
//! mounted one, but agent-init sees only a name and a value: so a value whose variable's name
//! matches one of these patterns is treated like a `${secret:KEY}` value — redacted by `--print`
//! and `--check`, never in an error or the log, and its file written 0600. Pure.

use std::fmt;

/// The default patterns (`AGENT_INIT_SECRET_VARS` replaces them). `*PASSWD*` because Calypso's
/// own keys spell it so (`CLIENTPASSWD`).
pub const DEFAULT: &str = "*PASSWORD*,*PASSWD*,*SECRET*,*TOKEN*,*PASSPHRASE*,*CREDENTIAL*,*_KEY";

/// Glob patterns over variable names: `*` is any run of characters, `?` one character; case
/// does not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVars {
    /// As written, for messages.
    patterns: Vec<String>,
}

/// A pattern that cannot match a variable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a pattern of variable names (letters, digits, '_', '*' and '?')")]
pub struct BadPattern(pub String);

impl Default for SecretVars {
    fn default() -> Self {
        SecretVars { patterns: DEFAULT.split(',').map(str::to_string).collect() }
    }
}

impl SecretVars {
    /// From a list of patterns (already split); every bad one is reported.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, Vec<BadPattern>> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for p in patterns {
            if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?')) {
                good.push(p.to_string());
            } else {
                bad.push(BadPattern(p.to_string()));
            }
        }
        if bad.is_empty() { Ok(SecretVars { patterns: good }) } else { Err(bad) }
    }

    /// Whether the variable `name` holds a secret.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| agent_core::glob::matches(p, name))
    }
}

impl fmt::Display for SecretVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.patterns.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_cover_the_usual_names() {
        let s = SecretVars::default();
        for name in [
            "DB_PASSWORD",
            "DBPASSWORD",
            "db_password",
            "CLIENTPASSWD",
            "AWS_SECRET_ACCESS_KEY",
            "API_TOKEN",
            "GPG_PASSPHRASE",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "API_KEY",
            "ssh_key",
        ] {
            assert!(s.matches(name), "{name}");
        }
        for name in ["DBURL", "DBUSER", "KEY", "KEYSTORE_PATH", "LOG_LEVEL", "MONKEY", "HOME"] {
            assert!(!s.matches(name), "{name}");
        }
    }

    #[test]
    fn bad_patterns_are_all_named() {
        let bad = SecretVars::new(["*PIN*", "DB-PASS", "", "A B"]).expect_err("invalid");
        let names: Vec<&str> = bad.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(names, ["DB-PASS", "", "A B"]);
        let s = SecretVars::new(["*pin*", "OTP"]).expect("valid");
        assert!(s.matches("CARD_PIN_CODE") && s.matches("otp") && !s.matches("DB_PASSWORD"));
        assert_eq!(s.to_string(), "*pin*,OTP");
    }
}
