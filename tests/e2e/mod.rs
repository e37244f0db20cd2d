mod audit;
mod clients;
mod rejections;
