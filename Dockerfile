# otpd container image: the compiled build (dist/) on Node 20, run as an unprivileged user,
# friendly to a read-only root file system: everything otpd writes lives in the volume
# /var/lib/otpd (SQLite database, key file, audit anchor). See docs/operations.md#docker.
#
#   docker build -t otpd .
#   docker run -d --name otpd --read-only --tmpfs /tmp -v otpd-data:/var/lib/otpd \
#     -p 5001:5001 -e OTPD_ADMIN_USER=admin -e OTPD_ADMIN_PASSWORD=... otpd

# ---- build: production dependencies (better-sqlite3 compiles here) and dist/
FROM node:20-slim AS build
WORKDIR /opt/otpd
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# scripts are run by hand: `prepare` (the build) needs the sources, copied below
RUN npm ci --omit=dev --ignore-scripts \
 && npm rebuild better-sqlite3 esbuild \
 && npm cache clean --force
COPY scripts/build.mjs scripts/build.mjs
COPY src src
RUN node scripts/build.mjs

# ---- runtime: no compiler, no sources, no npm cache
FROM node:20-slim
ENV NODE_ENV=production \
    OTPD_HOST=0.0.0.0 \
    OTPD_PORT=5001 \
    OTPD_DATA_DIR=/var/lib/otpd \
    OTPD_LOG_FORMAT=json \
    OTPD_SHUTDOWN_SECONDS=8 \
    OTPD_DEMO=0
# OTPD_HOST: a container is reached through its own interface, not loopback.
# OTPD_SHUTDOWN_SECONDS: below `docker stop`'s 10 s grace, so in-flight work finishes before SIGKILL.
# OTPD_DEMO=0: the image never starts the built-in demo, whatever the data volume holds.
RUN groupadd --system --gid 10001 otpd \
 && useradd --system --uid 10001 --gid otpd --home-dir /var/lib/otpd --no-create-home --shell /usr/sbin/nologin otpd \
 && install -d -o otpd -g otpd -m 0700 /var/lib/otpd
WORKDIR /opt/otpd
# owned by root, read-only for otpd
COPY --from=build /opt/otpd/node_modules node_modules
COPY --from=build /opt/otpd/dist dist
COPY package.json ./
COPY bin bin
COPY scripts/build.mjs scripts/build.mjs
COPY web web
COPY deploy/healthcheck.mjs deploy/healthcheck.mjs
USER otpd
VOLUME ["/var/lib/otpd"]
EXPOSE 5001 1812/udp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/opt/otpd/deploy/healthcheck.mjs"]
# otpd CLI in the container: docker exec -it otpd node /opt/otpd/bin/otpd.mjs admin add NAME
ENTRYPOINT ["node", "/opt/otpd/bin/otpd.mjs"]
CMD ["serve"]
