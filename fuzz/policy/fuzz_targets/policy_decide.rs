//! Fuzzes the PowerShell parser, the parameter binder and the policy engine together:
//! arbitrary script text (as a PSRP script and as a WinRS command line) is decided for
//! the people of every shipped role. A decision must come back, never a panic, and a
//! decision must not depend on anything but the input (deciding twice agrees).
#![no_main]

use std::sync::OnceLock;

use hopgate_policy::{
    Engine, HostRef, Invocation, InvokedCommand, Operation, PolicySource, Subject,
};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let files: [(&str, &str); 7] = [
            ("demo.toml", include_str!("../../../policies/demo.toml")),
            ("dns-admin.psrc", include_str!("../../../policies/dns-admin.psrc")),
            ("dns-admin.toml", include_str!("../../../policies/dns-admin.toml")),
            ("full-admin.toml", include_str!("../../../policies/full-admin.toml")),
            ("read-only-operator.toml", include_str!("../../../policies/read-only-operator.toml")),
            ("service-restarter.toml", include_str!("../../../policies/service-restarter.toml")),
            ("programs.toml", include_str!("../../../tests/fixtures/policies/programs.toml")),
        ];
        let sources: Vec<PolicySource> = files
            .iter()
            .map(|(path, text)| PolicySource {
                path: path.to_string(),
                text: text.to_string(),
            })
            .collect();
        match Engine::from_sources(&sources) {
            Ok(e) => e,
            Err(e) => panic!("shipped policies must load: {e}"),
        }
    })
}

/// (user, groups, host, labels) covering every shipped role.
const PEOPLE: &[(&str, &[&str], &str, &[&str])] = &[
    ("alice@hopgate.test", &[], "demo-host", &[]),
    ("carol", &["operators"], "srv-01", &[]),
    ("dave", &["svc-restarters"], "app-01", &["app"]),
    ("erin", &["dns-admins"], "dns-01", &["dns"]),
    ("root", &["hopgate-admins", "operators"], "srv-01", &[]),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let engine = engine();
    let inv = Invocation {
        client_input: data.first().is_some_and(|b| b & 1 == 1),
        statements: vec![vec![InvokedCommand {
            name: text.to_string(),
            is_script: true,
            args: Vec::new(),
        }]],
    };
    for (user, groups, host, labels) in PEOPLE {
        let who = Subject {
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let target = HostRef { name: host, labels: &labels };
        let ops = [
            Operation::Pipeline(&inv),
            Operation::CmdLine { command: text, arguments: &[], skip_cmd_shell: false },
            Operation::CmdStdin { program: "powershell -", data: text },
        ];
        for op in &ops {
            let first = engine.decide(&who, &target, op);
            assert_eq!(first, engine.decide(&who, &target, op));
        }
    }
});
