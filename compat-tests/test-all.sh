#!/usr/bin/env bash
# The one test command: installs what the tests need (as root, when
# missing), then gofmt, go vet, go test -race over every package (the
# compat tests against real nginx, Dovecot and Postfix included) and a
# short fuzz smoke of every fuzz target. Ends with "N passed, N failed"
# (packages, fuzz targets and the gofmt/vet checks) and exits non-zero on
# any failure.
#
# Environment: FUZZTIME (default 50000x, 0 skips the fuzz smoke),
# TEST_TIMEOUT (go test -timeout, default 40m), SKIP_INSTALL=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

# A count, not a duration: Go 1.26's fuzz coordinator can fail a target at
# the end of a -fuzztime duration with "context deadline exceeded" and no
# crashing input (golang/go#75804, fixed in Go 1.27); a count has no
# deadline to race. 50000 inputs take about 15 s for the slowest target
# (FuzzLoad) and a second or two for the others.
FUZZTIME=${FUZZTIME:-50000x}
TEST_TIMEOUT=${TEST_TIMEOUT:-40m}
PKGS=(nginx-core libnginx-mod-mail libnginx-mod-stream patch dovecot-imapd dovecot-pop3d postfix swaks fetchmail isync curl openssl redis-server haproxy strace)

log() { printf '\n=== %s\n' "$*"; }

install_packages() {
	local missing=() p
	for p in "${PKGS[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) != 0 ]]; then
		echo "missing packages: ${missing[*]} (run as root to install them)" >&2
		return 1
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# No system services may start: the tests run private instances.
	local made_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	local try
	for try in 1 2 3; do
		if apt-get update -q &&
			apt-get install -y -q --no-install-recommends \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; then
			break
		fi
		((try < 3)) || return 1
		echo "apt-get failed, retrying in 10s" >&2
		sleep 10
	done
	[[ -z $made_policy ]] || rm -f /usr/sbin/policy-rc.d
}

if [[ ${SKIP_INSTALL:-} != 1 ]]; then
	install_packages
fi

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); }

log "go version: $(go version)"

log "gofmt -l"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [[ -n $unformatted ]]; then
	echo "not gofmt'ed:"
	echo "$unformatted"
	fail gofmt
else
	pass
fi

log "go vet ./..."
if go vet ./...; then pass; else fail "go vet"; fi

log "go test -race ./..."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=$work/summary
testlog=$work/test.log
export HARNESS_SUMMARY=$summary
# One race-enabled mailgate for every compat package (the harness would
# otherwise link one per test process).
if go build -race -o "$work/mailgate" ./cmd/mailgate; then
	export MAILGATE_BIN=$work/mailgate
fi
set +e
go test -race -timeout "$TEST_TIMEOUT" ./... 2>&1 | tee "$testlog"
test_rc=${PIPESTATUS[0]}
set -e
ok_pkgs=$(grep -cE '^ok ' "$testlog" || true)
fail_pkgs=$(grep -E '^FAIL[[:space:]]+[^[:space:]]' "$testlog" | awk '{print $2}' | sort -u || true)
passed=$((passed + ok_pkgs))
for p in $fail_pkgs; do fail "$p"; done
if [[ $test_rc != 0 && -z $fail_pkgs ]]; then
	fail "go test (exit $test_rc)"
fi

# The nginx/mailgate benchmark (issue 11), briefly: it must build and
# run with every login succeeding; its speed is never judged here.
log "bench -quick"
if go build -o "$work/bench" ./compat-tests/bench &&
	go build -o "$work/mailgate-bench" ./cmd/mailgate &&
	"$work/bench" -quick -mailgate "$work/mailgate-bench"; then
	pass
else
	fail "compat-tests/bench -quick"
fi

if [[ $FUZZTIME != 0 ]]; then
	log "fuzz smoke ($FUZZTIME per target)"
	for pkg in $(go list ./...); do
		for target in $(go test -run '^$' -list '^Fuzz' "$pkg" 2>/dev/null | grep -E '^Fuzz' || true); do
			echo "--- $pkg $target"
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
				pass
			else
				fail "$pkg $target (fuzz)"
			fi
		done
	done
fi

if [[ -s $summary ]]; then
	log "compat summary"
	sort "$summary"
fi
if ((failed)); then
	log "failures"
	printf '  %s\n' "${failures[@]}"
fi
echo
echo "$passed passed, $failed failed"
((failed == 0))
