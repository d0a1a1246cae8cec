#!/usr/bin/env bash
# The whole test suite: installs what the build and tests need, then runs the
# unit and end-to-end tests (the suricata-verify conformance run among them,
# tests/conformance.rs, which prints its table), and holds the tree to clippy
# and rustfmt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test
