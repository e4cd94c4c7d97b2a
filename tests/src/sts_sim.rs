//! A double of where a pod's IAM role gets its credentials: AWS STS's
//! `AssumeRoleWithWebIdentity` (IRSA: a form `POST` with the role and the projected
//! service-account token; STS's XML answer) and the EKS Pod Identity agent (`GET
//! /v1/credentials` with the token in `Authorization`; a JSON answer). The credentials expire
//! after a lifetime the test chooses; a wrong role or token gets STS's error or a 403 (the token
//! is read from its file at each request, so a rotated token is followed). Counts the exchanges
//! and the requests; told to hang, it answers none (an STS that does not answer).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the double accepts and what it gives.
#[derive(Debug, Clone)]
pub struct StsConfig {
    pub role_arn: String,
    /// The file whose content is the only token accepted (read at each request).
    pub token_file: PathBuf,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// How long the credentials it gives live.
    pub lifetime: Duration,
}

pub struct StsSim {
    addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    exchanges: AtomicU64,
    requests: AtomicU64,
    hung: AtomicBool,
    /// The key handed out: (access key id, secret).
    key: std::sync::Mutex<(String, String)>,
}

impl StsSim {
    pub async fn start(config: StsConfig) -> StsSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            exchanges: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            hung: AtomicBool::new(false),
            key: std::sync::Mutex::new((config.access_key_id.clone(), config.secret_access_key.clone())),
        });
        let (config, shared) = (Arc::new(config), state.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (config, state) = (config.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (config, state) = (config.clone(), state.clone());
                        async move {
                            state.requests.fetch_add(1, Ordering::Relaxed);
                            if state.hung.load(Ordering::Relaxed) {
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(answer(&config, &state, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        StsSim { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests received so far, answered or not.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// From now on, credentials with this key are handed out (the role's old session revoked).
    pub fn issue(&self, access_key_id: &str, secret_access_key: &str) {
        *self.state.key.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (access_key_id.to_owned(), secret_access_key.to_owned());
    }

    /// From now on, no request is answered.
    pub fn hang(&self) {
        self.state.hung.store(true, Ordering::Relaxed);
    }

    /// Credentials given so far.
    pub fn exchanges(&self) -> u64 {
        self.state.exchanges.load(Ordering::Relaxed)
    }
}

async fn answer(config: &StsConfig, state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let count = &state.exchanges;
    let (access_key_id, secret_access_key) =
        state.key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let token = std::fs::read_to_string(&config.token_file).unwrap_or_default();
    if req.method() == hyper::Method::GET {
        let given = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if req.uri().path() != "/v1/credentials" || given != Some(token.trim()) {
            return Response::builder()
                .status(403)
                .body(Full::new(Bytes::from("{\"message\":\"denied\"}")))
                .expect("response");
        }
        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
        let json = format!(
            "{{\"AccessKeyId\":\"{}\",\"SecretAccessKey\":\"{}\",\"Token\":\"session-{n}\",\"AccountId\":\"123456789012\",\"Expiration\":\"{}\"}}",
            access_key_id,
            secret_access_key,
            iso8601(SystemTime::now() + config.lifetime)
        );
        return Response::new(Full::new(Bytes::from(json)));
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let form = String::from_utf8_lossy(&body).into_owned();
    let field = |name: &str| {
        form.split('&').find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(decode)
    };
    let refuse = |status: u16, code: &str, message: &str| {
        let xml = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
        );
        Response::builder().status(status).body(Full::new(Bytes::from(xml))).expect("response")
    };
    if field("Action").as_deref() != Some("AssumeRoleWithWebIdentity")
        || field("Version").as_deref() != Some("2011-06-15")
    {
        return refuse(400, "InvalidAction", "Could not find operation");
    }
    if field("RoleArn").as_deref() != Some(config.role_arn.as_str()) {
        return refuse(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    }
    if field("WebIdentityToken").as_deref() != Some(token.trim()) {
        return refuse(
            400,
            "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by AWS.",
        );
    }
    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
    let expires = iso8601(SystemTime::now() + config.lifetime);
    let xml = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>session-{n}</SessionToken><Expiration>{expires}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        access_key_id, secret_access_key
    );
    Response::new(Full::new(Bytes::from(xml)))
}

fn decode(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::es_sim::store::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_forms() {
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
            "2015-08-30T12:36:00Z"
        );
        assert_eq!(decode("arn%3Aaws%3Aiam+x"), "arn:aws:iam x");
    }
}
