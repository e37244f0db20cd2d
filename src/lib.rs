//! hopgate: an authenticating, policy-enforcing WinRM gateway.
//!
//! Module map (ARCHITECTURE.md): pure codecs (`wsman`, `psrp`) know nothing of I/O;
//! adapters (`authn`, `backend`, `vault`, `session`, `audit`, `listener`) use them; `proxy`
//! is the request pipeline; `app` composes everything.

pub mod admin;
pub mod app;
pub mod audit;
pub mod authn;
pub mod backend;
pub mod cli;
pub mod config;
pub mod decode;
pub mod devcerts;
pub mod error;
pub mod listener;
pub mod load;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod psrp;
pub mod secret;
pub use hopgate_pwsh as pwsh;
pub mod session;
pub mod shell;
pub mod telemetry;
pub mod testhost;
pub mod tls;
pub mod vault;
pub mod wsman;
pub mod xpress;
