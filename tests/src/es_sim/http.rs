//! The HTTP side: the listener (dropped on `down`, rebound on `up`), one task per connection,
//! the request pipeline (latency, auth, size limit, gunzip) and the routes.

use super::auth::{self, Auth, Denied};
use super::control::{self, Command};
use super::filter_path::FilterPath;
use super::response;
use super::store::ApiError;
use super::{Flavour, Shared, bulk, lock, sigv4};
use crate::double::listener::{Serve, connection};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

type Body = Full<Bytes>;

/// Serves a connection with this double's routes (a weak handle: the listener, inside
/// `Shared`, must not keep it alive).
pub(super) fn serve(shared: &Arc<Shared>) -> Serve {
    let shared = Arc::downgrade(shared);
    Arc::new(move |stream, epoch| {
        let Some(shared) = shared.upgrade() else { return };
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
        });
        tokio::spawn(connection(stream, service, epoch));
    })
}

/// A request's parts the routes need.
struct Req {
    method: Method,
    path: String,
    query: Option<String>,
    body: Bytes,
    /// `?filter_path=`, applied to every answer but errors.
    filter: Option<FilterPath>,
}

impl Req {
    fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::new(400, "parsing_exception", format!("request body is not JSON: {e}")))
    }
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let flavour = shared.flavour;
    let mut answer = if req.uri().path().starts_with(control::PREFIX) {
        control_api(shared, req).await
    } else {
        es_api(shared, req).await
    };
    if flavour == Flavour::Elasticsearch {
        answer.headers_mut().insert("x-elastic-product", HeaderValue::from_static("Elasticsearch"));
    }
    answer
}

fn refuse(shared: &Shared, status: u16) {
    *lock(&shared.stats).refused_requests.entry(status).or_default() += 1;
}

async fn es_api(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    lock(&shared.stats).requests += 1;
    let (latency, answer_delay) = {
        let faults = lock(&shared.faults);
        (faults.latency(), faults.answer_delay())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = es_request(shared, req).await;
    if !answer_delay.is_zero() {
        tokio::time::sleep(answer_delay).await;
    }
    answer
}

async fn es_request(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let (auth_required, max) = {
        let settings = lock(&shared.settings);
        (settings.auth.clone(), settings.max_content_length)
    };
    let authorization = parts.headers.get(hyper::header::AUTHORIZATION).map(HeaderValue::as_bytes);
    if let Err(denied) = auth::check(auth_required.as_ref(), authorization, &path) {
        refuse(shared, 401);
        return unauthorized(shared.flavour, &denied);
    }
    let Some(raw) = read_body(body, max).await else {
        refuse(shared, 413);
        return too_large(max);
    };
    if let Some(Auth::SigV4(key)) = &auth_required {
        let received = sigv4::Received {
            method: parts.method.as_str(),
            path: &path,
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &raw,
        };
        if let Err(message) = sigv4::verify(key, &received, std::time::SystemTime::now()) {
            refuse(shared, 403);
            return json(StatusCode::FORBIDDEN, &json!({ "message": message }));
        }
    }
    lock(&shared.stats).bytes_in += raw.len() as u64;
    let gzip =
        parts.headers.get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzip {
        lock(&shared.stats).gzip_requests += 1;
        match gunzip(&raw, max) {
            Ok(Some(plain)) => plain,
            Ok(None) => {
                refuse(shared, 413);
                return too_large(max);
            }
            Err(e) => {
                refuse(shared, 400);
                return error(&ApiError::new(
                    400,
                    "parse_exception",
                    format!("cannot decompress the gzip body: {e}"),
                ));
            }
        }
    } else {
        raw
    };
    let mut req =
        Req { method: parts.method, path, query: parts.uri.query().map(str::to_owned), body, filter: None };
    req.filter = req.param("filter_path").and_then(|f| FilterPath::parse(&f));
    match route(shared, &req) {
        Ok(answer) => answer,
        Err(e) => {
            if req.path.ends_with("/_bulk") {
                refuse(shared, e.status);
            }
            error(&e)
        }
    }
}

/// The whole body, or `None` when it is over `max` bytes. An oversized body is still read (and
/// dropped) so that the client, still sending, reads the 413 rather than a reset.
async fn read_body(mut body: Incoming, max: u64) -> Option<Bytes> {
    if body.size_hint().exact().is_some_and(|n| n > max) || body.size_hint().lower() > max {
        while let Some(Ok(_)) = body.frame().await {}
        return None;
    }
    let mut buf = Vec::new();
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Some(Bytes::from(buf)) };
        if let Ok(data) = frame.into_data() {
            if over || buf.len() as u64 + data.len() as u64 > max {
                over = true;
                buf = Vec::new();
            } else {
                buf.extend_from_slice(&data);
            }
        }
    }
    (!over).then(|| Bytes::from(buf))
}

