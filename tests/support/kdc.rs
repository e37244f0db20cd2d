//! Kerberos test fixture: a private Heimdal KDC on a loopback port (tests/support/heimdal.sh),
//! the stand-in host accepting Kerberos with its keytab, and a gateway whose inventory logs
//! in to that host with Kerberos or Negotiate.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::gwdir::GatewayDir;
use super::{repo, Gateway, Standin};

pub const REALM: &str = "GW.TEST";
/// The backend account whose password is vaulted.
pub const SVC_USER: &str = "svc-gw";
pub const SVC_PASSWORD: &str = "Krb-Fixture-Passw0rd";
/// The host's service principal (the stand-in listens on 127.0.0.1; the SPN is set explicitly).
pub const BACKEND_SPN: &str = "HTTP/backend.gw.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the fixtures need to know of a KDC, whichever it is (the private Heimdal [`Kdc`] or
/// the Samba AD DC of `super::samba`): its realm, its URL for the inventory's `kdc`, and a
/// krb5.conf pointing at it for the stand-in host.
pub trait KdcRealm {
    fn realm(&self) -> &str;
    /// `tcp://127.0.0.1:<port>`.
    fn url(&self) -> String;
    fn krb5_conf(&self) -> PathBuf;
}

impl KdcRealm for Kdc {
    fn realm(&self) -> &str {
        REALM
    }
    fn url(&self) -> String {
        Kdc::url(self)
    }
    fn krb5_conf(&self) -> PathBuf {
        Kdc::krb5_conf(self)
    }
}

/// A Heimdal KDC on 127.0.0.1, killed on drop.
pub struct Kdc {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Kdc {
    /// Creates the realm (users `name:password`, services with keytabs) and starts the KDC.
    pub async fn start(users: &[(&str, &str)], services: &[&str], delegate: &[&str]) -> Kdc {
        Self::start_with_lifetimes(users, services, delegate, &[]).await
    }

    /// Same, with maximum ticket lifetimes (`principal`, `15s`) for expiry tests.
    pub async fn start_with_lifetimes(
        users: &[(&str, &str)],
        services: &[&str],
        delegate: &[&str],
        max_life: &[(&str, &str)],
    ) -> Kdc {
        let max_life: Vec<String> = max_life.iter().map(|(p, l)| format!("{p}={l}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let users: Vec<String> = users.iter().map(|(u, p)| format!("{u}:{p}")).collect();
        let out = Command::new("bash")
            .arg(repo().join("tests/support/heimdal.sh"))
            .args(["realm"])
            .arg(dir.path())
            .arg(REALM)
            .arg(port.to_string())
            .env("KDC_USERS", users.join(" "))
            .env("KDC_SERVICES", services.join(" "))
            .env("KDC_DELEGATE", delegate.join(" "))
            .env("KDC_MAX_LIFE", max_life.join(" "))
            .output()
            .await
            .expect("bash runs heimdal.sh");
        assert!(
            out.status.success(),
            "heimdal.sh realm failed (run scripts/test.sh to install Heimdal): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut kdc = Kdc {
            dir,
            port,
            child: None,
        };
        kdc.resume().await;
        kdc
    }

    /// `tcp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The keytab heimdal.sh exported for `service` (`HTTP/host`).
    pub fn keytab(&self, service: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.keytab", service.replace('/', "_")))
    }

    /// Starts (or restarts) the KDC process and waits until it accepts TCP connections.
    pub async fn resume(&mut self) {
        let root = std::env::var("HOPGATE_HEIMDAL_ROOT")
            .unwrap_or_else(|_| "/var/tmp/hopgate-heimdal".into());
        let child = Command::new(format!("{root}/usr/lib/heimdal-servers/kdc"))
            .arg(format!("--config-file={}", self.krb5_conf().display()))
            .arg("--addresses=127.0.0.1")
            .arg(format!("--ports={}", self.port))
            .env("KRB5_CONFIG", self.krb5_conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("heimdal kdc starts");
        self.child = Some(child);
        let up = super::eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        })
        .await;
        assert!(up, "kdc listening on 127.0.0.1:{}", self.port);
    }

    /// Stops the KDC (its port then refuses connections).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
        // Heimdal forks workers; wait until nothing answers any more.
        let down = super::eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        })
        .await;
        assert!(down, "kdc stopped");
    }

    /// The KDC's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }

    /// AS-REQs the KDC logged for `user` (plain or enterprise name, `user\\134@REALM`).
    pub fn as_requests(&self, user: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("kdc.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(&format!("AS-REQ {user}@"))
                    || l.contains(&format!("AS-REQ {user}\\134@"))
            })
            .count()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

