#!/bin/sh
# mailgate's postinst: the system user the unit runs as, and its log
# directory. The service is not enabled: it needs a configuration first
# (mailgate migrate writes /etc/nginx/mailgate.conf; see
# /usr/share/doc/mailgate/migrate.md).
set -e
if [ "$1" = configure ]; then
	if ! getent passwd mailgate >/dev/null; then
		adduser --system --group --no-create-home --home /nonexistent mailgate
	fi
	chown mailgate:adm /var/log/mailgate 2>/dev/null || chown mailgate /var/log/mailgate
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
fi
exit 0
