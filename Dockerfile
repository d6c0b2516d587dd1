# syntax=docker/dockerfile:1
# Mission Control image: `mission-control` (subcommands `serve`, `migrate`) on Debian bookworm.
# Build: docker build -t mission-control .   (docker-compose.yml builds it as well)

# ---- build ----
# rust:1-bookworm rather than plain rust:1 so that the binary links against the same glibc as the
# bookworm-slim runtime below (the plain tag follows Debian's newest release).
FROM rust:1-bookworm AS builder
WORKDIR /src
# sqlx compile-time checked queries, if any, use the committed .sqlx/ metadata, not a live database.
ENV SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    locked=""; if [ -f Cargo.lock ]; then locked="--locked"; fi; \
    cargo build --release $locked --bin mission-control \
 && install -m 0755 target/release/mission-control /usr/local/bin/mission-control

# ---- runtime ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin mc
WORKDIR /app
COPY --from=builder /usr/local/bin/mission-control /usr/local/bin/mission-control
# Migrations and NATS stream definitions, for code that reads them at run time.
COPY migrations ./migrations
COPY nats ./nats
USER mc
ENV MC_HTTP_ADDR=0.0.0.0:8080 \
    MC_LOG=info
EXPOSE 8080
CMD ["mission-control", "serve"]
