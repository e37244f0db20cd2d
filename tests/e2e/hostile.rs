//! Hostile clients beside a healthy one (issue #14 item 6): every attack of the issue's
//! table, and the ones that already held, each run while alice's session keeps sending
//! commands. For each attack the test asserts that every healthy request succeeded within
//! 5x its latency measured just before, that the attack got a clear answer and reached
//! nothing, and at the end that the audit chain verifies with no `audit.gap` and that
//! every failed sign-in of the flood is accounted for (written, or counted in an
//! `authn.failures` line).
//!
//! Scaled down from the issue so the suite takes seconds: the unauthenticated flood runs
//! 3 s on 4 connections (issue: 20 s; `HOPGATE_HOSTILE_FLOOD_SECS=20` for the full row), the idle-socket attack holds 300 sockets (issue:
//! 5,000; past the per-source cap of 64 they are closed at accept anyway), one person
//! opens shells up to a cap of 5 (issue: 991 against no cap), and the first-byte deadline
//! is 2 s. The attackers connect from 127.0.0.2, another machine as far as the gateway
//! can tell; alice connects from 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::raw::{command, create_cmd_shell, shell_id, RawClient};
use crate::support::{Gateway, GatewayOptions, Standin};

const TO: &str = "https://gw/wsman/standin";
const PATH: &str = "/wsman/standin";
/// Healthy requests may take at most this multiple of their latency before the attack.
const SLOWDOWN: f64 = 5.0;

fn attacker() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// alice's shell, used back to back while an attack runs.
struct Healthy {
    client: RawClient,
    sid: String,
}

impl Healthy {
    async fn open(gw: &Gateway) -> Healthy {
        let client = gw.alice_client();
        let r = client
            .post(PATH, None, &create_cmd_shell(TO))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let sid = shell_id(&r.body).unwrap();
        Healthy { client, sid }
    }

    /// One command on a new connection, as a client that reconnects would send it.
    async fn one(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let r = self
            .client
            .post(PATH, None, &command(TO, &self.sid, "hostname"))
            .await?;
        if r.status != 200 {
            return Err(format!("status {}: {}", r.status, r.body));
        }
        Ok(start.elapsed())
    }

    /// The slowest of a few requests with nothing else going on.
    async fn normal(&self) -> Duration {
        let mut slowest = Duration::ZERO;
        for _ in 0..8 {
            slowest = slowest.max(self.one().await.unwrap());
        }
        slowest
    }

