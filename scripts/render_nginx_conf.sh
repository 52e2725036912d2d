#!/usr/bin/env bash
# Renders nginx/nginx.local.conf.in into PREFIX/conf/nginx.conf and creates the prefix's
# directories. Usage: render_nginx_conf.sh PREFIX PORT SOCKET...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$1" port="$2"
shift 2
[ $# -ge 1 ] || { echo "usage: $0 PREFIX PORT SOCKET..." >&2; exit 2; }
mkdir -p "$prefix"/{conf,logs,run,tmp}
servers=""
for sock in "$@"; do servers+="        server unix:${sock} max_fails=0;"$'\n'; done
cp "$root/nginx/fastcgi_ragstream.conf" "$root/nginx/json_errors.conf" "$prefix/conf/"
# Run as root (CI, containers), the workers must keep root's identity to reach the sockets.
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root root;"
awk -v webroot="$root/web" -v port="$port" -v userline="$user_line" -v servers="$servers" -v confdir="$prefix/conf" '
  { gsub(/@WEB_ROOT@/, webroot); gsub(/@USER_LINE@/, userline); gsub(/@PORT@/, port); gsub(/@CONF_DIR@/, confdir); if ($0 ~ /@SERVERS@/) { printf "%s", servers; next } print }
' "$root/nginx/nginx.local.conf.in" > "$prefix/conf/nginx.conf"
