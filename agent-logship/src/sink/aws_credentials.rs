//! The pod's IAM role as temporary AWS credentials, the pure half: what is asked of AWS STS
//! (`AssumeRoleWithWebIdentity`, for IRSA) and of EKS Pod Identity's agent, what their answers
//! hold, and when credentials are renewed. The requests themselves are made by the caller.

use std::time::{Duration, SystemTime};

use super::sigv4::Credentials;

/// Credentials and the time they expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporary {
    pub credentials: Credentials,
    pub expires: SystemTime,
}

/// The body of STS's `AssumeRoleWithWebIdentity` (a form; the web identity token is the
/// projected service-account token IRSA mounts): no signature needed.
pub fn sts_form(role_arn: &str, session_name: &str, token: &str) -> String {
    let pairs = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token),
    ];
    pairs.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&")
}

/// STS's answer: the credentials, or why it refused (its error code and message, which name no
/// secret).
pub fn parse_sts_answer(xml: &str) -> Result<Temporary, String> {
    if let Some(error) = element(xml, "Error") {
        let code = element(error, "Code").unwrap_or("unknown");
        let message = element(error, "Message").unwrap_or_default();
        return Err(format!("STS refused: {code}: {}", unescape(message)));
    }
    let creds = element(xml, "Credentials").ok_or("no Credentials in STS's answer")?;
    let field = |name: &str| element(creds, name).map(unescape).ok_or(format!("no {name} in STS's answer"));
    let expires = field("Expiration")?;
    Ok(Temporary {
        credentials: Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        },
        expires: parse_time(&expires)?,
    })
}

/// The most of an answer from STS or the Pod Identity agent that is read: theirs are about 2 KB.
pub const ANSWER_MAX: usize = 64 << 10;

/// What a refusal from STS (XML `Error`: `Code`, `Message`) or the Pod Identity agent (JSON
/// `code`/`message`) says, as `: CODE: MESSAGE`, or nothing. Only those fields, and `token` (the
/// one just sent) masked in them: something in between may echo the request.
pub fn refusal(text: &str, token: &str) -> String {
    // Masked before anything is cut: a token is longer than what is said of an answer.
    if token.len() < 8 { said_in(text) } else { said_in(&text.replace(token, "***")) }
}

fn said_in(text: &str) -> String {
    let (code, message) = match element(text, "Error") {
        Some(error) => (element(error, "Code").map(unescape), element(error, "Message").map(unescape)),
        None => {
            let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
            let field = |name: &str| {
                v.as_ref()
                    .and_then(|v| v.get(name).or_else(|| v.get(name.to_ascii_lowercase())))
                    .and_then(|f| f.as_str())
                    .map(str::to_string)
            };
            (field("Code"), field("Message"))
        }
    };
    let line = |s: String| s.lines().next().unwrap_or_default().chars().take(200).collect::<String>();
    [code, message].into_iter().flatten().map(line).map(|s| format!(": {s}")).collect()
}

/// EKS Pod Identity's answer (JSON, the container-credentials format the AWS SDKs read).
pub fn parse_container_answer(json: &str) -> Result<Temporary, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| "the answer is not JSON".to_string())?;
    let field = |name: &str| {
        v.get(name).and_then(|f| f.as_str()).map(str::to_string).ok_or(format!("no {name} in the answer"))
    };
    Ok(Temporary {
        credentials: Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("Token")?),
        },
        expires: parse_time(&field("Expiration")?)?,
    })
}

/// `t` if it can sign at `now`: credentials that have expired already, or whose parts are not
/// printable ASCII (they go into headers), are refused rather than held until their renewal.
pub fn usable(t: Temporary, now: SystemTime) -> Result<Temporary, String> {
    if t.expires <= now {
        return Err("the credentials it gave have expired already (the node's clock?)".into());
    }
    let c = &t.credentials;
    let parts = [Some(&c.access_key_id), Some(&c.secret_access_key), c.session_token.as_ref()];
    if parts.into_iter().flatten().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic())) {
        return Err("the credentials it gave are not printable text".into());
    }
    Ok(t)
}

