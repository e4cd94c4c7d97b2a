//! Keeping secrets out of logs, errors, answers, metrics and termination messages.
//!
//! Two functions, for two kinds of text:
//! - [`url`] for a URL the agent was configured with: the password (or a lone user-info token)
//!   and every query and fragment value are masked, whatever their names;
//! - [`text`] for free text that came from elsewhere (a Calypso sensor's details, an upstream
//!   error): credentials are found where they usually hide — `user:password@` in URLs,
//!   `user/password@` in Oracle JDBC URLs, `password=...`, `token: ...` and the like — and
//!   masked, the rest is left readable.
//!
//! Both work on any text, valid or not (they are used on bad input in errors), and mask with
//! [`MASK`]. They prefer masking too much to too little.
//!
//! agent-logship masks every record it ships with the same rules ([`find`], [`replace`]), so
//! finding nothing must be cheap: [`starts`] tells the records that hold nothing any rule
//! starts from in one vectorised pass, and only the rules that may find something are run.

mod candidates;

use std::ops::Range;
use std::sync::LazyLock;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// The URL text with the password (or a lone user-info token) and every query and fragment
/// value replaced by [`MASK`]; without a scheme, a leading `user:password@` too.
///
/// The user info is found before the query and fragment are split off: a password written with
/// an unescaped `#` or `?` (`http://u:Pa#ss@h`, not a valid URL, but typed by people) is masked
/// whole. The price: `http://h:80/p?mail=a@b` is shown as `http://h:***@b`, too much rather than
/// too little.
pub fn url(text: &str) -> String {
    let (head, query, fragment) = split_parts(text);
    // Oracle's `jdbc:oracle:thin:user/password@host` has no `//`, and its
    // `jdbc:oracle:thin:@host` holds no credential: it is read as free text.
    if !head.contains("://") && head.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("jdbc:")) {
        let mut out = self::text(head);
        append_parts(&mut out, query, fragment);
        return out;
    }
    // Without a scheme the user info starts the text: `user:password@host:port`, the form a
    // bare TCP target may take.
    let start = head.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let Some(info) = userinfo(rest, false) else {
        let mut out = head.to_string();
        append_parts(&mut out, query, fragment);
        return out;
    };
    let masked = match rest[..info.end].split_once(':') {
        Some((user, _)) => format!("{user}:{MASK}"),
        None => MASK.to_string(),
    };
    let (host, query, fragment) = split_parts(&rest[info.end..]);
    let mut out = format!("{}{masked}{host}", &text[..start]);
    append_parts(&mut out, query, fragment);
    out
}

/// `head?query#fragment`.
fn split_parts(text: &str) -> (&str, Option<&str>, Option<&str>) {
    let (head, fragment) = match text.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (text, None),
    };
    match head.split_once('?') {
        Some((h, q)) => (h, Some(q), fragment),
        None => (head, None, fragment),
    }
}

/// The query and the fragment, every value masked.
fn append_parts(out: &mut String, query: Option<&str>, fragment: Option<&str>) {
    for (mark, part) in [('?', query), ('#', fragment)] {
        if let Some(part) = part {
            out.push(mark);
            out.push_str(&mask_pair_values(part));
        }
    }
}

/// `a=1&b&c=2` as `a=***&b&c=***`.
fn mask_pair_values(pairs: &str) -> String {
    let masked: Vec<String> = pairs
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) => format!("{k}={MASK}"),
            None => pair.to_string(),
        })
        .collect();
    masked.join("&")
}

/// The free text with the credentials it carries replaced by [`MASK`]:
/// - the password of `scheme://user:password@host` (also `jdbc:postgresql://u:p@h/db`), a lone
///   `scheme://token@host`, and a bare `user:password@host`;
/// - the password of Oracle's `jdbc:oracle:thin:user/password@host:1521/SVC`;
/// - the value of every `key=value` or `key: value` whose key names a secret (`password`,
///   `pwd`, `passwd`, `secret`, `token`, `apikey`, `api_key`, `credential`...; any case, any
///   prefix: `DBPASSWORD=`, `access_token=`), in URL queries and fragments too. A value ends at
///   `;`, `&`, `,`, white space or a quote, or is quoted (`password="a b"`);
///   `Authorization: Bearer x` (or `Basic`, `ApiKey`...) masks the token;
/// - the value of `<key>value</key>` whose key names a secret;
/// - a JSON Web Token anywhere (`eyJ...`: three base64url parts separated by dots);
/// - the body of a PEM private key (`-----BEGIN ... PRIVATE KEY-----` to its `-----END`), the
///   two marker lines kept.
pub fn text(text: &str) -> String {
    replace(text, find(text).into_iter().map(|(_, r)| r), MASK)
}

/// Bumped whenever [`find`] changes what it masks: agent-logship keeps it with its checkpoint,
/// so that it can say when records read again after a restart get other ids than before.
pub const RULES_VERSION: u32 = 1;

/// A kind of credential [`find`] knows, named for counting (`/metrics`) and for the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    UrlUserinfo,
    OracleCredentials,
    BareUserinfo,
    SecretValue,
    XmlSecretElement,
    JsonWebToken,
    PemPrivateKey,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::UrlUserinfo,
        Rule::OracleCredentials,
        Rule::BareUserinfo,
        Rule::SecretValue,
        Rule::XmlSecretElement,
        Rule::JsonWebToken,
        Rule::PemPrivateKey,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::UrlUserinfo => "url_userinfo",
            Rule::OracleCredentials => "oracle_credentials",
            Rule::BareUserinfo => "bare_userinfo",
            Rule::SecretValue => "secret_value",
            Rule::XmlSecretElement => "xml_secret_element",
            Rule::JsonWebToken => "json_web_token",
            Rule::PemPrivateKey => "pem_private_key",
        }
    }

    fn finder(self) -> fn(&str, &mut Vec<Range<usize>>) {
        match self {
            Rule::UrlUserinfo => url_userinfo,
            Rule::OracleCredentials => oracle_credentials,
            Rule::BareUserinfo => bare_userinfo,
            Rule::SecretValue => secret_values,
            Rule::XmlSecretElement => xml_secret_elements,
            Rule::JsonWebToken => json_web_tokens,
            Rule::PemPrivateKey => pem_private_keys,
        }
    }
}

/// Every credential in `text` ([`text`] lists the forms): which rule found it, and its bytes.
/// Ranges may overlap (a token in a URL's query is found by two rules). Empty for most texts,
/// without allocating: a caller can keep the text as it is.
pub fn find(text: &str) -> Vec<(Rule, Range<usize>)> {
    find_from(text, starts(text.as_bytes()))
}

/// [`find`], with what [`starts`] told of this same text: a caller that asked it before
/// decoding the text does not pay for it twice.
pub fn find_from(text: &str, starts: Starts) -> Vec<(Rule, Range<usize>)> {
    let (mut found, mut masks) = (Vec::new(), Vec::new());
    find_into(text, starts, &mut masks, |rule, ranges| {
        found.extend(ranges.iter().map(|r| (rule, r.clone())))
    });
    found
}

/// [`find_from`] into `masks` (the ranges found are added to it), telling `each` which rule found
/// which: a caller that keeps only the ranges and the rules allocates nothing more.
pub fn find_into(
    text: &str,
    starts: Starts,
    masks: &mut Vec<Range<usize>>,
    mut each: impl FnMut(Rule, &[Range<usize>]),
) {
    for rule in Rule::ALL.into_iter().filter(|&rule| starts.has(rule)) {
        let before = masks.len();
        rule.finder()(text, masks);
        // The empty ones this rule added are dropped, in order; what was there is left alone.
        let mut kept = before;
        for i in before..masks.len() {
            if !masks[i].is_empty() {
                masks.swap(kept, i);
                kept += 1;
            }
        }
        masks.truncate(kept);
        if masks.len() > before {
            each(rule, &masks[before..]);
        }
    }
}

/// The rules that may find something in a text: a bit each, by [`Rule`]'s order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starts(u8);

impl Starts {
    const NONE: Starts = Starts(0);

    /// Whether [`find`] may find anything: `false` is certain.
    pub fn any(self) -> bool {
        self != Starts::NONE
    }

