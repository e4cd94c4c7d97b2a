//! AWS Signature Version 4 checked as Amazon OpenSearch Service checks it: the double knows one
//! key (id, secret, region, service) and refuses every request whose `Authorization` does not
//! match the signature it computes itself over the request as received (method, path, query, the
//! signed headers, the body's SHA-256), or whose `x-amz-date` is more than 15 minutes away.
//! Written from AWS's description of the algorithm, independently of the signer agent-logship
//! uses, and checked against AWS's published test vectors.

use std::fmt;
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use ring::{digest, hmac};

/// The one key the double accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct SigV4Key {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub service: String,
}

impl fmt::Debug for SigV4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigV4 {{ {}/{}/{}, secret: *** }}", self.access_key_id, self.region, self.service)
    }
}

/// How far a request's time may be from the double's clock.
const SKEW: Duration = Duration::from_secs(15 * 60);

/// The request as received.
pub struct Received<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query as sent, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The body's bytes as sent (compressed, when compressed).
    pub body: &'a [u8],
}

/// Why a signature is refused: the message AWS answers with (403).
pub fn verify(key: &SigV4Key, req: &Received<'_>, now: SystemTime) -> Result<(), String> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization").ok_or("Authorization header requires 'Credential' parameter")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization header requires the AWS4-HMAC-SHA256 algorithm")?;
    let field = |name: &str| {
        rest.split(',').map(str::trim).find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (credential, signed, signature) =
        match (field("Credential"), field("SignedHeaders"), field("Signature")) {
            (Some(c), Some(h), Some(s)) => (c, h, s),
            _ => return Err("Authorization header requires Credential, SignedHeaders and Signature".into()),
        };
    let amz_date = header("x-amz-date").ok_or("Missing X-Amz-Date")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope.as_slice() else {
        return Err(format!("malformed Credential {credential:?}"));
    };
    if *akid != key.access_key_id {
        return Err("The security token included in the request is invalid.".into());
    }
    if *terminator != "aws4_request" || *region != key.region || *service != key.service {
        return Err(format!("Credential should be scoped to a valid region and service ({credential})"));
    }
    let time = parse_amz_date(amz_date).ok_or("X-Amz-Date is not yyyyMMddTHHmmssZ")?;
    if !amz_date.starts_with(date) {
        return Err("Date in Credential scope does not match X-Amz-Date".into());
    }
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > SKEW {
        return Err(format!("Signature expired: {amz_date} is now earlier or later than allowed"));
    }
    let signed_names: Vec<&str> = signed.split(';').collect();
    if !signed_names.contains(&"host") {
        return Err("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into());
    }
    let body_hash = hex(digest::digest(&digest::SHA256, req.body).as_ref());
    if let Some(claimed) = header("x-amz-content-sha256")
        && claimed != body_hash
    {
        return Err("The provided 'x-amz-content-sha256' header does not match what was computed.".into());
    }
    let mut canonical_headers = String::new();
    for name in &signed_names {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{body_hash}",
        req.method,
        canonical_path(req.path),
        canonical_query(req.query.unwrap_or_default())
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mac = |k: &[u8], data: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k), data.as_bytes());
    let k_date = mac(format!("AWS4{}", key.secret_access_key).as_bytes(), date);
    let k_region = mac(k_date.as_ref(), region);
    let k_service = mac(k_region.as_ref(), service);
    let k_signing = mac(k_service.as_ref(), "aws4_request");
    if hex(mac(k_signing.as_ref(), &to_sign).as_ref()) != signature {
        // As AWS answers: the canonical request follows (with any session token in it).
        return Err(format!(
            "The request signature we calculated does not match the signature you provided. Check \
             your AWS Secret Access Key and signing method. Consult the service documentation for \
             details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n\
             The String-to-Sign should have been\n'{to_sign}'\n"
        ));
    }
    Ok(())
}

/// `yyyyMMddTHHmmssZ` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(4..6)?, n(6..8)?, n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A header value as signed: trimmed, runs of spaces made one.
fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path, each segment encoded again (services other than S3 sign the path encoded twice),
/// `/` for none.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(|segment| encode(segment.as_bytes())).collect::<Vec<_>>().join("/")
}

/// The query's pairs decoded, encoded as SigV4 wants, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Percent-encoding of everything but the unreserved characters, upper-case hex.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(0));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS test-suite cases agent-logship signs with (`agent-logship/src/sink/sigv4_vectors`):
    /// each signed request AWS published is accepted, and refused with one byte changed.
    #[test]
    fn the_aws_test_vectors_are_verified_and_a_changed_byte_is_refused() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent-logship/src/sink/sigv4_vectors");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("vectors").flatten().filter(|e| e.path().is_dir()) {
            let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).expect("a vector file");
            let context: serde_json::Value = serde_json::from_str(&read("context.json")).expect("json");
            let text = |p: &str| context.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let key = SigV4Key {
                access_key_id: text("/credentials/access_key_id"),
                secret_access_key: text("/credentials/secret_access_key"),
                region: text("/region"),
                service: text("/service"),
            };
            let signed = read("header-signed-request.txt");
            let (head, body) = signed.split_once("\n\n").unwrap_or((&signed, ""));
            let mut lines = head.lines();
            let first = lines.next().expect("a request line");
            let mut parts = first.split(' ');
            let (method, target) = (parts.next().expect("method"), parts.next().expect("target"));
            let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
            let mut headers = HeaderMap::new();
            for line in lines {
                let (name, value) = line.split_once(':').expect("a header");
                headers.append(
                    hyper::header::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .expect("name"),
                    value.parse().expect("value"),
                );
            }
            let now = parse_amz_date("20150830T123600Z").expect("the vectors' time");
            let req = Received { method, path, query, headers: &headers, body: body.as_bytes() };
            assert_eq!(verify(&key, &req, now), Ok(()), "{}", entry.path().display());
            let wrong = SigV4Key { secret_access_key: format!("{}x", key.secret_access_key), ..key.clone() };
            assert!(verify(&wrong, &req, now).is_err());
            let later = now + Duration::from_secs(16 * 60);
            assert!(verify(&key, &req, later).expect_err("late").starts_with("Signature expired"));
            let tampered = Received { body: b"x", ..req };
            assert!(verify(&key, &tampered, now).is_err());
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(parse_amz_date("19700101T000001Z"), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1)));
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160))
        );
        assert_eq!(parse_amz_date("2015-08-30"), None);
        assert_eq!(
            canonical_query("b=2&a=%2a&filter_path=errors,items.*.status"),
            "a=%2A&b=2&filter_path=errors%2Citems.%2A.status"
        );
        assert_eq!(canonical_path("/logs-calypso.x/_bulk"), "/logs-calypso.x/_bulk");
        assert_eq!(canonical_path("/a%20b"), "/a%2520b");
        assert!(
            !format!(
                "{:?}",
                SigV4Key {
                    access_key_id: "AKID".into(),
                    secret_access_key: "s3cr3t".into(),
                    region: "r".into(),
                    service: "es".into()
                }
            )
            .contains("s3cr3t")
        );
    }
}