    /// Runs `attack` while sending healthy requests back to back; asserts they all
    /// succeeded within [`SLOWDOWN`] times the latency measured just before.
    async fn beside<T>(&self, name: &str, attack: impl Future<Output = T>) -> T {
        let measured = self.normal().await;
        // At least 30 ms, so on a quick machine scheduling noise (other tests, other
        // processes on two shared cores) does not look like a slowdown.
        let normal = measured.max(Duration::from_millis(30));
        let done = AtomicBool::new(false);
        let attack = async {
            let r = attack.await;
            done.store(true, Ordering::Relaxed);
            r
        };
        let probe = async {
            let mut results = Vec::new();
            while !done.load(Ordering::Relaxed) || results.len() < 3 {
                results.push(self.one().await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            results
        };
        let (out, results) = tokio::join!(attack, probe);
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{name}: healthy requests failed: {failed:?}"
        );
        let slowest = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .max()
            .copied()
            .unwrap_or_default();
        let ratio = slowest.as_secs_f64() / normal.as_secs_f64();
        eprintln!(
            "hostile: {name}: {} healthy requests, normal {measured:?} (counted as {normal:?}), slowest {slowest:?}, ratio {ratio:.2}",
            results.len()
        );
        assert!(
            ratio <= SLOWDOWN,
            "{name}: a healthy request took {slowest:?}, {ratio:.1}x its normal {normal:?}"
        );
        out
    }
}

/// How an unauthenticated flood was answered.
#[derive(Debug, Default)]
struct FloodAnswers {
    unauthorized: u64,
    rate_limited: u64,
    other: Vec<u16>,
}

/// One keep-alive connection sending Creates without credentials for `for_how_long`,
/// reconnecting when the gateway closes it.
async fn flood_without_credentials(client: &RawClient, for_how_long: Duration) -> FloodAnswers {
    let mut answers = FloodAnswers::default();
    let end = Instant::now() + for_how_long;
    let body = create_cmd_shell(TO);
    while Instant::now() < end {
        let Ok(mut conn) = client.connect().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        while Instant::now() < end {
            let Ok(r) = conn.post(PATH, None, &body).await else {
                break;
            };
            match r.status {
                401 => answers.unauthorized += 1,
                429 => {
                    answers.rate_limited += 1;
                    assert!(r.headers.contains_key("retry-after"), "{r:?}");
                }
                other => answers.other.push(other),
            }
        }
    }
    answers
}

/// Every failed sign-in from `source`: (written one by one, counted in summaries).
fn failures_recorded(audit: &[Value], source: &str) -> (u64, u64) {
    let one_by_one = audit
        .iter()
        .filter(|e| e["event"] == "authn.failure" && e["source_ip"] == source)
        .count();
    let counted = audit
        .iter()
        .filter(|e| e["event"] == "authn.failures" && e["source_ip"] == source)
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    (u64::try_from(one_by_one).unwrap(), counted)
}

/// Sends `head` and `body` as written on one TLS connection; returns the status line.
async fn handwritten(client: &RawClient, request: &str) -> String {
    let mut tls = client.tls().await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .expect("the gateway answers")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Whether the gateway closed `s` within `within` (EOF or reset, not a timeout).
async fn closed(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(within, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Resident memory of this process (the gateway runs in it), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// How long the unauthenticated flood runs: 3 s in CI; `HOPGATE_HOSTILE_FLOOD_SECS=20`
/// reruns the issue's row at full length.
fn flood_secs() -> u64 {
    std::env::var("HOPGATE_HOSTILE_FLOOD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

async fn gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start_ntlm(dir.path(), "STANDIN-01").await;
    let mut d = Gateway::standin_dir(&standin, GatewayOptions::default());
    d.extra = "[limits]\nfirst_byte_timeout_secs = 2\nmax_shells_per_user = 5\n\
               max_shells_per_credential = 8\nunauthenticated_per_source_per_sec = 20\n"
        .to_string();
    // The aggregated failures are written every second, so the test sees them soon.
    d.audit_extra = "failures_interval_secs = 1".to_string();
    d.launch(dir, standin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_beside_a_healthy_session() {
    let gw = gateway().await;
    let healthy = Healthy::open(&gw).await;
    let rss_before = rss_kib();
    let anon = RawClient::new(gw.addr, &gw.certs.ca, None).with_source(attacker());
    let alice_elsewhere = RawClient::new(
        gw.addr,
        &gw.certs.ca,
        Some((&gw.certs.client_cert, &gw.certs.client_key)),
    )
    .with_source(attacker());

    // 1. Requests without credentials on keep-alive connections (issue: 689,650 lines,
    //    19,343 events dropped). Answered 401, then 429 once the source's budget is spent.
    let answers = healthy
        .beside("unauthenticated flood", async {
            let t = Duration::from_secs(flood_secs());
            let (a, b, c, d) = tokio::join!(
                flood_without_credentials(&anon, t),
                flood_without_credentials(&anon, t),
                flood_without_credentials(&anon, t),
                flood_without_credentials(&anon, t),
            );
            [a, b, c, d]
        })
        .await;
    let (mut unauthorized, mut rate_limited) = (0, 0);
    for a in &answers {
        assert!(a.other.is_empty(), "{a:?}");
        unauthorized += a.unauthorized;
        rate_limited += a.rate_limited;
    }
    assert!(rate_limited > 0, "{answers:?}");
    eprintln!("hostile: flood answers: {unauthorized} x 401, {rate_limited} x 429");

    // 2. A Create whose rsp:Shell carries 100,000 attributes, two at once (issue: 17 s of
    //    CPU each, every session stalled ~40 s).
    let flood = create_cmd_shell(TO).replacen(
        "<rsp:Shell>",
        &format!(
            "<rsp:Shell{}>",
            (0..100_000)
                .map(|i| format!(" a{i}=\"\""))
                .collect::<String>()
        ),
        1,
    );
    let bodies = healthy
        .beside("attribute flood", async {
            let (a, b) = tokio::join!(
                alice_elsewhere.post(PATH, None, &flood),
                alice_elsewhere.post(PATH, None, &flood)
            );
            [a.unwrap(), b.unwrap()]
        })
        .await;
    for r in bodies {
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(r.body.contains("more than 64 attributes"), "{}", r.body);
    }

    // 3. Idle TCP connections that never send a TLS byte (issue: 5,000 held the 1,024
    //    slots for the 10 s handshake timeout; new clients waited 35 s).
    let mut idle = healthy
        .beside("idle sockets", async {
            let mut socks = Vec::new();
            for _ in 0..300 {
                if let Ok(s) = anon.tcp().await {
                    socks.push(s);
                }
            }
            // Held past the first-byte deadline, new healthy connections still served.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            socks
        })
        .await;
    assert_eq!(idle.len(), 300);
    let mut still_open = Vec::new();
    for (i, s) in idle.iter_mut().enumerate() {
        if !closed(s, Duration::from_millis(500)).await {
            still_open.push(i);
        }
    }
    assert!(
        still_open.is_empty(),
        "idle sockets the gateway did not close: {still_open:?}"
    );
    drop(idle);

    // 4. One person opening shells until the gateway says no (issue: 991 shells used up
    //    the host account's quota for everyone mapped to it).
    let mallory = bearer(&gw.token("mallory", &["ops"], None, Duration::from_secs(600)));
    let trudy = bearer(&gw.token("trudy", &["ops"], None, Duration::from_secs(600)));
    let (mallory_refusal, trudy_refusal) = healthy
        .beside("shells per person and per host account", async {
            for i in 0..5 {
                let r = anon
                    .post(PATH, Some(&mallory), &create_cmd_shell(TO))
                    .await
                    .unwrap();
                assert_eq!(r.status, 200, "shell {i}: {}", r.body);
            }
            let refused = anon
                .post(PATH, Some(&mallory), &create_cmd_shell(TO))
                .await
                .unwrap();
            // alice 1 + mallory 5: trudy gets 2 of the account's 8, then is refused.
            for i in 0..2 {
                let r = anon
                    .post(PATH, Some(&trudy), &create_cmd_shell(TO))
                    .await
                    .unwrap();
                assert_eq!(r.status, 200, "trudy's shell {i}: {}", r.body);
            }
            let trudy_refused = anon
                .post(PATH, Some(&trudy), &create_cmd_shell(TO))
                .await
                .unwrap();
            (refused, trudy_refused)
        })
        .await;
    assert_eq!(mallory_refusal.status, 500);
    assert!(
        mallory_refusal.body.contains(":QuotaLimit<")
            && mallory_refusal
                .body
                .contains("maximum number of 5 concurrent shells"),
        "{}",
        mallory_refusal.body
    );
    assert!(
        trudy_refusal.body.contains(":QuotaLimit<") && trudy_refusal.body.contains("host account"),
        "{}",
        trudy_refusal.body
    );

    // 5. The attacks that held, one after another beside the healthy session.
    let seen_before = gw.standin.requests().len();
    let bob = bearer(&gw.token("bob", &["ops"], None, Duration::from_secs(600)));
    healthy
        .beside("attacks that held", async {
            // Request smuggling: Content-Length and Transfer-Encoding together.
            let body = create_cmd_shell(TO);
            let status = handwritten(
                &anon,
                &format!(
                    "POST {PATH} HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\
                     Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST {PATH} HTTP/1.1\r\n\
                     Host: gw\r\nAuthorization: {bob}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
            .await;
            assert!(
                ["HTTP/1.1 400", "HTTP/1.1 401", "HTTP/1.1 429"]
                    .iter()
                    .any(|s| status.starts_with(s)),
                "smuggling: {status}"
            );

            // A DTD with an entity standing for the command.
            let dtd = command(TO, &healthy.sid, "&cmd;").replacen(
                "<env:Envelope",
                "<!DOCTYPE env:Envelope [<!ENTITY cmd \"whoami\">]><env:Envelope",
                1,
            );
            let r = healthy.client.post(PATH, None, &dtd).await.unwrap();
            assert_eq!(r.status, 500, "dtd: {}", r.body);

            // Deep nesting inside the body.
            let deep = command(TO, &healthy.sid, "hostname").replacen(
                "<env:Body>",
                &format!("<env:Body>{}", "<x>".repeat(50_000)),
                1,
            );
            let r = healthy.client.post(PATH, None, &deep).await.unwrap();
            assert_eq!(r.status, 500, "depth: {}", r.body);
            assert!(r.body.contains("nested deeper"), "{}", r.body);

            // A second ShellId selector (which shell would the host run it in?).
            let dup = command(TO, &healthy.sid, "whoami").replacen(
                "</w:SelectorSet>",
                "<w:Selector Name=\"shellid\">00000000-0000-0000-0000-000000000000</w:Selector></w:SelectorSet>",
                1,
            );
            let r = healthy.client.post(PATH, None, &dup).await.unwrap();
            assert_eq!(r.status, 500, "duplicate: {}", r.body);
            assert!(r.body.contains("duplicate"), "{}", r.body);

            // The SOAP 1.1 namespace under the usual prefix.
            let soap11 = command(TO, &healthy.sid, "whoami").replacen(
                "http://www.w3.org/2003/05/soap-envelope",
                "http://schemas.xmlsoap.org/soap/envelope/",
                1,
            );
            let r = healthy.client.post(PATH, None, &soap11).await.unwrap();
            assert_eq!(r.status, 500, "namespace: {}", r.body);

            // Someone else's ShellId.
            let r = anon
                .post(PATH, Some(&bob), &command(TO, &healthy.sid, "whoami"))
                .await
                .unwrap();
            assert_eq!(r.status, 500);
            assert!(r.body.contains("InvalidSelectors"), "{}", r.body);

            // Token tricks: alg none, expired, a lifetime of ten years.
            let claims = base64_url(
                format!(
                    r#"{{"sub":"bob","groups":["ops"],"iss":"{}","aud":"{}","exp":4102444800}}"#,
                    crate::support::JWT_ISSUER,
                    crate::support::JWT_AUDIENCE
                )
                .as_bytes(),
            );
            let none = format!("{}.{claims}.", base64_url(br#"{"alg":"none","typ":"JWT"}"#));
            let expired = gw.token_expired_minutes_ago("bob", 30);
            let forever = gw.token("bob", &["ops"], None, Duration::from_secs(10 * 365 * 86_400));
            for t in [none, expired, forever] {
                let r = anon
                    .post(PATH, Some(&bearer(&t)), &command(TO, &healthy.sid, "whoami"))
                    .await
                    .unwrap();
                assert!(matches!(r.status, 401 | 429), "token trick: {}", r.status);
            }

            // Path tricks.
            for path in [
                "/wsman/../wsman/unreachable",
                "/wsman/standin/../unreachable",
                "/wsman/%2e%2e/standin",
            ] {
                let r = alice_elsewhere
                    .post(path, None, &command(TO, &healthy.sid, "whoami"))
                    .await
                    .unwrap();
                assert_ne!(r.status, 200, "{path}: {}", r.body);
            }
        })
        .await;
    let reached: Vec<Value> = gw
        .standin
        .requests()
        .into_iter()
        .skip(seen_before)
        .collect();
    assert!(
        !reached.iter().any(|r| r.to_string().contains("whoami")),
        "an attack reached the host: {reached:#?}"
    );

    // Memory stayed bounded through all of it.
    let rss_after = rss_kib();
    eprintln!("hostile: resident memory {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after.saturating_sub(rss_before) < 256 * 1024,
        "grew from {rss_before} to {rss_after} KiB"
    );

    // The record: every failed sign-in of the flood is on disk (one by one or counted),
    // and the chain verifies with no gap.
    let source = attacker().to_string();
    let total = unauthorized + rate_limited;
    let mut recorded = (0, 0);
    let accounted = crate::support::eventually(Duration::from_secs(10), || {
        recorded = failures_recorded(&gw.audit(), &source);
        recorded.0 + recorded.1 >= total
    })
    .await;
    assert!(
        accounted,
        "{total} failures answered, recorded {recorded:?}"
    );
    eprintln!(
        "hostile: flood record: {total} failed sign-ins, {} lines authn.failure, {} counted in authn.failures lines",
        recorded.0, recorded.1
    );
    // At most the first failure per reason (no credentials, rate limited) per 1 s interval.
    let bound = 2 * (flood_secs() + 5);
    assert!(
        recorded.0 <= bound,
        "aggregated, not one line each: {recorded:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hopgate"))
        .args(["audit", "verify"])
        .arg(gw.dir.path().join("audit"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("ok:") && !stdout.contains("WARNING"),
        "{stdout}"
    );
    assert!(!gw.audit().iter().any(|e| e["event"] == "audit.gap"));
    gw.stop().await;
}

fn base64_url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}
