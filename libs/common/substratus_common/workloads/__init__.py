"""Building the Kubernetes workloads (Jobs, Deployments, Pods) every manager creates: resources,
GPU scheduling, the container contract and storage mounts, shared so no manager copies another."""
