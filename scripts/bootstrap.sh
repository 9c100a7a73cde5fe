#!/usr/bin/env bash
# Installs what blosm needs on a fresh machine, idempotently:
#   - Node.js 24 (from the npm package node@24) when the machine's Node is older than 22.13,
#   - Debian packages for the real services (redis-server, docker.io, docker-registry) when running as root,
#   - the project's npm dependencies.
# Set BLOSM_SKIP_APT=1 to skip the Debian packages (you then provide redis-server, dockerd and a registry).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }

node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=13)?0:1)'
}
if [ -x .tools/node24/node_modules/.bin/node ]; then
  say "Node $(.tools/node24/node_modules/.bin/node --version) (project-local)"
elif node_ok; then
  say "Node $(node --version) (system)"
else
  command -v npm >/dev/null 2>&1 || { echo "bootstrap: npm is required to install Node 24 (install Node.js and npm first)" >&2; exit 1; }
  say "system Node is $(node --version 2>/dev/null || echo missing); installing Node 24 into .tools/node24"
  npm install --silent --no-audit --no-fund --prefix .tools/node24 node@24 >/dev/null
  say "Node $(.tools/node24/node_modules/.bin/node --version) installed"
fi
export PATH="$root/.tools/node24/node_modules/.bin:$PATH"

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
# The sample apps' server (docker/sample-app/infer.c) is built static into the busybox image.
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
[ -f "$(gcc -print-file-name=libc.a 2>/dev/null)" ] || need_apt+=(libc6-dev)
command -v tc >/dev/null 2>&1 || need_apt+=(iproute2)
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light) # npm run bench:gateway compares the gateway with nginx
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus) # test/observability.test.ts checks rules and metrics
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "${BLOSM_SKIP_APT:-}" = 1 ]; then
    say "skipping Debian packages (BLOSM_SKIP_APT=1); missing: ${need_apt[*]}"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: these programs are missing and I can only install them as root with apt-get: ${need_apt[*]}" >&2
    echo "bootstrap: install them (Debian: apt-get install ${need_apt[*]}) and run me again" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # Not `npm ci`: it insists that every platform's optional package (EDR ships one per OS/CPU) is in the lock,
  # and registries that mirror only Linux packages cannot produce such a lock. `npm install` follows the lock;
  # --no-save keeps it from rewriting the lock, so bootstrapping a clone leaves `git status` clean.
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
# npm skips optional dependencies whose engines exclude the running Node; EDR's native binding requires
# Node >= 22, so an install run under an older Node leaves Hardhat unable to start. Catch that here.
if ! node -e 'require("@nomicfoundation/edr")' >/dev/null 2>&1; then
  echo "bootstrap: Hardhat's EDR native binding is missing (npm ran under an older Node?)." >&2
  echo "bootstrap: fix: rm -rf node_modules && PATH=$root/.tools/node24/node_modules/.bin:\$PATH npm ci" >&2
  exit 1
fi
say "compiling contracts"
node node_modules/.bin/hardhat compile --quiet >/dev/null
# The typed ABI the workers import (committed) is generated from this build; it only changes with the contract.
node node_modules/.bin/tsx scripts/gen-abi.ts
# ./blosm and the worker image run compiled JavaScript (no TypeScript transpiling at each start).
say "building the CLI (dist/)"
node node_modules/.bin/tsc -p tsconfig.build.json && touch dist/.built
say "ready"
