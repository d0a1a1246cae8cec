#!/usr/bin/env bash
# Creates SR-IOV virtual functions on a NIC's physical function and binds
# them to vfio-pci for DPDK, then prints the EAL arguments to use.
#   scripts/bind-vfs.sh PF_INTERFACE NUM_VFS [--bump] [--dry-run]
# --bump   sets each VF trusted, spoof-check off and promiscuous-capable, as an
#          L2 bump in the wire needs (a mirror port for IDS does not).
# --dry-run prints every command instead of running it.
set -euo pipefail

usage() { sed -n '2,8p' "$0"; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
pf="$1"; num="$2"; shift 2
bump=0; dry=0
for a in "$@"; do
    case "$a" in
        --bump) bump=1 ;;
        --dry-run) dry=1 ;;
        *) echo "bind-vfs.sh: unknown option '$a'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$num" in
    ''|*[!0-9]*) echo "bind-vfs.sh: NUM_VFS must be a whole number, got '$num'" >&2; exit 2 ;;
esac
SYSFS="${SYSFS:-/sys}"
dev="$SYSFS/class/net/$pf/device"

run() {
    if [ "$dry" = 1 ]; then echo "$*"; else eval "$*"; fi
}

[ -d "$dev" ] || { echo "bind-vfs.sh: no network interface '$pf' (looked in $SYSFS/class/net)" >&2; exit 1; }
[ -e "$dev/sriov_totalvfs" ] || { echo "bind-vfs.sh: $pf does not support SR-IOV (no sriov_totalvfs)" >&2; exit 1; }
total=$(cat "$dev/sriov_totalvfs")
if [ "$num" -lt 1 ] || [ "$num" -gt "$total" ]; then
    echo "bind-vfs.sh: $pf supports 1 to $total VFs, asked for $num" >&2
    exit 2
fi

# The count can only change from 0.
run "echo 0 > $dev/sriov_numvfs"
run "echo $num > $dev/sriov_numvfs"
if [ "$bump" = 1 ]; then
    for ((i = 0; i < num; i++)); do
        run "ip link set $pf vf $i trust on spoofchk off"
    done
fi
run "modprobe vfio-pci"

eal=()
for ((i = 0; i < num; i++)); do
    link="$dev/virtfn$i"
    if [ -e "$link" ]; then
        pci=$(basename "$(readlink -f "$link")")
    elif [ "$dry" = 1 ]; then
        pci="<VF $i of $pf>"   # VFs exist only once sriov_numvfs is written
    else
        echo "bind-vfs.sh: $pf has no virtfn$i after creating $num VFs" >&2
        exit 1
    fi
    run "dpdk-devbind.py --bind=vfio-pci $pci"
    eal+=("-a $pci")
done
echo "EAL arguments for tollgate run: ${eal[*]}"
