#!/bin/bash
# Installs a mailgate .deb into a clean Debian root made by debootstrap
# and checks it there: the files and the system user are in place,
# "mailgate migrate" splits an nginx.conf, "mailgate -t" accepts the
# mailgate half, mailgate runs as the mailgate user and greets a POP3
# client, stops on QUIT, and the package purges cleanly.
#
#   packaging/smoke-deb.sh dist/mailgate_0.1.0_amd64.deb
#
# Needs root and debootstrap. SUITE (bookworm), MIRROR
# (http://deb.debian.org/debian) and ROOT (a new temporary directory; an
# existing debootstrapped ROOT is reused) may be set.
set -euo pipefail
deb=$(readlink -f "${1:?usage: $0 PACKAGE.deb}")
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=${ROOT:-$(mktemp -d)/root}
PORT=${PORT:-24110}

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

if [[ ! -x $ROOT/usr/bin/apt-get ]]; then
	step "debootstrap $SUITE into $ROOT"
	debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
		{ tail -20 "$ROOT.debootstrap.log"; fail debootstrap; }
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT

step "install $(basename "$deb")"
cp "$deb" "$ROOT/tmp/mailgate.deb"
in_root apt-get update -q >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/mailgate.deb >"$ROOT/tmp/install.log" 2>&1 ||
	{ cat "$ROOT/tmp/install.log"; fail "apt-get install"; }

step "files and user"
for f in /usr/sbin/mailgate /lib/systemd/system/mailgate.service \
	/lib/systemd/system/mailgate.service.d/systemd-252.conf /etc/logrotate.d/mailgate \
	/usr/share/doc/mailgate/migrate.md; do
	[[ -e $ROOT$f ]] || fail "$f missing"
done
in_root id mailgate >/dev/null || fail "no mailgate user"
[[ $(in_root stat -c %U /var/log/mailgate) == mailgate ]] || fail "/var/log/mailgate not owned by mailgate"
v=$(in_root mailgate -v 2>&1)
[[ $v == "mailgate version: mailgate/"* ]] || fail "mailgate -v: $v"
echo "$v"

step "migrate an nginx.conf"
mkdir -p "$ROOT/etc/nginx"
cat >"$ROOT/etc/nginx/nginx.conf" <<CONF
pid /run/nginx.pid;
events {
    worker_connections 64;
}

http {
    server { listen 127.0.0.1:24080; }
}

# the mail proxy
mail {
    auth_http 127.0.0.1:24999/auth;
    server {
        listen 127.0.0.1:$PORT;
        protocol pop3;
    }
}
CONF
in_root mailgate migrate --nginx none --out /tmp/migration >"$ROOT/tmp/migrate.log" 2>&1 ||
	{ cat "$ROOT/tmp/migrate.log"; fail "mailgate migrate"; }
cat "$ROOT/tmp/migrate.log"
cp "$ROOT/tmp/migration/nginx.conf" "$ROOT/tmp/migration/mailgate.conf" "$ROOT/etc/nginx/"
grep -q '^mail {' "$ROOT/etc/nginx/nginx.conf" && fail "nginx half still has mail {}"
mkdir -p "$ROOT/run/mailgate"
in_root chown mailgate:mailgate /run/mailgate
# As the unit's ExecStartPre does: as the mailgate user, so that the
# log file -t creates is the user's (one created by root would stop the
# service from opening it).
rm -f "$ROOT/var/log/mailgate/error.log" "$ROOT/run/mailgate/mailgate.pid"
out=$(chroot --userspec=mailgate:mailgate "$ROOT" /usr/sbin/mailgate -t -c /etc/nginx/mailgate.conf 2>&1) || fail "mailgate -t: $out"
echo "$out"

step "run as mailgate and greet a POP3 client"
chroot --userspec=mailgate:mailgate "$ROOT" /usr/sbin/mailgate -c /etc/nginx/mailgate.conf -g 'daemon off;' &
pid=$!
for _ in $(seq 50); do
	[[ -s $ROOT/run/mailgate/mailgate.pid ]] && break
	sleep 0.1
done
[[ $(cat "$ROOT/run/mailgate/mailgate.pid" 2>/dev/null) == "$pid" ]] || fail "no pid file naming $pid"
exec 3<>/dev/tcp/127.0.0.1/$PORT
read -r -t 5 greeting <&3 || fail "no greeting"
exec 3>&-
[[ $greeting == "+OK"* ]] || fail "greeting: $greeting"
echo "greeting: $greeting"
kill -QUIT "$pid"
wait "$pid" || fail "exit status $? after QUIT"
[[ ! -e $ROOT/run/mailgate/mailgate.pid ]] || fail "pid file left after QUIT"
grep -q 'exit' "$ROOT/var/log/mailgate/error.log" 2>/dev/null || true

step "purge"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q mailgate >/dev/null
[[ ! -e $ROOT/usr/sbin/mailgate ]] || fail "/usr/sbin/mailgate left after purge"
[[ ! -e $ROOT/var/log/mailgate ]] || fail "/var/log/mailgate left after purge"
echo
echo "smoke test passed ($SUITE, $ROOT)"
