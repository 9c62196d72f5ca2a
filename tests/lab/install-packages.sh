#!/bin/sh
# Installs the Debian packages the test lab runs (pebble, bind9, postgresql with libpq5, the
# client library psycopg uses) when they are missing.
set -eu
missing=""
command -v pebble >/dev/null 2>&1 || [ -x /usr/bin/pebble ] || missing="$missing pebble"
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing="$missing bind9"
# Debian keeps initdb and postgres in /usr/lib/postgresql/<version>/bin, off PATH
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
ldconfig -p 2>/dev/null | grep -q 'libpq\.so\.5 ' || /sbin/ldconfig -p 2>/dev/null |
    grep -q 'libpq\.so\.5 ' || missing="$missing libpq5"
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
