#!/usr/bin/env bash
# Installs the Debian packages Tollgate builds and tests with, when missing.
# Safe to run again: it only calls apt-get when something is absent.
#   libdpdk-dev        DPDK 22.11 (the NIC data plane)
#   libhyperscan-dev   Hyperscan 5.4 (the rule engine); libvectorscan-dev works too
#   libpcre2-dev       PCRE2 for rules' pcre (the pcre2 crate links it)
#   clang libclang-dev bindgen for our dpdk-sys
#   pkg-config         how build.rs finds DPDK and Hyperscan
#   tshark             the tests' independent dissector and capinfos
#   python3-jsonschema the tests' check of every EVE event against Suricata's
#                      EVE schema (scripts/validate-eve.py)
#   logrotate systemd  the tests' check of scripts/tollgate.logrotate and
#   man-db             scripts/tollgate.service (logrotate -d, systemd-analyze
#                      verify, which reads the unit's man page)
#   redis-server       the tests' real Redis for `--eve redis://` (with
#                      redis-tools' redis-cli to read what arrived)
set -euo pipefail

packages=(pkg-config clang libclang-dev libdpdk-dev libpcre2-dev tshark logrotate systemd man-db redis-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# jsonschema for Debian's own python3 (the tests use it; a python3 that
# PATH finds first, pyenv's say, may lack it).
if ! /usr/bin/python3 -c 'import jsonschema' 2>/dev/null; then
    missing+=(python3-jsonschema)
fi
# Hyperscan or Vectorscan: either provides libhs.
if ! pkg-config --exists libhs 2>/dev/null; then
    missing+=(libhyperscan-dev)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "setup: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
