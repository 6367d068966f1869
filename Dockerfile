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
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY cli ./cli
COPY relay ./relay
COPY operator ./operator
COPY crds ./crds
# The relay keeps its queue here (a PVC in Kubernetes); uid 10001 owns it.
RUN mkdir -p /var/lib/mailfleet && chown 10001:10001 /var/lib/mailfleet \
 && printf '#!/bin/sh\nexec node /app/cli/mailfleet.ts "$@"\n' > /usr/local/bin/mailfleet && chmod 0755 /usr/local/bin/mailfleet
USER 10001:10001
# Unprivileged ports only: the operator maps Service ports below 1024 to port + 10000
# (587 → 10587, 465 → 10465, 25 → 10025); 2525 stays 2525; 8080 is /metrics, /healthz, /readyz.
EXPOSE 10587 10465 10025 2525 8080
ENTRYPOINT ["mailfleet"]
CMD ["--help"]
