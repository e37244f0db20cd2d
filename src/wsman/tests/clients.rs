//! Requests built by other real clients (pywinrm, Go masterzen/winrm), captured into
//! `tests/fixtures/wsman/` (see its README): different prefixes, CDATA, declarations.

use std::path::PathBuf;

use crate::wsman::ns;
use crate::wsman::{parse, Action, Body, Envelope, Limits, SignalCode};

fn fixtures(client: &str) -> Vec<(String, Envelope)> {
    let dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wsman")).join(client);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let env = parse(&std::fs::read(&p).unwrap(), &Limits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, env)
        })
        .collect()
}

fn by_action<'a>(all: &'a [(String, Envelope)], action: &Action) -> Vec<&'a Envelope> {
    all.iter()
        .map(|(_, e)| e)
        .filter(|e| &e.header.action == action)
        .collect()
}

#[test]
fn pywinrm_requests() {
    let all = fixtures("pywinrm");
    assert_eq!(all.len(), 6);
    for (name, env) in &all {
        // pywinrm hard-codes this To, whatever URL it was given.
        assert_eq!(
            env.header.to.as_deref(),
            Some("http://windows-host:5985/wsman"),
            "{name}"
        );
        assert_eq!(
            env.header.reply_to.as_deref(),
            Some(ns::ANONYMOUS),
            "{name}"
        );
        assert_eq!(env.header.max_envelope_size, Some(153_600));
        assert_eq!(env.header.locale.as_deref(), Some("en-US"));
        // Its `mustUnderstand` attributes lack the SOAP prefix, so they mean nothing.
        assert!(env.header.unknown_must_understand.is_empty());
    }
    let create = by_action(&all, &Action::Create)[0];
    assert_eq!(create.option("WINRS_CODEPAGE"), Some("437"));
    assert_eq!(create.option("WINRS_NOPROFILE"), Some("FALSE"));
    let Body::Shell(shell) = &create.body else {
        panic!("{:?}", create.body)
    };
    assert_eq!(shell.working_directory.as_deref(), Some("C:\\Temp"));
    assert_eq!(
        shell.environment,
        vec![
            ("PATH_EXTRA".to_owned(), "C:\\tools & more".to_owned()),
            ("Q".to_owned(), "\"quoted\" <x>".to_owned()),
        ]
    );

    let command = by_action(&all, &Action::Command)[0];
    assert_eq!(
        command.shell_id(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(command.option("WINRS_SKIP_CMD_SHELL"), Some("FALSE"));
    let Body::CommandLine(cl) = &command.body else {
        panic!("{:?}", command.body)
    };
    // pywinrm splits the program from its arguments and joins the arguments with spaces.
    assert_eq!(cl.command, "cmd.exe");
    assert_eq!(cl.arguments, vec!["/c echo a && echo b>&2".to_owned()]);

    let send = by_action(&all, &Action::Send)[0];
    let Body::Send(streams) = &send.body else {
        panic!("{:?}", send.body)
    };
    assert_eq!(streams[0].data, b"echo from stdin\r\n");
    assert!(streams[0].end);
    assert_eq!(
        streams[0].command_id.as_deref(),
        Some("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE")
    );

    let signal = by_action(&all, &Action::Signal)[0];
    assert!(matches!(
        signal.body,
        Body::Signal {
            code: SignalCode::Terminate,
            ..
        }
    ));
    let receive = by_action(&all, &Action::Receive)[0];
    assert!(matches!(&receive.body, Body::Receive(d) if d[0].streams == "stdout stderr"));
    assert_eq!(by_action(&all, &Action::Delete)[0].body, Body::Empty);
}

#[test]
fn go_winrm_requests() {
    let all = fixtures("go-winrm");
    assert_eq!(all.len(), 7);
    for (name, env) in &all {
        assert_eq!(
            env.header.to.as_deref(),
            Some("https://winhost.example:5986/wsman"),
            "{name}"
        );
        assert_eq!(env.header.operation_timeout.as_deref(), Some("PT60S"));
    }
    let create = by_action(&all, &Action::Create)[0];
    assert_eq!(create.option("WINRS_CODEPAGE"), Some("65001"));

    let command = by_action(&all, &Action::Command)[0];
    let Body::CommandLine(cl) = &command.body else {
        panic!("{:?}", command.body)
    };
    // Go puts the whole line, unsplit, in a CDATA section.
    assert_eq!(cl.command, "ipconfig /all & whoami");
    assert!(cl.arguments.is_empty());

    let sends = by_action(&all, &Action::Send);
    let data: Vec<(&[u8], bool)> = sends
        .iter()
        .map(|e| match &e.body {
            Body::Send(s) => (s[0].data.as_slice(), s[0].end),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        data,
        vec![(&b"stdin <data>\r\n"[..], false), (&b""[..], true)]
    );
}

#[test]
fn client_requests_splice_cleanly() {
    // The To rewrite works on pretty-printed (Go) and declaration-led (pywinrm) input.
    for client in ["pywinrm", "go-winrm"] {
        for (name, env) in fixtures(client) {
            let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wsman"));
            let input = std::fs::read(dir.join(client).join(&name)).unwrap();
            let out = crate::wsman::rewrite_to(&input, &env, "https://backend:5986/wsman");
            let back = parse(&out, &Limits::default()).unwrap();
            assert_eq!(
                back.header.to.as_deref(),
                Some("https://backend:5986/wsman")
            );
            assert_eq!(back.body, env.body, "{client}/{name}");
        }
    }
}
