//! hopgate's integration tests: one binary, real peers (pywinrm, pypsrp, Go winrm, a
//! pyspnego/psrpcore stand-in host) against a gateway running in this process.

#![allow(unreachable_pub, reason = "test modules share helpers with pub")]

mod codecs;
mod e2e;
mod support;
