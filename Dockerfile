# mixroom: the MCU server with its demo page. Build: docker build -t mixroom .
# Run (media needs the UDP range published and the host's address announced):
#   docker run --rm -p 8080:8080 -p 40000-40100:40000-40100/udp \
#     -e PUBLIC_IP=<host address> -e RTC_MIN_PORT=40000 -e RTC_MAX_PORT=40100 mixroom

FROM node:22-bookworm-slim AS build
WORKDIR /app
# python3/make/g++ build native/ (npm ci runs the package's install script, which builds it
# against this Node's own headers and OpenSSL), and @discordjs/opus when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts/build-native.mjs ./scripts/
COPY native ./native
RUN npm ci --no-audit --no-fund && test -f native/srtp/build/Release/mixroom_srtp.node
COPY tsconfig.json tsconfig.client.json ./
COPY src ./src
COPY public ./public
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
# Debian's ffmpeg (libvpx, libopus, drawtext), a font for the name labels, and openssl for
# TLS_SELF_SIGNED (the slim image has the library but not the command).
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core fontconfig curl openssl \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Recordings outlive the container: mount a volume at /data.
RUN mkdir -p /data/recordings && chown -R node:node /data
VOLUME /data
ENV NODE_ENV=production PORT=8080 RTC_MIN_PORT=40000 RTC_MAX_PORT=40100 RECORDINGS_DIR=/data/recordings
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/srtp/build/Release/mixroom_srtp.node ./native/srtp/build/Release/
COPY --from=build /app/dist ./dist
COPY --from=build /app/public ./public
USER node
EXPOSE 8080/tcp
EXPOSE 40000-40100/udp
# Over HTTPS when TLS_CERT or TLS_SELF_SIGNED is set (-k: the probe checks health, not the certificate).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD scheme=http; if [ -n "$TLS_CERT" ] || [ "$TLS_SELF_SIGNED" = 1 ] || [ "$TLS_SELF_SIGNED" = true ]; then scheme=https; fi; \
    curl -fsSk "$scheme://127.0.0.1:${PORT}/healthz" || exit 1
# Same entry as `npm start` after set-up: the compiled server, stopped gracefully by SIGTERM.
# The V8 flag: fewer major GCs (src/server/node-flags.ts).
CMD ["node", "--initial-old-space-size=128", "dist/src/server/main.js"]
