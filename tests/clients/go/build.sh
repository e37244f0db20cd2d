#!/bin/sh
# Build the Go masterzen/winrm test client into the directory given as $1.
# Needs Debian's packages: apt-get install -y golang-go golang-github-masterzen-winrm-dev
set -eu
out="${1:?usage: build.sh OUTPUT_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$here"
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
    go build -o "$out/winrm_client" winrm_client.go
echo "$out/winrm_client"
