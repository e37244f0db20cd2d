#!/usr/bin/env bash
# The pure tier is kept pure by the compiler: its crates are `no_std` (alloc only) and do
# not depend on tokio or hyper. This proves it stays so: a copy of each pure crate with one
# forbidden use added (the file system, the network, the environment, the clock, a
# process, tokio) must fail to build. Run by CI; each probe is a `cargo check` of a copy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/pure-probes"

probes=(
  'pub fn probe() -> bool { std::fs::metadata("x").is_ok() }'
  'pub fn probe() -> bool { std::net::TcpStream::connect("127.0.0.1:1").is_ok() }'
  'pub fn probe() -> bool { std::env::var("HOME").is_ok() }'
  'pub fn probe() -> bool { std::time::SystemTime::now().elapsed().is_ok() }'
  'pub fn probe() -> bool { std::time::Instant::now().elapsed().as_secs() > 0 }'
  'pub fn probe() -> bool { std::process::Command::new("x").status().is_ok() }'
  'pub fn probe() -> bool { tokio::spawn(async {}).is_finished() }'
)

for crate in pwsh policy; do
  copy="$work/crates/$crate"
  mkdir -p "$work/crates"
  rm -rf "$work/crates"/*
  cp -r "$root/crates/pwsh" "$work/crates/pwsh"
  cp -r "$root/crates/policy" "$work/crates/policy"
  # Standalone manifests: no workspace inheritance, the repository's lock file.
  for manifest in "$work"/crates/*/Cargo.toml; do
    sed -i 's/^edition.workspace = true$/edition = "2021"/;
            s/^rust-version.workspace = true$//; s/^license.workspace = true$//;
            s/^\[lints\]$//; s/^workspace = true$//' "$manifest"
  done
  printf '\n[workspace]\n' >> "$copy/Cargo.toml"
  cp "$root/Cargo.lock" "$copy/Cargo.lock"
  cp "$copy/src/lib.rs" "$work/lib.rs.orig"
  # The copy must build as it is, or the probes prove nothing.
  if ! (cd "$copy" && cargo check --quiet --offline 2>"$work/err"); then
    cat "$work/err"
    echo "pure crate $crate does not build on its own"
    exit 1
  fi
  for probe in "${probes[@]}"; do
    cp "$work/lib.rs.orig" "$copy/src/lib.rs"
    printf '\n%s\n' "$probe" >> "$copy/src/lib.rs"
    if (cd "$copy" && cargo check --quiet --offline 2>/dev/null); then
      echo "pure crate $crate builds with a forbidden use: $probe"
      exit 1
    fi
  done
  echo "crates/$crate: no_std; ${#probes[@]} forbidden uses fail to build"
done
