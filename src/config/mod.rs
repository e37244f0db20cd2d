//! Configuration: the file shape and the validated Config.
