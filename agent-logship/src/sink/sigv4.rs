//! AWS Signature Version 4 for Amazon OpenSearch Service (`es`) and OpenSearch Serverless
//! (`aoss`): every request agent-logship sends there is signed with the pod's AWS credentials,
//! by the AWS SDK's own signer (the `aws-sigv4` crate). The body's hash is taken over the bytes
//! sent (the gzip, when compressed). Pure: the credentials and the time come in.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use url::Url;

/// Which AWS service signs: the name in the credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon OpenSearch Service (managed domains).
    Es,
    /// Amazon OpenSearch Serverless: also wants the body's hash in `x-amz-content-sha256`.
    Aoss,
}

impl Service {
    pub fn parse(text: &str) -> Result<Service, String> {
        match text.trim() {
            "es" => Ok(Service::Es),
            "aoss" => Ok(Service::Aoss),
            other => {
                Err(format!("{other:?}: es (Amazon OpenSearch Service) or aoss (OpenSearch Serverless)"))
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Es => "es",
            Service::Aoss => "aoss",
        }
    }
}

/// AWS credentials: a key pair, and the session token of temporary ones.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key id names the key (as in AWS's own logs); the secret and the token never show.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, read at the start
    /// (a process's environment does not change).
    Environment(Credentials),
    /// Files of a mounted Secret, read before each request (a rotated key needs no restart).
    Files { access_key_id: PathBuf, secret_access_key: PathBuf, session_token: Option<PathBuf> },
    /// The pod's IAM role by IRSA: the projected service-account token exchanged with STS
    /// (`AssumeRoleWithWebIdentity`) for temporary credentials, renewed before they expire.
    WebIdentity { role_arn: String, token_file: PathBuf, session_name: String, sts_url: url::Url },
    /// The pod's IAM role by EKS Pod Identity: the node's agent at `uri` asked with the token of
    /// `token_file` in `Authorization`, renewed before expiry.
    Container { uri: url::Url, token_file: PathBuf },
}

/// Signing with SigV4: the service, its region, and the credentials' source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Options {
    pub signing: Signing,
    pub credentials: CredentialSource,
}

/// What signs: the service and its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub service: Service,
    pub region: String,
}

impl Signing {
    /// The headers that sign `method url` with `body` (exactly the bytes sent) at `time`:
    /// `authorization`, `x-amz-date`, `x-amz-security-token` with temporary credentials, and
    /// `x-amz-content-sha256` for Serverless. The host is signed from the URL.
    pub fn headers(
        &self,
        method: &str,
        url: &Url,
        body: &[u8],
        credentials: &Credentials,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        self.headers_as(self.service.name(), method, url, body, credentials, time)
    }

    fn headers_as(
        &self,
        name: &str,
        method: &str,
        url: &Url,
        body: &[u8],
        credentials: &Credentials,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let identity = aws_credential_types::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "agent-logship",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.service == Service::Aoss {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(name)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let request =
            SignableRequest::new(method, url.as_str(), std::iter::empty(), SignableBody::Bytes(body))
                .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) = sign(request, &params).map_err(|e| format!("cannot sign: {e}"))?.into_parts();
        Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case of the AWS test suite (`sigv4_vectors/`): the request, its context, and the
    /// `Authorization` AWS expects.
    fn case(name: &str) -> (Signing, &'static str, String, Url, Vec<u8>, Credentials, SystemTime, String) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/sigv4_vectors").join(name);
        let read =
            |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{name}/{f}: {e}"));
        let context: serde_json::Value = serde_json::from_str(&read("context.json")).expect("context");
        let text = |p: &str| context.pointer(p).and_then(|v| v.as_str()).map(str::to_string);
        let credentials = Credentials {
            access_key_id: text("/credentials/access_key_id").expect("key id"),
            secret_access_key: text("/credentials/secret_access_key").expect("secret"),
            session_token: text("/credentials/token"),
        };
        let time = text("/timestamp")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(SystemTime::from)
            .expect("a time");
        let request = read("request.txt");
        let (head, body) = request.split_once("\n\n").unwrap_or((&request, ""));
        let mut lines = head.lines();
        let first = lines.next().expect("a request line");
        let mut parts = first.split(' ');
        let method = match parts.next() {
            Some("GET") => "GET",
            Some("POST") => "POST",
            other => panic!("{name}: {other:?}"),
        };
        let target = parts.next().expect("a target");
        let host = lines.find_map(|l| l.strip_prefix("Host:")).expect("a host");
        let url: Url = format!("https://{host}{target}").parse().expect("url");
        let expected = read("header-signed-request.txt")
            .lines()
            .find_map(|l| l.strip_prefix("Authorization:"))
            .expect("an Authorization")
            .to_string();
        let signing = Signing { service: Service::Es, region: text("/region").expect("region") };
        (
            signing,
            method,
            text("/service").expect("service"),
            url,
            body.as_bytes().to_vec(),
            credentials,
            time,
            expected,
        )
    }

    #[test]
    fn the_aws_test_vectors_for_requests_like_ours() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/sigv4_vectors");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("vectors")
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 10, "{names:?}");
        for name in names {
            let (signing, method, service, url, body, credentials, time, expected) = case(&name);
            let headers =
                signing.headers_as(&service, method, &url, &body, &credentials, time).expect("signed");
            let got = headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone());
            assert_eq!(got.as_deref(), Some(expected.as_str()), "{name}");
        }
    }

    #[test]
    fn serverless_also_sends_the_body_hash_and_temporary_credentials_their_token() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token-1".into()),
        };
        let url: Url =
            "https://abc.eu-west-1.aoss.amazonaws.com/logs/_bulk?filter_path=errors,items.*.status"
                .parse()
                .expect("url");
        let signing = Signing { service: Service::Aoss, region: "eu-west-1".into() };
        let headers =
            signing.headers("POST", &url, b"{}\n", &credentials, SystemTime::UNIX_EPOCH).expect("signed");
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // SHA-256 of "{}\n".
        assert_eq!(
            get("x-amz-content-sha256"),
            Some("ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356")
        );
        assert_eq!(get("x-amz-security-token"), Some("token-1"));
        let auth = get("authorization").expect("signed");
        assert!(auth.contains("/eu-west-1/aoss/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(!format!("{credentials:?}").contains("wJalr"), "the secret never shows");
    }
}
