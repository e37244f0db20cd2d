mod clients;
mod rejections;
