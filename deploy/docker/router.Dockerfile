# router image: `make images` builds it FROM scratch from bin/router, the static
# (CGO_ENABLED=0) binary of `make build`, so nothing is pulled from a registry.
# The build context (.tools/images/router/) holds the binary and the host's CA
# bundle (`make images` fills it).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="switchyard-router" \
      org.opencontainers.image.description="Switchyard router: the suite-wide subject-interest graph" \
      org.opencontainers.image.version="${VERSION}" \
      io.switchyard.service="router"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY router /router
# A numeric non-root user: FROM scratch has no /etc/passwd to name one.
USER 65532:65532
EXPOSE 7422 8422
ENTRYPOINT ["/router"]
CMD ["-m", "8422"]
# No shell or curl in the image: the binary probes its own /healthz. Keep
# -m in step with the monitoring port the container runs with.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/router", "-healthcheck", "-m", "8422"]
