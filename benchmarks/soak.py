"""Soak test: train, get preempted at random, resume, for a long time; nothing may be lost.

  python benchmarks/soak.py [--minutes 20] [--config experiments/wgan.py] \
      [--workdir runs/soak-wgan] [--checkpoint_seconds 60] [--seed 0]

Runs `python -m ganjax.main` on the default experiment (the README's quickstart,
experiments/wgan.py) in a fresh workdir, with a checkpoint about every
`--checkpoint_seconds` (checkpoint_every is set from the measured steps/s and
may change on resume). Each run, once its first step has compiled, gets SIGTERM
after a random wait; it must save, print "stopped by SIGTERM at step S;
checkpoint saved in ...", and exit 0; then the same command starts again, until
`--minutes` have passed. With --sigkill_fraction > 0 some runs are killed
with SIGKILL instead (a crash: they resume from their newest checkpoint).

Checked at the end (exit status 1 if any fails):
  - every SIGTERM'd run exited 0 with the stop line;
  - the step counter never went backwards: each run resumed at exactly the step
    the previous one stopped at (or, after a SIGKILL, at the newest checkpoint
    on disk), and metrics.jsonl's steps only increase (SIGTERM only);
  - no checkpoint was lost: every step directory that appeared is either still
    there or was rotated out by `keep_checkpoints` newer ones, and each one
    left restores;
  - memory did not grow between checkpoints: within each run, the RSS of the
    training process at its later checkpoints stays within --rss_slack_fraction
    (5%) of its RSS after warm-up: at its second checkpoint (the first includes
    compilation), or, for a run that evaluates, at its first checkpoint after
    the first evaluation (which builds the evaluation's networks once). The
    first run is left alone for a third of the soak, so that it has several.

Writes <workdir>-soak/summary.json and each run's output as run_<k>.log there.
Not run by CI: it needs the SIGTERM handling of ganjax.train and many minutes.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STOPPED = re.compile(r"stopped by (SIG\w+) at step (\d+); checkpoint saved in (\S+);")
RESUMED = re.compile(r"resuming from the checkpoint at step (\d+)")
COMPILED = "compiled and ran the first step"


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--minutes", type=float, default=20.0, help="how long to keep restarting")
  p.add_argument("--config", default="experiments/wgan.py")
  p.add_argument("--workdir", default=os.path.join("runs", "soak-wgan"),
                 help="a fresh workdir (deleted first if it exists)")
  p.add_argument("--checkpoint_seconds", type=float, default=60.0)
  p.add_argument("--steps_per_second", type=float, default=1.7,
                 help="first guess of the training speed, corrected from metrics.jsonl")
  p.add_argument("--min_wait", type=float, default=None,
                 help="seconds after the first step before SIGTERM, at least (default:"
                      " a twentieth of the soak, 20 s or more)")
  p.add_argument("--max_wait", type=float, default=None,
                 help="at most (default: a fifth of the soak, 60 s or more)")
  p.add_argument("--sigkill_fraction", type=float, default=0.0,
                 help="fraction of the interruptions that are SIGKILL instead of SIGTERM")
  p.add_argument("--stop_timeout", type=float, default=300.0,
                 help="seconds a run may take to save and exit after SIGTERM")
  p.add_argument("--rss_slack_mb", type=float, default=0.0,
                 help="RSS growth allowed after warm-up, in MiB (the larger of this and"
                      " --rss_slack_fraction of the warm RSS)")
  p.add_argument("--rss_slack_fraction", type=float, default=0.05,
                 help="RSS growth allowed after warm-up, as a fraction of the warm RSS")
  p.add_argument("--seed", type=int, default=0, help="of the random waits")
  p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                 help="more --config.KEY=VALUE overrides for every run")
  return p.parse_args(argv)


def steps_on_disk(checkpoints: str) -> list[int]:
  if not os.path.isdir(checkpoints):
    return []
  return sorted(int(n) for n in os.listdir(checkpoints) if n.isdigit())


def measured_speed(workdir: str) -> float | None:
  """The median steps/s of the newest logged intervals, or None."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    speeds = [r["steps_per_sec"] for r in map(json.loads, f) if r.get("steps_per_sec", 0) > 0]
  return sorted(speeds[-20:])[len(speeds[-20:]) // 2] if speeds else None


def read_log(path: str) -> str:
  with open(path, encoding="utf-8", errors="replace") as f:
    return f.read()


def one_run(k: int, args, workdir: str, logdir: str, checkpoint_every: int, deadline: float,
            rng: random.Random, seen: dict) -> dict:
  """Starts a run, interrupts it at a random time after its first step, and reports."""
  command = [sys.executable, "-m", "ganjax.main", "--config", args.config, "--workdir", workdir,
             "--config.num_train_steps=100000000", f"--config.checkpoint_every={checkpoint_every}",
             *[f"--config.{item}" for item in args.set]]
  log_path = os.path.join(logdir, f"run_{k}.log")
  checkpoints = os.path.join(workdir, "checkpoints")
  on_disk_at_start = steps_on_disk(checkpoints)
  with open(log_path, "w", encoding="utf-8") as log:
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": ROOT})
  ps = psutil.Process(proc.pid)
  rss = []  # (step, MiB) when a new checkpoint appears
  started = time.time()
  wait = None
  kill = rng.random() < args.sigkill_fraction
  sent = sent_at = None
  while proc.poll() is None:
    time.sleep(0.5)
    for step in steps_on_disk(checkpoints):
      if step not in seen:
        seen[step] = time.time()
        try:
          rss.append((step, ps.memory_info().rss / 2**20))
        except psutil.Error:
          pass
    if wait is None and COMPILED in read_log(log_path):
      low = args.min_wait if args.min_wait is not None else max(20.0, args.minutes * 3)
      high = args.max_wait if args.max_wait is not None else max(60.0, args.minutes * 12)
      wait = time.time() + rng.uniform(low, max(low, high))
      if k == 0:  # one long run, with checkpoints enough to see whether memory grows
        wait = max(wait, time.time() + args.minutes * 20)
    if sent is None and wait is not None and time.time() >= min(wait, deadline):
      sent = "SIGKILL" if kill else "SIGTERM"
      proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
      sent_at = time.time()
    if sent == "SIGTERM" and time.time() - sent_at > args.stop_timeout:
      proc.kill()
      sent = "SIGTERM (then SIGKILL: no exit in time)"
  for step in steps_on_disk(checkpoints):  # saved as the run stopped
    seen.setdefault(step, time.time())
  stop_seconds = time.time() - sent_at if sent else None
  output = read_log(log_path)
  stopped = STOPPED.search(output)
  resumed = RESUMED.search(output)
  return {
      "run": k, "signal": sent, "returncode": proc.returncode, "seconds": time.time() - started,
      "seconds_from_signal_to_exit": stop_seconds,
      "checkpoint_every": checkpoint_every,
      "resumed_at": int(resumed.group(1)) if resumed else 0,
      "newest_on_disk_at_start": on_disk_at_start[-1] if on_disk_at_start else 0,
      "stopped_at": int(stopped.group(2)) if stopped else None,
      "rss_at_checkpoints_mib": rss,
      "last_line": output.strip().splitlines()[-1] if output.strip() else "",
  }


def eval_every(workdir: str) -> int:
  """The run's eval_every, from its config.json (0 when it has none)."""
  try:
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
      return int(json.load(f).get("eval_every", 0))
  except (OSError, ValueError):
    return 0


def warm_samples(samples: list, start: int, every: int) -> list:
  """The (step, MiB) RSS samples of a run from the end of its warm-up on: from its second
  checkpoint (the first includes compilation), and, when it evaluates, from the first
  checkpoint after its first evaluation (which loads the evaluation's networks once)."""
  warm = samples[1:]
  if every:
    first_eval = (start // every + 1) * every
    warm = [s for s in warm if s[0] > first_eval]
  return warm


def check(runs: list[dict], seen: dict, workdir: str, keep: int, slack_mb: float,
          slack_fraction: float = 0.05) -> list[str]:
  """The failures, as sentences (empty: all good)."""
  failures = []
  previous = None
  for run in runs:
    k = run["run"]
    if run["signal"] and run["signal"].startswith("SIGTERM"):
      if run["returncode"] != 0 or run["stopped_at"] is None:
        failures.append(f"run {k} got SIGTERM but exited {run['returncode']} without the stop"
                        f" line (last line: {run['last_line']!r}; {run['signal']})")
    elif run["signal"] is None:
      failures.append(f"run {k} ended by itself ({run['returncode']}): {run['last_line']!r}")
    if previous is not None:
      expected = (previous["stopped_at"] if previous["signal"] == "SIGTERM"
                  and previous["stopped_at"] is not None else run["newest_on_disk_at_start"])
      if run["resumed_at"] != expected:
        failures.append(f"run {k} resumed at step {run['resumed_at']}, not at {expected} where"
                        f" run {previous['run']} left off")
    if run["stopped_at"] is not None and run["stopped_at"] < run["resumed_at"]:
      failures.append(f"run {k} stopped at {run['stopped_at']}, before its start"
                      f" {run['resumed_at']}")
    samples = warm_samples(run["rss_at_checkpoints_mib"], run["resumed_at"] or 0,
                           eval_every(workdir))
    if len(samples) >= 2:
      base = samples[0][1]
      worst = max(samples[1:], key=lambda s: s[1])
      allowed = max(slack_mb, slack_fraction * base)
      if worst[1] - base > allowed:
        failures.append(f"run {k}: RSS grew from {base:.0f} MiB (step {samples[0][0]}) to"
                        f" {worst[1]:.0f} MiB (step {worst[0]}), more than {allowed:.0f} MiB")
    previous = run

  metrics = os.path.join(workdir, "metrics.jsonl")
  if all(r["signal"] == "SIGTERM" for r in runs) and os.path.isfile(metrics):
    with open(metrics, encoding="utf-8") as f:  # the training records (an evaluation's
      #                                           record shares its step)
      steps = [r["step"] for r in map(json.loads, f) if not any(k.startswith("eval/") for k in r)]
    back = [(a, b) for a, b in zip(steps, steps[1:]) if b <= a]
    if back:
      failures.append(f"metrics.jsonl steps go back or repeat: {back[:5]}")

  checkpoints = os.path.join(workdir, "checkpoints")
  left = steps_on_disk(checkpoints)
  expected_left = sorted(seen)[-keep:]
  if left != expected_left:
    failures.append(f"checkpoints left {left}, expected the newest {keep} of all saved:"
                    f" {expected_left}")
  from ganjax import train  # pylint: disable=g-import-not-at-top  # after the runs: JAX here
  for step in left:
    try:
      train.load_run(workdir, step)
    except Exception as e:  # pylint: disable=broad-except
      failures.append(f"checkpoint {step} does not restore: {type(e).__name__}: {e}")
  return failures


def main(argv=None):
  args = parse_args(argv)
  workdir = os.path.abspath(args.workdir)
  logdir = workdir + "-soak"
  for path in (workdir, logdir):
    shutil.rmtree(path, ignore_errors=True)
  os.makedirs(logdir)
  rng = random.Random(args.seed)
  deadline = time.time() + args.minutes * 60
  speed = args.steps_per_second
  runs, seen = [], {}
  while time.time() < deadline - 5:
    every = max(1, round(speed * args.checkpoint_seconds))
    run = one_run(len(runs), args, workdir, logdir, every, deadline, rng, seen)
    runs.append(run)
    rss = [round(m) for _, m in run["rss_at_checkpoints_mib"]]
    took = run["seconds_from_signal_to_exit"]
    print(f"run {run['run']}: steps {run['resumed_at']} -> {run['stopped_at']}, {run['signal']},"
          f" exit {run['returncode']} {took or 0:.0f}s after it, {run['seconds']:.0f}s in all,"
          f" checkpoint_every {every},"
          f" RSS MiB at checkpoints {rss}", flush=True)
    speed = measured_speed(workdir) or speed
  keep = 3
  for item in args.set:
    if item.startswith("keep_checkpoints="):
      keep = int(item.partition("=")[2])
  failures = check(runs, seen, workdir, keep, args.rss_slack_mb, args.rss_slack_fraction)
  summary = {"minutes": args.minutes, "runs": runs, "checkpoints_seen": sorted(seen),
             "failures": failures, "config": args.config, "workdir": workdir}
  with open(os.path.join(logdir, "summary.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2)
  last = max((r["stopped_at"] or r["resumed_at"] for r in runs), default=0)
  print(f"{len(runs)} runs over {args.minutes:g} minutes reached step {last};"
        f" {len(seen)} checkpoints saved; summary in {logdir}/summary.json")
  for failure in failures:
    print(f"FAIL: {failure}")
  print("soak: all checks passed" if not failures else f"soak: {len(failures)} check(s) failed")
  return 1 if failures else 0


if __name__ == "__main__":
  sys.exit(main())
