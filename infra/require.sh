#!/usr/bin/env bash
# Makes sure the system tools pinpipe builds and runs with are present; installs the missing
# ones from Debian's packages when running as root (as CI does), else says what to install.
#   infra/require.sh python java mvn go curl postgres mariadb podman runc debootstrap prometheus
set -euo pipefail

declare -A package=(
  [python]=python3-venv [java]=openjdk-17-jre-headless [mvn]=maven [go]=golang-go [curl]=curl
  [postgres]=postgresql [mariadb]=mariadb-server
  [podman]=podman [runc]=runc [debootstrap]=debootstrap [prometheus]=prometheus
)
declare -A probe=(
  [python]=python3 [java]=java [mvn]=mvn [go]=go [curl]=curl
  [postgres]=pg_ctlcluster [mariadb]=mariadbd
  [podman]=podman [runc]=runc [debootstrap]=debootstrap [prometheus]=prometheus
)

missing=()
for tool in "$@"; do
  command -v "${probe[$tool]}" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "require.sh: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "require.sh: missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
