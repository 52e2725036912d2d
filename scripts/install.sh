#!/usr/bin/env bash
# Installs ragstream as a service: the worker binary, the systemd units (socket-activated
# worker instances and ragstream.target), the environment file (only if none exists), the
# nginx site with its includes and limit zones, the web root, the sample corpus, the
# `ragstream` user and group, and the data dir /var/lib/ragstream. Then prints how to enable
# the workers and the site. Running it again changes nothing unless a file changed.
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--workers N] [--help]
#   --prefix DIR    where the binary goes: DIR/bin/ragstream-worker [/usr/local]
#   --destdir DIR   stage everything under DIR (packaging, tests; env DESTDIR works too):
#                   no user is created and nothing is chowned, what would be is printed
#   --workers N     worker instances: ragstream.target wants ragstream-worker@1..N.socket
#                   and the nginx upstream lists their sockets [2]
# Files: $DESTDIR$PREFIX/bin/ragstream-worker; $DESTDIR/etc/systemd/system/ragstream*;
# $DESTDIR/etc/ragstream/ragstream.env; $DESTDIR/etc/nginx/{sites-available/ragstream,
# conf.d/ragstream.http.conf,ragstream/}; $DESTDIR/usr/share/ragstream/{web,sample};
# $DESTDIR/usr/share/doc/ragstream; $DESTDIR/var/lib/ragstream.
# Operator-owned config is never overwritten: the environment file is installed only where
# none exists; an nginx site or zone file that differs from this version is kept and the
# new version is written next to it as FILE.new. Units are replaced (customise them with
# drop-ins: `systemctl edit ragstream-worker@.service`).
# RAGSTREAM_BIN=PATH installs another build of the worker.
set -euo pipefail
umask 022
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
die() {
  echo "install.sh: $*" >&2
  exit 1
}

prefix=/usr/local
destdir="${DESTDIR:-}"
workers=2
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --prefix | --destdir | --workers)
      [ $# -ge 2 ] || die "$1 needs a value (see --help)"
      opt="$1" val="$2"
      shift 2
      ;;
    --prefix=* | --destdir=* | --workers=*)
      opt="${1%%=*}" val="${1#*=}"
      shift
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  case "$opt" in
    --prefix) prefix="$val" ;;
    --destdir) destdir="$val" ;;
    --workers) workers="$val" ;;
  esac
done

# ---- checks
[[ "$workers" =~ ^[1-9][0-9]{0,2}$ ]] ||
  die "--workers must be a number from 1 to 999, not '$workers'"
[[ "$prefix" == /* ]] || die "--prefix must be an absolute path, not '$prefix'"
[[ "$prefix" =~ ^[A-Za-z0-9._/+-]+$ ]] ||
  die "--prefix may only contain letters, digits and . _ / + -"
prefix="${prefix%/}"
[ -n "$prefix" ] || prefix=/
if [ -n "$destdir" ]; then
  mkdir -p "$destdir" || die "cannot create the destination dir '$destdir'"
  destdir="$(cd "$destdir" && pwd)"
  [ "$destdir" = / ] && destdir=""
fi
live=no # install into the running system: users, ownership, daemon-reload
if [ -z "$destdir" ]; then
  [ "$(id -u)" -eq 0 ] ||
    die "installing into / needs root (sudo $0 ...), or stage it with --destdir DIR"
  live=yes
fi

bin="${RAGSTREAM_BIN:-$root/build/ragstream-worker}"
if [ ! -x "$bin" ]; then
  die "$bin is missing: build it first with
    scripts/install_deps.sh && scripts/build.sh ragstream-worker"
fi
"$bin" --version >/dev/null 2>&1 ||
  die "$bin does not run ('$bin --version' failed): rebuild it with scripts/build.sh ragstream-worker"
for f in systemd/ragstream-worker@.service systemd/ragstream-worker@.socket \
  systemd/ragstream.target systemd/ragstream.env.example nginx/ragstream.site.conf \
  nginx/ragstream.http.conf nginx/fastcgi_ragstream.conf nginx/json_errors.conf; do
  [ -f "$root/$f" ] || die "$root/$f is missing: is this a complete ragstream checkout?"
done

gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT

# ---- helpers: each prints what it changed and counts it; an unchanged file is not touched
changes=0
units_changed=no
changed() {
  changes=$((changes + 1))
  echo "  $*"
}
mode_of() { stat -c %a "$1"; }
same_mode() { [ "$((8#$(mode_of "$1")))" -eq "$((8#$2))" ]; }

# ensure_dir DIR MODE: creates DIR (and missing parents, 0755) or fixes its mode.
ensure_dir() {
  local dir="$1" mode="$2"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    chmod "$mode" "$dir"
    changed "created $dir/ (mode $mode)"
  elif ! same_mode "$dir" "$mode"; then
    chmod "$mode" "$dir"
    changed "mode $mode on $dir/"
  fi
}

# put_file SRC DST MODE: installs SRC as DST (atomically: a running binary is replaced, not
# rewritten) unless DST already has the same bytes and mode.
put_file() {
  local src="$1" dst="$2" mode="$3" parent
  parent="$(dirname "$dst")"
  [ -d "$parent" ] || ensure_dir "$parent" 0755
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
    if ! same_mode "$dst" "$mode"; then
      chmod "$mode" "$dst"
      changed "mode $mode on $dst"
    fi
    return 0
  fi
  local tmp="$dst.install-tmp.$$"
  cp "$src" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dst"
  changed "installed $dst"
  case "$dst" in */etc/systemd/system/*) units_changed=yes ;; esac
}

# put_conffile SRC DST MODE: like put_file where DST is missing or identical; an operator's
# different DST is kept, and this version goes to DST.new.
notices=()
put_conffile() {
  local src="$1" dst="$2" mode="$3"
  if [ -f "$dst" ] && ! cmp -s "$src" "$dst"; then
    put_file "$src" "$dst.new" "$mode"
    local shown="${dst#"$destdir"}"
    notices+=("kept $shown: it differs from this version, which is $shown.new (merge them)")
  else
    put_file "$src" "$dst" "$mode"
    if [ -f "$dst.new" ]; then # merged since: the proposal is stale
      rm -f "$dst.new"
      changed "removed $dst.new (${dst#"$destdir"} is this version now)"
    fi
  fi
}

# put_tree SRCDIR DSTDIR: every file of SRCDIR (0644) in DSTDIR (dirs 0755).
put_tree() {
  local src="$1" dst="$2" rel
  ensure_dir "$dst" 0755
  while IFS= read -r -d '' rel; do
    rel="${rel#./}"
    case "${rel##*/}" in .keep | .gitkeep) continue ;; esac # placeholders of empty dirs
    if [ -d "$src/$rel" ]; then
      ensure_dir "$dst/$rel" 0755
    else
      put_file "$src/$rel" "$dst/$rel" 0644
    fi
  done < <(cd "$src" && find . -mindepth 1 \( -type d -o -type f \) -print0 | sort -z)
}

