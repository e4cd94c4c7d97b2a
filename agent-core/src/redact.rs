//! Keeping secrets out of logs, errors and termination messages: URLs may carry credentials in
//! their user info (`user:pass@`) or their query (`?token=...`).

/// The URL text with the password (or a lone user-info token) and every query value replaced by
/// `***`. Works on text that is not a valid URL too, since it is used on bad input in errors.
pub fn url(text: &str) -> String {
    let (head, fragment) = match text.find('#') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let (before_query, query) = match head.find('?') {
        Some(i) => (&head[..i], Some(&head[i + 1..])),
        None => (head, None),
    };
    let mut out = match before_query.find("://") {
        Some(i) => {
            let (scheme, rest) = before_query.split_at(i + 3);
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    let masked = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => "***".to_string(),
                    };
                    format!("{scheme}{masked}{}{path}", &authority[at..])
                }
                None => before_query.to_string(),
            }
        }
        None => before_query.to_string(),
    };
    if let Some(q) = query {
        let masked: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=***"),
                None => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn masks_credentials_and_query_values() {
        assert_eq!(url("http://user:s3cret@host:1/x"), "http://user:***@host:1/x");
        assert_eq!(url("https://tok3n@host/x"), "https://***@host/x");
        assert_eq!(url("http://h/p?token=abc&x=1&flag#frag"), "http://h/p?token=***&x=***&flag#frag");
        assert_eq!(url("tcp://admin:hunter2@ds:1"), "tcp://admin:***@ds:1");
        assert_eq!(url("ftp://u:p@h:99999/bad"), "ftp://u:***@h:99999/bad", "not a valid URL");
        assert_eq!(url("db:1521"), "db:1521");
        assert_eq!(url("http://a@b:c@host/"), "http://a@b:***@host/", "the last @ ends the user info");
        assert_eq!(url("http://:s3cret@ds/health"), "http://:***@ds/health");
        assert_eq!(url("http://ds/@not-userinfo"), "http://ds/@not-userinfo");
        assert_eq!(url("http://ds?token=abc"), "http://ds?token=***");
        assert_eq!(url("not a url?secret=1"), "not a url?secret=***");
        assert_eq!(url(""), "");
    }
}
