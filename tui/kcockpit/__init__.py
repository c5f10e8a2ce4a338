"""kcockpit: a terminal cockpit for troubleshooting Kubernetes networking on Cilium."""

import os

__version__ = "0.1.0"

# gRPC's C core logs handshake failures and GOAWAYs straight to stderr, which would
# garble the full-screen UI; errors reach the user through our own messages instead.
# It reads this once, when grpc is first imported, so it must be set here.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
