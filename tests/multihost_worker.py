"""One process of a two-process CPU run, for tests/test_multihost.py (not a test itself).

  python tests/multihost_worker.py stop <coordinator host:port> <process id> <signal step>

joins the run (2 CPU devices per process, gloo collectives) and counts steps
inside preemption.StopRequest(sync_every=2); the process whose id is 1 sends
itself SIGTERM after <signal step>. Each prints `stopped at <step>`.
"""

import os
import signal
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402  pylint: disable=wrong-import-position

from ganjax import preemption  # noqa: E402  pylint: disable=wrong-import-position


def stop(coordinator: str, process_id: int, signal_step: int) -> None:
  jax.distributed.initialize(coordinator, num_processes=2, process_id=process_id)
  assert jax.process_count() == 2 and jax.device_count() == 4
  with preemption.StopRequest(sync_every=2) as request:
    for step in range(1, 100):
      if process_id == 1 and step == signal_step:
        os.kill(os.getpid(), signal.SIGTERM)
      if request.check(step):
        print(f"stopped at {step} requested={request.requested}", flush=True)
        return
  print("never stopped", flush=True)


if __name__ == "__main__":
  assert sys.argv[1] == "stop", sys.argv
  stop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