    fn add(&mut self, rule: Rule) {
        self.0 |= 1 << (rule as u8);
    }

    fn has(self, rule: Rule) -> bool {
        self.0 & 1 << (rule as u8) != 0
    }
}

/// Which rules may find something in `bytes`, from what each starts from. agent-logship masks
/// every record it ships, and running every rule over every record cost several times the rest
/// of its work; most records hold nothing a rule starts from, and are told so in one vectorised
/// pass, without decoding them: a separator after a key that may name a secret (`key=value`
/// and the like), an `@` (every form of user info has one), `jdbc:oracle:`, an element name
/// that may name a secret, `eyJ` (a JWT), `PRIVATE KEY` (every PEM block the rule masks has it
/// in its label).
pub fn starts(bytes: &[u8]) -> Starts {
    starts_after(bytes, bytes.len() - after_date_time(bytes).len())
}

/// [`starts`] for a text that begins with a date and time (`2026-12-07 10:00:01`, as the
/// record-start check of agent-logship has seen): told so, not checked again.
pub fn starts_dated(bytes: &[u8]) -> Starts {
    debug_assert_eq!(after_date_time(bytes).len() + DATE_TIME, bytes.len(), "a text told dated is not");
    starts_after(bytes, DATE_TIME.min(bytes.len()))
}

/// The length of the date and time [`after_date_time`] skips.
const DATE_TIME: usize = 19;

/// [`starts`], the first `skipped` bytes known to hold no byte a rule starts from (a date and
/// time is digits and punctuation: its colons end no key).
fn starts_after(bytes: &[u8], skipped: usize) -> Starts {
    let mut starts = Starts::NONE;
    for i in candidates::candidates(bytes, skipped) {
        let rule = match bytes[i] {
            b'@' => {
                for rule in [Rule::UrlUserinfo, Rule::OracleCredentials, Rule::BareUserinfo] {
                    starts.add(rule);
                }
                continue;
            }
            // `jdbc:oracle:`: the Oracle rule also masks a quoted password with no `@` after it.
            b':' if bytes[..i].last().is_some_and(|b| b | 0x20 == b'e')
                && ends_oracle_prefix(&bytes[..i]) =>
            {
                Rule::OracleCredentials
            }
            b'=' | b':' if !starts.has(Rule::SecretValue) && secret_key_before(bytes, i) => Rule::SecretValue,
            // Key characters and `:` are ASCII: the name is text.
            b'<' if is_secret_key(
                std::str::from_utf8(&bytes[element_name(bytes, i + 1)]).unwrap_or_default(),
            ) =>
            {
                Rule::XmlSecretElement
            }
            b'J' if bytes[..i].ends_with(b"ey") => Rule::JsonWebToken,
            // `K`, not the `G` of `-----BEGIN`: a log has capital Gs (`DEBUG`, `PENDING`) far
            // more often.
            b'K' if bytes[..i].ends_with(b"PRIVATE ") && bytes[i..].starts_with(b"KEY") => {
                Rule::PemPrivateKey
            }
            // Nothing, or `;`, `>` and `?`, which the scan reports too.
            _ => continue,
        };
        starts.add(rule);
    }
    starts
}

/// `bytes` after a leading date and time (`2026-12-07 10:00:01`, as every log4j record begins):
/// their colons end no key, and are not looked at.
fn after_date_time(bytes: &[u8]) -> &[u8] {
    // Asked of every record: the punctuation first (most texts fail there), then the digits,
    // eight at a time (a loop over each cost a fifth of the whole scan).
    let Some(&head) = bytes.first_chunk::<DATE_TIME>() else { return bytes };
    if !(head[4] == b'-'
        && head[7] == b'-'
        && matches!(head[10], b' ' | b'T')
        && head[13] == b':'
        && head[16] == b':')
    {
        return bytes;
    }
    // Three words (bytes 0-7, 8-15, 11-18) read from the text as they are, the punctuation
    // made a `0` by a mask: copying the bytes and loading a word from the copy stalled.
    let digits = |at: usize, punctuation: [usize; 2]| {
        let word = u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
        let mask = punctuation.iter().fold(0, |m, &i| m | 0xFF << (8 * (i - at)));
        eight_digits(word & !mask | 0x3030_3030_3030_3030 & mask)
    };
    if digits(0, [4, 7]) && digits(8, [10, 13]) && digits(11, [13, 16]) { &bytes[DATE_TIME..] } else { bytes }
}

/// Whether each byte of `word` is an ASCII digit: its high half is 3 and its low half at most 9
/// (adding 6 carries no low half of a digit over; none of another is looked at).
fn eight_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    word & HIGH == THREES && word.wrapping_add(0x0606_0606_0606_0606) & HIGH == THREES
}

/// `text` with every range of `masks` (overlapping ones merged) replaced by `mask`, every other
/// byte as it was. The ranges must lie on character boundaries of `text` ([`find`]'s do).
pub fn replace(text: &str, masks: impl IntoIterator<Item = Range<usize>>, mask: &str) -> String {
    let mut masks: Vec<Range<usize>> = masks.into_iter().collect();
    masks.sort_by_key(|r| r.start);
    // Room for a mask longer than every secret it replaces: never grown.
    let mut out = String::with_capacity(text.len() + masks.len() * mask.len());
    let mut done = 0;
    let mut pending: Option<Range<usize>> = None;
    for r in masks {
        match &mut pending {
            Some(p) if r.start <= p.end => p.end = p.end.max(r.end),
            _ => {
                if let Some(p) = pending.take() {
                    out.push_str(&text[done..p.start]);
                    out.push_str(mask);
                    done = p.end;
                }
                pending = Some(r);
            }
        }
    }
    if let Some(p) = pending {
        out.push_str(&text[done..p.start]);
        out.push_str(mask);
        done = p.end;
    }
    out.push_str(&text[done..]);
    out
}

/// At most this many bytes of one text from elsewhere (a sensor's details) are kept.
pub const MAX_TEXT_BYTES: usize = 4096;

/// [`text`] of at most [`MAX_TEXT_BYTES`] of `text`: cut at the last white space before the
/// limit (so no URL or `key=value` is cut in half, its secret half kept and shown), masked, and
/// saying how much was cut. Bounds both the work and what is kept.
pub fn text_cut(text: &str) -> String {
    cut_at(text, MAX_TEXT_BYTES)
}

fn cut_at(full: &str, max: usize) -> String {
    if full.len() <= max {
        return text(full);
    }
    let mut end = max;
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    let kept = full[..end].rfind(char::is_whitespace).unwrap_or(0);
    let mut out = text(full[..kept].trim_end());
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(&format!("[{} more bytes not kept]", full.len() - kept));
    out
}

/// Whether a character ends a token of free text a URL or connect string lies in: white space,
/// `"`, `<` and `>` (not `'`: RFC 3986 allows it in user info).
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '<' | '>')
}

/// The tokens (the runs between characters that `ends` one) that hold one of `positions`, once
/// each, with their offsets. The user-info rules look at the tokens around an `@` only: a record
/// with one URL is not read character by character.
fn tokens_at(
    text: &str,
    positions: impl Iterator<Item = usize>,
    ends: impl Fn(char) -> bool + Copy,
) -> impl Iterator<Item = (usize, &str)> {
    let mut done = 0;
    positions.filter_map(move |p| {
        if p < done {
            return None;
        }
        let start = after_last_char(&text[..p], ends).unwrap_or(0);
        let end = find_char(&text[p..], ends).map_or(text.len(), |i| p + i);
        done = end.max(p + 1);
        (start < end).then(|| (start, &text[start..end]))
    })
}

/// Where the first character `is` holds is in `text`. Byte by byte, decoding only what is not
/// ASCII: the rules ask it of most characters of a record that holds a credential, and
/// `str::find` with a closure cost as much as the rest of the rule. (The ASCII branch steps by
/// one itself: asking `len_utf8` of every character cost 8 % more on such a record.)
fn find_char(text: &str, is: impl Fn(char) -> bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if is(char::from(b)) {
                return Some(i);
            }
            i += 1;
        } else {
            let c = text[i..].chars().next()?;
            if is(c) {
                return Some(i);
            }
            i += c.len_utf8();
        }
    }
    None
}

