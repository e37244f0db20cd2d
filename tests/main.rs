//! hopgate's integration tests: one binary, real peers (pywinrm, pypsrp, Go winrm, a
//! pyspnego/psrpcore stand-in host) against a gateway running in this process.

mod e2e;
mod support;
