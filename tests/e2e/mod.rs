mod audit;
mod clients;
#[cfg(feature = "delegate")]
mod delegate;
mod kerberos;
mod psrp;
mod rejections;
