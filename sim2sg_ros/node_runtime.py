"""Shared start-up / shut-down of the sim2sg nodes, so each ``main()`` is three lines.

A node constructor that finds bad configuration raises ValueError / RuntimeError with one
sentence; :func:`run_node` prints it and exits with status 2 instead of a traceback. SIGINT and
SIGTERM shut the node down cleanly (rclpy's signal handlers), with status 0.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def run_node(factory: Callable, args: Optional[list] = None, *, num_threads: int = 1, spin: bool = True) -> int:
    """Init rclpy, build the node with ``factory()``, spin it, shut down; return the exit status.

    ``num_threads > 1`` spins a MultiThreadedExecutor. Prefer one thread and coroutine callbacks for
    slow work: rclpy's multi-threaded executor rebuilds its wait set in Python in a busy loop, and in the
    perception node it took the GIL from inference so that 7 of a 30 Hz camera's frames per second
    reached the callback (one thread: 29.6 Hz). With ``spin=False`` the factory's node is expected to do its own work
    in ``node.run()`` and return an exit status.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    status = EXIT_OK
    try:
        try:
            node = factory()
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            print(f"[ERROR] {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_INPUT
        if not spin:
            return int(node.run() or 0)
        executor = MultiThreadedExecutor(num_threads=num_threads) if num_threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except Exception:
            # SIGINT / SIGTERM shut the context down from the signal handler; when that lands while the
            # executor builds its next wait set, rclpy raises RCLError ("the given context is not valid")
            # instead of ExternalShutdownException. After a shutdown that is the same clean stop.
            if rclpy.ok():
                raise
        finally:
            executor.shutdown(timeout_sec=1.0)
    except (KeyboardInterrupt, ExternalShutdownException):
        status = EXIT_OK
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return status