/// The decompressed body; `Ok(None)` when it is over `max` bytes.
fn gunzip(raw: &[u8], max: u64) -> std::io::Result<Option<Bytes>> {
    let mut plain = Vec::with_capacity(raw.len().saturating_mul(8).min(64 << 20));
    flate2::read::MultiGzDecoder::new(raw).take(max.saturating_add(1)).read_to_end(&mut plain)?;
    Ok((plain.len() as u64 <= max).then(|| Bytes::from(plain)))
}

/// Path segments, percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) =
                (b.get(i + 1).map(|&c| hex(c)), b.get(i + 2).map(|&c| hex(c)))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(shared: &Arc<Shared>, req: &Req) -> Result<Response<Body>, ApiError> {
    let segs = segments(&req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &req.method;
    let get = m == Method::GET || m == Method::HEAD;
    let write = m == Method::POST || m == Method::PUT;
    let flavour = shared.flavour;
    match segs.as_slice() {
        [] if get => Ok(reply(req, StatusCode::OK, response::cluster_info(flavour))),
        ["_bulk"] if write => bulk_request(shared, req, None),
        [target, "_bulk"] if write => bulk_request(shared, req, Some(target)),
        ["_index_template"] if get => {
            Ok(reply(req, StatusCode::OK, lock(&shared.store).get_templates(None)?))
        }
        ["_index_template", name] if m == Method::HEAD => {
            let found = lock(&shared.store).get_templates(Some(name)).is_ok();
            Ok(empty(if found { StatusCode::OK } else { StatusCode::NOT_FOUND }))
        }
        ["_index_template", name] if get => {
            Ok(reply(req, StatusCode::OK, lock(&shared.store).get_templates(Some(name))?))
        }
        ["_index_template", name] if write => {
            lock(&shared.store).put_template(name, req.json_body()?)?;
            Ok(acknowledged(req))
        }
        ["_index_template", name] if m == Method::DELETE => {
            lock(&shared.store).delete_template(name)?;
            Ok(acknowledged(req))
        }
        ["_ilm", "policy", rest @ ..] if flavour == Flavour::Elasticsearch && rest.len() <= 1 => {
            let name = rest.first().copied();
            match (name, get, write) {
                (_, true, _) => Ok(reply(req, StatusCode::OK, lock(&shared.store).get_ilm(name)?)),
                (Some(name), _, true) if m == Method::PUT => {
                    lock(&shared.store).put_ilm(name, &req.json_body()?)?;
                    Ok(acknowledged(req))
                }
                _ => Err(no_handler(req)),
            }
        }
        ["_plugins", "_ism", "policies", name] if flavour == Flavour::OpenSearch => {
            if get {
                Ok(reply(req, StatusCode::OK, lock(&shared.store).get_ism(name)?))
            } else if m == Method::PUT {
                let number = |p: &str| req.param(p).and_then(|v| v.parse::<u64>().ok());
                let (status, body) = lock(&shared.store).put_ism(
                    name,
                    &req.json_body()?,
                    number("if_seq_no"),
                    number("if_primary_term"),
                )?;
                Ok(reply(req, StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body))
            } else {
                Err(no_handler(req))
            }
        }
        ["_data_stream"] if get => Ok(reply(req, StatusCode::OK, lock(&shared.store).data_streams("*")?)),
        ["_data_stream", name] if get => {
            Ok(reply(req, StatusCode::OK, lock(&shared.store).data_streams(name)?))
        }
        ["_refresh"] | [_, "_refresh"] if get || write => {
            Ok(reply(req, StatusCode::OK, json!({"_shards": {"total": 1, "successful": 1, "failed": 0}})))
        }
        ["_count"] | [_, "_count"] if get || write => {
            let index = if segs.len() == 2 { segs[0] } else { "*" };
            let count = lock(&shared.store).count(index)?;
            Ok(reply(
                req,
                StatusCode::OK,
                json!({"count": count, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}),
            ))
        }
        ["_search"] | [_, "_search"] if get || write => {
            let index = if segs.len() == 2 { segs[0] } else { "*" };
            search(shared, req, index)
        }
        [index, "_doc", id] if get => {
            let (found, body) = lock(&shared.store).get_doc(index, id)?;
            Ok(reply(req, if found { StatusCode::OK } else { StatusCode::NOT_FOUND }, body))
        }
        _ => Err(no_handler(req)),
    }
}

/// What Elasticsearch and OpenSearch answer for a path/method they have no handler for.
fn no_handler(req: &Req) -> ApiError {
    let uri = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    ApiError::new(400, "", format!("no handler found for uri [{uri}] and method [{}]", req.method))
}

fn search(shared: &Shared, req: &Req, index: &str) -> Result<Response<Body>, ApiError> {
    let body = req.json_body()?;
    let query = body.get("query");
    if let Some(q) = query
        && q.get("match_all").is_none()
    {
        return Err(ApiError::new(400, "parsing_exception", "es-sim supports only the match_all query"));
    }
    let number = |name: &str, default: usize| {
        req.param(name)
            .and_then(|v| v.parse().ok())
            .or_else(|| body.get(name).and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()))
            .unwrap_or(default)
    };
    let result = lock(&shared.store).search(index, number("from", 0), number("size", 10))?;
    Ok(reply(req, StatusCode::OK, result))
}

