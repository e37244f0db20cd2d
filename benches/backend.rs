//! Backend throughput over an NTLM-sealed connection (issue #5's benchmark): requests per
//! second for a Receive carrying 1 KB of output, gateway client → the emulated host
//! (`hopgate testhost`, in-process on loopback), one kept-alive authenticated connection.
//! Prints numbers; run with `cargo bench --bench backend`.
//!
//! Login latency per method against real peers (pyspnego, Heimdal) is in
//! `tests/e2e/latency.rs` (`cargo test --test main latency -- --ignored --nocapture`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark: prints its numbers"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use hopgate::backend::{BackendAuth, BackendClient, Credential, HostTarget, Scheme};
use hopgate::testhost::{Testhost, TesthostSettings};
use hopgate::wsman::{self, Body};

const HEAD: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:To>http://127.0.0.1/wsman</a:To><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:5B9E6C1A-3C57-4D8E-9E0D-1F0C3A2B4D5E</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"#;

fn create() -> Bytes {
    Bytes::from(format!(
        r#"{HEAD}<a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action></s:Header><s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></s:Body></s:Envelope>"#
    ))
}

fn command(shell: &str, line: &str) -> Bytes {
    Bytes::from(format!(
        r#"{HEAD}<a:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action><w:SelectorSet><w:Selector Name="ShellId">{shell}</w:Selector></w:SelectorSet></s:Header><s:Body><rsp:CommandLine><rsp:Command>{line}</rsp:Command></rsp:CommandLine></s:Body></s:Envelope>"#
    ))
}

fn receive(shell: &str, cmd: &str) -> Bytes {
    Bytes::from(format!(
        r#"{HEAD}<a:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action><w:SelectorSet><w:Selector Name="ShellId">{shell}</w:Selector></w:SelectorSet></s:Header><s:Body><rsp:Receive><rsp:DesiredStream CommandId="{cmd}">stdout stderr</rsp:DesiredStream></rsp:Receive></s:Body></s:Envelope>"#
    ))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let host = Testhost::bind(TesthostSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        scheme: hopgate::testhost::Scheme::Http,
        tls_cert: None,
        tls_key: None,
        users: vec![("svc-bench".into(), "Bench-Passw0rd".into())],
        hostname: "BENCH-HOST".into(),
        hold_receives: false,
    })
    .await
    .unwrap();
    let port = host.local_addr().unwrap().port();
    tokio::spawn(host.serve(std::future::pending()));
    let client = BackendClient::new(
        HostTarget::new("bench", "127.0.0.1", port, Scheme::Http, BackendAuth::Ntlm),
        Credential::new("svc-bench", "Bench-Passw0rd"),
    )
    .unwrap();
    let limits = wsman::Limits::default();
    let r = client.send(create()).await.unwrap();
    let env = wsman::parse(&r.body, &limits).unwrap();
    let shell = env.shell_id().unwrap().to_string();

    let line = format!("echo {}", "x".repeat(1019)); // 1019 + "\r\n" + echo's own: ~1 KB
    let mut receive_time = Duration::ZERO;
    let mut bytes = 0usize;
    let n = 2000;
    let all = Instant::now();
    for _ in 0..n {
        let r = client.send(command(&shell, &line)).await.unwrap();
        let Body::CommandResponse { command_id } = wsman::parse(&r.body, &limits).unwrap().body
        else {
            panic!("no CommandResponse");
        };
        let t = Instant::now();
        let r = client.send(receive(&shell, &command_id)).await.unwrap();
        receive_time += t.elapsed();
        assert_eq!(r.status, 200);
        if let Body::ReceiveResponse { streams, .. } = wsman::parse(&r.body, &limits).unwrap().body
        {
            bytes += streams.iter().map(|s| s.data.len()).sum::<usize>();
        }
    }
    let total = all.elapsed();
    println!(
        "ntlm-sealed Receive with {} B of output: {:.0} requests/s ({:.1} µs each), \
         {n} Command+Receive pairs in {:.2} s ({:.0} requests/s overall)",
        bytes / n,
        n as f64 / receive_time.as_secs_f64(),
        receive_time.as_secs_f64() * 1e6 / n as f64,
        total.as_secs_f64(),
        (2 * n) as f64 / total.as_secs_f64(),
    );
}