/// Where the last character `is` holds ends in `text` (the position after it); as
/// [`find_char`], backwards.
fn after_last_char(text: &str, is: impl Fn(char) -> bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        let b = bytes[i - 1];
        if b.is_ascii() {
            if is(char::from(b)) {
                return Some(i);
            }
            i -= 1;
        } else {
            let c = text[..i].chars().next_back()?;
            if is(c) {
                return Some(i);
            }
            i -= c.len_utf8();
        }
    }
    None
}

/// A search for one ASCII byte, for [`Next`].
fn byte(b: u8) -> impl Fn(&str) -> Option<usize> {
    move |text| memchr::memchr(b, text.as_bytes())
}

/// The tokens that hold an `@`.
fn tokens_with_at(text: &str, ends: impl Fn(char) -> bool + Copy) -> impl Iterator<Item = (usize, &str)> {
    tokens_at(text, memchr::memchr_iter(b'@', text.as_bytes()), ends)
}

/// The first position at or after `from` where a search (`find`, over the text from there)
/// finds something, in one text; the last answer is kept, so a pass asking with growing
/// positions looks at each byte about once. This keeps masking linear however many `://`, `@`
/// or `password=` a hostile text repeats.
struct Next<'a, F> {
    text: &'a str,
    find: F,
    from: usize,
    found: usize,
}

impl<'a, F: Fn(&str) -> Option<usize>> Next<'a, F> {
    fn new(text: &'a str, find: F) -> Self {
        Next { text, find, from: usize::MAX, found: 0 }
    }

    /// The position, or the text's length when there is none.
    fn at(&mut self, from: usize) -> usize {
        if !(self.from <= from && from <= self.found) {
            self.from = from;
            self.found = (self.find)(&self.text[from..]).map_or(self.text.len(), |i| from + i);
        }
        self.found
    }
}

/// Where the user info ends in `rest`, the text after `scheme://` up to the end of the URL:
/// `Some(range of the user info)` (its end is the `@`), or `None` when it has none.
///
/// The `@` that ends it is the last one before the host (`greedy`: the last one of all, for free
/// text where a password may hold anything): so a password holding `@` is masked whole. A
/// password holding `/`, `?` or `#` (invalid in a URL, but written by people) is taken as one
/// when the text before them looks like `user:`, so `http://h/@x` keeps its path.
fn userinfo(rest: &str, greedy: bool) -> Option<Range<usize>> {
    let first_at = rest.find('@')?;
    let before = &rest[..first_at];
    if let Some(delim) = before.find(['/', '?', '#'])
        && !before[..delim].contains(':')
    {
        return None;
    }
    // The host runs to the next `/`, `?` or `#` after the first `@`; the last `@` before it ends
    // the user info.
    let host_end = match greedy {
        true => rest.len(),
        false => rest[first_at..].find(['/', '?', '#']).map_or(rest.len(), |i| first_at + i),
    };
    let last_at = rest[..host_end].rfind('@').unwrap_or(first_at);
    Some(0..last_at)
}

/// `scheme://user:password@` → mask the password; `scheme://token@` → mask the token. In free
/// text a password may hold anything, so the last `@` of the token ends the user info.
fn url_userinfo(text: &str, masks: &mut Vec<Range<usize>>) {
    for (base, token) in tokens_with_at(text, ends_token) {
        let Some(last_at) = token.rfind('@') else { continue };
        let mut at = Next::new(token, byte(b'@'));
        let mut delim = Next::new(token, |t: &str| memchr::memchr3(b'/', b'?', b'#', t.as_bytes()));
        let mut colon = Next::new(token, byte(b':'));
        for i in memchr::memchr_iter(b':', token.as_bytes()).filter(|&i| token[i..].starts_with("://")) {
            let start = i + 3;
            if start > last_at {
                break;
            }
            let (first_at, d, c) = (at.at(start), delim.at(start), colon.at(start));
            // `http://h/@x`: a path before the first `@`, and no `user:` before it.
            if d < first_at && c > d {
                continue;
            }
            masks.push(if c < last_at { base + c + 1..base + last_at } else { base + start..base + last_at });
            // A later `://` in this token masks a part of this one's range: nothing to add.
            break;
        }
    }
}

/// Oracle's `jdbc:oracle:thin:user/password@host...` (any driver type: `thin`, `oci`, `kprb`),
/// also with the password quoted, as Oracle wants one holding `@` or white space:
/// `user/"p@ss word"@host`. (Only in a text with an `@` or `jdbc:oracle:`: see [`starts`].)
fn oracle_credentials(text: &str, masks: &mut Vec<Range<usize>>) {
    let prefixes = oracle_prefixes(text);
    let mut quote = Next::new(text, byte(b'"'));
    for (base, token) in tokens_at(text, prefixes, ends_token) {
        let end = base + token.len();
        // A quote ends the token: `...thin:user/` then `"password"`.
        if token.ends_with('/') && !token.contains('@') && text[end..].starts_with('"') {
            masks.push(end + 1..quote.at(end + 1));
            continue;
        }
        let Some(last_at) = token.rfind('@') else { continue };
        let mut colon = Next::new(token, byte(b':'));
        let mut slash = Next::new(token, byte(b'/'));
        let mut at = Next::new(token, byte(b'@'));
        for i in oracle_prefixes(token) {
            // The driver type, then `:`.
            let start = colon.at(i + ORACLE_PREFIX.len()) + 1;
            if start > last_at {
                break;
            }
            let s = slash.at(start);
            if s > at.at(start) {
                continue; // `thin:@host:1521/SVC`: no credentials.
            }
            // The last `@` ends the password (one with `@` must be quoted for Oracle, but mask
            // too much rather than too little). A later match masks a part of this range.
            masks.push(base + s + 1..base + last_at);
            break;
        }
    }
}

const ORACLE_PREFIX: &str = "jdbc:oracle:";

/// Whether `head` ends with [`ORACLE_PREFIX`] but its colon, in any case.
fn ends_oracle_prefix(head: &[u8]) -> bool {
    let name = &ORACLE_PREFIX.as_bytes()[..ORACLE_PREFIX.len() - 1];
    head.len() >= name.len() && head[head.len() - name.len()..].eq_ignore_ascii_case(name)
}

/// Where [`ORACLE_PREFIX`] begins in `text`, in any case.
fn oracle_prefixes(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    memchr::memchr2_iter(b'j', b'J', bytes).filter(move |&i| {
        bytes[i..]
            .get(..ORACLE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(ORACLE_PREFIX.as_bytes()))
    })
}

/// A bare `user:password@host` (a proxy setting, a connect string): a token that starts with a
/// plain word, a `:` not followed by `//`, then an `@`.
fn bare_userinfo(text: &str, masks: &mut Vec<Range<usize>>) {
    let is_start = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ',' | ';' | '(' | '[' | '<');
    for (base, token) in tokens_with_at(text, is_start) {
        let Some(colon) = token.find(':') else { continue };
        let user = &token[..colon];
        let rest = &token[colon + 1..];
        if user.is_empty()
            || !user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~'))
            || user.eq_ignore_ascii_case("jdbc")
            || rest.starts_with("//")
        {
            continue;
        }
        if let Some(info) = userinfo(rest, true) {
            let base = base + colon + 1;
            masks.push(base..base + info.end);
        }
    }
}

/// Key names (lower case) that hold a secret when they appear anywhere in a key.
const SECRET_WORDS: [&str; 16] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "privatekey",
    "private_key",
    "credential",
    "authorization",
    "signature",
];

/// A word's letters as a bit set (`a` the lowest bit).
const fn letter_set(word: &str) -> u32 {
    let word = word.as_bytes();
    let mut m = 0;
    let mut i = 0;
    while i < word.len() {
        if word[i].is_ascii_lowercase() {
            m |= 1 << (word[i] - b'a');
        }
        i += 1;
    }
    m
}

