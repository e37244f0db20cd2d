//! Audit export to a real collector: Debian's rsyslogd (run unprivileged, in the
//! foreground, on a loopback port) receives a real client session's audit lines over TCP
//! and over TLS (gnutls), parses them as RFC 5424, and what it stores is exactly what the
//! audit file holds, chain included. Also: `hopgate serve` with `[audit] stdout = true`
//! prints exactly the audit lines on stdout, logs only on stderr.
//!
//! Without rsyslogd the syslog tests skip with a message, except in CI (`CI=true`) where a
//! missing rsyslogd fails them: scripts/test.sh installs `rsyslog` and `rsyslog-gnutls`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::support::{eventually, python, ClientRun, Gateway, GatewayOptions, ALICE};

/// The rsyslogd binary, or `None` (after saying so) when the test should be skipped.
fn rsyslogd() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "rsyslogd is not installed; CI must have it (scripts/test.sh installs rsyslog rsyslog-gnutls)"
        );
        eprintln!("SKIPPED: rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls)");
    }
    found
}

/// A free loopback port (bound and released; rsyslogd binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS material for rsyslog's gnutls driver.
struct RsyslogTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// rsyslogd in the foreground with a private config, work directory and pid file, storing
/// what it receives on `port` as `PRI|MSGID|APP-NAME|HOSTNAME|PROCID|TIMESTAMP|SD|MSG`
/// lines in `parsed` (its own RFC 5424 parser's reading) and the raw messages in `raw`.
struct Rsyslog {
    child: Child,
    port: u16,
    parsed: PathBuf,
    raw: PathBuf,
    conf: PathBuf,
    pidfile: PathBuf,
    bin: PathBuf,
}

impl Rsyslog {
    async fn start(bin: PathBuf, dir: &Path, tls: Option<&RsyslogTls>) -> Rsyslog {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let port = free_port();
        let p = |f: &Path| f.display().to_string();
        let (tls_global, tls_module) = match tls {
            None => (String::new(), String::new()),
            Some(t) => (
                format!(
                    " defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    p(&t.ca),
                    p(&t.cert),
                    p(&t.key)
                ),
                " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\""
                    .to_string(),
            ),
        };
        let parsed = dir.join("parsed.log");
        let raw = dir.join("raw.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}" maxMessageSize="256k"{tls_global})
module(load="imtcp"{tls_module})
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="parsed" type="string" string="%pri%|%msgid%|%app-name%|%hostname%|%procid%|%timereported:::date-rfc3339%|%structured-data%|%msg%\n")
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="{parsed}" template="parsed")
action(type="omfile" file="{raw}" template="raw")
"#,
                work = p(&work),
                parsed = p(&parsed),
                raw = p(&raw),
            ),
        )
        .unwrap();
        let mut r = Rsyslog {
            child: Self::spawn(&bin, &conf, &dir.join("rsyslogd.pid")),
            port,
            parsed,
            raw,
            conf,
            pidfile: dir.join("rsyslogd.pid"),
            bin,
        };
        r.wait_ready().await;
        r
    }

    fn spawn(bin: &Path, conf: &Path, pidfile: &Path) -> Child {
        Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(conf)
            .arg("-i")
            .arg(pidfile)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("rsyslogd starts")
    }

    async fn wait_ready(&mut self) {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rsyslogd exited before listening: {status}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rsyslogd not listening on {addr} within 10 s");
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills rsyslogd (the collector crashes).
    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
        let _ = std::fs::remove_file(&self.pidfile);
    }

    /// Starts it again with the same config, port and output files.
    async fn restart(&mut self) {
        self.child = Self::spawn(&self.bin, &self.conf, &self.pidfile);
        self.wait_ready().await;
    }

    fn received(&self) -> Vec<Received> {
        std::fs::read_to_string(&self.parsed)
            .unwrap_or_default()
            .lines()
            .map(Received::parse)
            .collect()
    }

    /// Waits until rsyslog has stored `n` messages.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let ok = eventually(Duration::from_secs(40), || self.received().len() >= n).await;
        let got = self.received();
        assert!(ok, "rsyslog stored {} of {n} messages: {got:#?}", got.len());
        got
    }
}

