//! The AWS settings: whether and how requests are signed (SigV4), where the credentials come
//! from, in the AWS SDKs' order after our own files, and where STS is; and the checks of the
//! URLs signed requests go to.

use std::path::PathBuf;

use agent_core::config::Problem;
use agent_core::settings::Reader;
use url::Url;

use super::{
    API_KEY_FILE, AWS_ACCESS_KEY_ID_FILE, AWS_REGION, AWS_SECRET_ACCESS_KEY_FILE, AWS_SESSION_TOKEN_FILE,
    AWS_SIGV4, AWS_STS_URL, ES_URL, USERNAME_FILE,
};
use crate::sink::aws_credentials;
use crate::sink::sigv4::{CredentialSource, Credentials, SigV4Options, Signing};

/// Signing with SigV4: the service, the region, and where the credentials come from.
pub(super) fn signing(read: &mut Reader) -> Option<SigV4Options> {
    let service = read.opt(&AWS_SIGV4);
    let region = read.opt(&AWS_REGION);
    let files = (
        read.opt(&AWS_ACCESS_KEY_ID_FILE),
        read.opt(&AWS_SECRET_ACCESS_KEY_FILE),
        read.opt(&AWS_SESSION_TOKEN_FILE),
    );
    let sts_setting = read.opt(&AWS_STS_URL);
    let Some(service) = service else {
        let given =
            [&AWS_ACCESS_KEY_ID_FILE.meta, &AWS_SECRET_ACCESS_KEY_FILE.meta, &AWS_SESSION_TOKEN_FILE.meta]
                .into_iter()
                .chain([&AWS_REGION.meta, &AWS_STS_URL.meta])
                .find(|meta| read.setting(meta).is_some());
        if let Some(meta) = given {
            read.push(Problem::without_value(
                meta.env,
                "an AWS setting, but AGENT_LOGSHIP_AWS_SIGV4 is not set",
            ));
        }
        return None;
    };
    if read.setting(&USERNAME_FILE.meta).is_some() || read.setting(&API_KEY_FILE.meta).is_some() {
        read.push(
            read.problem(&AWS_SIGV4, "signed requests carry no basic auth or API key: give one or the other"),
        );
    }
    let vars = read.vars().to_vec();
    let env = |name: &str| {
        vars.iter().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim().to_string())
    };
    let from_env = |name: &'static str| env(name).map(|r| (r, name));
    let region = region.map(|r| (r, AWS_REGION.meta.env));
    let Some((region, named)) =
        region.or_else(|| from_env("AWS_REGION")).or_else(|| from_env("AWS_DEFAULT_REGION"))
    else {
        read.push(read.problem(&AWS_REGION, "missing: the region to sign for (or AWS_REGION)"));
        return None;
    };
    if !aws_credentials::region_valid(&region) {
        let why = format!("{region:?}: not an AWS region (lowercase letters, digits and -)");
        read.push(Problem::without_value(named, why));
        return None;
    }
    let credentials = match files {
        (Some(access_key_id), Some(secret_access_key), session_token) => {
            CredentialSource::Files { access_key_id, secret_access_key, session_token }
        }
        // The standard variables in the AWS SDKs' order: static keys, then IRSA, then EKS Pod
        // Identity (the first that is there wins, as there).
        (None, None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => CredentialSource::Environment(Credentials {
                access_key_id,
                secret_access_key,
                session_token: env("AWS_SESSION_TOKEN"),
            }),
            _ if env("AWS_ROLE_ARN").is_some() && env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() => {
                let sts_url = sts_url(read, sts_setting.clone(), &env, &region)?;
                CredentialSource::WebIdentity {
                    role_arn: env("AWS_ROLE_ARN").unwrap_or_default(),
                    token_file: PathBuf::from(env("AWS_WEB_IDENTITY_TOKEN_FILE").unwrap_or_default()),
                    session_name: env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "agent-logship".into()),
                    sts_url,
                }
            }
            _ if env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() => {
                let uri = env("AWS_CONTAINER_CREDENTIALS_FULL_URI").unwrap_or_default();
                let (Ok(uri), Some(token_file)) =
                    (uri.parse::<Url>(), env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
                else {
                    let why = "EKS Pod Identity needs AWS_CONTAINER_CREDENTIALS_FULL_URI (a URL) and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
                    read.push(read.problem(&AWS_SIGV4, why));
                    return None;
                };
                if !aws_credentials::container_uri_allowed(&uri) {
                    let why = "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://, or http:// to the node's agent \
                               (169.254.170.23, 169.254.170.2, fd00:ec2::23) or loopback: the token would travel in clear";
                    read.push(read.problem(&AWS_SIGV4, why));
                    return None;
                }
                CredentialSource::Container { uri, token_file: PathBuf::from(token_file) }
            }
            _ => {
                let why = "no AWS credentials: AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE and AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE, \
                           or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the pod's IAM role: IRSA (AWS_ROLE_ARN and \
                           AWS_WEB_IDENTITY_TOKEN_FILE) or EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)";
                read.push(read.problem(&AWS_SIGV4, why));
                return None;
            }
        },
        (None, None, Some(_)) => {
            let why =
                "goes with AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE and AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE";
            read.push(read.problem(&AWS_SESSION_TOKEN_FILE, why));
            return None;
        }
        _ => {
            read.push(
                read.problem(&AWS_SECRET_ACCESS_KEY_FILE, "the access key id and secret files go together"),
            );
            return None;
        }
    };
    if sts_setting.is_some() && !matches!(credentials, CredentialSource::WebIdentity { .. }) {
        let why = "used only with IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), but the AWS credentials \
                   come from elsewhere";
        read.push(read.problem(&AWS_STS_URL, why));
    }
    Some(SigV4Options { signing: Signing { service, region }, credentials })
}