# ---- render the files that depend on the options
worker_path="$prefix/bin/ragstream-worker"
[ "$prefix" = / ] && worker_path=/bin/ragstream-worker
sed "s#^ExecStart=.*#ExecStart=$worker_path#" "$root/systemd/ragstream-worker@.service" \
  >"$gen/ragstream-worker@.service"
grep -qx "ExecStart=$worker_path" "$gen/ragstream-worker@.service" ||
  die "could not set ExecStart in the service unit"
wants=""
for ((i = 1; i <= workers; i++)); do wants+="${wants:+ }ragstream-worker@$i.socket"; done
sed "s#^Wants=.*#Wants=$wants#" "$root/systemd/ragstream.target" >"$gen/ragstream.target"
grep -q "^Wants=ragstream-worker@1.socket" "$gen/ragstream.target" ||
  die "could not set Wants= in ragstream.target"
sed "s#/usr/local/bin/ragstream-worker#$worker_path#g" "$root/systemd/ragstream.env.example" \
  >"$gen/ragstream.env.example"
# The site's upstream: one `server unix:/run/ragstream/worker-N.sock;` line per instance.
awk -v n="$workers" '
  /^[ \t]*server unix:\/run\/ragstream\/worker-[0-9]+\.sock;/ {
    if (!done) {
      for (i = 1; i <= n; i++) printf "    server unix:/run/ragstream/worker-%d.sock;\n", i
      done = 1
    }
    next
  }
  { print }
  END { if (!done) exit 1 }
' "$root/nginx/ragstream.site.conf" >"$gen/ragstream.site.conf" ||
  die "nginx/ragstream.site.conf has no upstream socket lines to render"

# ---- install
D="$destdir"
echo "installing ragstream into ${D:-/} (prefix $prefix, $workers workers)"
put_file "$bin" "$D$worker_path" 0755

units="$D/etc/systemd/system"
put_file "$gen/ragstream-worker@.service" "$units/ragstream-worker@.service" 0644
put_file "$root/systemd/ragstream-worker@.socket" "$units/ragstream-worker@.socket" 0644
put_file "$gen/ragstream.target" "$units/ragstream.target" 0644

[ -d "$D/etc/ragstream" ] || ensure_dir "$D/etc/ragstream" 0755
env_file="$D/etc/ragstream/ragstream.env"
env_created=no
if [ -e "$env_file" ]; then
  notices+=("kept /etc/ragstream/ragstream.env (an existing environment file is never
      overwritten; the current example is /usr/share/ragstream/ragstream.env.example)")
else
  put_file "$gen/ragstream.env.example" "$env_file" 0640
  env_created=yes
