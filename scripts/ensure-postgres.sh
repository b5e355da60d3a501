#!/usr/bin/env bash
# ensure-postgres.sh makes sure the PostgreSQL server binaries are installed,
# so that the tests can start a throwaway server when none answers on
# 127.0.0.1:5432 (see store/storetest). It does not start a server itself.
#
# - Binaries present (/usr/lib/postgresql/*/bin/initdb): nothing to do.
# - A server already answers on 127.0.0.1:5432 (or $PAYGATE_TEST_POSTGRES_URL
#   is set): nothing to do.
# - Otherwise, as root with apt-get: install Debian's postgresql package
#   non-interactively. Without root or apt-get: say what to install, and
#   fail only when CI=true (the PostgreSQL tests skip elsewhere).
set -euo pipefail

have_binaries() {
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}

server_answers() {
	# bash's /dev/tcp: no client tools needed.
	(exec 3<>/dev/tcp/127.0.0.1/5432) >/dev/null 2>&1
}

if have_binaries || [[ -n "${PAYGATE_TEST_POSTGRES_URL:-}" ]] || server_answers; then
	exit 0
fi

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-postgres: installing PostgreSQL server binaries (apt-get install postgresql)" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Install the binaries only; do not let the package start a cluster of
	# its own where services cannot run (containers without systemd).
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	have_binaries && exit 0
	echo "ensure-postgres: postgresql installed but initdb not found" >&2
	exit 1
fi

msg="ensure-postgres: PostgreSQL is not installed and nothing answers on 127.0.0.1:5432; install it (sudo apt-get install postgresql) or set PAYGATE_TEST_POSTGRES_URL"
if [[ "${CI:-}" == "true" ]]; then
	echo "$msg" >&2
	exit 1
fi
echo "$msg; the PostgreSQL tests will be skipped" >&2
