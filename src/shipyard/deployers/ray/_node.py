"""``python -m shipyard.deployers.ray._node start ...``: ``ray start`` that keeps a loopback
address as given.

Ray replaces ``127.0.0.1`` and ``localhost`` in ``--address`` and ``--node-ip-address`` by
the machine's outward address (so that other machines can reach the node). A cluster of
nodes on one machine for tests and benchmarks must stay on loopback; a head can be told so
by ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, but a joining node refuses that setting.
"""

from __future__ import annotations

import sys


def main() -> None:
    import ray._private.services as services
    from ray.scripts.scripts import main as ray_main

    original = services.resolve_ip_for_localhost

    def keep_loopback(host: str) -> str:
        return host if host.startswith("127.") else str(original(host))

    services.resolve_ip_for_localhost = keep_loopback
    sys.argv[0] = "ray"
    ray_main()


if __name__ == "__main__":
    main()
