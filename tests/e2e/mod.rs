mod ansible;
mod audit;
mod clients;
mod credssp;
#[cfg(feature = "delegate")]
mod delegate;
mod faults;
mod kerberos;
mod latency;
mod psrp;
mod rejections;
#[cfg(feature = "delegate")]
mod samba;
mod strict;
mod syslog;
mod tls_reload;
mod vault_kv2;
