"""Two processes on this machine, 2 CPU devices each, joined by jax.distributed (gloo).

Each process feeds its own half of the global batch; the DCGAN they train
together, with a checkpoint saved by both, then resumed by both, ends where
one process with 4 devices ends, and so does a WGAN-GP.
"""

import concurrent.futures
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from ganjax import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.g_width=8", "--config.d_width=8", "--config.latent_dim=8",
        "--config.image_size=8", "--config.batch_size=8", "--config.log_every=1",
        "--config.sample_every=100", "--config.checkpoint_every=2", "--config.num_samples=4",
        "--config.eval_every=0"]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(args_per_process, devices: int, port: int | None = None, timeout: float = 240):
  """Runs one command per process at once; their (returncode, output), in process order."""
  env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  if port:  # the coordinator listens on IPv4 loopback only (JAX's default is [::])
    env["JAX_COORDINATOR_BIND_ADDRESS"] = f"127.0.0.1:{port}"
  procs = [subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
           for args in args_per_process]
  try:
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
  finally:
    for p in procs:  # one that failed must not leave the other waiting for it
      if p.poll() is None:
        p.kill()
        p.wait()
  return [(p.returncode, out) for p, out in zip(procs, outputs)]


def train_on_two_processes(workdir, steps, experiment="gan", extra=()):
  port = free_port()
  results = launch([["-m", "ganjax.main", "--config", f"experiments/{experiment}.py",
                     "--workdir", workdir, *TINY, *extra, f"--config.num_train_steps={steps}",
                     f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                     f"--process_id={i}"] for i in range(2)], devices=2, port=port)
  for code, output in results:
    assert code == 0, output[-3000:]
  return [output for _, output in results]


def test_two_processes_train_save_and_resume_like_one(tmp_path):
  both, one = str(tmp_path / "two_processes"), str(tmp_path / "one_process")
  first = train_on_two_processes(both, steps=2)
  summary = json.load(open(os.path.join(both, "summary.json"), encoding="utf-8"))
  assert (summary["processes"], summary["devices"], summary["per_process_batch_size"]) == (2, 4, 4)
  assert "training gan on bundled:mnist for 2 steps, batch 8 over 4 cpu device(s)" in first[0]
  # The checkpoint holds the arrays of both processes' devices.
  step_dir = os.path.join(both, "checkpoints", "2", "default")
  assert {"ocdbt.process_0", "ocdbt.process_1"} <= set(os.listdir(step_dir))

  resumed = train_on_two_processes(both, steps=4)
  assert "resuming from the checkpoint at step 2" in resumed[0]
  (code, output), = launch([["-m", "ganjax.main", "--config", "experiments/gan.py", "--workdir",
                             one, *TINY, "--config.num_train_steps=4"]], devices=4)
  assert code == 0, output[-3000:]

  _, state_both, step_both = train.load_run(both)
  _, state_one, step_one = train.load_run(one)
  assert step_both == step_one == 4 and int(jax.device_get(state_both.step)) == 4
  leaves_both = jax.tree.leaves(jax.device_get(state_both))
  leaves_one = jax.tree.leaves(jax.device_get(state_one))
  assert len(leaves_both) == len(leaves_one)
  for a, b in zip(leaves_both, leaves_one):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # Training moved the parameters: the comparison is not between two initial states.
  _, state_two, _ = train.load_run(both, step=2)
  assert not np.allclose(jax.tree.leaves(state_two.params)[0], jax.tree.leaves(state_one.params)[0])


def test_two_processes_train_wgan_gp_like_one(tmp_path):
  """WGAN-GP's interpolation weights are drawn for the global batch, wherever its rows
  live: the critic updates of two hosts with 2 devices each are those of one host
  with 2 devices (another device count too: per-device draws would differ)."""
  both, one = str(tmp_path / "two_processes"), str(tmp_path / "one_process")
  extra = ["--config.n_critic=2"]
  with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the two runs side by side
    two_runs = pool.submit(train_on_two_processes, both, 2, "wgan_gp", extra)
    one_run = pool.submit(launch, [["-m", "ganjax.main", "--config", "experiments/wgan_gp.py",
                                    "--workdir", one, *TINY, *extra,
                                    "--config.num_train_steps=2"]], devices=2)
    two_runs.result()
    (code, output), = one_run.result()
  assert code == 0, output[-3000:]
  records = [[json.loads(line) for line in open(os.path.join(w, "metrics.jsonl"),
                                                encoding="utf-8")] for w in (both, one)]
  assert [r["step"] for r in records[0]] == [r["step"] for r in records[1]] == [1, 2]
  for a, b in zip(*records):
    assert a["gradient_penalty"] > 0
    for key in ("d_loss", "gradient_penalty", "wasserstein", "g_loss"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
  _, state_both, _ = train.load_run(both)
  _, state_one, _ = train.load_run(one)
  leaves_both = jax.tree.leaves(jax.device_get(state_both))
  leaves_one = jax.tree.leaves(jax.device_get(state_one))
  assert len(leaves_both) == len(leaves_one)
  for a, b in zip(leaves_both, leaves_one):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_signal_to_one_process_stops_both_at_the_same_step():
  port = free_port()
  results = launch([[os.path.join("tests", "multihost_worker.py"), "stop", f"127.0.0.1:{port}",
                     str(i), "3"] for i in range(2)], devices=2, port=port, timeout=120)
  lines = []
  for code, output in results:
    assert code == 0, output[-3000:]
    lines.append([l for l in output.splitlines() if l.startswith(("stopped", "never"))])
  # Process 1 got SIGTERM after step 3; the flags are agreed every 2 steps: both stop at 4.
  assert lines == [["stopped at 4 requested=False"], ["stopped at 4 requested=True"]]
