//! Backend (host-facing) HTTP client: connection pool, authentication, WinRM message encryption.
