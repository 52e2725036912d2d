#!/usr/bin/env bash
# Installs the Debian packages ragstream needs to build, run and test, skipping those
# already installed. Usage: install_deps.sh [--test]  (--test adds the test-only tools)
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config
  libfcgi-dev rapidjson-dev libcurl4-openssl-dev libssl-dev liblmdb-dev lmdb-utils
  libboost-test-dev libcld2-dev libutf8proc-dev libstemmer-dev libhunspell-dev hunspell-he libnats-dev
  nginx curl jq ca-certificates)
if [ "${1:-}" = "--test" ]; then
  packages+=(python3 python3-pytest python3-yaml python3-lmdb clang-format jq clang libclang-rt-14-dev prometheus)
  packages+=(nats-server iproute2) # the replication log's engine; ip netns for tests/cluster
  packages+=(systemd) # systemd-analyze verify in test_deploy.py (systemd does not become PID 1)
  # Node.js runs the OpenAI SDK, OpenAPI lint and browser tests; use the machine's if any.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
