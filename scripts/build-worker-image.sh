#!/usr/bin/env bash
# Builds the worker image from local parts (no registry pulls): a base image of busybox + Node 24 + its shared
# libraries, imported with `docker import`, then docker/worker.Dockerfile on a context of the compiled worker (dist/),
# the registry ABI and production node_modules. Uses DOCKER_HOST if set. Usage: scripts/build-worker-image.sh [tag]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:-blosm/worker:dev}"
work="$root/.blosm/image"
node_bin="$(readlink -f "$root/.tools/node24/node_modules/.bin/node" 2>/dev/null || command -v node)"
say() { printf 'build-worker-image: %s\n' "$*"; }
[ -f "$root/artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json" ] || { echo "build-worker-image: contracts not compiled; run bash scripts/bootstrap.sh" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/rootfs" "$work/app"

say "assembling the base rootfs (busybox, Node $("$node_bin" --version), its libraries)"
rfs="$work/rootfs"
mkdir -p "$rfs/bin" "$rfs/usr/local/bin" "$rfs/etc/ssl/certs" "$rfs/tmp" "$rfs/home/blosm"
chmod 1777 "$rfs/tmp"
cp /bin/busybox "$rfs/bin/busybox"
for a in sh ls cat env id wget; do ln -s busybox "$rfs/bin/$a"; done
cp "$node_bin" "$rfs/usr/local/bin/node"
for lib in $(ldd "$node_bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$rfs$(dirname "$lib")" && cp -L "$lib" "$rfs$lib"
done
cp /etc/ssl/certs/ca-certificates.crt "$rfs/etc/ssl/certs/" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/bin/sh\nblosm:x:10001:10001:blosm:/home/blosm:/bin/sh\n' > "$rfs/etc/passwd"
printf 'root:x:0:\nblosm:x:10001:\n' > "$rfs/etc/group"
chown 10001:10001 "$rfs/home/blosm"
tar -C "$rfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/bin' -c 'ENV HOME=/home/blosm' - blosm/node-base:24 >/dev/null

say "compiling the CLI and worker (dist/)"
(cd "$root" && PATH="$(dirname "$node_bin"):$PATH" node node_modules/.bin/tsc -p tsconfig.build.json && touch dist/.built)

say "preparing the context (compiled worker, ABI, production dependencies)"
app="$work/app"
cp "$root/package.json" "$root/package-lock.json" "$app/"
mkdir -p "$app/dist"
cp -r "$root/dist/workers" "$app/dist/workers"
find "$app/dist" -name '*.map' -delete
mkdir -p "$app/artifacts/contracts/MigrationRegistry.sol"
cp "$root/artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json" "$app/artifacts/contracts/MigrationRegistry.sol/"
(cd "$app" && PATH="$(dirname "$node_bin"):$PATH" npm install --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)

say "building $tag"
docker build -q -f "$root/docker/worker.Dockerfile" --build-arg BASE=blosm/node-base:24 -t "$tag" "$app" >/dev/null
say "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
