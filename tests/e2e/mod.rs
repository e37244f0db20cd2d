mod audit;
mod clients;
mod faults;
mod kerberos;
mod latency;
mod psrp;
mod rejections;
mod syslog;
