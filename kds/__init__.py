"""kds: the data-storage toolkit of the Kubernetes remediation platform."""

__version__ = "0.1.0"
