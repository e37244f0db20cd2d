//! Credential stores: the Store trait and the local encrypted vault file.