/// Whether the container credentials URI may be asked, with the pod's token, as the AWS SDKs
/// allow: over https, or over http to the node's own agent or loopback only (the token would
/// travel in clear text).
pub fn container_uri_allowed(uri: &url::Url) -> bool {
    tls_or_loopback(uri)
        || match (uri.scheme(), uri.host()) {
            ("http", Some(url::Host::Ipv4(ip))) => {
                ip == std::net::Ipv4Addr::new(169, 254, 170, 2)
                    || ip == std::net::Ipv4Addr::new(169, 254, 170, 23)
            }
            ("http", Some(url::Host::Ipv6(ip))) => ip.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23],
            _ => false,
        }
}

/// Whether a URL may be sent a token or signed credentials: over https, or over http to
/// loopback only (anywhere else they would travel in clear text).
pub fn tls_or_loopback(url: &url::Url) -> bool {
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Domain(d))) => d == "localhost",
        _ => false,
    }
}

/// The region and service an AWS endpoint's host names: `….REGION.es.amazonaws.com` (a
/// domain), `….REGION.aoss.amazonaws.com` (a Serverless collection), `.cn` in China; `None` for
/// another host (a custom endpoint, a proxy).
pub fn endpoint_of(host: &str) -> Option<(&str, &str)> {
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (rest, service) = rest.rsplit_once('.')?;
    let region = rest.rsplit_once('.').map_or(rest, |(_, r)| r);
    matches!(service, "es" | "aoss").then_some((region, service))
}

/// The default STS endpoint of a region (the China partition's ends in `.amazonaws.com.cn`).
/// With `fips`, the FIPS endpoint (`sts-fips.REGION`, which only some regions have).
pub fn sts_endpoint(region: &str, fips: bool) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    let name = if fips { "sts-fips" } else { "sts" };
    format!("https://{name}.{region}.{suffix}/")
}

