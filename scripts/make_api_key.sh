#!/usr/bin/env bash
# Makes a new API key for a tenant. Prints the key once on stdout (hand it to the client;
# it is not stored anywhere) and the line for RAGSTREAM_API_KEYS_FILE on stderr, or appends
# that line to FILE with --append (the file holds only the key's SHA-256). The key is
# rsk_<tenant>_<64 hex>: the tenant is in the clear so that a front nginx can route by it.
# Usage: make_api_key.sh TENANT [--append FILE]
set -euo pipefail
usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}
if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  usage
  [ $# -ge 1 ] && exit 0 || exit 2
fi
tenant="$1"
shift
append=""
if [ $# -gt 0 ]; then
  if [ "$1" = "--append" ] && [ $# -eq 2 ]; then
    append="$2"
  else
    usage >&2
    exit 2
  fi
fi
if ! [[ "$tenant" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; then
  echo "make_api_key.sh: the tenant name must be 1-64 of A-Z a-z 0-9 . _ -" >&2
  exit 2
fi
key="rsk_${tenant}_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)"
line="$tenant:$hash"
if [ -n "$append" ]; then
  (umask 027 && touch "$append")
  printf '%s\n' "$line" >>"$append"
  echo "make_api_key.sh: added a key for tenant '$tenant' to $append; restart the workers" >&2
else
  printf '%s\n' "$line" >&2
fi
printf '%s\n' "$key"
