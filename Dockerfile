# syntax=docker/dockerfile:1
# The API, worker and beat image: `docker build -t shop-backend .`, then
#   docker run shop-backend            (web, the default)
#   docker run shop-backend worker | beat | manage <command>
# See entrypoint.sh for the switches it reads (RUN_MIGRATIONS, PRODUCTION, ...).

# Compiles the TypeScript with every dependency.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only: no compiler, test tools or type packages in the image.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY templates ./templates
COPY entrypoint.sh ./
# The code stays root's (read-only to the process); only .data (local media, PGlite) is writable.
RUN chmod 0755 entrypoint.sh && mkdir -p .data && chown node:node .data
USER node
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/live/').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["./entrypoint.sh"]
CMD ["web"]
