//! The envelopes the load generator sends: what pywinrm sends for a WinRS cmd shell, with a
//! fresh MessageID each (the gateway and Windows answer by it).

const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>http://127.0.0.1/wsman</a:To><a:ReplyTo><a:Address env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize env:mustUnderstand="true">153600</w:MaxEnvelopeSize>"#;
const CMD_URI: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";

fn header(action: &str, timeout_secs: u64, shell: Option<&str>) -> String {
    let selector = shell
        .map(|s| {
            format!(r#"<w:SelectorSet><w:Selector Name="ShellId">{s}</w:Selector></w:SelectorSet>"#)
        })
        .unwrap_or_default();
    format!(
        r#"{HEAD}<a:MessageID>uuid:{id}</a:MessageID><w:Locale env:mustUnderstand="false" xml:lang="en-US"/><w:OperationTimeout>PT{timeout_secs}S</w:OperationTimeout><w:ResourceURI env:mustUnderstand="true">{CMD_URI}</w:ResourceURI><a:Action env:mustUnderstand="true">{action}</a:Action>{selector}"#,
        id = uuid::Uuid::new_v4()
    )
}

pub(super) fn create_cmd_shell() -> String {
    format!(
        r#"{}<w:OptionSet><w:Option Name="WINRS_NOPROFILE">FALSE</w:Option><w:Option Name="WINRS_CODEPAGE">437</w:Option></w:OptionSet></env:Header><env:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></env:Body></env:Envelope>"#,
        header(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            20,
            None
        )
    )
}

pub(super) fn command(shell: &str, line: &str) -> String {
    format!(
        r#"{}<w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option></w:OptionSet></env:Header><env:Body><rsp:CommandLine><rsp:Command>{}</rsp:Command></rsp:CommandLine></env:Body></env:Envelope>"#,
        header(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
            20,
            Some(shell)
        ),
        escape(line)
    )
}

pub(super) fn receive(shell: &str, command_id: &str, timeout_secs: u64) -> String {
    format!(
        r#"{}<w:OptionSet><w:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">TRUE</w:Option></w:OptionSet></env:Header><env:Body><rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive></env:Body></env:Envelope>"#,
        header(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
            timeout_secs,
            Some(shell)
        )
    )
}

pub(super) fn signal_terminate(shell: &str, command_id: &str) -> String {
    format!(
        r#"{}</env:Header><env:Body><rsp:Signal CommandId="{command_id}"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code></rsp:Signal></env:Body></env:Envelope>"#,
        header(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
            20,
            Some(shell)
        )
    )
}

pub(super) fn delete(shell: &str) -> String {
    format!(
        r#"{}</env:Header><env:Body/></env:Envelope>"#,
        header(
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
            20,
            Some(shell)
        )
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