/// One message as rsyslog's RFC 5424 parser read it.
#[derive(Debug)]
struct Received {
    pri: u16,
    msgid: String,
    app_name: String,
    hostname: String,
    procid: String,
    timestamp: String,
    sd: String,
    /// MSG without its BOM.
    msg: String,
    had_bom: bool,
}

impl Received {
    fn parse(line: &str) -> Received {
        let f: Vec<&str> = line.splitn(8, '|').collect();
        assert_eq!(f.len(), 8, "{line}");
        let msg = f[7];
        Received {
            pri: f[0].parse().unwrap(),
            msgid: f[1].into(),
            app_name: f[2].into(),
            hostname: f[3].into(),
            procid: f[4].into(),
            timestamp: f[5].into(),
            sd: f[6].into(),
            msg: msg.trim_start_matches('\u{feff}').into(),
            had_bom: msg.starts_with('\u{feff}'),
        }
    }
}

/// A second gateway beside `base` (same stand-in host and certificates), with its own
/// audit directory and `extra` appended to its config.
struct ExportGateway {
    addr: SocketAddr,
    audit_file: PathBuf,
    exporters: std::sync::Arc<hopgate::audit::export::Exporters>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ExportGateway {
    async fn start(base: &Gateway, name: &str, extra: &str) -> ExportGateway {
        let d = base.dir.path();
        let text = std::fs::read_to_string(d.join("hopgate.toml"))
            .unwrap()
            .replace("dir = \"audit\"", &format!("dir = \"audit-{name}\""));
        let path = d.join(format!("hopgate-{name}.toml"));
        std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
        let config = hopgate::config::Config::load(&path).unwrap();
        let bound = hopgate::app::bind(config).await.unwrap();
        let addr = bound.local_addr().unwrap();
        let exporters = bound.audit_exporters().expect("export configured");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        ExportGateway {
            addr,
            exporters,
            audit_file: d.join(format!("audit-{name}/audit.jsonl")),
            stop,
            task,
        }
    }

    fn audit_lines(&self) -> Vec<String> {
        audit_lines(&self.audit_file)
    }

    fn syslog_stats(&self) -> hopgate::audit::export::ExportStats {
        self.exporters.stats().into_iter().next().unwrap()
    }

    /// Stops the gateway: the writer flushes and the exporters drain.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

fn audit_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// pywinrm with alice's client certificate against the gateway at `addr`.
async fn pywinrm(base: &Gateway, addr: SocketAddr, cmd: &str, args: &[&str]) -> ClientRun {
    let mut a = vec![
        "--endpoint".to_string(),
        format!("https://127.0.0.1:{}/wsman/standin", addr.port()),
        "--transport".into(),
        "certificate".into(),
        "--cert".into(),
        base.certs.client_cert.display().to_string(),
        "--key".into(),
        base.certs.client_key.display().to_string(),
        "--ca".into(),
        base.certs.ca.display().to_string(),
        "--cmd".into(),
        cmd.into(),
    ];
    a.extend(args.iter().map(|x| format!("--arg={x}")));
    python("tests/clients/pywinrm_client.py", &a).await
}

/// Waits until the audit file at `path` satisfies `pred`.
async fn audit_until(path: &Path, pred: impl Fn(&[Value]) -> bool) {
    let ok = eventually(Duration::from_secs(10), || {
        pred(&crate::support::read_jsonl(path))
    })
    .await;
    assert!(ok, "{:#?}", crate::support::read_jsonl(path));
}

fn count(events: &[Value], name: &str) -> usize {
    events.iter().filter(|e| e["event"] == name).count()
}

/// What a SIEM checks: every audit line arrived once, in order, byte for byte as MSG (so
/// the chain verifies), with the event as MSGID, PRI from local4 and the event's
/// severity, TIMESTAMP = `ts`, and session_id/seq/hash as structured data.
fn assert_received_equals_file(got: &[Received], lines: &[String], dir: &Path) {
    let msgs: Vec<&str> = got.iter().map(|r| r.msg.as_str()).collect();
    assert_eq!(msgs, lines, "rsyslog's MSGs are the audit file's lines");
    for (r, line) in got.iter().zip(lines) {
        let v: Value = serde_json::from_str(line).unwrap();
        let event = v["event"].as_str().unwrap();
        assert!(r.had_bom, "UTF-8 MSG starts with the BOM: {r:?}");
        assert_eq!(r.msgid, event);
        assert_eq!(r.app_name, "hopgate");
        assert_eq!(r.procid, std::process::id().to_string());
        assert!(!r.hostname.is_empty() && r.hostname != "-", "{r:?}");
        assert_eq!(r.timestamp, v["ts"].as_str().unwrap(), "{r:?}");
        let severity = match event {
            "command.denied" | "authn.failure" | "access.denied" | "backend.auth" => 4,
            "audit.gap" => 3,
            "session.start" | "session.end" | "command.allowed" | "output" => 6,
            _ => 5,
        };
        assert_eq!(r.pri, 20 * 8 + severity, "local4 + severity of {event}");
        let mut sd = String::from("[hopgate@32473");
        if let Some(s) = v["session_id"].as_str() {
            sd.push_str(&format!(" session_id=\"{s}\""));
        }
        sd.push_str(&format!(
            " seq=\"{}\" hash=\"{}\"]",
            v["seq"],
            v["hash"].as_str().unwrap()
        ));
        assert_eq!(r.sd, sd);
    }
    // The receiver's copy verifies on its own, with the same hashes.
    let copy = dir.join("received.jsonl");
    std::fs::write(&copy, msgs.join("\n") + "\n").unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        hopgate::cli::audit::run_args(&["verify", copy.to_str().unwrap()], &mut out, &mut err);
    assert_eq!(
        code,
        0,
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_the_audit_trail_over_tcp_and_across_its_restart() {
    let Some(bin) = rsyslogd() else { return };
    let base = Gateway::start(GatewayOptions::default()).await;
    let rdir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(bin, rdir.path(), None).await;
    let gw = ExportGateway::start(
        &base,
        "tcp",
        &format!(
            "[audit.syslog]\naddress = \"{}\"\nfacility = \"local4\"",
            rsyslog.address()
        ),
    )
    .await;

    let run = pywinrm(&base, gw.addr, "ipconfig", &["/all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    audit_until(&gw.audit_file, |e| count(e, "session.end") >= 1).await;
    let first = gw.audit_lines();
    rsyslog.wait_for(first.len()).await;

    // The collector crashes; the gateway keeps serving and queues what it cannot send.
    rsyslog.kill().await;
    let denied = pywinrm(&base, gw.addr, "shutdown", &["/s", "/t", "0"]).await;
    assert_eq!(
        denied.code, 2,
        "sessions go on during an export outage: {denied:?}"
    );
    audit_until(&gw.audit_file, |e| count(e, "command.denied") >= 1).await;
    assert!(gw.audit_lines().len() > first.len());
    let st = gw.syslog_stats();
    assert!(!st.connected && st.queued > 0, "{st:?}");
    assert_eq!(usize::try_from(st.sent).unwrap(), first.len(), "{st:?}");

    // Back again: the queued lines arrive, nothing twice.
    rsyslog.restart().await;
    let lines = gw.audit_lines();
    let got = rsyslog.wait_for(lines.len()).await;
    assert_received_equals_file(&got, &lines, rdir.path());
    assert!(got
        .iter()
        .any(|r| r.msgid == "command.denied" && r.pri == 164));
    assert!(got.iter().any(|r| r.msgid == "output"));
    assert!(got.iter().any(|r| r.sd.contains("session_id=")));
    // The raw messages are octet-counted RFC 5424 as sent (rsyslog stores them unframed).
    let raw = std::fs::read_to_string(&rsyslog.raw).unwrap();
    assert!(
        raw.lines().all(|l| l.starts_with('<') && l.contains(">1 ")),
        "{raw}"
    );
    let st = gw.syslog_stats();
    assert!(st.connected, "{st:?}");
    assert_eq!(
        (usize::try_from(st.sent).unwrap(), st.queued, st.dropped),
        (lines.len(), 0, 0)
    );

    gw.stop().await;
    base.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_receives_the_audit_trail_over_tls() {
    let Some(bin) = rsyslogd() else { return };
    let base = Gateway::start(GatewayOptions::default()).await;
    let d = base.dir.path();
    // The gateway's dev CA signed a server certificate for localhost/127.0.0.1: rsyslog
    // presents it, the exporter trusts that CA.
    let tls = RsyslogTls {
        ca: base.certs.ca.clone(),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
    };
    let rdir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(bin, rdir.path(), Some(&tls)).await;
    let gw = ExportGateway::start(
        &base,
        "tls",
        &format!(
            "[audit.syslog]\naddress = \"{}\"\ntls = true\nca_file = \"ca.pem\"\nserver_name = \"localhost\"\nfacility = \"local4\"",
            rsyslog.address()
        ),
    )
    .await;

    let run = pywinrm(&base, gw.addr, "ipconfig", &["/all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let denied = pywinrm(&base, gw.addr, "shutdown", &["/s", "/t", "0"]).await;
    assert_eq!(denied.code, 2, "{denied:?}");
    audit_until(&gw.audit_file, |e| {
        count(e, "session.end") >= 1 && count(e, "command.denied") >= 1
    })
    .await;
    gw.stop().await;
    let lines = audit_lines(&base.dir.path().join("audit-tls/audit.jsonl"));
    let got = rsyslog.wait_for(lines.len()).await;
    assert_received_equals_file(&got, &lines, rdir.path());
    assert!(got.iter().any(|r| r.msgid == "command.allowed"));
    base.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_stdout_export_prints_exactly_the_audit_lines() {
    let base = Gateway::start(GatewayOptions::default()).await;
    let d = base.dir.path();
    let text = std::fs::read_to_string(d.join("hopgate.toml"))
        .unwrap()
        .replace("dir = \"audit\"", "dir = \"audit-stdout\"\nstdout = true");
    std::fs::write(d.join("hopgate-stdout.toml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hopgate"))
        .arg("serve")
        .arg("--config")
        .arg(d.join("hopgate-stdout.toml"))
        .env("RUST_LOG", "debug")
        .env("HOPGATE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The bound address is in the start-up log, on stderr.
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let log = tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut addr_tx = Some(addr_tx);
        let mut all = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).unwrap_or_default();
            if v["fields"]["message"] == "hopgate ready" {
                let addr = v["fields"]["addr"].as_str().and_then(|a| a.parse().ok());
                if let (Some(tx), Some(addr)) = (addr_tx.take(), addr) {
                    let _ = tx.send(addr);
                }
            }
            all.push(l);
        }
        all
    });
    let stdout = child.stdout.take().unwrap();
    let out = tokio::spawn(async move {
        let mut s = String::new();
        use tokio::io::AsyncReadExt;
        let mut r = stdout;
        r.read_to_string(&mut s).await.unwrap();
        s
    });
    let addr = tokio::time::timeout(Duration::from_secs(30), addr_rx)
        .await
        .expect("hopgate ready within 30 s")
        .expect("hopgate logged its address");

    let run = pywinrm(&base, addr, "ipconfig", &["/all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let audit_file = d.join("audit-stdout/audit.jsonl");
    audit_until(&audit_file, |e| count(e, "session.end") >= 1).await;

    let pid = child.id().unwrap().to_string();
    let st = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(st.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("hopgate stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let printed = out.await.unwrap();
    let logs = log.await.unwrap();
    let lines = audit_lines(&audit_file);
    assert!(lines.len() >= 4, "{lines:#?}");
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        lines,
        "stdout carries exactly the audit lines"
    );
    assert!(
        logs.iter().any(|l| l.contains("hopgate ready")),
        "logs go to stderr: {logs:#?}"
    );
    assert!(
        printed.lines().all(|l| l.contains("\"hash\":")),
        "no log line on stdout"
    );
    assert!(lines.iter().any(|l| l.contains(ALICE)));
    base.stop().await;
}
