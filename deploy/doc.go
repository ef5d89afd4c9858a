// Package deploy holds Lectern's deployment files (the Dockerfile, docker-compose.yml with its
// Prometheus and Grafana configuration, and the Kubernetes manifests in k8s/) and the tests that check
// them against what the lectern binary actually accepts and serves: its roles, their flags and
// LECTERN_* environment variables, their listen ports, health endpoints and metric names. It has no
// code of its own; see README.md.
package deploy
