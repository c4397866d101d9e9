#!/bin/sh
# guest_init.sh: PID 1 of the User-Mode Linux guest booted by hil_tests/uml/run_in_guest.py.
#
# Owns the guest's setup and shutdown: pseudo file systems, the CAN kernel modules, vcan0 and lo, then runs the
# command file the host wrote and reports its exit status through a host file (the kernel's own exit code does
# not carry it). Inputs arrive as KEY=value words of the kernel command line, which the kernel hands to init
# as environment variables:
#   UNIROSS_GUEST_COMMAND  host path of the shell script to run (written by run_in_guest.py)
#   UNIROSS_GUEST_STATUS   host path where the exit status is written ("<n>\n")
# Exit status 125 means the guest could not be set up (the reason is printed).
# The root file system is the host's / through hostfs: the host /tmp stays visible on purpose (the runner's
# work dir, --basetemp and report paths live there); scratch files go to TMPDIR=/run/tmp, a guest-only tmpfs
# (fast, supports AF_UNIX sockets, leaves nothing behind).

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
READY_MARKER="uniross-guest: ready"

say() { echo "uniross-guest: $*"; }

power_off() {
    sync
    busybox poweroff -f 2>/dev/null
    echo o >/proc/sysrq-trigger 2>/dev/null
    sleep 10
}

finish() {
    if [ -n "${UNIROSS_GUEST_STATUS:-}" ]; then
        echo "$1" >"$UNIROSS_GUEST_STATUS" || say "cannot write the status file $UNIROSS_GUEST_STATUS"
    fi
    power_off
}

fail() {
    say "setup failed: $*"
    finish 125
}

# Prefer the host's own tool, fall back to busybox's applet (Debian hosts may have no kmod).
tool() {
    if command -v "$1" >/dev/null 2>&1; then "$@"; else busybox "$@"; fi
}

# Load a module of the UML kernel and its dependencies straight from the UML package's folder.
# No /lib/modules is needed: the host may have none, and creating one through hostfs would change the host.
load_module() {
    dep_file="$MODULES_DIR/modules.dep"
    line=$(grep -E "(^|/)$1\.ko(\.[a-z]+)?:" "$dep_file") || { say "module $1 not in $dep_file"; return 1; }
    target=${line%%:*}
    deps=${line#*:}
    reversed=""
    for dep in $deps; do reversed="$dep $reversed"; done
    for module in $reversed $target; do
        name=$(basename "$module")
        name=${name%%.ko*}
        [ -d "/sys/module/$(echo "$name" | tr - _)" ] && continue
        tool insmod "$MODULES_DIR/$module" || return 1
    done
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t tmpfs -o mode=755 tmpfs /run || fail "mount /run"
mkdir -p /run/tmp && chmod 1777 /run/tmp
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
mkdir -p /dev/pts && mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail "mount devpts"
ln -sf /dev/pts/ptmx /dev/ptmx
stty -onlcr 2>/dev/null
hostname uniross-hil-guest 2>/dev/null

MODULES_DIR="/usr/lib/uml/modules/$(uname -r)"
[ -f "$MODULES_DIR/modules.dep" ] || fail "no UML modules at $MODULES_DIR (package user-mode-linux)"
for module in vcan can-raw can-bcm; do
    load_module "$module" || fail "load module $module"
done
ip link set lo up || fail "bring lo up"
ip link add dev vcan0 type vcan || fail "create vcan0"
ip link set vcan0 up || fail "bring vcan0 up"

[ -f "${UNIROSS_GUEST_COMMAND:-}" ] || fail "no command file '${UNIROSS_GUEST_COMMAND:-}'"
echo "$READY_MARKER after $(cut -d ' ' -f 1 /proc/uptime) s of guest uptime (vcan0 up)"
env -i /bin/sh "$UNIROSS_GUEST_COMMAND" </dev/null
finish $?
