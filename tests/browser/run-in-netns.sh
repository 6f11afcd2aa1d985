#!/bin/sh
# Run a command inside a fresh network namespace that has only loopback
# (127.0.0.1 / ::1), so the server and the browsers can reach nothing but
# each other and WebRTC ICE picks 127.0.0.1 (see shared/TOOLCHAIN.md).
#
#   ./run-in-netns.sh node --test ...
#
# Needs root (or unprivileged user namespaces: it then adds --map-root-user).
# Already inside one (SIGNAL_NETNS=1) or SIGNAL_NETNS=skip: runs the command as is.
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 command [args...]" >&2
  exit 2
fi
if [ "${SIGNAL_NETNS:-}" = "1" ] || [ "${SIGNAL_NETNS:-}" = "skip" ]; then
  exec "$@"
fi
export SIGNAL_NETNS=1
if [ "$(id -u)" -eq 0 ]; then
  exec unshare --net sh -c 'ip link set lo up && exec "$@"' sh "$@"
else
  exec unshare --map-root-user --net sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
