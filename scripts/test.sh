#!/usr/bin/env bash
# Runs every test of Verigate with the real parts they need: installs the
# Debian packages the tests talk to (redis-server, sip-tester, baresip,
# linphone-cli, kamailio, kamailio-tls-modules, slapd, ldap-utils,
# freeradius, freeradius-utils, docker-compose for deploy/'s compose test,
# chromium, prometheus for promtool, which checks and tests deploy/'s alert
# rules) where missing, starts a private redis-server on a free port unless
# VERIGATE_TEST_REDIS_URL names one, and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v sipp >/dev/null || need+=(sip-tester)
command -v baresip >/dev/null || need+=(baresip)
command -v linphone-daemon >/dev/null || need+=(linphone-cli)
command -v kamailio >/dev/null || need+=(kamailio)
# kamailio serves TLS to the tests only with its tls module, packaged apart.
compgen -G "/usr/lib/*/kamailio/modules/tls.so" >/dev/null || need+=(kamailio-tls-modules)
# OpenLDAP for the directory's LDAP source; the tests run their own slapd
# (internal/peertest), so the one the package may start is not used.
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null || need+=(ldap-utils)
# FreeRADIUS as the proxy in front of Verigate's RADIUS server and as the
# upstream of its radius mode, radclient as the NAS; the tests run their
# own server (internal/peertest), not the one the package may start.
command -v freeradius >/dev/null || [ -x /usr/sbin/freeradius ] || need+=(freeradius)
command -v radclient >/dev/null || need+=(freeradius-utils)
# docker-compose renders deploy/docker-compose.yml in deploy/'s test.
command -v docker-compose >/dev/null || need+=(docker-compose)
# Headless Chromium drives the Entra pages (internal/browsertest).
command -v chromium >/dev/null || need+=(chromium)
# promtool checks deploy/prometheus/alerts.yml and runs its rule tests.
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  echo "test: installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${VERIGATE_TEST_REDIS_URL:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis_pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  # Stop the server and wait for it before removing its directory (it
  # writes its last log line there on the way out); under set -e a failed
  # cleanup would fail a run whose tests passed, so it never fails.
  trap 'kill "$redis_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
        rm -rf "$dir" || true' EXIT
  export VERIGATE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "test: private redis-server at $VERIGATE_TEST_REDIS_URL"
fi

# go.mod and go.sum must be what `go mod tidy` makes of the imports (direct
# dependencies marked direct, nothing unused); -diff needs Go 1.23 or later
# and changes nothing.
if ! go mod tidy -diff; then
  echo "test: go.mod or go.sum is not tidy: run go mod tidy" >&2
  exit 1
fi
# The import rules of docs/ARCHITECTURE.md, checked on the packages'
# dependencies (go list -deps, tests left out): a breach fails the run.
M=github.com/verigate/verigate
deps_free_of() { # packages, forbidden (an extended regexp), rule
  local bad
  bad=$(go list -deps "$1" | grep -v "^$M/verify\$" | grep -E "$2" || true)
  if [ -n "$bad" ]; then
    echo "test: import rule broken: $3; $1 depends on: $(echo $bad)" >&2
    exit 1
  fi
}
deps_free_of ./verify "^$M/" "verify imports no other Verigate package"
deps_free_of ./ivr/... "^$M/(sip|twilio|sms)(/|\$)" "ivr imports no transport (sip, twilio, sms)"
deps_free_of ./api/... "^$M/(store|ratelimit|route)(/|\$)|redis|phonenumbers" "api and api/... build on verify.Service only: no store, ratelimit, route, Redis or phonenumbers"
deps_free_of ./radius/... "^$M/(store|ratelimit|route|api)(/|\$)|redis" "radius builds on verify.Service and directory only: no store, ratelimit, route, api or Redis"
deps_free_of ./sip/media/... "sipgo|^$M/sip\$" "sip/media imports no SIP signalling (no sipgo, no sip)"
# Screenshots of the browser tests (each state of the Entra pages), kept
# after the run for a person to look at.
export VERIGATE_TEST_ARTEFACTS="${VERIGATE_TEST_ARTEFACTS:-$PWD/test-artefacts}"
go vet ./...
go test -race -count=1 -timeout 15m ./... "$@"

# Fuzzing itself is not part of the gate: the Go fuzz coordinator can fail
# with "context deadline exceeded" on a loaded machine without any finding,
# so it runs from `make fuzz`. The run above replays every seed corpus.
