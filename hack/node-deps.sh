#!/usr/bin/env bash
# Installs what the e2e node (test/e2e/node) needs from Debian packages when it is missing:
# containerd, runc and the standard CNI plugins (/usr/lib/cni). Needs root (CI runs as root).
# The packages' containerd service is never started: the tests run their own containerd with its
# own config, state and socket under a temporary directory. Idempotent.
set -euo pipefail
need=()
command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
for plugin in bridge host-local loopback; do
  if [ ! -x "/usr/lib/cni/$plugin" ]; then need+=(containernetworking-plugins); break; fi
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "node-deps.sh: installing ${need[*]} needs root" >&2
  exit 1
fi
# Keep the packages' init scripts from starting the system containerd (policy-rc.d exit 101 means
# "action forbidden" to invoke-rc.d), whatever init system the machine has.
policy=/usr/sbin/policy-rc.d
cleanup_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  cleanup_policy=1
fi
trap '[ -z "$cleanup_policy" ] || rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "node-deps.sh: installed ${need[*]}" >&2
