//! Hostile traffic beside the valid load (soak runs, issue #14): what an attacker on the
//! network sends, each kind in turn, from its own connections. Every request here must be
//! refused; the report counts answers by HTTP status and failures to get one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client::Client;

/// The kinds, in the order a hostile task cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Create with no credentials at all (over the client's TLS, without its
    /// certificate's sign-in: the load's own Authorization is not sent).
    NoCredentials,
    /// A Bearer token that is not one.
    BadToken,
    /// A signed-in request whose body is not XML.
    Malformed,
    /// A signed-in Create with many attributes on one element.
    Attributes,
    /// A TCP connection that sends a few bytes and stalls (slowloris), closed after 2 s.
    Stall,
}

const KINDS: [Kind; 5] = [
    Kind::NoCredentials,
    Kind::BadToken,
    Kind::Malformed,
    Kind::Attributes,
    Kind::Stall,
];

/// Counts of one run.
#[derive(Debug, Default)]
pub(super) struct HostileStats {
    pub(super) sent: AtomicU64,
    /// Answered with a 4xx or a 5xx (a refusal).
    pub(super) refused: AtomicU64,
    /// Answered 200: a hostile request got through (must stay 0).
    pub(super) accepted: AtomicU64,
    /// No answer (the connection was closed): normal for stalls and floods.
    pub(super) dropped: AtomicU64,
}

/// One hostile task until `deadline`.
/// Hostile traffic comes from `source`, as an attacker's would come from their own address
/// (per-source limits then fall on it, not on the valid sessions).
pub(super) async fn run(
    client: &Client,
    stats: &HostileStats,
    deadline: Instant,
    start: usize,
    source: std::net::IpAddr,
) {
    let mut i = start;
    while Instant::now() < deadline {
        let kind = KINDS
            .get(i % KINDS.len())
            .copied()
            .unwrap_or(Kind::NoCredentials);
        i = i.wrapping_add(1);
        stats.sent.fetch_add(1, Ordering::Relaxed);
        let outcome = match kind {
            Kind::Stall => stall(client, source).await,
            _ => one(client, kind, source).await,
        };
        match outcome {
            Some(200) => stats.accepted.fetch_add(1, Ordering::Relaxed),
            Some(_) => stats.refused.fetch_add(1, Ordering::Relaxed),
            None => stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

async fn one(client: &Client, kind: Kind, source: std::net::IpAddr) -> Option<u16> {
    let (authorization, body) = match kind {
        Kind::NoCredentials => (None, super::messages::create_cmd_shell()),
        Kind::BadToken => (
            Some("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."),
            super::messages::create_cmd_shell(),
        ),
        Kind::Malformed => (client.authorization_str(), "<s:Envelope><oops".repeat(64)),
        Kind::Attributes => {
            let attrs: String = (0..5_000).map(|i| format!(" a{i}=\"\"")).collect();
            (
                client.authorization_str(),
                super::messages::create_cmd_shell()
                    .replace("<rsp:Shell>", &format!("<rsp:Shell{attrs}>")),
            )
        }
        Kind::Stall => return None,
    };
    // The no-credential and bad-token kinds must not present the load's client
    // certificate either: they come from a client without one.
    let anonymous = matches!(kind, Kind::NoCredentials | Kind::BadToken);
    let mut conn = client.connect_as(!anonymous, Some(source)).await.ok()?;
    conn.post_raw(client, authorization, body).await.ok()
}

async fn stall(client: &Client, source: std::net::IpAddr) -> Option<u16> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(std::net::SocketAddr::new(source, 0)).ok()?;
    let mut tcp = socket.connect(client.target()).await.ok()?;
    // Half a TLS ClientHello's record header, then nothing.
    let _ = tcp.write_all(&[0x16, 0x03, 0x01]).await;
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await;
    None
}
