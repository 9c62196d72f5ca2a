#!/bin/sh
# Installs the Debian packages the test lab runs (pebble, bind9) when they are missing.
set -eu
missing=""
command -v pebble >/dev/null 2>&1 || [ -x /usr/bin/pebble ] || missing="$missing pebble"
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing="$missing bind9"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "The test lab needs Debian packages:$missing" >&2
    echo "Install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "Installing$missing for the test lab" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y --no-install-recommends $missing >/dev/null
}