/// The letters of each of [`SECRET_WORDS`]: a key lacking one of a word's letters cannot hold it.
const SECRET_WORD_LETTERS: [u32; SECRET_WORDS.len()] = {
    let mut sets = [0; SECRET_WORDS.len()];
    let mut i = 0;
    while i < sets.len() {
        sets[i] = letter_set(SECRET_WORDS[i]);
        i += 1;
    }
    sets
};

/// The letters of the shortest secret words: every secret key holds all the letters of one of
/// them. `pass` (password, passwd, passphrase), `pw` (pwd), `secret`, `token`, `key` (apikey,
/// accesskey, private_key, `*_key`), `credential`, `auth` (authorization) and `sig` (signature).
const SECRET_LETTERS: [u32; 8] = [
    letter_set("pass"),
    letter_set("pw"),
    letter_set("secret"),
    letter_set("token"),
    letter_set("key"),
    letter_set("credential"),
    letter_set("auth"),
    letter_set("sig"),
];

/// A letter as a bit of a letter set (`a` the lowest, either case); 0 for anything else.
const fn letter(b: u8) -> u32 {
    match b.to_ascii_lowercase() {
        l @ b'a'..=b'z' => 1 << (l - b'a'),
        _ => 0,
    }
}

/// Per byte: 0 if it cannot be in a key, else its letter (as [`letter`]) with bit 31 set — one
/// look-up per byte in the scan back over every key of a log line.
static KEY_BYTES: [u32; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        if is_key_char(b as u8 as char) {
            table[b] = letter(b as u8) | 1 << 31;
        }
        b += 1;
    }
    table
};

/// Whether a key with these letters (bits above `z` are ignored) may hold a secret word.
fn may_be_secret(letters: u32) -> bool {
    // Every set tested, without a branch each: most keys hold none.
    SECRET_LETTERS.iter().fold(false, |any, needed| any | (needed & !letters == 0))
}

/// A key's last part, after its last `.` or `:` (`db.pass`, `ns:pw`: a path or a namespace).
fn last_part(key: &[u8]) -> &[u8] {
    key.rsplit(|&b| b == b'.' || b == b':').next().unwrap_or(key)
}

/// Key names (lower case) that hold a secret only as the whole key (or its last part).
const SECRET_KEYS: [&str; 4] = ["pass", "pw", "sig", "auth"];

/// Whether a key names a secret (any case): it holds `password`, `secret`, `token` and the like
/// anywhere, is `pass`, `pw`, `sig` or `auth`, or ends in `_key`. Allocates nothing: agent-logship
/// asks it of every key of every JSON log line.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.as_bytes();
    // Most keys in a log (`seq`, `id`, `TradeSQL.java`, the hours of a time) lack a letter every
    // secret word has: told in one pass over the key, before any word is looked for.
    let letters = key.iter().fold(0, |m, &b| m | letter(b));
    if !may_be_secret(letters) {
        return false;
    }
    // A word is compared where the key has its first letter (in either case: `| 0x20`).
    let has =
        |word: &[u8]| key.windows(word.len()).any(|w| w[0] | 0x20 == word[0] && w.eq_ignore_ascii_case(word));
    // `*_KEY`, as agent-init's default secret variables: `AWS_SECRET_ACCESS_KEY`, `signing_key`.
    SECRET_WORDS
        .iter()
        .zip(SECRET_WORD_LETTERS)
        .any(|(w, needed)| letters & needed == needed && has(w.as_bytes()))
        || SECRET_KEYS.iter().any(|k| last_part(key).eq_ignore_ascii_case(k.as_bytes()))
        || (key.len() >= 4 && key[key.len() - 4..].eq_ignore_ascii_case(b"_key"))
}

/// Whether `key` before a separator `sep` (followed by `next`) is a name in code rather than a
/// setting, so what follows is no secret: a source position (`TokenService.java:118` in a stack
/// frame), a Java class (`com.calypso.auth.InvalidTokenException: expired`: a dotted name whose
/// last part is capitalised, as classes are and property keys are not) or an exception's simple
/// name.
fn names_code(key: &str, sep: u8, next: Option<u8>) -> bool {
    let class =
        key.rsplit_once('.').is_some_and(|(_, last)| last.starts_with(|c: char| c.is_ascii_uppercase()));
    ends_code(key.as_bytes(), sep, next) || (sep == b':' && class)
}

/// Whether `head`, the text before a separator `sep` (followed by `next`), ends as a name in code
/// does: a source file with a line number, an exception or an error. Told by the last few
/// bytes, and asked first: most colons in a Calypso log end a stack frame's position or an
/// exception's name, and their keys are the longest of a log.
#[inline(always)]
fn ends_code(head: &[u8], sep: u8, next: Option<u8>) -> bool {
    // Code is named before a colon only (`File.java:311`, `Class: message`): `App.Password=x`
    // is a setting.
    if sep != b':' {
        return false;
    }
    let line_number = next.is_some_and(|b| b.is_ascii_digit());
    // Fixed-size comparisons: asked at every colon of a log, a call to compare each suffix cost
    // more than reading the key back.
    (line_number
        && (head.last_chunk() == Some(b".java")
            || head.last_chunk() == Some(b".kt")
            || head.last_chunk() == Some(b".scala")
            || head.last_chunk() == Some(b".groovy")))
        || head.last_chunk() == Some(b"Exception")
        || head.last_chunk() == Some(b"Error")
}

const fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `key=value`, `key: value`, `"key":"value"` with a secret key: mask the value.
fn secret_values(text: &str, masks: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    // Where an unquoted value ends, and where each quote closes.
    let mut value_end = Next::new(text, |t: &str| {
        find_char(t, |c| c.is_whitespace() || matches!(c, ';' | '&' | ',' | '"' | '\''))
    });
    let mut double_quote = Next::new(text, byte(b'"'));
    let mut single_quote = Next::new(text, byte(b'\''));
    // A separator inside a value already masked is masked with it; skipping it also keeps the
    // scans for closing quotes from going over the same text twice.
    let mut masked_until = 0;
    for sep in memchr::memchr2_iter(b'=', b':', bytes) {
        if sep < masked_until {
            continue;
        }
        if !secret_key_before(bytes, sep) {
            continue;
        }
        // Forwards: the `>` of `=>`, blanks (not a line break: a value is on its key's line),
        // then the value: quoted, escaped-quoted (JSON written inside a text), in brackets
        // (`{...}`, `[...]`: a map, a list, an ODBC `{braced}` value), or up to a terminator.
        let mut v = sep + 1;
        if bytes[sep] == b'=' && bytes.get(v) == Some(&b'>') {
            v += 1;
        }
        v = after_blanks(text, v);
        let mut quoted = |v: usize| -> Option<Range<usize>> {
            match bytes.get(v) {
                Some(b'"') => {
                    // JSON's `\"` does not close the string.
                    let mut close = double_quote.at(v + 1);
                    while close < text.len() && escaped(bytes, close) {
                        close = double_quote.at(close + 1);
                    }
                    Some(v + 1..close)
                }
                Some(b'\'') => Some(v + 1..single_quote.at(v + 1)),
                Some(b'\\') if bytes.get(v + 1) == Some(&b'"') => {
                    let close =
                        memchr::memmem::find(&bytes[v + 2..], b"\\\"").map_or(text.len(), |i| v + 2 + i);
                    Some(v + 2..close)
                }
                _ => None,
            }
        };
        let value = match bytes.get(v) {
            Some(b'{' | b'[') => v + 1..closing_bracket(bytes, v),
            _ => match quoted(v) {
                Some(value) => value,
                None => {
                    let end = value_end.at(v);
                    // `Authorization: Bearer <token>`: the scheme, then the secret.
                    let scheme = &text[v..end];
                    if ["bearer", "basic", "token", "negotiate", "apikey"]
                        .iter()
                        .any(|s| scheme.eq_ignore_ascii_case(s))
                    {
                        let t = after_blanks(text, end);
                        quoted(t).unwrap_or_else(|| t..value_end.at(t))
                    } else {
                        v..end
                    }
                }
            },
        };
        masked_until = value.end;
        masks.push(value);
    }
}

/// The first position at or after `at` that is not white space other than a line break.
fn after_blanks(text: &str, at: usize) -> usize {
    find_char(&text[at..], |c| c == '\n' || !c.is_whitespace()).map_or(text.len(), |i| at + i)
}

