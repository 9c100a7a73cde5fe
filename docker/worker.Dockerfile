# The blosm worker image: `blosm worker` (and the other CLI commands) on Node 24, as an unprivileged user.
# No public base image can be pulled where blosm is developed, so the base is assembled from local parts by
# scripts/build-worker-image.sh (busybox, the Node 24 binary and the C libraries it links) and passed as BASE.
# Where public images can be pulled, BASE=node:24-bookworm-slim works the same.
ARG BASE=blosm/node-base:24
FROM ${BASE}
WORKDIR /opt/blosm
# The context holds the compiled worker (dist/, built by tsc), the registry's ABI and production node_modules only
# (no TypeScript, no tsx, no keys, no .env): a start loads JavaScript, nothing is transpiled.
COPY . /opt/blosm
ENV NODE_ENV=production
# Unprivileged: the Docker socket is reached through the group that owns it (compose: group_add), and GPUs are
# only queried (nvidia-smi), never used by the worker itself.
USER 10001:10001
ENTRYPOINT ["node", "--no-memory-reducer", "--min-semi-space-size=8", "--max-semi-space-size=16", "/opt/blosm/dist/workers/src/cli/main.js"]
CMD ["--help"]
