mod ansible;
mod audit;
mod clients;
mod compression;
mod credssp;
#[cfg(feature = "delegate")]
mod delegate;
mod disconnect;
mod faults;
mod hostile;
mod identify;
mod kerberos;
mod kerberos_signin;
mod latency;
mod psconfig;
mod psrp;
mod record;
mod rejections;
#[cfg(feature = "delegate")]
mod samba;
mod strict;
mod syslog;
mod tls_reload;
mod vault_kv2;