fi
put_file "$gen/ragstream.env.example" "$D/usr/share/ragstream/ragstream.env.example" 0644

put_conffile "$gen/ragstream.site.conf" "$D/etc/nginx/sites-available/ragstream" 0644
put_conffile "$root/nginx/ragstream.http.conf" "$D/etc/nginx/conf.d/ragstream.http.conf" 0644
put_file "$root/nginx/fastcgi_ragstream.conf" "$D/etc/nginx/ragstream/fastcgi_ragstream.conf" 0644
put_file "$root/nginx/json_errors.conf" "$D/etc/nginx/ragstream/json_errors.conf" 0644

ensure_dir "$D/usr/share/ragstream" 0755
if [ -d "$root/web" ]; then
  put_tree "$root/web" "$D/usr/share/ragstream/web"
else
  ensure_dir "$D/usr/share/ragstream/web" 0755
fi
[ -d "$root/data/sample" ] && put_tree "$root/data/sample" "$D/usr/share/ragstream/sample"
[ -f "$root/docs/operations.md" ] &&
  put_file "$root/docs/operations.md" "$D/usr/share/doc/ragstream/operations.md" 0644

[ -d "$D/var/lib" ] || ensure_dir "$D/var/lib" 0755
ensure_dir "$D/var/lib/ragstream" 0750

# ---- the user, ownership, systemd
if [ "$live" = yes ]; then
  if ! getent group ragstream >/dev/null; then
    groupadd --system ragstream
    changed "created group ragstream"
  fi
  if ! getent passwd ragstream >/dev/null; then
    useradd --system --gid ragstream --home-dir /var/lib/ragstream --no-create-home \
      --shell /usr/sbin/nologin --comment "ragstream worker" ragstream
    changed "created user ragstream"
  fi
  # nginx (www-data) reaches the sockets as their group (SocketGroup=www-data, 0660); it is
  # also a member of ragstream for sockets an operator gives that group. The worker's
  # UMask=0077 keeps the LMDB files themselves private to ragstream.
  if getent passwd www-data >/dev/null; then
    if ! id -nG www-data | tr ' ' '\n' | grep -qx ragstream; then
      usermod --append --groups ragstream www-data
      changed "added www-data to group ragstream"
    fi
  else
    notices+=("no www-data user (is nginx installed? scripts/install_deps.sh): the sockets'
      group is www-data; for another nginx user, set SocketGroup= in a drop-in")
  fi
  if [ "$(stat -c %U:%G /var/lib/ragstream)" != ragstream:ragstream ]; then
    chown ragstream:ragstream /var/lib/ragstream
    changed "owner ragstream:ragstream on /var/lib/ragstream/"
  fi
  # Only a file installed now: an operator's own file keeps the owner they gave it.
  if [ "$env_created" = yes ] && [ "$(stat -c %U:%G "$env_file")" != root:ragstream ]; then
    chown root:ragstream /etc/ragstream/ragstream.env
    changed "owner root:ragstream on /etc/ragstream/ragstream.env"
  fi
  if [ "$units_changed" = yes ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    changed "systemctl daemon-reload"
  fi
else
  cat <<STEPS
staged under $destdir: no users created, no owners changed; on the target host, as root:
    groupadd --system ragstream
    useradd --system --gid ragstream --home-dir /var/lib/ragstream --no-create-home \\
      --shell /usr/sbin/nologin --comment 'ragstream worker' ragstream
    usermod --append --groups ragstream www-data
    chown ragstream:ragstream /var/lib/ragstream
    chown root:ragstream /etc/ragstream/ragstream.env
STEPS
fi

for n in "${notices[@]}"; do echo "note: $n"; done
if [ "$changes" -eq 0 ]; then
  echo "nothing changed: everything was already installed"
else
  echo "done: $changes change$([ "$changes" -eq 1 ] || echo s)"
fi

sockets="ragstream-worker@{1..$workers}.socket"
[ "$workers" -eq 1 ] && sockets="ragstream-worker@1.socket"
cat <<MSG

Next steps (as root; docs/operations.md explains each):
  1. settings: edit /etc/ragstream/ragstream.env (OPENAI_BASE_URL, OPENAI_API_KEY,
     RAGSTREAM_CHAT_MODEL; unset = offline answers), then check them:
       sh -c 'set -a; . /etc/ragstream/ragstream.env; exec $worker_path --check-config'
  2. workers ($workers): systemctl daemon-reload
       systemctl enable --now $sockets ragstream.target
  3. nginx site (Debian's default site also answers on port 80: remove
     /etc/nginx/sites-enabled/default, or set server_name in the site):
       ln -sf /etc/nginx/sites-available/ragstream /etc/nginx/sites-enabled/ragstream
       nginx -t && systemctl reload nginx
  4. optional sample documents:
       RAGSTREAM_URL=http://127.0.0.1 $root/scripts/ingest.sh /usr/share/ragstream/sample
MSG
