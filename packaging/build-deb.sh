#!/bin/bash
# Builds dist/mailgate_VERSION_ARCH.deb: a static mailgate and the
# systemd, logrotate and doc files, with nfpm (installed with go install
# when missing). Run from anywhere; output in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM_VERSION=${NFPM_VERSION:-v2.48.0}
export VERSION=${VERSION:-$(sed -n 's/^var version = "\(.*\)"/\1/p' cmd/mailgate/version.go)}
export ARCH=${ARCH:-$(go env GOARCH)}
[[ -n $VERSION ]] || { echo "no version found in cmd/mailgate/version.go" >&2; exit 1; }
mkdir -p dist
CGO_ENABLED=0 GOARCH=$ARCH go build -trimpath -ldflags "-s -w" -o dist/mailgate ./cmd/mailgate
if ! file dist/mailgate | grep -q 'statically linked'; then
	echo "dist/mailgate is not a static binary: $(file dist/mailgate)" >&2
	exit 1
fi
nfpm=$(command -v nfpm || true)
if [[ -z $nfpm ]]; then
	GOBIN=$PWD/dist/bin go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
	nfpm=$PWD/dist/bin/nfpm
fi
"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "dist/mailgate_${VERSION}_${ARCH}.deb"
echo "dist/mailgate_${VERSION}_${ARCH}.deb"
