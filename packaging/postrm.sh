#!/bin/sh
# mailgate's postrm: purge removes the logs. The mailgate user stays
# (Debian's practice for system users: files elsewhere may still be its).
set -e
if [ "$1" = purge ]; then
	rm -rf /var/log/mailgate
fi
exit 0
