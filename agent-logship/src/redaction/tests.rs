use super::*;

fn builtin() -> Redactor {
    Redactor::new(Vec::new())
}

fn with(patterns: &[&str]) -> Redactor {
    Redactor::new(patterns.iter().map(|p| regex_lite::Regex::new(p).expect("pattern")).collect())
}

fn count(r: &Redactor, rule: &str) -> u64 {
    r.counts().into_iter().find(|(name, _)| name == rule).map_or(0, |(_, n)| n)
}

fn json(line: &[u8]) -> Value {
    serde_json::from_slice(line).expect("JSON")
}

#[test]
fn every_form_in_a_log4j_line_is_masked_and_the_rest_kept_byte_for_byte() {
    let r = builtin();
    let line = "2026-12-07 10:00:01,123 ERROR [main] [DataServer] cannot connect to \
                jdbc:oracle:thin:calypso/Tig3r!pw@db-host:1521/CALP with password=s3cret; \
                upstream https://svc:tok-123@es.bank:9200/_bulk Authorization: Bearer abc.def";
    let masked = r.text(line).expect("credentials found");
    assert_eq!(
        masked,
        "2026-12-07 10:00:01,123 ERROR [main] [DataServer] cannot connect to \
         jdbc:oracle:thin:calypso/<redacted>@db-host:1521/CALP with password=<redacted>; \
         upstream https://svc:<redacted>@es.bank:9200/_bulk Authorization: Bearer <redacted>"
    );
    for rule in ["oracle_credentials", "secret_value", "url_userinfo"] {
        assert_eq!(count(&r, rule), 1, "{rule}");
    }
    assert_eq!(count(&r, "json_web_token"), 0);
}

#[test]
fn a_text_without_credentials_is_left_alone_and_counted_nowhere() {
    let r = builtin();
    for line in [
        "2026-12-07 10:00:01,123 INFO [main] [Trade] trade T-4711 booked at 10:00:01 by user=ops",
        "\tat com.calypso.tk.core.PasswordPolicy.check(PasswordPolicy.java:42)",
        "keyboard=us monkey=1 Caused by: com.calypso.InvalidTokenException: expired",
        "",
    ] {
        assert_eq!(r.text(line), None, "{line}");
        assert_eq!(r.bytes(line.as_bytes()), None, "{line}");
    }
    assert!(r.counts().iter().all(|(_, n)| *n == 0));
}

#[test]
fn bytes_that_are_not_utf8_are_masked_as_the_encoder_reads_them() {
    let r = builtin();
    let raw = b"caf\xe9 password=hunter2 \xff";
    assert_eq!(r.bytes(raw).expect("masked"), "caf\u{fffd} password=<redacted> \u{fffd}".as_bytes());
    assert_eq!(r.bytes(b"caf\xe9 nothing here"), None);
}

#[test]
fn json_lines_are_masked_field_by_field() {
    let r = builtin();
    let line = br#"{"@timestamp":"2026-12-07T10:00:01.123Z","message":"connecting to https://u:pw1@h/x","db":{"url":"jdbc:oracle:thin:scott/tiger@db","password":"p\"w2","pin":1234,"user":"scott"},"api_key":["k1","k2"],"tags":["a"],"n":7,"ok":true}"#;
    let out = json(&r.json_line(line).expect("masked"));
    assert_eq!(out["message"], "connecting to https://u:<redacted>@h/x");
    assert_eq!(out["db"]["url"], "jdbc:oracle:thin:scott/<redacted>@db");
    assert_eq!(out["db"]["password"], MASK);
    assert_eq!(out["db"]["pin"], 1234, "a number under a key that names no secret stays");
    assert_eq!(out["db"]["user"], "scott");
    assert_eq!(out["api_key"], serde_json::json!([MASK, MASK]));
    assert_eq!(out["n"], 7);
    assert_eq!(out["ok"], true);
    assert_eq!(out["tags"], serde_json::json!(["a"]));
    let secret_number = br#"{"message":"x","password":123456}"#;
    assert_eq!(json(&r.json_line(secret_number).expect("masked"))["password"], MASK);
}

#[test]
fn json_escapes_do_not_hide_a_credential() {
    let r = builtin();
    // A key spelled with \u escapes, a JWT after an escaped line break, a URL with escaped
    // slashes: the raw line hides them from a text scan, the decoded strings do not.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let line = format!(r#"{{"pass\u0077ord":"a","message":"first\n{jwt}","url":"https:\/\/u:pw@h\/p"}}"#);
    let out = json(&r.json_line(line.as_bytes()).expect("masked"));
    assert_eq!(out["password"], MASK);
    assert_eq!(out["message"], "first\n<redacted>");
    assert_eq!(out["url"], "https://u:<redacted>@h/p");
}

#[test]
fn a_json_line_without_credentials_is_not_rewritten() {
    let r = builtin();
    let line = br#"{"message":"trade T-1 booked\n\tat x.Y(Y.java:1)","key":"value","passwordPolicy":null}"#;
    assert_eq!(r.json_line(line), None);
    assert!(r.counts().iter().all(|(_, n)| *n == 0));
}

#[test]
fn a_json_line_that_is_no_object_is_masked_as_text() {
    let r = builtin();
    assert_eq!(r.json_line(b"password=x not json").expect("masked"), b"password=<redacted> not json");
    assert_eq!(r.json_line(br#"["password=x"]"#).expect("masked"), br#"["password=<redacted>"]"#);
    assert_eq!(
        r.json_line(br#"{"a":"password=x"} trailing"#).expect("masked"),
        br#"{"a":"password=<redacted>"} trailing"#
    );
    assert_eq!(r.json_line(br#"{"a":1}"#), None);
}

#[test]
fn patterns_mask_their_first_group_or_their_match() {
    let r = with(&[r"acct=(\d{6,})", r"CUST-[0-9]+"]);
    assert_eq!(
        r.text("moved acct=1234567 for CUST-42 and acct=12").expect("masked"),
        "moved acct=<redacted> for <redacted> and acct=12"
    );
    assert_eq!(count(&r, "pattern_1"), 1);
    assert_eq!(count(&r, "pattern_2"), 1);
    assert_eq!(r.text("nothing for the patterns"), None);
    // In JSON strings too.
    let out = json(&r.json_line(br#"{"message":"CUST-7 paid"}"#).expect("masked"));
    assert_eq!(out["message"], "<redacted> paid");
}

#[test]
fn a_pattern_and_a_rule_on_the_same_bytes_mask_once() {
    let r = with(&[r"tiger\w*"]);
    assert_eq!(r.text("password=tiger99 done").expect("masked"), "password=<redacted> done");
    assert_eq!(count(&r, "secret_value"), 1);
    assert_eq!(count(&r, "pattern_1"), 1);
}

#[test]
fn documents_are_counted_once_per_rule() {
    let r = builtin();
    r.text("password=a token=b secret: c").expect("masked");
    assert_eq!(count(&r, "secret_value"), 1);
    let names: Vec<String> = with(&["x"]).counts().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), Rule::ALL.len() + 1);
    assert_eq!(names.last().map(String::as_str), Some("pattern_1"));
}

#[test]
fn the_digest_changes_with_the_patterns() {
    assert_eq!(builtin().digest(), builtin().digest());
    assert_ne!(builtin().digest(), with(&["x"]).digest());
    assert_ne!(with(&["x"]).digest(), with(&["y"]).digest());
    assert_ne!(with(&["ab", "c"]).digest(), with(&["a", "bc"]).digest());
}
