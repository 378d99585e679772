# frontdoor image: `make images` builds it FROM scratch from bin/frontdoor, the static
# (CGO_ENABLED=0) binary of `make build`, so nothing is pulled from a registry.
# The build context (.tools/images/frontdoor/) holds the binary and the host's CA
# bundle (`make images` fills it).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="switchyard-frontdoor" \
      org.opencontainers.image.description="Switchyard frontdoor: the client-facing NATS server (TCP, TLS, WebSocket)" \
      org.opencontainers.image.version="${VERSION}" \
      io.switchyard.service="frontdoor"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY frontdoor /frontdoor
# A numeric non-root user: FROM scratch has no /etc/passwd to name one.
USER 65532:65532
EXPOSE 4222 8222
ENTRYPOINT ["/frontdoor"]
CMD ["-m", "8222"]
# No shell or curl in the image: the binary probes its own /healthz. Keep
# -m in step with the monitoring port the container runs with.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/frontdoor", "-healthcheck", "-m", "8222"]
