//! An emulated Windows WinRM host for the demo and benchmarks.
