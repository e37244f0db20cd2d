//! The inspector driven without sockets: recorded traffic (`../shared/corpus`,
//! `tests/fixtures/wsman`), policy table cases, and the failed-pipeline replies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod ansible;
mod corpus;
mod denied;
mod policy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use uuid::Uuid;

use super::*;
use crate::policy::{Engine, Subject};
use crate::psrp::{fragment_message, Destination, Message, MessageType};
use crate::wsman::{self, Action, Body, CommandLine, Envelope, Header, Selector, Stream};

pub(super) const RPID: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);

pub(super) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub(super) fn engine(dir: &str) -> Arc<Engine> {
    Arc::new(crate::policy::load_dir(&repo().join(dir)).unwrap())
}

/// A principal, the host `demo-host`, and an engine.
pub(super) struct Who {
    pub engine: Arc<Engine>,
    pub subject: Subject,
    pub labels: Vec<String>,
    pub host: &'static str,
}

impl Who {
    /// alice under the demo role (restricted language, a few cmdlets).
    pub(super) fn alice() -> Self {
        Self {
            engine: engine("policies"),
            subject: Subject {
                user: "alice@hopgate.test".into(),
                groups: vec![],
            },
            labels: vec![],
            host: "demo-host",
        }
    }

    /// A member of hopgate-admins: everything allowed, everywhere.
    pub(super) fn admin() -> Self {
        Self {
            engine: engine("policies"),
            subject: Subject {
                user: "root@hopgate.test".into(),
                groups: vec!["hopgate-admins".into()],
            },
            labels: vec![],
            host: "anything",
        }
    }

    pub(super) fn judge(&self) -> Judge<'_> {
        Judge {
            engine: &self.engine,
            subject: &self.subject,
            host: crate::policy::HostRef {
                name: self.host,
                labels: &self.labels,
            },
        }
    }
}

/// Counts ids so that gateway-made ids are predictable.
pub(super) fn counter() -> impl FnMut() -> Uuid {
    let mut n = 0u128;
    move || {
        n += 1;
        Uuid::from_u128(n)
    }
}

/// A request envelope on shell `SH` as a client would send it.
pub(super) fn request(action: Action, resource: &str, body: Body) -> Envelope {
    let mut h = Header::new(action);
    h.to = Some("https://gw/wsman".into());
    h.reply_to = Some(wsman::ns::ANONYMOUS.into());
    h.message_id = Some("uuid:00000000-0000-0000-0000-0000000000AA".into());
    h.resource_uri = Some(resource.into());
    h.selectors = vec![Selector {
        name: "ShellId".into(),
        value: "SH".into(),
    }];
    Envelope::new(h, body)
}

pub(super) const PS: &str = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";

/// Opens an inspector for a shell of `resource` (must be allowed).
pub(super) fn open(who: &Who, resource: &str) -> Inspector {
    let env = request(Action::Create, resource, Body::Shell(Default::default()));
    let (opened, facts) = Inspector::open(&env, &who.judge());
    assert!(facts.is_empty(), "{facts:?}");
    opened.unwrap()
}

/// Runs one request through `inspector`.
pub(super) fn inspect(
    inspector: &mut Inspector,
    who: &Who,
    env: &Envelope,
    ids: &mut dyn FnMut() -> Uuid,
) -> (Verdict, Vec<Fact>) {
    let wire = Bytes::from(wsman::build(env));
    inspector.on_request(
        Request {
            envelope: env,
            wire: &wire,
        },
        &who.judge(),
        ids,
    )
}

/// One command of a CREATE_PIPELINE: name, IsScript, arguments (name, string value).
pub(super) type Cmd<'a> = (&'a str, bool, &'a [(Option<&'a str>, &'a str)]);