/// Where the bracket opened at `open` closes (`{` and `[` nest, quoted strings are skipped),
/// else the end of its line: a value in brackets is masked whole, however it is nested.
fn closing_bracket(bytes: &[u8], open: usize) -> usize {
    let (mut depth, mut in_string, mut i) = (0usize, false, open);
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'{' | b'[') => depth += 1,
            (false, b'}' | b']') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            (false, b'\n') => return i,
            (false, _) => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The name of an element whose tag starts at `at` (after its `<`): key characters and the `:`
/// of a namespace prefix (`wsse:Password`).
fn element_name(bytes: &[u8], at: usize) -> Range<usize> {
    let len = bytes[at..].iter().take_while(|&&b| KEY_BYTES[usize::from(b)] != 0 || b == b':').count();
    at..at + len
}

/// Whether the key before the separator at `sep` names a secret (and no name in code). Most
/// keys are passed over by their letters alone, in a few instructions inlined into the scans
/// that ask at every separator; the rest is [`names_secret`].
#[inline(always)]
fn secret_key_before(bytes: &[u8], sep: usize) -> bool {
    // The key's suffixes are its own when it ends at the separator (every suffix is key
    // characters): then a name in code is told without reading the key back.
    if ends_code(&bytes[..sep], bytes[sep], bytes.get(sep + 1).copied()) {
        return false;
    }
    let (key, letters) = key_before(bytes, sep);
    may_be_secret(letters) && names_secret(bytes, key, sep)
}

/// Whether `key`, before the separator at `sep`, names a secret and no name in code. Key
/// characters are ASCII, so a key is text.
#[inline(never)]
fn names_secret(bytes: &[u8], key: Range<usize>, sep: usize) -> bool {
    let key = std::str::from_utf8(&bytes[key]).unwrap_or_default();
    !names_code(key, bytes[sep], bytes.get(sep + 1).copied()) && is_secret_key(key)
}

/// The key before a separator at `sep` (after blanks and a closing quote, which may come
/// between), and the letters in it (as [`letter`]): one table look-up per byte, for every `=` and
/// `:` of every record agent-logship ships.
#[inline(always)]
fn key_before(bytes: &[u8], sep: usize) -> (Range<usize>, u32) {
    let mut end = sep;
    // Most keys end at the separator: what may come between is looked for only when the byte
    // before it cannot be in a key.
    if end > 0 && KEY_BYTES[usize::from(bytes[end - 1])] == 0 {
        while end > 0 && matches!(bytes[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        if end > 0 && matches!(bytes[end - 1], b'"' | b'\'') {
            end -= 1;
            // `\"password\":`: JSON written inside a text.
            if end > 0 && bytes[end - 1] == b'\\' {
                end -= 1;
            }
        }
    }
    let (mut start, mut letters) = (end, 0);
    while start > 0 {
        let class = KEY_BYTES[usize::from(bytes[start - 1])];
        if class == 0 {
            break;
        }
        letters |= class;
        start -= 1;
    }
    (start..end, letters)
}

/// `<password>hunter2</password>` (any secret key, any case): the element's text.
fn xml_secret_elements(text: &str, masks: &mut Vec<Range<usize>>) {
    const CDATA: (&str, &str) = ("<![CDATA[", "]]>");
    let bytes = text.as_bytes();
    let mut close = Next::new(text, byte(b'<'));
    let mut tag_end = Next::new(text, byte(b'>'));
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'<', &bytes[from..]).map(|i| from + i) {
        from = i + 1;
        let name = element_name(bytes, from);
        if name.is_empty() || !is_secret_key(&text[name.clone()]) {
            continue;
        }
        // `<password>`, `<password type="text">`, `<Password >`; not `<password/>`.
        let value_start = match bytes.get(name.end) {
            Some(b'>') => name.end + 1,
            Some(b) if b.is_ascii_whitespace() => {
                let end = tag_end.at(name.end);
                if end >= text.len() || bytes[end - 1] == b'/' {
                    continue;
                }
                end + 1
            }
            _ => continue,
        };
        // The text, or a CDATA section, up to the element's own end tag: a `<token>` opening
        // a nested structure is left alone.
        let (value, after) = if text[value_start..].starts_with(CDATA.0) {
            let start = value_start + CDATA.0.len();
            match text[start..].find(CDATA.1) {
                Some(end) => (start..start + end, start + end + CDATA.1.len()),
                None => continue,
            }
        } else {
            let end = close.at(value_start);
            (value_start..end, end)
        };
        let end_tag = format!("</{}>", &text[name]);
        if text[after..].get(..end_tag.len()).is_some_and(|t| t.eq_ignore_ascii_case(&end_tag)) {
            masks.push(value);
            from = after;
        }
    }
}

/// A JSON Web Token: `eyJ` (a base64url JSON header), then two more dot-separated base64url
/// parts, the signature possibly empty (`alg: none`).
fn json_web_tokens(text: &str, masks: &mut Vec<Range<usize>>) {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = text.as_bytes();
    let mut from = 0;
    static HEADER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new("eyJ"));
    while let Some(start) = HEADER.find(&bytes[from..]).map(|i| from + i) {
        // Each part's end, from where it starts.
        let part_end = |p: usize| p + bytes[p..].iter().take_while(|&&c| b64(c)).count();
        let header_end = part_end(start);
        from = header_end.max(start + 3);
        if start > 0 && b64(bytes[start - 1]) {
            continue; // inside a longer word
        }
        if bytes.get(header_end) != Some(&b'.') {
            continue;
        }
        let payload_end = part_end(header_end + 1);
        if payload_end == header_end + 1 || bytes.get(payload_end) != Some(&b'.') {
            continue;
        }
        let end = part_end(payload_end + 1);
        masks.push(start..end);
        from = end;
    }
}

/// What a PEM block begins with.
const PEM_BEGIN: &str = "-----BEGIN ";

/// The body of a PEM private key block, between its `-----BEGIN ...PRIVATE KEY-----` and
/// `-----END ...-----` lines (kept, so a reader still sees what was there). An unterminated
/// block is masked to the end of the text.
fn pem_private_keys(text: &str, masks: &mut Vec<Range<usize>>) {
    const DASHES: &str = "-----";
    static MARKER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(PEM_BEGIN));
    let mut from = 0;
    while let Some(begin) = MARKER.find(&text.as_bytes()[from..]).map(|i| from + i) {
        let label_start = begin + PEM_BEGIN.len();
        let Some(label_end) = text[label_start..].find(DASHES).map(|i| label_start + i) else { return };
        from = label_end + DASHES.len();
        // `RSA PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`...
        if !text[label_start..label_end].contains("PRIVATE KEY") {
            continue;
        }
        let end = text[from..].find("-----END ").map_or(text.len(), |i| from + i);
        masks.push(from..end);
        from = end;
    }
}

