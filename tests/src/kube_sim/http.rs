//! The HTTP side: the listener (dropped on `down`, rebound on `up`), one task per connection,
//! the events API (503 fault, authentication, routing, authorization, LIST / WATCH / GET) and
//! the control API.

use super::auth::Denied;
use super::control::{self, Command};
use super::event::Key;
use super::query::{self, ApiRequest, Refused};
use super::status::{CONTINUE_EXPIRED, Status};
use super::store::StoreError;
use super::watch::{self, Cut, Plan};
use super::{Shared, Stats, lock};
use crate::double::listener::{Serve, connection};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Body = BoxBody<Bytes, Cut>;

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

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path().starts_with(control::PREFIX) {
        control_api(shared, req).await
    } else {
        events_api(shared, &req)
    }
}

/// Path segments, percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
                .unwrap_or_default()
        })
        .collect()
}

/// The outcome name of a refusal, for the stats.
fn outcome(code: u16) -> &'static str {
    match code {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        410 => "expired",
        503 => "unavailable",
        504 => "too_large",
        _ => "other",
    }
}

fn tally(shared: &Shared, req: Option<&ApiRequest>, outcome: &'static str, code: u16) {
    shared.count(|s: &mut Stats| {
        let map = match req {
            Some(ApiRequest::List { .. }) => &mut s.lists,
            Some(ApiRequest::Watch { .. }) => &mut s.watches,
            Some(ApiRequest::Get { .. }) => &mut s.gets,
            None => {
                *s.refused.entry(code).or_default() += 1;
                return;
            }
        };
        *map.entry(outcome).or_default() += 1;
    });
}

