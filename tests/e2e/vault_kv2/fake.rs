//! An in-process fake of the Vault / OpenBao HTTP API on 127.0.0.1, serving the documented
//! JSON shapes of the KV v2 engine (mount `secret`) and AppRole login, and counting what it
//! was asked so tests can see cache hits and logins.
//!
//! Documented shapes (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 and
//! .../auth/approle): `GET /v1/secret/data/<p>` → `{"data":{"data":{..},"metadata":{..}}}`,
//! `LIST /v1/secret/metadata/<p>` (or `GET ...?list=true`) → `{"data":{"keys":[..]}}`,
//! `POST /v1/secret/data/<p>` with `{"data":{..},"options":{"cas":N}}`,
//! `DELETE /v1/secret/metadata/<p>`, `POST /v1/auth/approle/login` and
//! `POST /v1/auth/token/renew-self` → `{"auth":{"client_token":..,"lease_duration":..,
//! "renewable":..}}`, `GET /v1/auth/token/lookup-self` → `{"data":{"ttl":..,
//! "renewable":..}}`; errors are
//! `{"errors":[..]}`: 403 `permission denied`, 404 `[]`, 503 `Vault is sealed`, 400 on a
//! bad login or check-and-set mismatch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// What the fake holds and has seen.
#[derive(Default)]
pub struct State {
    /// Path under the mount → (fields, version).
    pub secrets: BTreeMap<String, (Value, u64)>,
    /// Token → expiry (`None`: never).
    pub tokens: HashMap<String, Option<Instant>>,
    /// AppRole credentials and the lease handed out.
    pub approle: Option<(String, String, u64)>,
    pub sealed: bool,
    /// Paths under the mount answered with 403 whatever the token.
    pub denied: HashSet<String>,
    /// Paths under the mount answered with a broken body.
    pub garbage: HashSet<String>,
    /// Every request: (method, path with query, namespace header).
    pub requests: Vec<(String, String, Option<String>)>,
    pub logins: usize,
    /// Whether tokens from logins, and all tokens for renew-self, are renewable.
    pub renewable: bool,
    /// Lease granted by renew-self.
    pub renew_secs: u64,
    pub renewals: usize,
    /// Requests refused because the token was unknown or expired.
    pub bad_tokens: usize,
    next_token: usize,
}

/// The running fake; stops when dropped.
pub struct FakeKv2 {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKv2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKv2 {
    /// Starts on 127.0.0.1 (plain http) with `token` accepted forever.
    pub async fn start(token: &str) -> FakeKv2 {
        Self::start_with(token, None).await
    }

