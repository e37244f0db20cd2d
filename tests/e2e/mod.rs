mod audit;
mod clients;
mod faults;
mod kerberos;
mod psrp;
mod rejections;
