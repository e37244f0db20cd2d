//! Client-facing listener: TLS accept loop and per-connection HTTP service.
