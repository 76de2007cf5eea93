"""StopRequest: real signals to this process set the flag; the old handlers come back."""

import os
import signal

import pytest

from ganjax import preemption


def previous_handlers():
  return {s: signal.getsignal(s) for s in preemption.SIGNALS}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_sets_the_flag_and_the_loop_stops_after_its_step(signum, capsys):
  before = previous_handlers()
  steps = []
  with preemption.StopRequest() as stop:
    for step in range(1, 100):
      steps.append(step)
      if step == 3:
        os.kill(os.getpid(), signum)  # delivered to this, the main, thread right away
      if stop.check(step):
        break
    assert stop.requested and stop.signal == signum.name
    assert stop.message(step, "/runs/x/checkpoints") == (
        f"stopped by {signum.name} at step 3; checkpoint saved in /runs/x/checkpoints;"
        " run the same command to resume")
  assert steps == [1, 2, 3]
  assert previous_handlers() == before
  assert f"{signum.name} received: stopping after this step" in capsys.readouterr().out


def test_a_second_sigint_interrupts_at_once_and_a_second_sigterm_does_not():
  with pytest.raises(KeyboardInterrupt):
    with preemption.StopRequest() as stop:
      os.kill(os.getpid(), signal.SIGTERM)
      os.kill(os.getpid(), signal.SIGTERM)
      assert stop.signal == "SIGTERM"
      os.kill(os.getpid(), signal.SIGINT)
      pytest.fail("the second signal, a SIGINT, should have raised KeyboardInterrupt")
  # Outside the context, SIGINT is Python's KeyboardInterrupt again and SIGTERM the default.
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_signal_no_stop_and_handlers_restored_after_an_exception():
  marker = lambda signum, frame: None  # noqa: E731
  old = signal.signal(signal.SIGTERM, marker)
  try:
    with pytest.raises(RuntimeError):
      with preemption.StopRequest() as stop:
        assert not any(stop.check(step) for step in range(1, 10))
        assert signal.getsignal(signal.SIGTERM) == stop._handle  # pylint: disable=protected-access
        raise RuntimeError("the loop failed")
    assert signal.getsignal(signal.SIGTERM) is marker
  finally:
    signal.signal(signal.SIGTERM, old)


def test_agree_on_one_process_is_the_flag():
  assert preemption.agree(True) and not preemption.agree(False)
