//! Registry of shells: ShellId to owner, host and kind.
