//! A raw HTTPS client for requests that real WinRM clients never make (no credentials,
//! foreign ShellIds, malformed envelopes).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

use hopgate::tls::{client_config, load_certs, load_key, load_roots};

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// Client side of one TLS connection's setup.
pub struct RawClient {
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    /// The local address connections come from (another loopback address stands for
    /// another client machine); None: the system's choice.
    source: Option<std::net::IpAddr>,
}

impl RawClient {
    /// `client`: a (certificate, key) pair to present, if any.
    pub fn new(addr: SocketAddr, ca: &Path, client: Option<(&Path, &Path)>) -> RawClient {
        let identity =
            client.map(|(cert, key)| (load_certs(cert).unwrap(), load_key(key).unwrap()));
        RawClient {
            config: client_config(load_roots(ca).unwrap(), identity).unwrap(),
            addr,
            source: None,
        }
    }

    /// Connects from `ip` (e.g. 127.0.0.2: another source address on loopback).
    pub fn with_source(mut self, ip: std::net::IpAddr) -> RawClient {
        self.source = Some(ip);
        self
    }

    /// A TCP connection to the gateway from this client's source address.
    pub async fn tcp(&self) -> Result<tokio::net::TcpStream, String> {
        let Some(ip) = self.source else {
            return tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string());
        };
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| e.to_string())?;
        socket.connect(self.addr).await.map_err(|e| e.to_string())
    }

    /// A TLS connection with nothing sent on it yet, for hand-written HTTP.
    pub async fn tls(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let tcp = self.tcp().await?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("tls: {e}"))
    }

    /// POSTs `body` to `path` on a new connection; Err is a transport failure (e.g. the
    /// TLS handshake refused).
    pub async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> Result<RawResponse, String> {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.post_with(path, &headers, body).await
    }

    /// POSTs `body` to `path` on a new connection with extra headers, repeated names sent
    /// as they are.
    pub async fn post_with(
        &self,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Result<RawResponse, String> {
        self.connect().await?.post_with(path, extra, body).await
    }

    /// Opens a keep-alive connection (TLS handshake done).
    pub async fn connect(&self) -> Result<RawConn, String> {
        let tls = self.tls().await?;
        let server_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(RawConn {
            sender,
            port: self.addr.port(),
            server_cert,
        })
    }
}

/// One keep-alive HTTPS connection to the gateway.
pub struct RawConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    port: u16,
    /// DER of the certificate the server presented in this connection's handshake.
    pub server_cert: Vec<u8>,
}

impl RawConn {
    /// POSTs `body` to `path` on this connection.
    pub async fn post(
        &mut self,
        path: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> Result<RawResponse, String> {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        self.post_with(path, &headers, body).await
    }

    /// POSTs `body` to `path` on this connection with extra headers.
    pub async fn post_with(
        &mut self,
        path: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Result<RawResponse, String> {
        let mut req = http::Request::post(path)
            .header("host", format!("localhost:{}", self.port))
            .header("content-type", "application/soap+xml;charset=UTF-8");
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(RawResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
        })
    }
}

/// A WinRS cmd-shell Create envelope as pywinrm sends it.
pub fn create_cmd_shell(to: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>{to}</a:To><a:ReplyTo><a:Address env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize env:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:11111111-2222-3333-4444-555555555555</a:MessageID><w:Locale env:mustUnderstand="false" xml:lang="en-US"/><p:DataLocale env:mustUnderstand="false" xml:lang="en-US"/><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action><w:OptionSet><w:Option Name="WINRS_NOPROFILE">FALSE</w:Option><w:Option Name="WINRS_CODEPAGE">437</w:Option></w:OptionSet></env:Header><env:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></env:Body></env:Envelope>"#
    )
}

/// A WinRS Command envelope on `shell_id`.
pub fn command(to: &str, shell_id: &str, command: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>{to}</a:To><a:ReplyTo><a:Address env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize env:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:22222222-2222-3333-4444-555555555555</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action><w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet><w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option></w:OptionSet></env:Header><env:Body><rsp:CommandLine><rsp:Command>{command}</rsp:Command></rsp:CommandLine></env:Body></env:Envelope>"#
    )
}

/// The text of the first element with local name `local` (prefix-agnostic), for asserting
/// on faults and ShellIds without depending on the gateway's own codec.
pub fn element_text(xml: &str, local: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) => {
                inside = e.local_name().as_ref() == local.as_bytes();
            }
            quick_xml::events::Event::Text(t) if inside => {
                return Some(t.decode().ok()?.to_string());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// The ShellId selector value in a CreateResponse.
pub fn shell_id(xml: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_selector = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"Selector" => {
                in_selector = e
                    .attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == b"Name" && a.value.as_ref() == b"ShellId");
            }
            quick_xml::events::Event::Text(t) if in_selector => {
                return Some(t.decode().ok()?.to_string());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// A WinRS Send of `data` to the stdin of `command_id`.
pub fn send_stdin(to: &str, shell_id: &str, command_id: &str, data: &str) -> String {
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>{to}</a:To><a:ReplyTo><a:Address env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize env:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:33333333-2222-3333-4444-555555555555</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send</a:Action><w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></env:Header><env:Body><rsp:Send><rsp:Stream Name="stdin" CommandId="{command_id}">{b64}</rsp:Stream></rsp:Send></env:Body></env:Envelope>"#
    )
}