/// Whether the byte at `at` is escaped: an odd number of backslashes before it.
fn escaped(bytes: &[u8], at: usize) -> bool {
    bytes[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::{text, url};

    #[test]
    fn masks_credentials_and_query_values() {
        assert_eq!(url("http://user:s3cret@host:1/x"), "http://user:***@host:1/x");
        assert_eq!(url("https://tok3n@host/x"), "https://***@host/x");
        assert_eq!(url("http://h/p?token=abc&x=1&flag#frag"), "http://h/p?token=***&x=***&flag#frag");
        assert_eq!(url("tcp://admin:hunter2@ds:1"), "tcp://admin:***@ds:1");
        assert_eq!(url("ftp://u:p@h:99999/bad"), "ftp://u:***@h:99999/bad", "not a valid URL");
        assert_eq!(url("db:1521"), "db:1521");
        assert_eq!(url("jdbc:oracle:thin:@db:1521:X"), "jdbc:oracle:thin:@db:1521:X", "no credential");
        assert_eq!(url("jdbc:oracle:thin:scott/tiger@db:1521/S"), "jdbc:oracle:thin:scott/***@db:1521/S");
        assert_eq!(url("calypso:hunter2@ds:1"), "calypso:***@ds:1", "a bare target's user info");
        assert_eq!(url("tok3n@ds:1"), "***@ds:1");
        assert_eq!(url("ds/@x:1"), "ds/@x:1", "no user info before a path");
        assert_eq!(url("http://calypso:Pa#ss1@ds:8140/health"), "http://calypso:***@ds:8140/health");
        assert_eq!(url("calypso://calypso:Pa?ss2@ds:8140/h?x=1"), "calypso://calypso:***@ds:8140/h?x=***");
        assert_eq!(url("calypso:Pa#ss5@ds:1521"), "calypso:***@ds:1521");
        assert_eq!(url("http://h/p?mail=a@b"), "http://h/p?mail=***", "no user: before the path");
        assert_eq!(url("http://h:80/p?mail=a@b"), "http://h:***@b", "too much rather than too little");
        assert_eq!(url("http://a@b:c@host/"), "http://a@b:***@host/", "the last @ ends the user info");
        assert_eq!(url("http://u:p@ss@host/"), "http://u:***@host/");
        assert_eq!(url("http://:s3cret@ds/health"), "http://:***@ds/health");
        assert_eq!(url("http://ds/@not-userinfo"), "http://ds/@not-userinfo");
        assert_eq!(url("http://ds?token=abc"), "http://ds?token=***");
        assert_eq!(url("not a url?secret=1"), "not a url?secret=***");
        assert_eq!(url(""), "");
    }

    #[test]
    fn long_text_is_cut_before_a_token_never_inside_one() {
        let long = format!("{} http://u:hunter2@h/x tail", "word ".repeat(10));
        let at = long.find("http").expect("url") + 12; // inside the password
        let words = "word ".repeat(10);
        assert_eq!(
            super::cut_at(&long, at),
            format!("{} [{} more bytes not kept]", words.trim_end(), long.len() - 50)
        );
        assert_eq!(
            super::cut_at("password=hunter2", 12),
            "[16 more bytes not kept]",
            "one token: nothing kept"
        );
        assert_eq!(super::cut_at("é password=x", 1), "[13 more bytes not kept]", "a character boundary");
        assert_eq!(super::cut_at("short password=x", 100), "short password=***");
    }

    #[test]
    fn masks_fragments() {
        assert_eq!(
            url("https://app/cb#access_token=abc&token_type=bearer"),
            "https://app/cb#access_token=***&token_type=***"
        );
        assert_eq!(url("http://h/p?a=1#x=2"), "http://h/p?a=***#x=***");
        assert_eq!(url("http://h/#section"), "http://h/#section");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init, reason = "one range found by each rule")]
    fn find_into_adds_to_what_is_there_and_tells_each_rule_its_own() {
        let text = "password=hunter2 at https://u:tok3n@h/";
        let mut masks = vec![3..3, 0..1];
        let mut told = Vec::new();
        super::find_into(text, super::starts(text.as_bytes()), &mut masks, |rule, ranges| {
            told.push((rule, ranges.to_vec()))
        });
        assert_eq!(masks[..2], [3..3, 0..1], "what the caller had is left as it was");
        let found: Vec<_> = told.iter().flat_map(|(_, r)| r.clone()).collect();
        assert_eq!(masks[2..], found[..]);
        assert_eq!(told, [(super::Rule::UrlUserinfo, vec![30..35]), (super::Rule::SecretValue, vec![9..16])]);
    }

    #[test]
    fn text_masks_url_credentials() {
        assert_eq!(
            text("cannot connect to jdbc:postgresql://calypso:hunter2@db:5432/cal: refused"),
            "cannot connect to jdbc:postgresql://calypso:***@db:5432/cal: refused"
        );
        assert_eq!(text("via https://tok3n@host/x"), "via https://***@host/x");
        assert_eq!(text("'http://u:p@ss@h/x'"), "'http://u:***@h/x'");
        assert_eq!(text("http://u:pa/ss@h/x"), "http://u:***@h/x", "an unescaped / in a password");
        assert_eq!(text("see http://ds/@user for more"), "see http://ds/@user for more");
        assert_eq!(text("proxy=alice:hunter2@proxy:3128"), "proxy=alice:***@proxy:3128");
        assert_eq!(text("Calypso/DataServerConnection: lost"), "Calypso/DataServerConnection: lost");
    }

    #[test]
    fn text_masks_oracle_credentials() {
        assert_eq!(
            text("connected to jdbc:oracle:thin:calypso/hunter2@db:1521/CAL as calypso"),
            "connected to jdbc:oracle:thin:calypso/***@db:1521/CAL as calypso"
        );
        assert_eq!(text("JDBC:Oracle:thin:u/p@ss@//db:1521/S"), "JDBC:Oracle:thin:u/***@//db:1521/S");
        assert_eq!(text("jdbc:oracle:oci:u/x@CAL"), "jdbc:oracle:oci:u/***@CAL");
        assert_eq!(
            text("jdbc:oracle:thin:@calypso-db.demo:1521:DEMO"),
            "jdbc:oracle:thin:@calypso-db.demo:1521:DEMO",
            "no credentials: unchanged"
        );
        // Oracle wants a password holding `@` or white space quoted.
        assert_eq!(
            text(r#"cannot connect to jdbc:oracle:thin:calypso/"Tiger@2024"@db:1521/CAL"#),
            r#"cannot connect to jdbc:oracle:thin:calypso/"***"@db:1521/CAL"#
        );
        assert_eq!(text(r#"jdbc:oracle:thin:scott/"p@ss w0rd"@db"#), r#"jdbc:oracle:thin:scott/"***"@db"#);
        assert_eq!(text(r#""jdbc:oracle:thin:@//db:1521/" next"#), r#""jdbc:oracle:thin:@//db:1521/" next"#);
    }

    #[test]
    fn find_names_each_rule_and_replace_keeps_every_other_byte() {
        use super::{Rule, find, replace};
        let line = "db jdbc:oracle:thin:u/p1@h; http://a:p2@h/x?token=t3 <secret>s4</secret> k eyJa.eyJb.c";
        let found = find(line);
        let mut rules: Vec<Rule> = found.iter().map(|(r, _)| *r).collect();
        rules.sort();
        rules.dedup();
        let want = [
            Rule::UrlUserinfo,
            Rule::OracleCredentials,
            Rule::SecretValue,
            Rule::XmlSecretElement,
            Rule::JsonWebToken,
        ];
        assert_eq!(rules, want);
        assert_eq!(
            replace(line, found.iter().map(|(_, r)| r.clone()), "<redacted>"),
            "db jdbc:oracle:thin:u/<redacted>@h; http://a:<redacted>@h/x?token=<redacted> <secret><redacted></secret> k <redacted>"
        );
        assert!(find("2026-12-07 10:00:01,123 INFO [main] trade T-42 booked").is_empty());
        let names: std::collections::BTreeSet<_> = Rule::ALL.map(Rule::name).into_iter().collect();
        assert_eq!(names.len(), Rule::ALL.len(), "each rule has a name of its own");
    }

    #[test]
    fn text_masks_xml_jwt_and_pem() {
        assert_eq!(
            text("<user>calypso</user><password>hunter2</password>"),
            "<user>calypso</user><password>***</password>"
        );
        assert_eq!(text("<DB_Password>p w</db_password>"), "<DB_Password>***</db_password>");
        assert_eq!(
            text("<password/><token><a>1</a></token>"),
            "<password/><token><a>1</a></token>",
            "no text element"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYWx5cHNvIn0.c2lnbmF0dXJl";
        assert_eq!(text(&format!("sent {jwt} to auth")), "sent *** to auth");
        assert_eq!(
            text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. rest"),
            "*** rest",
            "alg none: empty signature"
        );
        assert_eq!(text("keyJunk.a.b eyJonly eyJa.b"), "keyJunk.a.b eyJonly eyJa.b", "not a token");
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQ==\n-----END PRIVATE KEY-----";
        assert_eq!(text(pem), "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----");
        let rsa = "x -----BEGIN RSA PRIVATE KEY-----\nMIIE\n";
        assert_eq!(text(rsa), "x -----BEGIN RSA PRIVATE KEY-----***", "unterminated: to the end");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(text(cert), cert, "a certificate is public");
    }

    #[test]
    fn text_masks_secret_values() {
        assert_eq!(text("user=calypso;password=hunter2;x=1"), "user=calypso;password=***;x=1");
        assert_eq!(text("PWD: hunter2, ok"), "PWD: ***, ok");
        assert_eq!(text("DBPASSWORD = hunter2"), "DBPASSWORD = ***");
        assert_eq!(text(r#"{"password":"hunter 2","user":"c"}"#), r#"{"password":"***","user":"c"}"#);
        assert_eq!(text("passwd='a b'"), "passwd='***'");
        assert_eq!(text("http://h/p?user=u&api_key=k1&Token=t2"), "http://h/p?user=u&api_key=***&Token=***");
        assert_eq!(text("https://app/cb#access_token=abc"), "https://app/cb#access_token=***");
        assert_eq!(text("client_secret=s sig=x"), "client_secret=*** sig=***");
        assert_eq!(text("Authorization: Bearer eyJabc.def"), "Authorization: Bearer ***");
        assert_eq!(text("authorization: ApiKey a1b2c3"), "authorization: ApiKey ***");
        assert_eq!(
            text("AWS_SECRET_ACCESS_KEY=abc signing_key: k1"),
            "AWS_SECRET_ACCESS_KEY=*** signing_key: ***"
        );
        // Near misses stay: a key name that only looks like one, ids and times.
        assert_eq!(
            text("keyboard=us monkey=1 trade=T-123 at=10:00:01"),
            "keyboard=us monkey=1 trade=T-123 at=10:00:01"
        );
        // Forms a hostile review found leaking: each masked, the text around it kept.
        for (given, masked) in [
            // JSON written inside a text.
            (r#"body {\"password\":\"p1\"} end"#, r#"body {\"password\":\"***\"} end"#),
            // A value in brackets: a map, a list, a nested object, an ODBC braced value.
            ("{Authorization=[Bearer p2]} x", "{Authorization=[***]} x"),
            (r#""Authorization": ["Bearer p3"], "u": 1"#, r#""Authorization": [***], "u": 1"#),
            (r#""db":{"secret":{"v":"p4"}},"n":2"#, r#""db":{"secret":{***}},"n":2"#),
            ("Pwd={p5;tail};Uid=u", "Pwd={***};Uid=u"),
            (r#""token":["a]","b"] ok"#, r#""token":[***] ok"#),
            // Blanks of any kind between the separator and the value; `=>`; a quoted token.
            ("password=\u{a0}p6 next", "password=\u{a0}*** next"),
            ("password:\u{3000}p7 next", "password:\u{3000}*** next"),
            ("password=\rp8 next", "password=\r*** next"),
            ("Authorization: Bearer\u{a0}p9 next", "Authorization: Bearer\u{a0}*** next"),
            (r#"Authorization: Bearer "p10" next"#, r#"Authorization: Bearer "***" next"#),
            (r#"password => "p11", x"#, r#"password => "***", x"#),
            // A dotted, capitalised key before `=` is a setting, not a class.
            ("App.Password=p12 passwordError=p13", "App.Password=*** passwordError=***"),
            // A key's last part.
            ("db.pass=p14 ns:pw=p15", "db.pass=*** ns:pw=***"),
            // XML: attributes, a namespace prefix, a blank before `>`, CDATA, names like classes.
            (
                r#"<wsse:Password Type="x#PasswordText">p16</wsse:Password>"#,
                r#"<wsse:Password Type="x#PasswordText">***</wsse:Password>"#,
            ),
            (r#"<password type="text">p17</password>"#, r#"<password type="text">***</password>"#),
            ("<Password >p18</Password>", "<Password >***</Password>"),
            ("<api_key><![CDATA[p19]]></api_key>", "<api_key><![CDATA[***]]></api_key>"),
            (
                "<db.Password>p20</db.Password><TokenError>p21</TokenError>",
                "<db.Password>***</db.Password><TokenError>***</TokenError>",
            ),
            // Other private keys.
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\np22\n-----END PGP PRIVATE KEY BLOCK-----",
                "-----BEGIN PGP PRIVATE KEY BLOCK-----***-----END PGP PRIVATE KEY BLOCK-----",
            ),
        ] {
            assert_eq!(text(given), masked, "{given}");
        }
        // Still left alone: an XML element that opens a structure, a self-closed one.
        assert_eq!(text("<token><id>1</id></token> <password/>"), "<token><id>1</id></token> <password/>");
        // Names in code: a stack frame's source position, an exception's class.
        for code in [
            "\tat com.calypso.tk.core.PasswordPolicy.check(PasswordPolicy.java:42)",
            "\tat c.TokenCache.get(TokenCache.kt:7) [TokenCache.scala:9]",
            "Caused by: com.calypso.auth.InvalidTokenException: The token has expired",
            "SecretNotFoundError: no such alias",
        ] {
            assert_eq!(text(code), code);
        }
        // Property keys are not classes: lower-case dotted keys still count.
        assert_eq!(
            text("javax.net.ssl.trustStorePassword=changeit spring.datasource.password: pw"),
            "javax.net.ssl.trustStorePassword=*** spring.datasource.password: ***"
        );
        // Any key holding a secret word counts, as agent-init's `*PASSWORD*`: a policy name too.
        assert_eq!(text("passwordPolicy=strict"), "passwordPolicy=***");
        assert_eq!(text("secret=\"unterminated"), "secret=\"***");
        assert_eq!(text("password="), "password=");
        assert_eq!(
            text("jdbc:sqlserver://db:1433;user=sa;password=hunter2;db=cal"),
            "jdbc:sqlserver://db:1433;user=sa;password=***;db=cal"
        );
        assert_eq!(text("state RED (x: y)"), "state RED (x: y)");
        assert_eq!(text("authserver: state RED"), "authserver: state RED");
        assert_eq!(text(""), "");
        assert_eq!(text("é=password:é"), "é=password:***");
        // Tabs are blanks too; a line break ends the value's line.
        assert_eq!(text("password\t=\thunter2 password=\thunter3"), "password\t=\t*** password=\t***");
        assert_eq!(text("Authorization: Bearer\tsecrettok"), "Authorization: Bearer\t***");
        assert_eq!(text("reset password:\nUser logged in"), "reset password:\nUser logged in");
        // JSON's escaped quote does not end the string.
        assert_eq!(text(r#"{"password":"ab\"cdef9","u":"c"}"#), r#"{"password":"***","u":"c"}"#);
        assert_eq!(text(r#"{"password":"ab\\","u":"c"}"#), r#"{"password":"***","u":"c"}"#);
    }

    /// The date and time skipped before the separators are looked at: every digit position is
    /// checked (each made a non-digit in turn), so a text that only looks like a log line keeps
    /// its colons.
    /// Found by the property test: the Oracle rule masks a quoted password that no `@` follows,
    /// so the cheap test must not wait for an `@` to start it.
    #[test]
    fn an_oracle_quoted_password_without_an_at_is_masked() {
        assert_eq!(
            text(r#"url=jdbc:oracle:thin:scott/"tiger" failed"#),
            r#"url=jdbc:oracle:thin:scott/"***" failed"#
        );
        assert_eq!(text(r#"JDBC:ORACLE:thin:/"A"#), r#"JDBC:ORACLE:thin:/"***"#);
    }

    #[test]
    fn a_leading_date_and_time_is_skipped_only_when_whole() {
        let line = b"2026-12-07 10:00:01,007 INFO pw: x";
        assert_eq!(super::after_date_time(line), &line[19..]);
        assert_eq!(super::after_date_time(b"2026-12-07T10:00:01"), b"");
        for i in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] {
            for bad in [b'/', b':', b'a', b' ', 0xC3] {
                let mut l = line.to_vec();
                l[i] = bad;
                assert_eq!(super::after_date_time(&l), &l[..], "byte {i} = {bad:#x}");
            }
        }
        assert_eq!(super::after_date_time(b"2026-12-07 10:00:0"), b"2026-12-07 10:00:0");
        assert_eq!(text("2026-12-07 1a:00:01 password: hunter2"), "2026-12-07 1a:00:01 password: ***");
        // Told it is dated, the same answer without the check.
        assert_eq!(super::starts_dated(line), super::starts(line));
        assert!(super::starts_dated(b"2026-12-07 10:00:01 pw:x").any());
    }
}

#[cfg(test)]
mod linear {
    //! Masking time grows with the text, not with its square: hostile texts repeat what each
    //! rule looks for, without the white space that would end a token.

    use std::time::{Duration, Instant};

    /// The fastest of three runs of [`super::text`] on `unit` repeated to `bytes`.
    fn time(unit: &str, bytes: usize) -> Duration {
        let input = unit.repeat(bytes / unit.len());
        (0..3)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(super::text(std::hint::black_box(&input)));
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    #[test]
    fn masking_time_grows_linearly_with_hostile_text() {
        for unit in [
            "://",
            "http://a",
            "http://u:p@h/",
            "jdbc:oracle:thin:u/",
            "jdbc:oracle:thin:u/p@",
            "password=",
            "a:b@",
            "Authorization:Bearer ",
            "token: Bearer x=",
            "@",
            "'password='",
            "\"secret\":\"",
            "jdbc:oracle:thin:u/\"",
            "\"password\":\"\\\"",
            "password\t=\t\\\"",
            "<password>",
            "<password>x</",
            "eyJ",
            "eyJa.",
            "eyJa.b.c",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN ",
        ] {
            let (small, medium, large) = (time(unit, 10_000), time(unit, 100_000), time(unit, 1_000_000));
            // Linear is 10x per step; quadratic would be 100x. Timer noise is in the small run.
            let ratio = large.as_secs_f64() / medium.as_secs_f64().max(1e-6);
            assert!(ratio < 30.0, "{unit:?}: 10 KB {small:?}, 100 KB {medium:?}, 1 MB {large:?}");
        }
    }
}

#[cfg(test)]
mod props {
    //! For generated URLs and details with an embedded password: the redacted form never
    //! contains it.

    use super::{text, url};
    use proptest::prelude::*;

    /// A password: no white space (it would end the token), at least 6 characters.
    fn password() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!$%()*+.:;=@/_~^-]{6,24}"
    }

    /// A password as a URL's user info may hold it unescaped (RFC 3986: no `/ ? # @`).
    fn url_password() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!$%'()*+,;=:._~-]{6,24}"
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9.-]{0,10}"
    }

    /// Text around the secret: anything printable, or nothing.
    fn filler() -> impl Strategy<Value = String> {
        "[ -~]{0,30}"
    }

    fn secret_key() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "password",
                "PASSWORD",
                "Passwd",
                "pwd",
                "secret",
                "client_secret",
                "token",
                "access_token",
                "apikey",
                "api_key",
                "API-KEY",
                "dbPassword",
                "credentials",
            ]),
            "[A-Za-z_]{0,4}",
        )
            .prop_map(|(k, prefix)| format!("{prefix}{k}"))
    }

    /// A piece of a text that may or may not hold a credential: every form the rules know, their
    /// near misses, separators, quotes, blanks, dates, frames, other scripts.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            secret_key(),
            prop::sample::select(vec![
                "=",
                ":",
                " = ",
                ": ",
                "\"",
                "'",
                " ",
                "\t",
                "\n",
                "@",
                "<",
                ">",
                "</",
                "/",
                "//",
                "://",
                "eyJ",
                "eyJhbGciOi.eyJzdWIi.sig",
                "-----BEGIN PRIVATE KEY-----",
                "-----BEGIN ",
                "-----END PRIVATE KEY-----",
                "jdbc:oracle:thin:",
                "Authorization",
                "Bearer ",
                "Basic ",
                "2026-12-07 10:00:01,123",
                "2026-12-07T10:00:01",
                "(Token.java:42)",
                "com.x.InvalidTokenException",
                "SecretError",
                "Pass",
                "pW",
                "KEY",
                "_key",
                "sig",
                "auth",
                "é",
                "日本",
                "\u{1F600}",
                "1234",
                "user",
                "host.bank",
                "<TokenError>x</TokenError>",
                "<ns:pw>x</ns:pw>",
                "<password a=\"1\">x</password>",
                "<api_key><![CDATA[x]]></api_key>",
                r#"\"password\":\"x\""#,
                "{Authorization=[Bearer x]}",
                "Pwd={a;b}",
                "App.Password=x",
                "db.pass=x",
                "\u{a0}",
                "=>",
                "{",
                "[",
                "]",
                "}",
            ])
            .prop_map(str::to_owned),
            word(),
            filler(),
        ]
    }

    proptest! {
        /// The cheap test never says no where a rule finds something: masking does not depend
        /// on it being right, only its speed does.
        #[test]
        fn no_rule_is_skipped_where_it_finds_something(pieces in prop::collection::vec(piece(), 0..12)) {
            let text: String = pieces.concat();
            let starts = super::starts(text.as_bytes());
            for rule in super::Rule::ALL {
                let mut found = Vec::new();
                rule.finder()(&text, &mut found);
                if found.iter().any(|r| !r.is_empty()) {
                    prop_assert!(starts.has(rule), "{rule:?} in {text:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn urls_never_show_their_password(
            scheme in prop::sample::select(vec!["http", "https", "tcp", "postgresql", "jdbc:mysql"]),
            user in word(),
            pw in url_password(),
            host in word(),
            port in 1u16..,
            path in "(/[a-z0-9]{0,8}){0,3}",
            query in prop::option::of(("[a-z]{1,6}", url_password())),
        ) {
            let mut u = format!("{scheme}://{user}:{pw}@{host}:{port}{path}");
            if let Some((k, v)) = &query {
                u.push_str(&format!("?{k}={v}"));
            }
            prop_assume!(u.matches(pw.as_str()).count() == 1);
            prop_assert!(!url(&u).contains(pw.as_str()), "{}", url(&u));
            prop_assert!(!text(&u).contains(pw.as_str()), "{}", text(&u));
            if let Some((_, v)) = &query {
                prop_assume!(u.matches(v.as_str()).count() == 1);
                prop_assert!(!url(&u).contains(v.as_str()), "{}", url(&u));
            }
        }

        #[test]
        fn fragment_values_are_masked(host in word(), k in "[a-z_]{1,12}", v in url_password()) {
            let u = format!("https://{host}/cb#{k}={v}");
            prop_assume!(u.matches(v.as_str()).count() == 1);
            prop_assert!(!url(&u).contains(v.as_str()), "{}", url(&u));
        }

        #[test]
        fn details_never_show_a_password(
            before in filler(),
            after in filler(),
            form in 0usize..7,
            user in word(),
            host in word(),
            key in secret_key(),
            sep in prop::sample::select(vec!["=", ":", " = ", ": "]),
            pw in password(),
        ) {
            let secret = match form {
                0 => format!("http://{user}:{pw}@{host}:8080/health"),
                1 => format!("jdbc:oracle:thin:{user}/{pw}@{host}:1521/CAL"),
                2 => format!("jdbc:oracle:thin:{user}/{pw}@//{host}:1521/CAL"),
                3 => format!("jdbc:postgresql://{user}:{pw}@{host}/cal"),
                4 => format!("{key}{sep}{}", pw.replace([';', '&', ','], "x")),
                5 => format!("{key}{sep}\"{} and more\"", pw.replace('"', "")),
                _ => format!("http://{host}/x?a=1&{key}={}#y", pw.replace(['&', '#', ';', ','], "x")),
            };
            let details = format!("{before} {secret} {after}");
            let pw = match form {
                4 => pw.replace([';', '&', ','], "x"),
                5 => pw.replace('"', ""),
                6 => pw.replace(['&', '#', ';', ','], "x"),
                _ => pw,
            };
            prop_assume!(details.matches(pw.as_str()).count() == 1);
            let shown = text(&details);
            prop_assert!(!shown.contains(pw.as_str()), "{details:?} -> {shown:?}");
        }

        #[test]
        fn text_never_panics_and_keeps_clean_text(s in "\\PC{0,80}") {
            let shown = text(&s);
            if !s.contains(['=', ':', '@']) {
                prop_assert_eq!(shown, s);
            }
        }
    }
}
