#!/usr/bin/env bash
# Installs the real peers the test suite talks to (Debian packages), only those missing.
# Runs apt-get only as root; otherwise it names what is missing and the interop tests skip.
set -euo pipefail

# binary -> Debian package
declare -A PEERS=(
)

missing=()
for bin in "${!PEERS[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${PEERS[$bin]}")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_peers: all test peers present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install_peers: not root; missing Debian packages: ${missing[*]} (interop tests will skip)" >&2
  exit 0
fi

echo "install_peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