fn events_api(shared: &Arc<Shared>, req: &Request<Incoming>) -> Response<Body> {
    let segs = segments(req.uri().path());
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let parsed = query::parse(&segs, req.uri().query());
    let known = parsed.clone().ok();
    let refuse = |status: Status| {
        tally(shared, known.as_ref(), outcome(status.code), status.code);
        status_answer(&status)
    };
    if lock(&shared.faults).unavailable {
        return refuse(Status::unavailable());
    }
    let authorization = req.headers().get(hyper::header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let now = Instant::now();
    if lock(&shared.tokens).authenticate(authorization, now).is_err() {
        return refuse(Status::unauthorized());
    }
    let api = match parsed {
        Ok(api) => api,
        Err(Refused::NoRoute) => {
            tally(shared, None, "not_found", 404);
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        Err(Refused::Status(status)) => return refuse(status),
    };
    if req.method() != Method::GET {
        return refuse(Status::new(
            405,
            "MethodNotAllowed",
            format!(
                "kube-sim serves only GET on the events API (create events through {}events)",
                control::PREFIX
            ),
        ));
    }
    if lock(&shared.tokens).check(authorization, api.namespace(), now) == Err(Denied::Forbidden) {
        return refuse(Status::forbidden(super::auth::USER, api.verb(), api.namespace()));
    }
    match api {
        ApiRequest::List { ref namespace, at, limit, ref from } => {
            let page = lock(&shared.store).list(namespace.as_deref(), at, limit, from.as_ref());
            match page {
                Ok(page) => {
                    tally(shared, Some(&api), "ok", 200);
                    if from.is_none() {
                        shared.count(|s| s.first_pages += 1);
                    }
                    let mut metadata = json!({"resourceVersion": page.rv.to_string()});
                    if let Some(token) = page.continue_token {
                        metadata["continue"] = json!(token);
                    }
                    if let Some(n) = page.remaining {
                        metadata["remainingItemCount"] = json!(n);
                    }
                    let items: Vec<&super::Event> = page.items.iter().map(AsRef::as_ref).collect();
                    let body = json!({"kind": "EventList", "apiVersion": "v1", "metadata": metadata, "items": items});
                    json_answer(StatusCode::OK, &body)
                }
                Err(StoreError::Expired { .. }) if from.is_some() => {
                    refuse(Status::new(410, "Expired", CONTINUE_EXPIRED))
                }
                Err(e) => refuse(e.into()),
            }
        }
        ApiRequest::Get { ref namespace, ref name } => {
            let key = Key { namespace: namespace.clone(), name: name.clone() };
            let found = lock(&shared.store).get(&key);
            match found {
                Some(event) => {
                    tally(shared, Some(&api), "ok", 200);
                    json_answer(StatusCode::OK, &serde_json::to_value(event.typed()).unwrap_or(Value::Null))
                }
                None => refuse(StoreError::NotFound(key).into()),
            }
        }
        ApiRequest::Watch { ref namespace, from, timeout, bookmarks } => {
            if watch::trapped(shared) {
                tally(shared, Some(&api), "empty", 200);
                return stream_answer(Full::new(Bytes::new()).map_err(|never| match never {}).boxed());
            }
            let started = lock(&shared.store).watch(namespace.as_deref(), from);
            match started {
                Ok(start) => {
                    tally(shared, Some(&api), "ok", 200);
                    let timing = lock(&shared.timing).clone();
                    let plan = Plan {
                        start,
                        namespace: namespace.clone(),
                        duration: timing.watch_duration(timeout),
                        bookmarks: bookmarks.then_some(timing.bookmark_interval),
                    };
                    stream_answer(BodyExt::boxed(watch::stream(shared.clone(), plan)))
                }
                Err(StoreError::Expired { asked, oldest }) => {
                    // As the API server: 200, one ERROR with the Status, end of stream.
                    tally(shared, Some(&api), "expired", 200);
                    let error = watch::line("ERROR", Status::too_old(asked, oldest).to_json());
                    stream_answer(Full::new(error).map_err(|never| match never {}).boxed())
                }
                Err(e) => refuse(e.into()),
            }
        }
    }
}

fn stream_answer(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn control_api(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return json_answer(StatusCode::BAD_REQUEST, &json!({"error": "cannot read the body"}));
    };
    let faults = lock(&shared.faults).clone();
    let timing = lock(&shared.timing).clone();
    let command = match control::parse(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &body,
        &faults,
        &timing,
    ) {
        Ok(c) => c,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return json_answer(status, &json!({"error": e.reason}));
        }
    };
    let ok = |v: Value| json_answer(StatusCode::OK, &v);
    let event = |r: Result<Arc<super::Event>, StoreError>, created: bool| match r {
        Ok(e) => json_answer(
            if created { StatusCode::CREATED } else { StatusCode::OK },
            &serde_json::to_value(e.typed()).unwrap_or(Value::Null),
        ),
        Err(e) => {
            let status: Status = e.into();
            json_answer(
                StatusCode::from_u16(status.code).unwrap_or(StatusCode::BAD_REQUEST),
                &json!({"error": status.message}),
            )
        }
    };
    let now = Instant::now();
    match command {
        Command::ListEvents => {
            let all = lock(&shared.store).all(None);
            let items: Vec<Value> =
                all.iter().map(|e| serde_json::to_value(e.typed()).unwrap_or(Value::Null)).collect();
            ok(Value::Array(items))
        }
        Command::Create(e) => event(lock(&shared.store).create(*e, now), true),
        Command::Update(key, update) => event(lock(&shared.store).update(&key, &update, now), false),
        Command::Delete(key) => event(lock(&shared.store).delete(&key), false),
        Command::Compact => {
            let at = lock(&shared.store).compact();
            tracing::info!(at, "compacted");
            ok(json!({"compacted": at}))
        }
        Command::GetFaults => ok(faults_json(shared)),
        Command::SetFaults(faults, timing) => {
            *lock(&shared.faults) = faults;
            *lock(&shared.timing) = timing;
            ok(faults_json(shared))
        }
        Command::ClearFaults => {
            *lock(&shared.faults) = super::Faults::default();
            ok(faults_json(shared))
        }
        Command::SetTokens { grants, grace } => {
            let n = grants.len();
            lock(&shared.tokens).rotate(grants, grace, now);
            tracing::info!(tokens = n, grace = ?grace, "tokens rotated");
            ok(json!({"tokens": n, "grace_ms": millis(grace)}))
        }
        Command::Stats => ok(serde_json::to_value(lock(&shared.stats).clone()).unwrap_or(Value::Null)),
        Command::ResetStats => {
            let mut stats = lock(&shared.stats);
            *stats = Stats { active_watches: stats.active_watches, ..Stats::default() };
            ok(json!({"reset": true}))
        }
        Command::DownFor(duration) => {
            // Answer first: down cuts this connection too once the answer is written.
            let shared = shared.clone();
            tokio::spawn(async move { shared.listener.down_for(duration).await });
            ok(json!({"down_for_ms": millis(duration)}))
        }
        Command::Exit => {
            shared.listener.request_exit();
            ok(json!({"exiting": true}))
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn faults_json(shared: &Shared) -> Value {
    let f = lock(&shared.faults).clone();
    let t = lock(&shared.timing).clone();
    json!({
        "empty_watches": f.empty_watches,
        "unavailable": f.unavailable,
        "bookmark_interval_ms": millis(t.bookmark_interval),
        "watch_max_ms": millis(t.watch_max),
        "ttl_ms": t.ttl.map(millis),
    })
}

fn status_answer(status: &Status) -> Response<Body> {
    json_answer(
        StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &status.to_json(),
    )
}

fn json_answer(status: StatusCode, body: &Value) -> Response<Body> {
    response(status, "application/json", body.to_string().into())
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", Bytes::from_static(body.as_bytes()))
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(segments("/api/v1/namespaces/a%2Db/events"), ["api", "v1", "namespaces", "a-b", "events"]);
        assert_eq!(segments("/"), Vec::<String>::new());
    }
}