/// Where the web identity is exchanged, as the AWS SDKs choose it: the setting, else
/// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the regional endpoint of the pod's own
/// region (`AWS_REGION`, `AWS_DEFAULT_REGION`; else the region signed for), FIPS with
/// `AWS_USE_FIPS_ENDPOINT=true`. Only over TLS or to loopback: the token goes there.
fn sts_url(
    read: &mut Reader,
    setting: Option<Url>,
    env: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Option<Url> {
    let from_env = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|name| env(name).map(|u| (u, name)));
    let (url, named) = match (setting, from_env) {
        (Some(url), _) => (url, AWS_STS_URL.meta.env),
        (None, Some((text, name))) => match text.parse::<Url>() {
            Ok(url) => (url, name),
            Err(e) => {
                read.push(Problem::without_value(name, format!("not a URL: {e}")));
                return None;
            }
        },
        (None, None) => {
            let pods = env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .filter(|r| aws_credentials::region_valid(r));
            let fips = env("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let default = aws_credentials::sts_endpoint(pods.as_deref().unwrap_or(region), fips);
            (default.parse().ok()?, "AWS_REGION")
        }
    };
    if !aws_credentials::tls_or_loopback(&url) {
        let why = format!(
            "{}: the web identity token would travel in clear: https://, or http:// to loopback",
            agent_core::redact::url(url.as_str())
        );
        read.push(Problem::without_value(named, why));
        return None;
    }
    Some(url)
}

/// The URLs signed requests go to: over TLS (they carry the session token), and, where the host
/// is an AWS endpoint, for the service and region they are signed for.
pub(super) fn check_urls(read: &mut Reader, sigv4: &SigV4Options, urls: &[Url]) {
    for url in urls {
        let shown = agent_core::redact::url(url.as_str());
        if !aws_credentials::tls_or_loopback(url) {
            let why = format!("{shown}: signed requests go over https:// (they carry the session token)");
            read.push(Problem::without_value(ES_URL.meta.env, why));
        }
        let Some((region, service)) = url.host_str().and_then(aws_credentials::endpoint_of) else { continue };
        if service != sigv4.signing.service.name() || region != sigv4.signing.region {
            let why = format!(
                "{shown} is {service} in {region}, but the requests are signed for {} in {}",
                sigv4.signing.service.name(),
                sigv4.signing.region
            );
            read.push(Problem::without_value(AWS_SIGV4.meta.env, why));
        }
    }
}
