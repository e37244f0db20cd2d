//! Audit events and the JSON-lines writer.