impl Standin {
    /// Requests the host completed, with the user it authenticated (`user@REALM` for
    /// Kerberos) and whether the body was sealed.
    pub fn authenticated_users(&self) -> Vec<(String, bool)> {
        self.requests()
            .iter()
            .filter(|r| r["status"] == 200 && r["action"].as_str().is_some_and(|a| !a.is_empty()))
            .map(|r| {
                (
                    r["user"].as_str().unwrap_or_default().to_string(),
                    r["encrypted"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Starts the stand-in over http accepting Kerberos (and SPNEGO) with `keytab`.
    pub async fn start_kerberos(
        dir: &Path,
        hostname: &str,
        kdc: &dyn KdcRealm,
        keytab: &Path,
    ) -> Standin {
        Self::start_kerberos_with(dir, hostname, kdc, keytab, None).await
    }

    /// Same over https when `tls` holds (certificate, key) PEM files.
    pub async fn start_kerberos_with(
        dir: &Path,
        hostname: &str,
        kdc: &dyn KdcRealm,
        keytab: &Path,
        tls: Option<(&Path, &Path)>,
    ) -> Standin {
        Self::start_kerberos_args(dir, hostname, kdc, keytab, tls, &[]).await
    }

    /// Same with extra stand-in arguments (e.g. `--drop-after 1`, or `--users FILE` to accept
    /// NTLM logins too).
    pub async fn start_kerberos_args(
        dir: &Path,
        hostname: &str,
        kdc: &dyn KdcRealm,
        keytab: &Path,
        tls: Option<(&Path, &Path)>,
        extra: &[&str],
    ) -> Standin {
        let users = dir.join(format!("standin-{hostname}-users.txt"));
        std::fs::write(&users, "STANDIN:nobody:unused-for-kerberos\n").unwrap();
        let log = dir.join(format!("standin-{hostname}.jsonl"));
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/standin/host.py"))
            .args(["--port", "0", "--auth", "negotiate"]);
        match tls {
            Some((cert, key)) => {
                cmd.args(["--scheme", "https", "--cert"])
                    .arg(cert)
                    .arg("--key")
                    .arg(key);
            }
            None => {
                cmd.args(["--scheme", "http"]);
            }
        }
        cmd.arg("--keytab")
            .arg(keytab)
            .arg("--users")
            .arg(&users)
            .arg("--log")
            .arg(&log)
            .args(["--hostname", hostname])
            // Last, so an extra `--users` replaces the default file (argparse keeps the last).
            .args(extra)
            .env("KRB5_CONFIG", kdc.krb5_conf());
        Standin::spawn(cmd, log).await
    }
}

/// One inventory entry of a Kerberos gateway.
pub struct KrbHost {
    pub name: &'static str,
    /// "kerberos" or "negotiate".
    pub auth: &'static str,
    pub port: u16,
    /// Vault entry name.
    pub credential: &'static str,
    pub spn: String,
}

/// A gateway (client certificates and JWT) whose hosts log in with Kerberos; `standin` is the
/// first host's stand-in, `vault` holds `(entry, user, password)`.
pub async fn start_gateway(
    dir: tempfile::TempDir,
    standin: Standin,
    kdc: &dyn KdcRealm,
    hosts: &[KrbHost],
    vault_entries: &[(&str, &str, &str)],
) -> Gateway {
    let mut inventory = String::new();
    for h in hosts {
        inventory.push_str(&format!(
            r#"
[[hosts]]
name = "{name}"
address = "127.0.0.1"
port = {port}
scheme = "http"
auth = "{auth}"
credential = "{credential}"
kdc = "{kdc}"
realm = "{realm}"
spn = "{spn}"
labels = ["test"]
"#,
            realm = kdc.realm(),
            name = h.name,
            port = h.port,
            auth = h.auth,
            credential = h.credential,
            kdc = kdc.url(),
            spn = h.spn,
        ));
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name).collect();
    gateway_dir(&names, inventory)
        .vault_entries(vault_entries)
        .launch(dir, standin)
        .await
}

/// A gateway directory whose inventory is `inventory`, the first of `names` the default
/// host, and whose policy lets the e2e roles reach `names`.
fn gateway_dir(names: &[&str], inventory: String) -> GatewayDir {
    GatewayDir {
        default_host: Some(names.first().copied().unwrap_or("none").to_string()),
        hosts: inventory,
        ..Default::default()
    }
    .policy_for_hosts(names)
}

/// The gateway's own service principal for delegation tests (trusted for delegation to
/// [`BACKEND_SPN`] only).
pub const GATEWAY_SPN: &str = "HTTP/gateway.gw.test";
/// A host the gateway may not delegate to (a real service with a keytab, not in the list).
pub const OTHER_SPN: &str = "HTTP/other.gw.test";

/// One `auth = "delegate"` inventory entry.
pub struct DelegateHost {
    pub name: &'static str,
    pub port: u16,
    pub spn: &'static str,
    /// https with this CA (the stand-in's certificate names `localhost`); http when `None`.
    pub https_ca: Option<PathBuf>,
}

/// A realm for delegation: the person `alice` (whose password nobody uses), the gateway's
/// principal trusted to delegate to [`BACKEND_SPN`] only, and the two hosts' principals.
pub async fn delegation_realm() -> Kdc {
    delegation_realm_with_lifetime(None).await
}

/// Same; with `Some(life)` (e.g. "15s") every ticket of alice, the gateway and the host
/// lives at most that long.
pub async fn delegation_realm_with_lifetime(life: Option<&str>) -> Kdc {
    let lifetimes: Vec<(&str, &str)> = match life {
        Some(l) => vec![("alice", l), (GATEWAY_SPN, l), (BACKEND_SPN, l)],
        None => Vec::new(),
    };
    Kdc::start_with_lifetimes(
        &[("alice", "Alice-Password-Nobody-Uses-7")],
        &[GATEWAY_SPN, BACKEND_SPN, OTHER_SPN],
        &[&format!("{GATEWAY_SPN}={BACKEND_SPN}")],
        &lifetimes,
    )
    .await
}

/// A gateway whose hosts use `delegate`, run as its own process (`hopgate serve`): the
/// delegate method sets process-wide `KRB5_*` variables before its runtime starts, which a
/// test process running many gateways at once must not do. The vault holds the gateway's
/// keytab (base64) under `gw-keytab`; alice's certificate names `alice@hopgate.test`, mapped
/// by `user_principal = "{local}@<realm>"`.
pub async fn start_delegate_gateway(
    dir: tempfile::TempDir,
    standin: Standin,
    kdc: &Kdc,
    hosts: &[DelegateHost],
) -> Gateway {
    start_delegate_gateway_with_keytab(dir, standin, kdc, hosts, &kdc.keytab(GATEWAY_SPN)).await
}

/// Same, with the vault holding the keytab file `keytab` (for the gateway's principal).
pub async fn start_delegate_gateway_with_keytab(
    dir: tempfile::TempDir,
    standin: Standin,
    kdc: &dyn KdcRealm,
    hosts: &[DelegateHost],
    keytab: &Path,
) -> Gateway {
    start_delegate_gateway_as(dir, standin, kdc, hosts, GATEWAY_SPN, keytab).await
}

/// Same, for any realm: the vault holds `keytab` for the gateway's principal `principal`
/// (without realm: the hosts' `realm` completes it).
pub async fn start_delegate_gateway_as(
    dir: tempfile::TempDir,
    standin: Standin,
    kdc: &dyn KdcRealm,
    hosts: &[DelegateHost],
    principal: &str,
    keytab: &Path,
) -> Gateway {
    start_delegate_gateway_extra(dir, standin, kdc, hosts, principal, keytab, "").await
}

/// Same, with `extra` top-level configuration (e.g. `[authn.kerberos]`).
pub async fn start_delegate_gateway_extra(
    dir: tempfile::TempDir,
    standin: Standin,
    kdc: &dyn KdcRealm,
    hosts: &[DelegateHost],
    principal: &str,
    keytab: &Path,
    extra: &str,
) -> Gateway {
    use base64::Engine as _;
    let mut inventory = String::new();
    for h in hosts {
        inventory.push_str(&format!(
            r#"
[[hosts]]
name = "{name}"
address = "127.0.0.1"
port = {port}
{tls}
auth = "delegate"
credential = "gw-keytab"
kdc = "{kdc}"
realm = "{realm}"
spn = "{spn}"
user_principal = "{{local}}@{realm}"
labels = ["test"]
"#,
            realm = kdc.realm(),
            name = h.name,
            port = h.port,
            kdc = kdc.url(),
            spn = h.spn,
            tls = match &h.https_ca {
                Some(ca) => format!(
                    "scheme = \"https\"\nca_file = \"{}\"\ntls_server_name = \"localhost\"",
                    ca.display()
                ),
                None => "scheme = \"http\"".to_string(),
            },
        ));
    }
    let keytab = std::fs::read(keytab).unwrap();
    let keytab_b64 = base64::engine::general_purpose::STANDARD.encode(keytab);
    let names: Vec<&str> = hosts.iter().map(|h| h.name).collect();
    let mut d = gateway_dir(&names, inventory)
        // The vaulted name has no realm: the hosts' `realm` completes it.
        .vault_entries(&[("gw-keytab", principal, &keytab_b64)]);
    d.extra = extra.to_string();
    d.launch_process(dir, standin).await
}
