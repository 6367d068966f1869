# syntax=docker/dockerfile:1
# One image for every mailfleet role: `mailfleet relay`, `mailfleet operator`, `mailfleet dev`.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the node@24 devDependency is for machines without Node 24.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# Heap sizing for the relay under load (bench/README.md): a young generation of 3 MB per
# semi-space instead of 16, and an explicit old-space limit, without which V8 sizes its heap from
# the machine's memory and collects late: peak 129-136 MB instead of 229-238 MB under the 50 KiB
# load. 2 MB semi-spaces cost ~10 % more CPU per message in scavenges, 4 MB peaked near 150 MB.
# 256 MB fits the SendingPool default memory limit (512Mi). The operator Deployment sets its
# own NODE_OPTIONS (chart value nodeOptions). Under this cap V8 grows the old generation by its
# smallest factor before each major GC; the relay sets --heap-growing-percent=100 for itself at
# start (relay/heap-growth.ts, refused in NODE_OPTIONS; MAILFLEET_HEAP_GROWING_PERCENT overrides).
ENV NODE_OPTIONS="--max-semi-space-size=3 --max-old-space-size=256"
# glibc gives each thread that allocates its own malloc arena and keeps what it freed there: with
# SMTP session threads (relay/intake/threads.ts) the arenas held 28 MB at the bench's peak. Two
# arenas: peak RSS 187-200 -> 180-182 MB at 2 session threads, 140-144 -> 137-138 MB at none, CPU per
# message unchanged (bench/README.md, 2026-12-07). One arena, with one session thread (the default on
# 2 CPUs): 50 x 25 MiB at once 189-215 -> 177-185 MB, the small-message loads 3-7 MB less, CPU per
# message within the runs' spread (0.275/0.291 -> 0.280/0.293 ms reused, 0.517/0.534 -> 0.519/0.536
# one per connection; bench/README.md "Session threads by default").
ENV MALLOC_ARENA_MAX=1
# Type-stripped and compiled modules, warmed below, so a pod never loads the TypeScript stripper
# (about 25 MB less resident memory; the root filesystem is read-only in the pods).
ENV NODE_COMPILE_CACHE=/app/.compile-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY cli ./cli
COPY relay ./relay
COPY operator ./operator
COPY crds ./crds
# relay/intake/session-thread.ts is a worker thread's entry: imported here it is compiled (and
# cached) and then refuses to run; without it each session thread loaded the stripper (~15 MB).
RUN node --input-type=module -e "import { globSync } from 'node:fs'; for (const f of globSync('{cli,relay,operator}/**/*.ts')) if (!/\\.test(-helper)?\\.ts$/.test(f)) await import('/app/' + f).catch((err) => { if (!f.endsWith('session-thread.ts')) throw err; });" \
 && chmod -R a+rX /app/.compile-cache
# The relay keeps its queue here (a PVC in Kubernetes); uid 10001 owns it.
RUN mkdir -p /var/lib/mailfleet && chown 10001:10001 /var/lib/mailfleet \
 && printf '#!/bin/sh\nexec node /app/cli/mailfleet.ts "$@"\n' > /usr/local/bin/mailfleet && chmod 0755 /usr/local/bin/mailfleet
USER 10001:10001
# Unprivileged ports only: the operator maps Service ports below 1024 to port + 10000
# (587 → 10587, 465 → 10465, 25 → 10025); 2525 stays 2525; 8080 is /metrics, /healthz, /readyz.
EXPOSE 10587 10465 10025 2525 8080
ENTRYPOINT ["mailfleet"]
CMD ["--help"]
