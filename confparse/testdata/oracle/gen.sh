#!/bin/bash
# Regenerates NAME.nginx (what nginx 1.22.1 -t prints) for every NAME.conf.
# Each .conf is copied into a scratch directory first; "@DIR@" in the files
# stands for that directory (it is also the -p prefix and the config dir).
# Run from this directory. Requires Debian's nginx with the mail module.
# An optional argument is a glob of case names: ./gen.sh 'sslfile_*'.
set -e
here=$(pwd)
for f in ${1:-*}.conf; do
  n=${f%.conf}
  dir=$(mktemp -d /tmp/confparse-oracle.XXXXXX)
  mkdir -p "$dir/logs"
  cp cert.pem key.pem "$dir/"
  cp -r ../sslfile "$dir/sslfile"   # TLS fixtures (sslfile_* cases)
  for inc in inc/* inc/.[!.]*; do [ -e "$inc" ] && mkdir -p "$dir/inc" && sed "s#@DIR@#$dir#g" "$inc" > "$dir/$inc"; done
  sed "s#@DIR@#$dir#g" "$f" > "$dir/$f"
  g=""
  [ -f "$n.globals" ] && g=$(sed "s#@DIR@#$dir#g" "$n.globals")
  # through a file, not $(...): bash drops NUL bytes from command output
  if [ -n "$g" ]; then
    nginx -t -q -p "$dir/" -c "$dir/$f" -e stderr -g "$g" >"$dir/.out" 2>&1 || true
  else
    nginx -t -q -p "$dir/" -c "$dir/$f" -e stderr >"$dir/.out" 2>&1 || true
  fi
  grep -av 'test failed\|syntax is ok\|test is successful' "$dir/.out" |
    sed -E 's/^[0-9\/]+ [0-9:]+ (\[[a-z]+\]) [0-9]+#[0-9]+: /\1 /; s/^nginx: (\[[a-z]+\]) /\1 /' |
    sed "s#$dir#@DIR@#g" > "$here/$n.nginx"
  rm -rf "$dir"
done
