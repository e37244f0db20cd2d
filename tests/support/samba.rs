//! Active Directory test fixture: a Samba AD domain controller (realm `SAMBA.TEST`) provisioned
//! into a temporary directory by tests/support/samba.sh and run on 127.0.0.1:88 until drop.
//! It owns only the DC's life cycle and the names of the accounts samba.sh creates; stand-in
//! hosts and gateways come from `super::kdc` through [`KdcRealm`]. Port 88 is fixed, so only
//! one DC can run on a machine at a time: keep every test that needs it in one function
//! (test processes running at once take turns through a lock file).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::kdc::KdcRealm;
use super::repo;

pub const AD_REALM: &str = "SAMBA.TEST";
/// The gateway's account (SPN `HTTP/gateway.samba.test`), trusted for constrained delegation
/// with protocol transition to [`AD_BACKEND_SPN`] only; its keytab is `keytab("gwsvc")`.
pub const AD_GATEWAY: &str = "gwsvc";
/// The host the gateway may delegate to (account `backendsvc`).
pub const AD_BACKEND_SPN: &str = "HTTP/backend.samba.test";
/// A real host outside the delegation list (account `othersvc`).
pub const AD_OTHER_SPN: &str = "HTTP/other.samba.test";
/// An AD account whose password the gateway vaults (`auth = "kerberos"`).
pub const AD_SVC_USER: &str = "svcwinrm";
pub const AD_SVC_PASSWORD: &str = "Passw0rd!Svc-WinRM";

/// The KDC port of the DC (AD clients expect 88; Samba cannot move it without DNS SRV games).
const KDC_PORT: u16 = 88;

/// A provisioned, running Samba AD DC; killed on drop.
pub struct SambaDc {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// Provisioning plus start-up until port 88 answered.
    pub start_time: Duration,
    /// Held while this DC lives (an exclusive lock on a file in the temp dir).
    _machine_lock: std::fs::File,
}

impl SambaDc {
    /// Provisions the domain and starts the DC (its KDC service alone, one process),
    /// waiting until its KDC accepts TCP connections. Needs the `samba` packages and root
    /// (scripts/install-test-deps.sh; CI runs as root).
    pub async fn start() -> SambaDc {
        let began = Instant::now();
        // Another test process (a concurrent run on this machine) may hold the DC: take turns.
        let machine_lock = tokio::task::spawn_blocking(|| {
            let f = std::fs::File::create(std::env::temp_dir().join("hopgate-samba-dc.lock"))?;
            f.lock()?;
            Ok::<_, std::io::Error>(f)
        })
        .await
        .unwrap()
        .expect("lock file for the samba DC");
        // The previous holder's samba may still be dying.
        let free = super::eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", KDC_PORT)).is_err()
        })
        .await;
        assert!(
            free,
            "127.0.0.1:{KDC_PORT} stays busy: another KDC runs here"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(repo().join("tests/support/samba.sh"))
            .arg("provision")
            .arg(dir.path())
            .output()
            .await
            .expect("bash runs samba.sh");
        assert!(
            out.status.success(),
            "samba.sh provision failed (run scripts/install-test-deps.sh; needs root): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("samba.log")).unwrap();
        let mut child = Command::new("samba")
            .arg("-s")
            .arg(dir.path().join("dc/etc/smb.conf"))
            .args(["-i", "--model=single", "--debug-stdout"])
            // The KDC reads the directory (sam.ldb) itself; no LDAP or RPC listeners needed.
            .arg("--option=server services=kdc")
            // One "Auth: [Kerberos KDC,...]" line per AS exchange (see `kdc_logins`).
            .arg("--option=log level=1 auth_audit:3")
            .env_remove("KRB5_CONFIG")
            .env_remove("KRB5CCNAME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("samba starts");
        let mut exited = None;
        let up = super::eventually(Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            std::net::TcpStream::connect(("127.0.0.1", KDC_PORT)).is_ok()
        })
        .await;
        let dc = SambaDc {
            dir,
            child: Some(child),
            start_time: began.elapsed(),
            _machine_lock: machine_lock,
        };
        assert!(
            up && exited.is_none(),
            "samba did not listen on 127.0.0.1:{KDC_PORT} (exit {exited:?}): {}",
            dc.log()
        );
        dc
    }

    /// The keytab samba.sh exported for `principal` (`gwsvc` or `HTTP/host`).
    pub fn keytab(&self, principal: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.keytab", principal.replace('/', "_")))
    }

    /// The DC's output (its log at the default level).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("samba.log")).unwrap_or_default()
    }

    /// AS exchanges (Kerberos pre-authentication with a password or key) the DC logged for
    /// the account `user`: how a test proves whose secret reached the DC.
    pub fn kdc_logins(&self, user: &str) -> usize {
        // The account the DC resolved, whatever name form the client sent (sspi sends an
        // enterprise name, `svcwinrm\@SAMBA.TEST@SAMBA.TEST`).
        let who = format!("became [SAMBA]\\[{user}]");
        self.log()
            .lines()
            .filter(|l| {
                l.starts_with("Auth: [Kerberos KDC")
                    && l.contains("status [NT_STATUS_OK]")
                    && l.contains(&who)
            })
            .count()
    }

    /// Stops the DC and waits for its process to end (which frees port 88).
    pub async fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }
}

impl KdcRealm for SambaDc {
    fn realm(&self) -> &str {
        AD_REALM
    }
    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{KDC_PORT}")
    }
    fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}
