// Package deploytest checks what deploy/ ships: the images, the compose
// suite (started for real with Docker, driven with nats.go from the host)
// and the Kubernetes manifests (decoded strictly into the API types and
// built with kustomize; no cluster can run here).
package deploytest
