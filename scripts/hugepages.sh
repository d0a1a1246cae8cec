#!/usr/bin/env bash
# Reserves 2 MB hugepages for DPDK on every NUMA node (or one) and mounts
# hugetlbfs. Run as root on the edge box, before `tollgate run`.
#   scripts/hugepages.sh [PAGES] [--node N] [--dry-run]
# PAGES is per node (default 1024 = 2 GiB). --dry-run prints the commands.
set -euo pipefail

pages=1024
node=""
dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --node) node="$2"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *[!0-9]*) echo "hugepages.sh: expected a page count, --node N or --dry-run, got '$1'" >&2; exit 2 ;;
        *) pages="$1"; shift ;;
    esac
done
SYSFS="${SYSFS:-/sys}"

run() {
    if [ "$dry" = 1 ]; then echo "$*"; else eval "$*"; fi
}

if [ -n "$node" ]; then
    nodes=("$SYSFS/devices/system/node/node$node")
else
    nodes=("$SYSFS"/devices/system/node/node[0-9]*)
fi
for n in "${nodes[@]}"; do
    f="$n/hugepages/hugepages-2048kB/nr_hugepages"
    if [ ! -e "$f" ]; then
        echo "hugepages.sh: $f does not exist: this kernel has no 2 MB hugepages on $(basename "$n")" >&2
        exit 1
    fi
    run "echo $pages > $f"
done
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    run "mkdir -p /dev/hugepages"
    run "mount -t hugetlbfs nodev /dev/hugepages"
fi
[ "$dry" = 1 ] || grep -E 'HugePages_(Total|Free)' /proc/meminfo