fn bulk_request(shared: &Shared, req: &Req, target: Option<&str>) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    lock(&shared.stats).bulk_requests += 1;
    if lock(&shared.faults).fail_request() {
        return Err(ApiError::new(
            503,
            "cluster_block_exception",
            "blocked by: [SERVICE_UNAVAILABLE/2/no master] (injected by es-sim);",
        ));
    }
    let ops = bulk::parse(&req.body).map_err(|e| ApiError::new(400, e.kind(), e.to_string()))?;
    let items = {
        let mut faults = lock(&shared.faults);
        lock(&shared.store).bulk(ops, target, &mut faults)?
    };
    {
        let mut stats = lock(&shared.stats);
        for item in &items {
            *stats.items_by_status.entry(item.status).or_default() += 1;
            if item.status == 409 {
                stats.duplicates += 1;
            }
        }
    }
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let body = match &req.filter {
        None => response::bulk(took, &items),
        Some(filter) => response::bulk_filtered(took, &items, filter),
    };
    Ok(response(StatusCode::OK, Some("application/json"), body.into()))
}

async fn control_api(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (method, path, query) =
        (req.method().clone(), req.uri().path().to_owned(), req.uri().query().map(str::to_owned));
    let current = lock(&shared.faults).faults().clone();
    let command = match control::parse(method.as_str(), &path, query.as_deref(), &current) {
        Ok(c) => c,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return json(status, &json!({"error": e.reason}));
        }
    };
    let ok = |v: Value| json(StatusCode::OK, &v);
    match command {
        Command::Stats => ok(serde_json::to_value(lock(&shared.stats).clone()).unwrap_or(Value::Null)),
        Command::ResetStats => {
            *lock(&shared.stats) = super::Stats::default();
            ok(json!({"reset": true}))
        }
        Command::Docs { index } => ok(Value::Array(lock(&shared.store).docs(&index))),
        Command::Count { index } => ok(json!({"count": lock(&shared.store).count(&index).unwrap_or(0)})),
        Command::Ids => ok(json!(lock(&shared.store).ids())),
        Command::ClearDocs => {
            lock(&shared.store).clear_documents();
            ok(json!({"cleared": true}))
        }
        Command::GetFaults => ok(faults_json(shared)),
        Command::SetFaults { faults, max_content_length } => {
            *lock(&shared.faults) = super::FaultState::new(faults);
            if let Some(max) = max_content_length {
                lock(&shared.settings).max_content_length = max;
            }
            tracing::info!("faults set");
            ok(faults_json(shared))
        }
        Command::ClearFaults => {
            *lock(&shared.faults) = super::FaultState::default();
            ok(faults_json(shared))
        }
        Command::DownFor(duration) => {
            shared.listener.down_for(duration).await;
            ok(json!({"down_for_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)}))
        }
        Command::Exit => {
            shared.listener.request_exit();
            ok(json!({"exiting": true}))
        }
    }
}

fn faults_json(shared: &Shared) -> Value {
    let f = lock(&shared.faults).faults().clone();
    let max = lock(&shared.settings).max_content_length;
    json!({
        "item_429_every": f.item_429_every,
        "item_429_share": f.item_429_share,
        "fail_next": f.fail_next,
        "fail_share": f.fail_share,
        "latency_ms": u64::try_from(f.latency.as_millis()).unwrap_or(u64::MAX),
        "answer_delay_ms": u64::try_from(f.answer_delay.as_millis()).unwrap_or(u64::MAX),
        "seed": f.seed,
        "max_content_length": max,
    })
}

fn unauthorized(flavour: Flavour, denied: &Denied) -> Response<Body> {
    match flavour {
        Flavour::Elasticsearch => {
            let challenges = ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"];
            let reason = denied.to_string();
            let body = json!({
                "error": {
                    "root_cause": [{"type": "security_exception", "reason": reason, "header": {"WWW-Authenticate": challenges}}],
                    "type": "security_exception", "reason": reason, "header": {"WWW-Authenticate": challenges}
                },
                "status": 401
            });
            let mut r = json(StatusCode::UNAUTHORIZED, &body);
            for c in challenges {
                r.headers_mut().append(WWW_AUTHENTICATE, HeaderValue::from_static(c));
            }
            r
        }
        Flavour::OpenSearch => {
            let mut r = response(
                StatusCode::UNAUTHORIZED,
                Some("text/plain; charset=UTF-8"),
                Bytes::from_static(b"Unauthorized"),
            );
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"OpenSearch Security\""));
            r
        }
    }
}

