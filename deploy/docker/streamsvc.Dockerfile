# streamsvc image: `make images` builds it FROM scratch from bin/streamsvc, the static
# (CGO_ENABLED=0) binary of `make build`, so nothing is pulled from a registry.
# The build context (.tools/images/streamsvc/) holds the binary and the host's CA
# bundle (`make images` fills it).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="switchyard-streamsvc" \
      org.opencontainers.image.description="Switchyard streamsvc: JetStream streams, consumers, KV and object store" \
      org.opencontainers.image.version="${VERSION}" \
      io.switchyard.service="streamsvc"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY streamsvc /streamsvc
# The store directory, owned by the runtime user so that a named volume
# mounted here starts writable (Docker copies ownership into a new volume).
COPY --chown=65532:65532 data /data
# A numeric non-root user: FROM scratch has no /etc/passwd to name one.
USER 65532:65532
EXPOSE 8622
ENTRYPOINT ["/streamsvc"]
CMD ["-m", "8622", "--store_dir", "/data"]
# No shell or curl in the image: the binary probes its own /healthz. Keep
# -m in step with the monitoring port the container runs with.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/streamsvc", "-healthcheck", "-m", "8622"]