    /// Starts on 127.0.0.1 over https with this certificate chain and key (PEM files).
    pub async fn start_tls(token: &str, cert: &Path, key: &Path) -> FakeKv2 {
        let config = hopgate::tls::server_config_from_files(cert, key).unwrap();
        Self::start_with(token, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(token: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeKv2 {
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().unwrap().tokens.insert(token.to_owned(), None);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A client that does not trust us hangs up in the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        FakeKv2 { addr, state, task }
    }

    /// `http://127.0.0.1:<port>` (use [`https_address`](Self::https_address) for TLS).
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// `https://127.0.0.1:<port>` (an address in the dev server certificate).
    pub fn https_address(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Stores `fields` at `path` (under the mount) as a new version.
    pub fn put(&self, path: &str, fields: Value) {
        let mut s = self.state.lock().unwrap();
        let version = s.secrets.get(path).map_or(0, |(_, v)| *v) + 1;
        s.secrets.insert(path.to_owned(), (fields, version));
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// How many requests went to `path` (under `/v1/`, query ignored).
    pub fn count(&self, path: &str) -> usize {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|(_, p, _)| p.split('?').next() == Some(path))
                .count()
        })
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn errors(status: StatusCode, list: &[&str]) -> Response<Full<Bytes>> {
    reply(status, json!({ "errors": list }))
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let namespace = req
        .headers()
        .get("x-vault-namespace")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let token = req
        .headers()
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut s = state.lock().unwrap();
    let path = path_q.strip_prefix("/v1/").unwrap_or(&path_q).to_owned();
    s.requests.push((method.clone(), path.clone(), namespace));
    if s.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (path, String::new()),
    };
    if path == "auth/approle/login" && method == "POST" {
        return login(&mut s, &body);
    }
    let valid = token
        .as_ref()
        .and_then(|t| s.tokens.get(t))
        .is_some_and(|exp| exp.is_none_or(|e| Instant::now() < e));
    if !valid {
        s.bad_tokens += 1;
        return errors(StatusCode::FORBIDDEN, &["permission denied"]);
    }
    if path == "auth/token/lookup-self" && method == "GET" {
        let exp = token
            .as_ref()
            .and_then(|t| s.tokens.get(t))
            .copied()
            .flatten();
        let ttl = exp.map_or(0, |e| e.saturating_duration_since(Instant::now()).as_secs());
        return reply(
            StatusCode::OK,
            json!({"data": {"ttl": ttl, "renewable": s.renewable, "policies": ["hopgate"]}}),
        );
    }
    if path == "auth/token/renew-self" && method == "POST" {
        if !s.renewable {
            return errors(StatusCode::BAD_REQUEST, &["lease is not renewable"]);
        }
        let token = token.unwrap_or_default();
        let lease = s.renew_secs;
        s.tokens.insert(
            token.clone(),
            Some(Instant::now() + Duration::from_secs(lease)),
        );
        s.renewals += 1;
        return reply(
            StatusCode::OK,
            json!({"auth": {"client_token": token, "lease_duration": lease, "renewable": true}}),
        );
    }
    let list = method == "LIST" || (method == "GET" && query.contains("list=true"));
    if let Some(p) = path.strip_prefix("secret/data/") {
        if s.denied.contains(p) {
            return errors(StatusCode::FORBIDDEN, &["permission denied"]);
        }
        if s.garbage.contains(p) {
            let mut r = reply(StatusCode::OK, json!(null));
            *r.body_mut() = Full::new(Bytes::from_static(b"{\"data\":{\"data\":{\"username\":"));
            return r;
        }
        return match method.as_str() {
            "GET" => match s.secrets.get(p) {
                Some((fields, version)) => reply(
                    StatusCode::OK,
                    json!({
                        "request_id": "fake", "lease_id": "", "renewable": false,
                        "lease_duration": 0, "wrap_info": null, "warnings": null, "auth": null,
                        "data": {
                            "data": fields,
                            "metadata": {
                                "created_time": "2026-11-23T07:00:00Z", "custom_metadata": null,
                                "deletion_time": "", "destroyed": false, "version": version,
                            },
                        },
                    }),
                ),
                None => errors(StatusCode::NOT_FOUND, &[]),
            },
            "POST" | "PUT" => write(&mut s, p, &body),
            _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported method"]),
        };
    }
    if let Some(p) = path.strip_prefix("secret/metadata/") {
        if list {
            let prefix = p.to_owned();
            let mut keys: Vec<String> = s
                .secrets
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .map(|rest| match rest.split_once('/') {
                    Some((dir, _)) => format!("{dir}/"),
                    None => rest.to_owned(),
                })
                .collect();
            keys.dedup();
            return if keys.is_empty() {
                errors(StatusCode::NOT_FOUND, &[])
            } else {
                reply(StatusCode::OK, json!({ "data": { "keys": keys } }))
            };
        }
        if method == "DELETE" {
            s.secrets.remove(p);
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            return r;
        }
    }
    errors(StatusCode::NOT_FOUND, &[])
}

fn login(s: &mut State, body: &[u8]) -> Response<Full<Bytes>> {
    let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some((role, secret, lease)) = s.approle.clone() else {
        return errors(
            StatusCode::BAD_REQUEST,
            &["no handler for route \"auth/approle/login\""],
        );
    };
    if sent["role_id"] != role.as_str() || sent["secret_id"] != secret.as_str() {
        return errors(StatusCode::BAD_REQUEST, &["invalid role or secret ID"]);
    }
    s.logins += 1;
    s.next_token += 1;
    let token = format!("hvs.fake-approle-{}", s.next_token);
    let expiry = (lease > 0).then(|| Instant::now() + Duration::from_secs(lease));
    s.tokens.insert(token.clone(), expiry);
    reply(
        StatusCode::OK,
        json!({
            "auth": {
                "client_token": token, "accessor": "fake", "policies": ["hopgate"],
                "lease_duration": lease, "renewable": s.renewable,
            },
        }),
    )
}

fn write(s: &mut State, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let Ok(sent) = serde_json::from_slice::<Value>(body) else {
        return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]);
    };
    let current = s.secrets.get(path).map_or(0, |(_, v)| *v);
    if let Some(cas) = sent["options"]["cas"].as_u64() {
        if cas != current {
            return errors(
                StatusCode::BAD_REQUEST,
                &["check-and-set parameter did not match the current version"],
            );
        }
    }
    let version = current + 1;
    s.secrets
        .insert(path.to_owned(), (sent["data"].clone(), version));
    reply(StatusCode::OK, json!({ "data": { "version": version } }))
}
