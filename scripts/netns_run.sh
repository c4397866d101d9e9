#!/bin/sh
# netns_run.sh: run a command inside a private network namespace whose only interface is lo, set up so that
# python-can's udp_multicast interface joins processes into one CAN bus with no traffic leaving the machine.
#
#   scripts/netns_run.sh .venv/bin/python -m pytest hil_tests -q
#
# Root gets `unshare -n`; other users `unshare -rn` (needs unprivileged user namespaces). Inside: lo up with
# multicast, and a route for 224.0.0.0/4 through lo. Unless already set, the HIL bus is selected for the
# command: UNIROSS_HIL_INTERFACE=udp_multicast, UNIROSS_HIL_CHANNEL=239.74.163.2 (an IPv4 group: the IPv6
# group does not work in such a namespace). The command's exit status is returned.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 command [args...]" >&2
    exit 2
fi

if [ "${UNIROSS_NETNS_INSIDE:-}" != "1" ]; then
    if [ "$(id -u)" -eq 0 ]; then flags=-n; else flags=-rn; fi
    UNIROSS_NETNS_INSIDE=1 exec unshare "$flags" -- "$0" "$@"
fi

unset UNIROSS_NETNS_INSIDE
ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo
export UNIROSS_HIL_INTERFACE="${UNIROSS_HIL_INTERFACE:-udp_multicast}"
export UNIROSS_HIL_CHANNEL="${UNIROSS_HIL_CHANNEL:-239.74.163.2}"
export UNIROSS_HIL_RUNNER="${UNIROSS_HIL_RUNNER:-netns}"
exec "$@"
