# The runtime image: the static binary of `make static` and nothing else (no shell, no libc,
# no package manager). Build it with `make docker-build`, which builds that binary first; a plain
# `docker build .` expects it to be built already. See README.md, "Docker".
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/fluxiondb /fluxiondb
# An unprivileged, numeric user (a scratch image has no /etc/passwd to name one).
USER 10001:10001
# The data folder, owned by that user, so that a new named volume mounted here is writable
# (Docker gives a new volume the owner of the folder it is mounted on). An empty folder that
# `make docker-build` creates, since a scratch image has no shell to `mkdir` with.
COPY --chown=10001:10001 target/docker-data /data
VOLUME /data
# Listen on every interface of the container; the port is also what the HEALTHCHECK probes.
# The master key comes from SECRET_KEY at `docker run` time (-e SECRET_KEY=...).
ENV BIND=0.0.0.0 PORT=8080
EXPOSE 8080
# SIGTERM from `docker stop` reaches the binary as PID 1: it closes connections, writes a
# final snapshot and exits 0.
STOPSIGNAL SIGTERM
# The health check asks GET /readyz over plain HTTP: no key, no WebSocket, no log lines.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/fluxiondb", "healthcheck", "--timeout", "5"]
ENTRYPOINT ["/fluxiondb"]
CMD ["--data", "/data"]
