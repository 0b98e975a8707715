"""The lab: an emulated Kubernetes cluster (API server, DNS, kubelet) and its scenarios."""