fn cmd_xml(c: &Cmd<'_>, next_ref: &mut u32) -> String {
    let (name, is_script, args) = c;
    let mut r = || {
        *next_ref += 1;
        *next_ref
    };
    let mut a = String::new();
    for (n, v) in args.iter() {
        let n = match n {
            Some(n) => format!(r#"<S N="N">{n}</S>"#),
            None => r#"<Nil N="N" />"#.to_string(),
        };
        a.push_str(&format!(
            r#"<Obj RefId="{}"><MS>{n}<S N="V">{}</S></MS></Obj>"#,
            r(),
            quick_xml::escape::escape(*v)
        ));
    }
    format!(
        r#"<Obj RefId="{}"><MS><S N="Cmd">{}</S><B N="IsScript">{is_script}</B><Obj N="Args" RefId="{}"><LST>{a}</LST></Obj></MS></Obj>"#,
        r(),
        quick_xml::escape::escape(*name),
        r()
    )
}

/// The CLIXML of a CREATE_PIPELINE with these statements.
pub(super) fn create_pipeline_xml(statements: &[&[Cmd<'_>]]) -> String {
    let mut n = 10;
    let list = |st: &[Cmd<'_>], n: &mut u32| st.iter().map(|c| cmd_xml(c, n)).collect::<String>();
    let first = list(statements[0], &mut n);
    let mut extra = String::new();
    if statements.len() > 1 {
        for st in statements {
            n += 1;
            let id = n;
            let cmds = list(st, &mut n);
            extra.push_str(&format!(
                r#"<Obj RefId="{id}"><MS><Obj N="Cmds" RefId="{}"><LST>{cmds}</LST></Obj></MS></Obj>"#,
                id + 1000
            ));
        }
        extra = format!(r#"<Obj N="ExtraCmds" RefId="3"><LST>{extra}</LST></Obj>"#);
    }
    format!(
        r#"<Obj RefId="0"><MS><B N="NoInput">true</B><Obj N="PowerShell" RefId="1"><MS><Obj N="Cmds" RefId="2"><LST>{first}</LST></Obj>{extra}<B N="IsNested">false</B></MS></Obj></MS></Obj>"#
    )
}

/// Fragment bytes of a client message.
pub(super) fn client_message(
    t: MessageType,
    pid: Uuid,
    xml: &str,
    object_id: u64,
    max: usize,
) -> Vec<Vec<u8>> {
    let msg = Message {
        destination: Destination::Server,
        message_type: t,
        rpid: RPID,
        pid,
        data: xml.as_bytes().to_vec(),
    };
    fragment_message(object_id, &msg.to_bytes(), max)
        .into_iter()
        .map(|f| f.to_bytes().unwrap())
        .collect()
}

/// A PSRP Command carrying the whole of `xml` as CREATE_PIPELINE (object `object_id`).
pub(super) fn psrp_command(command_id: &str, xml: &str, object_id: u64) -> Envelope {
    let frags = client_message(
        MessageType::CreatePipeline,
        Uuid::parse_str(command_id).unwrap_or(Uuid::nil()),
        xml,
        object_id,
        1 << 20,
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(frags.concat());
    request(
        Action::Command,
        PS,
        Body::CommandLine(CommandLine {
            command_id: Some(command_id.into()),
            command: String::new(),
            arguments: vec![b64],
        }),
    )
}

pub(super) fn receive(command_id: &str) -> Envelope {
    request(
        Action::Receive,
        PS,
        Body::Receive(vec![wsman::DesiredStream {
            command_id: Some(command_id.into()),
            streams: "stdout".into(),
        }]),
    )
}

pub(super) fn send(command_id: &str, data: Vec<u8>) -> Envelope {
    request(
        Action::Send,
        PS,
        Body::Send(vec![Stream {
            name: "stdin".into(),
            command_id: Some(command_id.into()),
            end: false,
            data,
        }]),
    )
}

pub(super) fn denied_reasons(facts: &[Fact]) -> Vec<String> {
    facts
        .iter()
        .filter_map(|f| match f {
            Fact::Denied { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn allowed(facts: &[Fact]) -> Vec<Vec<String>> {
    facts
        .iter()
        .filter_map(|f| match f {
            Fact::Allowed { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect()
}
