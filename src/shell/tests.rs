//! Inspector tests.
