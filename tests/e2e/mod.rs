mod clients;
mod psrp;
mod rejections;
