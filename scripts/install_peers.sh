#!/usr/bin/env bash
# Installs the real peers the test suite talks to (Debian packages), only those missing.
# Runs apt-get only as root; otherwise it names what is missing and the interop tests skip.
set -euo pipefail

# binary -> Debian package
declare -A PEERS=(
  [sipp]=sip-tester
  [baresip]=baresip
  [chromium]=chromium
  [redis-server]=redis-server
  [/usr/lib/postgresql/15/bin/initdb]=postgresql
  [sox]=sox
  [tshark]=tshark
  [firefox-esr]=firefox-esr
)

missing=()
for bin in "${!PEERS[@]}"; do
  if [[ "$bin" == /* ]]; then
    [ -x "$bin" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=("${PEERS[$bin]}")
  else
    command -v "$bin" >/dev/null 2>&1 || missing+=("${PEERS[$bin]}")
  fi
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
apt-get -o DPkg::Lock::Timeout=600 update -qq
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core fonts-liberation
