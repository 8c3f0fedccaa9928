# Build stage: a release binary.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches/fluxiondb-bench ./benches/fluxiondb-bench
RUN cargo build --release --locked --bin fluxiondb

# Runtime stage: the binary alone, run as an unprivileged user.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin fluxion \
    && mkdir -p /app/data && chown -R fluxion /app
COPY --from=build /src/target/release/fluxiondb /usr/local/bin/fluxiondb
USER fluxion
WORKDIR /app
EXPOSE 8080
# The master key comes from the SECRET_KEY environment variable (or --secret-key).
# Arguments pass straight through: docker run IMAGE --data=/app/data
ENTRYPOINT ["/usr/local/bin/fluxiondb"]
