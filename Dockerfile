# Multi-stage build: compile with the Rust toolchain, run on a slim Debian as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY .cargo .cargo
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin renkei

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/renkei --create-home renkei
COPY --from=build /src/target/release/renkei /usr/local/bin/renkei
USER renkei
WORKDIR /var/lib/renkei
ENV RENKEI_LISTEN=0.0.0.0:8080 RENKEI_DATA_DIR=/var/lib/renkei/data RENKEI_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["renkei"]
CMD ["serve"]
