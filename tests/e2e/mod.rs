mod clients;
mod kerberos;
mod rejections;
