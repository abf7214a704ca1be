# Janus node image: nothing but the statically linked binary (no registry
# is needed to build it; see scripts/build-static.sh, which `docker compose`
# users run first).
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/janus /janus
# HTTP API, Nacos gRPC (HTTP port + 1000), DNS (UDP and TCP), cluster
# traffic (Raft and AP replication).
EXPOSE 8848 9848 8600/udp 8600/tcp 7848
ENV JANUS_HTTP__ADDR=0.0.0.0:8848 \
    JANUS_DNS__ADDR=0.0.0.0:8600 \
    JANUS_CLUSTER__ADDR=0.0.0.0:7848 \
    JANUS_NODE__DATA_DIR=/data
VOLUME /data
HEALTHCHECK --interval=2s --timeout=2s --start-period=2s --retries=3 CMD ["/janus", "health"]
ENTRYPOINT ["/janus"]
