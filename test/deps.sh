#!/usr/bin/env bash
# Installs the Debian packages that building, testing and the demo need.
# Idempotent and quiet when everything is already there; needs root or sudo.
set -euo pipefail

pkgs=(
  postgresql-15 postgresql-server-dev-15 libwslay-dev libssl-dev libjansson-dev
  libkrb5-dev gcc make
  python3 python3-pytest python3-websockets python3-psycopg2 python3-jwt
  clang-14 libclang-rt-14-dev redis-server cppcheck pg-bsd-indent
  chromium
  # make deb and test/package: Debian's way of building PostgreSQL extensions
  debhelper postgresql-server-dev-all dpkg-dev fakeroot lintian git
  # make bench's charts, and their smoke test in test/bench
  python3-matplotlib
  # issue 17: chat-gateway links libpq; its tests put HAProxy in front
  libpq-dev haproxy
)
# Node.js 20 and npm (the JS client, browser and demo tests): the machine may
# have them from elsewhere already, so only when there are none.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