fn too_large(max: u64) -> Response<Body> {
    json(StatusCode::PAYLOAD_TOO_LARGE, &json!({"Message": format!("Request size exceeded {max} bytes")}))
}

fn error(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if e.kind.is_empty() {
        // The "no handler" answer is a bare string.
        return json(status, &json!({"error": e.reason}));
    }
    json(status, &response::error(e.status, e.kind, &e.reason))
}

fn acknowledged(req: &Req) -> Response<Body> {
    reply(req, StatusCode::OK, json!({"acknowledged": true}))
}

/// An answer of the Elasticsearch API, trimmed by the request's `filter_path`. Errors do not come
/// this way: Elasticsearch and OpenSearch never filter them.
fn reply(req: &Req, status: StatusCode, body: Value) -> Response<Body> {
    match &req.filter {
        Some(filter) => json(status, &filter.apply(body)),
        None => json(status, &body),
    }
}

fn json(status: StatusCode, body: &Value) -> Response<Body> {
    response(status, Some("application/json"), body.to_string().into())
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = response(status, None, Bytes::new());
    r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn response(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(segments("/logs-%2A/_count"), ["logs-*", "_count"]);
        assert_eq!(segments("/"), Vec::<String>::new());
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn gzip_bodies_and_their_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&[b'x'; 1000]).expect("compress");
        let gz = enc.finish().expect("compress");
        assert_eq!(gunzip(&gz, 1000).expect("valid").map(|b| b.len()), Some(1000));
        assert_eq!(gunzip(&gz, 999).expect("valid"), None);
        assert!(gunzip(b"not gzip", 1000).is_err());
    }
}
