"""Stopping cleanly on SIGTERM and SIGINT: what a TPU VM sends before preemption, and Ctrl-C.

The training loop runs inside `StopRequest()`; the signal handlers only set a
flag, and the loop asks `check(step)` after each step. When it says stop, the
loop saves a checkpoint, waits for it, prints `message(...)` and exits 0:

  with preemption.StopRequest(sync_every=config.log_every) as stop:
    for step in ...:
      state, metrics = train_step(state, batch)
      if stop.check(step):
        checkpoints.save(step, state)
        checkpoints.wait()
        print(stop.message(step, checkpoints.directory))
        break

A second Ctrl-C raises KeyboardInterrupt as usual (stop now, without saving);
a repeated SIGTERM changes nothing. The handlers that were installed before
are put back on exit.

Several processes (a multi-host run) must stop at the same step, since saving
a checkpoint is a collective operation. A signal may reach one host only, or
the hosts at different steps, so the flag is agreed: every `sync_every` steps
each process contributes its flag to `multihost_utils.process_allgather`, and
all stop if any got a signal. Agreeing only every `sync_every` steps (the
loop's log interval, where it reads metrics from the devices anyway) keeps the
other steps free of a host-device round trip; the cost is that a multi-host
run stops up to `sync_every` steps after the signal. A single process stops
after the step in flight. (JAX's own preemption service,
`multihost_utils.reached_preemption_sync_point`, reacts to SIGTERM only and
is not used: installing these handlers replaces its notifier.)
"""

import signal
import threading

import jax
import numpy as np

from ganjax import logs

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
  """A context manager whose signal handlers record the first SIGTERM or SIGINT."""

  def __init__(self, signals=SIGNALS, sync_every: int = 1, lead: bool | None = None):
    self.signals = tuple(signals)
    self.sync_every = max(int(sync_every), 1)
    self.lead = jax.process_index() == 0 if lead is None else lead
    self.signal: str | None = None  # the name of the first signal received
    self._previous = {}

  @property
  def requested(self) -> bool:
    """Whether this process received a signal (not agreed with other processes)."""
    return self.signal is not None

  def _handle(self, signum, frame):
    del frame
    if self.signal is None:
      self.signal = signal.Signals(signum).name
      logs.info(f"{self.signal} received: stopping after this step, once a checkpoint is"
                " saved" + (" (Ctrl-C again to stop at once, without saving)"
                            if signum == signal.SIGINT else ""), True)
    elif signum == signal.SIGINT:
      raise KeyboardInterrupt

  def __enter__(self):
    # Python runs signal handlers in the main thread only, and only it may install them.
    if threading.current_thread() is threading.main_thread():
      for s in self.signals:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc_info):
    for s, handler in self._previous.items():
      # None: the previous handler was not installed from Python; the default is all we can give.
      signal.signal(s, signal.SIG_DFL if handler is None else handler)
    self._previous = {}
    return False

  def check(self, step: int) -> bool:
    """Whether to stop after `step`; the same answer on every process.

    One process: whether it got a signal. Several: False except every
    `sync_every` steps, where the flags are gathered (a collective: every
    process must call this after every step).
    """
    if jax.process_count() == 1:
      return self.requested
    if step % self.sync_every:
      return False
    return agree(self.requested)

  def message(self, step: int, checkpoint_dir: str) -> str:
    return (f"stopped by {self.signal or 'a signal to another process'} at step {step};"
            f" checkpoint saved in {checkpoint_dir}; run the same command to resume")


def agree(flag: bool) -> bool:
  """True on every process if `flag` is True on any (a collective across processes)."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))