/// Whether `region` looks like an AWS region (letters, digits and `-`): it becomes a host name.
pub fn region_valid(region: &str) -> bool {
    !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether credentials issued at `issued` that expire at `expires` are renewed at `now`: five
/// minutes before they expire (as the AWS SDKs do), or halfway through a life shorter than ten
/// minutes.
pub fn renew_due(issued: SystemTime, expires: SystemTime, now: SystemTime) -> bool {
    let life = expires.duration_since(issued).unwrap_or_default();
    let margin = Duration::from_secs(300).min(life / 2);
    now + margin >= expires
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(SystemTime::from)
        .map_err(|_| format!("{text:?} is not a time (ISO 8601)"))
}

/// The text of the first `<name>...</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

fn unescape(text: &str) -> String {
    text.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are, every other byte
/// `%XX`.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STS_OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:calypso-uat:calypso-agents</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzE&amp;Token</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2026-12-08T11:00:00Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn sts_answers_give_credentials_or_why_not() {
        let t = parse_sts_answer(STS_OK).expect("credentials");
        assert_eq!(t.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(t.credentials.session_token.as_deref(), Some("FwoGZXIvYXdzE&Token"));
        assert_eq!(
            t.expires,
            SystemTime::from("2026-12-08T11:00:00Z".parse::<jiff::Timestamp>().expect("time"))
        );
        let refused = r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token expired</Message></Error></ErrorResponse>"#;
        assert_eq!(parse_sts_answer(refused), Err("STS refused: InvalidIdentityToken: Token expired".into()));
        assert!(parse_sts_answer("<html>proxy</html>").is_err());
    }

    #[test]
    fn endpoints_regions_and_what_may_be_asked() {
        assert_eq!(sts_endpoint("eu-west-1", false), "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(sts_endpoint("cn-north-1", false), "https://sts.cn-north-1.amazonaws.com.cn/");
        assert_eq!(sts_endpoint("us-east-1", true), "https://sts-fips.us-east-1.amazonaws.com/");
        assert!(region_valid("us-gov-west-1") && !region_valid("eu-west-1/x") && !region_valid(""));
        let ok = |u: &str| container_uri_allowed(&u.parse().expect("url"));
        assert!(ok("http://169.254.170.23/v1/credentials") && ok("http://[fd00:ec2::23]/v1/credentials"));
        assert!(ok("http://127.0.0.1:8080/creds") && ok("https://creds.example/v1"));
        assert!(!ok("http://creds.attacker.example/v1/credentials") && !ok("http://10.0.0.1/creds"));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let t = parse_sts_answer(STS_OK).expect("credentials");
        assert!(usable(Temporary { expires: t0, ..t.clone() }, t0).is_err());
        let later = t0 + Duration::from_secs(1);
        assert!(usable(Temporary { expires: later, ..t.clone() }, t0).is_ok());
        for token in ["", "a b", "line\nbreak", "ü"] {
            let mut odd = Temporary { expires: later, ..t.clone() };
            odd.credentials.session_token = Some(token.into());
            assert!(usable(odd, t0).is_err(), "{token:?}");
        }
    }

    #[test]
    fn endpoints_name_their_region_and_service() {
        assert_eq!(endpoint_of("search-logs-abc.eu-west-1.es.amazonaws.com"), Some(("eu-west-1", "es")));
        assert_eq!(endpoint_of("abc123.us-east-2.aoss.amazonaws.com"), Some(("us-east-2", "aoss")));
        assert_eq!(endpoint_of("vpc-logs.cn-north-1.es.amazonaws.com.cn"), Some(("cn-north-1", "es")));
        assert_eq!(endpoint_of("logs.bank.example"), None);
        assert_eq!(endpoint_of("s3.eu-west-1.amazonaws.com"), None);
        let ok = |u: &str| tls_or_loopback(&u.parse().expect("url"));
        assert!(ok("https://sts.vpce.example") && ok("http://127.0.0.1:9/") && ok("http://[::1]:9/"));
        assert!(!ok("http://sts.attacker.example/") && !ok("http://10.0.0.5/"));
    }

    #[test]
    fn refusals_say_their_code_and_message_only() {
        let sts = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token &amp; more</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(refusal(sts, ""), ": InvalidIdentityToken: Token & more");
        assert_eq!(
            refusal(r#"{"code":"AccessDeniedException","message":"no association"}"#, ""),
            ": AccessDeniedException: no association"
        );
        assert_eq!(refusal(r#"{"Message":"denied"}"#, ""), ": denied");
        assert_eq!(refusal("<html>token=eyJhbGciOi</html>", ""), "", "nothing but those fields");
        assert_eq!(refusal(&format!(r#"{{"message":"{}"}}"#, "x".repeat(500)), "").len(), 202);
        // Something in between echoing the request: the token sent is not said, not even its
        // start (a projected token is about 1 KB, more than is said of an answer).
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(900));
        let echo = format!(r#"{{"code":"AccessDenied","message":"denied token={token}"}}"#);
        assert_eq!(refusal(&echo, &token), ": AccessDenied: denied token=***");
        let first =
            format!("<Error><Code>InvalidIdentityToken</Code><Message>{token} rejected</Message></Error>");
        assert_eq!(refusal(&first, &token), ": InvalidIdentityToken: *** rejected");
    }

    #[test]
    fn pod_identity_answers() {
        let json = r#"{"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","AccountId":"1","Expiration":"2026-12-08T11:00:00Z"}"#;
        let t = parse_container_answer(json).expect("credentials");
        assert_eq!(
            (t.credentials.access_key_id.as_str(), t.credentials.session_token.as_deref()),
            ("ASIA1", Some("t"))
        );
        assert!(parse_container_answer(r#"{"AccessKeyId":"ASIA1"}"#).is_err());
    }

    #[test]
    fn the_form_is_encoded_and_renewal_comes_before_expiry() {
        assert_eq!(
            sts_form("arn:aws:iam::1:role/r", "agent-logship", "a.b+c/="),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=agent-logship&WebIdentityToken=a.b%2Bc%2F%3D"
        );
        let t0 = SystemTime::UNIX_EPOCH;
        let hour = t0 + Duration::from_secs(3600);
        assert!(!renew_due(t0, hour, t0 + Duration::from_secs(3600 - 301)));
        assert!(renew_due(t0, hour, t0 + Duration::from_secs(3600 - 300)));
        // A two-minute life: renewed after one.
        let short = t0 + Duration::from_secs(120);
        assert!(!renew_due(t0, short, t0 + Duration::from_secs(59)));
        assert!(renew_due(t0, short, t0 + Duration::from_secs(60)));
        assert!(renew_due(t0, short, short + Duration::from_secs(1)));
    }
}
