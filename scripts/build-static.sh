#!/usr/bin/env bash
# Builds a statically linked `janus` (glibc, crt-static) for the container
# image, which is FROM scratch: the binary must need no shared library.
#   target/x86_64-unknown-linux-gnu/release/janus
# (copied there from $CARGO_TARGET_DIR when that is set: the image's build
# context is the repository).
# `--target` keeps build scripts and proc macros dynamic (they cannot be
# static); the static flag applies to the binary only.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
cargo build --release --locked -p janus-server --target x86_64-unknown-linux-gnu
BINARY=target/x86_64-unknown-linux-gnu/release/janus
BUILT="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/janus"
if [ "$(realpath "$BUILT")" != "$(realpath -m "$BINARY")" ]; then
  mkdir -p "$(dirname "$BINARY")"
  cp "$BUILT" "$BINARY"
fi
if ldd "$BINARY" 2>&1 | grep -q "=>"; then
  echo "error: $BINARY is dynamically linked" >&2
  exit 1
fi
strip --strip-debug "$BINARY"
echo "built $BINARY ($(du -h "$BINARY" | cut -f1), statically linked)"
