# authsvc image: `make images` builds it FROM scratch from bin/authsvc, the static
# (CGO_ENABLED=0) binary of `make build`, so nothing is pulled from a registry.
# The build context (.tools/images/authsvc/) holds the binary and the host's CA
# bundle (`make images` fills it).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="switchyard-authsvc" \
      org.opencontainers.image.description="Switchyard authsvc: token, user/password, NKey and JWT decisions for every CONNECT" \
      org.opencontainers.image.version="${VERSION}" \
      io.switchyard.service="authsvc"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY authsvc /authsvc
# A numeric non-root user: FROM scratch has no /etc/passwd to name one.
USER 65532:65532
EXPOSE 7522 8522
ENTRYPOINT ["/authsvc"]
CMD ["-m", "8522"]
# No shell or curl in the image: the binary probes its own /healthz. Keep
# -m in step with the monitoring port the container runs with.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/authsvc", "-healthcheck", "-m", "8522"]
