mod audit;
mod clients;
mod kerberos;
mod psrp;
mod rejections;
mod vault_kv2;
