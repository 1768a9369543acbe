#!/usr/bin/env bash
# Runs a command in a new network namespace that has nothing but loopback (up), so that what it
# starts, a Ray cluster say, can only talk to 127.0.0.1: Ray takes the machine's outside address
# as its node address otherwise. Needs root, or unprivileged user namespaces (unshare -r).
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  exec unshare --net bash -c 'ip link set lo up && exec "$@"' loopback_only "$@"
fi
exec unshare --map-root-user --net bash -c 'ip link set lo up && exec "$@"' loopback_only "$@"
