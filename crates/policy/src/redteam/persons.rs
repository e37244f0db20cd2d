//! The people the red-team cases act as: who they are, the host they reach, and which
//! policy set decides (the shipped `policies/` directory, or one test-only fixture role).

/// One person on one host.
#[derive(Debug, Clone, Copy)]
pub(super) struct Person {
    pub(super) user: &'static str,
    pub(super) groups: &'static [&'static str],
    pub(super) host: &'static str,
    pub(super) labels: &'static [&'static str],
    /// `None`: the shipped roles; `Some(file)`: only that file of `tests-data/roles/`.
    pub(super) fixture: Option<&'static str>,
}

const fn shipped(
    user: &'static str,
    groups: &'static [&'static str],
    host: &'static str,
    labels: &'static [&'static str],
) -> Person {
    Person {
        user,
        groups,
        host,
        labels,
        fixture: None,
    }
}

const fn fixture(file: &'static str, group: &'static [&'static str], host: &'static str) -> Person {
    Person {
        user: "tess@corp.example",
        groups: group,
        host,
        labels: &[],
        fixture: Some(file),
    }
}

/// The person a case's `who` names.
pub(super) fn person(name: &str) -> Option<Person> {
    Some(match name {
        // demo.toml: the user alice on demo-host.
        "alice" => shipped("alice@hopgate.test", &[], "demo-host", &[]),
        // demo.toml through the group ops.
        "ops" => shipped("bob@hopgate.test", &["ops"], "demo-host", &[]),
        // read-only-operator.toml on a host matched by name.
        "oper" => shipped("carol", &["operators"], "srv-01", &[]),
        // read-only-operator.toml on a host matched by label.
        "oper-label" => shipped("carol", &["operators"], "win-77", &["windows-server"]),
        // service-restarter.toml.
        "svc" => shipped("dave", &["svc-restarters"], "app-01", &["app"]),
        // dns-admin.toml + dns-admin.psrc (no scripts).
        "dns" => shipped("erin", &["dns-admins"], "dns-01", &["dns"]),
        // full-admin.toml alone.
        "admin" => shipped("root", &["hopgate-admins"], "db-07", &[]),
        // full-admin.toml and demo.toml together: demo's deny rules apply.
        "admin-ops" => shipped("root", &["hopgate-admins", "ops"], "demo-host", &[]),
        // full-admin.toml and service-restarter.toml together: service-restarter's cmd
        // deny (`net (user|localgroup|share).*`) applies to everything full-admin allows.
        "admin-svc" => shipped(
            "root",
            &["hopgate-admins", "svc-restarters"],
            "app-01",
            &["app"],
        ),
        // Nobody: no role applies.
        "mallory" => shipped("mallory@hopgate.test", &["users"], "demo-host", &[]),
        // tests-data/roles/pipeline-restarter.toml (`pipeline_input = true`).
        "pipe" => fixture("pipeline-restarter.toml", &["svc-restarters"], "app-01"),
        // tests-data/roles/local-reader.toml (`local_only = true`).
        "local" => fixture("local-reader.toml", &["readers"], "srv-01"),
        // tests-data/roles/log-reader.toml (Path must be under C:\Logs).
        "logs" => fixture("log-reader.toml", &["log-readers"], "srv-01"),
        // tests-data/roles/self-restarter.toml (deny ComputerName, CimSession, Session).
        "self" => fixture("self-restarter.toml", &["maintainers"], "srv-01"),
        // tests-data/roles/wide-denylist.toml (visible `*`, long cmdlet deny list).
        "desk" => fixture("wide-denylist.toml", &["helpdesk"], "srv-01"),
        // tests-data/roles/trusted-runner.toml (one script trusted by SHA-256).
        "trust" => fixture("trusted-runner.toml", &["runners"], "srv-01"),
        _ => return None,
    })
}
