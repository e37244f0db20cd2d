//! Client authentication: client certificates and JWTs into a Principal.
