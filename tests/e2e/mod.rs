mod audit;
mod clients;
mod credssp;
mod kerberos;
mod psrp;
mod rejections;
