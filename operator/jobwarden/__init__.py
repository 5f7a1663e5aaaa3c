"""jobwarden: a Kubernetes operator that runs scheduled batch work safely."""

__version__ = "0.1.0"
