# streamgate container image: streamgate-server (the entrypoint) and the streamgate CLI. The
# load generator streamgate-bench (bench/) is a workspace member but not in the image: it
# runs beside a server, not in its container (cargo run --release -p streamgate-bench).
#
# Build (from the repository root):
#
#   docker build -t streamgate .
#
# Run. A --listen address other than loopback (the image listens on 0.0.0.0:8080) needs
# authentication, or the server refuses to start. Either mount an auth file
# (docs/operations.md; deploy/dev-auth.toml holds development tokens only):
#
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/deploy/dev-auth.toml:/etc/streamgate/auth.toml:ro" \
#     -e STREAMGATE_AUTH_FILE=/etc/streamgate/auth.toml \
#     -e STREAMGATE_BROKERS=kafka.example.internal:9092 \
#     streamgate
#
# or, on a network you trust completely, serve everyone deliberately:
#
#   docker run --rm -p 127.0.0.1:8080:8080 streamgate --insecure-no-auth
#
# Without STREAMGATE_BROKERS (or --brokers) the server runs on its embedded in-memory broker.
# Arguments after the image name go to streamgate-server; the CLI is in the image too:
#   docker exec -e STREAMGATE_TOKEN=streamgate-dev-admin CONTAINER streamgate topics
#
# The health check asks the server's own grpc.health.v1 service, which needs no token, about
# the gateway (SERVING once the server's topics exist). It assumes plain HTTP on port 8080:
# with TLS, or another port, override it (docker run --health-cmd, or compose healthcheck).

# ---------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# Most of these are already in the rust image (it is based on buildpack-deps); they are
# listed so the build does not depend on that by accident. librdkafka is compiled from
# source by rdkafka-sys (its ./configure and make, no cmake); its shared-library step runs a
# Python script. The vendored OpenSSL (feature ssl-vendored) needs perl and make; zlib is
# linked from the system (zlib1g, present in the runtime image). ring needs a C compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        make \
        perl \
        pkg-config \
        python3 \
        zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# 1. Dependencies only, cached as long as no manifest and no .proto file changes: the
#    workspace manifests with stub sources for every target they declare (every member's,
#    bench/, server/tests and client-cli/tests included, or cargo cannot load the
#    workspace). The root crate's build.rs compiles proto/ (protox, no protoc), so both
#    are the real ones here.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY server/Cargo.toml server/Cargo.toml
COPY server/testkit/Cargo.toml server/testkit/Cargo.toml
COPY server/tests/Cargo.toml server/tests/Cargo.toml
COPY client-cli/Cargo.toml client-cli/Cargo.toml
COPY client-cli/tests/Cargo.toml client-cli/tests/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p src server/src server/tests/benches server/tests/integration server/testkit/src \
        client-cli/src client-cli/tests/integration bench/src bench/tests/integration \
    && for lib in src/lib.rs server/src/lib.rs server/testkit/src/lib.rs client-cli/src/lib.rs; do \
        echo '//! Dependency-caching stub, replaced by the real source below.' > "$lib"; \
    done \
    && for main in server/src/main.rs client-cli/src/main.rs bench/src/main.rs \
        server/tests/integration/main.rs client-cli/tests/integration/main.rs \
        bench/tests/integration/main.rs \
        server/tests/benches/gateway.rs server/tests/benches/analytics.rs; do \
        echo 'fn main() {}' > "$main"; \
    done \
    && cargo build --release --locked -p streamgate-server -p streamgate-cli

# 2. The real sources (bench/ and server/tests keep their stubs: they are not built here).
#    The server embeds the committed dashboard (web/dist) at compile time.
#    COPY keeps the files' modification times, which may be older than the stubs' build:
#    touching the crate roots makes cargo rebuild the workspace crates for certain.
COPY src src
COPY server/src server/src
COPY client-cli/src client-cli/src
COPY web/dist web/dist
RUN touch src/lib.rs server/src/lib.rs server/src/main.rs client-cli/src/lib.rs client-cli/src/main.rs \
    && cargo build --release --locked -p streamgate-server -p streamgate-cli

# ---------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# The binaries link only glibc, libgcc_s and zlib dynamically (OpenSSL and librdkafka are
# static); ca-certificates is for TLS to brokers and to https:// servers (CLI).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 streamgate \
    && useradd --system --uid 10001 --gid streamgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin streamgate

COPY --from=builder /build/target/release/streamgate-server /build/target/release/streamgate /usr/local/bin/

USER 10001:10001

ENV STREAMGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["streamgate", "health", "--service", "streamgate.v1.EventGateway"]

ENTRYPOINT ["streamgate-server"]
