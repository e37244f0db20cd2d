mod audit;
mod clients;
mod psrp;
mod rejections;
