#!/usr/bin/env bash
# The demo: a private Dovecot (and Postfix) on loopback with user demo /
# password demo, the auth_http test server on 127.0.0.1:21900, and mailgate
# with examples/nginx.conf in the foreground (POP3 21110, IMAP 21143,
# SMTP 21025). Run as root from anywhere; `run.sh -nginx` uses real nginx.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
for p in dovecot-imapd dovecot-pop3d postfix curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
	if [[ $(id -u) != 0 ]]; then
		echo "missing packages: ${need[*]}; run as root to install them" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	made_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then # no system services: the demo runs its own
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${need[@]}"
	[[ -z $made_policy ]] || rm -f /usr/sbin/policy-rc.d
fi

exec go run ./examples/demo "$@"
