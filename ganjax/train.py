"""The training loop shared by every algorithm.

train_and_evaluate(config, workdir) reads top to bottom: check the config,
build the mesh, initialise or restore the state, then run the jitted
data-parallel step, logging metrics, writing sample grids and saving
checkpoints on the way. Running it again on the same workdir resumes from the
newest checkpoint.
"""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import algorithms, backend as backends, configs, data, logs, parallel, preemption
from ganjax import resume, seeds, validation
from ganjax.checkpoint import Checkpoints
from ganjax.errors import GanjaxError

BEST_DIR = "best"  # <workdir>/best/: the best checkpoint by the evaluation's main metric


def prepare_workdir(workdir: str) -> str:
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test_{os.getpid()}")
    with open(probe, "w", encoding="utf-8"):
      pass
    os.remove(probe)
  except OSError as e:
    raise GanjaxError(f"workdir {workdir} is not writable ({e.strerror});"
                      " choose another with --workdir") from e
  return workdir


def write_json(path: str, value) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(tmp, path)


def count_params(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def example_batch(config) -> dict[str, np.ndarray]:
  shape = (2,) + data.example_shape(config)
  return {"image": np.zeros(shape, np.float32), "label": np.zeros((2,), np.int32)}


def sample_figure(config, samples: np.ndarray, columns: int | None) -> np.ndarray:
  """A uint8 image of generated samples: an image grid, or a scatter plot of 2D points.

  With several seeds `samples` has a leading seed axis and the figure tiles one
  figure per seed, in seed order.
  """
  if seeds.count(config) > 1:
    return seeds.tile([sample_figure(seeds.replica_config(config, 0), s, columns)
                       for s in samples])
  spec = data.parse_spec(config.dataset)
  if spec.kind == "toy":
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    return toy.scatter_image(samples, spec.name)
  return logs.image_grid(samples, columns)


def load_run(workdir: str, step: int | str | None = None):
  """(config, state, step) of a finished or running workdir's checkpoint.

  `step`: a saved step, "best" (the best checkpoint kept by `eval_every`), or
  None for the newest. The state is restored onto the default device,
  whatever device count saved it.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise GanjaxError(f"{workdir} has no config.json: is it the --workdir of a training run?")
  with open(path, encoding="utf-8") as f:
    saved = configs.upgrade(json.load(f))
  # Keys added to ganjax after the run was saved take their (neutral) defaults.
  config = configs.defaults(saved.get("algorithm", "gan"))
  config.update(saved)
  algorithm = algorithms.get(config.algorithm)
  best = step == "best"
  directory = os.path.join(workdir, BEST_DIR if best else "checkpoints")
  if best and not os.path.isdir(directory):
    raise GanjaxError(f"{workdir} has no best checkpoint ({directory}): it is kept by runs"
                      " with eval_every > 0; give a step instead")
  checkpoints = Checkpoints(directory)
  try:
    steps = checkpoints.all_steps()
    step = steps[-1] if (step is None or best) and steps else step
    if step is None or step not in steps:
      raise GanjaxError(f"no checkpoint{' at step ' + str(step) if step else ''} in"
                        f" {checkpoints.directory}; saved steps: {steps or 'none'}")
    like = seeds.init(algorithm, config, example_batch(config))
    if step == steps[-1]:  # the newest readable one (a damaged newest one is set aside)
      step, state = checkpoints.restore_latest(like)
    else:
      state = checkpoints.restore(step, like=like)
  finally:
    checkpoints.close()
  return config, state, step


def mean_metrics(pending: list, num_seeds: int = 1) -> dict[str, float]:
  """Averages the per-step metrics of one log interval (this reads them from the devices).

  With several seeds: the mean over seeds under each metric's name, plus
  <name>/std and <name>/seed_<i> (seeds.summarize).
  """
  host = jax.device_get([{k: v for k, v in m.items() if k != HEALTH} for m in pending])
  return seeds.summarize({k: np.mean([m[k] for m in host], axis=0) for k in host[0]}, num_seeds)


class BestCheckpoint:
  """<workdir>/best/ (the best state by the evaluation's main metric) and best.json.

  The checkpoint is written beside the newest ones, asynchronously, and replaces
  the previous best only once it is complete (orbax keeps one step here).
  """

  def __init__(self, workdir: str, main_metric, lead: bool):
    self.path = os.path.join(workdir, "best.json")
    self.main = main_metric
    self.lead = lead
    self.result = None
    if os.path.isfile(self.path):
      with open(self.path, encoding="utf-8") as f:
        self.result = json.load(f).get("metrics")
    self.checkpoints = Checkpoints(os.path.join(workdir, BEST_DIR), keep=1)

  def offer(self, step: int, state, result: dict) -> bool:
    """Saves `state` if `result` beats the best so far; True if it did."""
    if not self.main.better(result, self.result):
      return False
    self.checkpoints.save(step, state)
    self.result = result
    if self.lead:
      write_json(self.path, {"step": step, "main_metric": list(self.main.keys),
                             "metrics": result})
    return True

  def close(self) -> None:
    self.checkpoints.wait()
    self.checkpoints.close()


def make_evaluator(config, lead: bool):
  """The evaluation during training (eval_every > 0), or None."""
  if not config.get("eval_every", 0):
    return None
  from ganjax.evaluation import suite  # pylint: disable=g-import-not-at-top
  evaluator = suite.Evaluator(config, level=config.get("eval_metrics", "cheap"),
                              num_samples=config.get("eval_samples", 0) or None,
                              inception_weights=config.get("inception_weights") or None,
                              log=lambda message: logs.info(message, lead))
  for note in evaluator.notes:
    logs.info(f"evaluation: {note}", lead)
  if evaluator.empty:
    logs.info("no evaluation during training (eval_every is ignored)", lead)
    return None
  return evaluator


def evaluate_seeds(evaluator, state, num_seeds: int) -> dict:
  """The evaluation of a state; with several seeds, of each replica, then mean and std
  (the best checkpoint is then chosen by the mean over seeds)."""
  if num_seeds == 1:
    return evaluator(state)
  return seeds.aggregate([evaluator(seeds.replica(state, i)) for i in range(num_seeds)])


def scalar_metrics(result: dict) -> dict[str, float]:
  """The finite numbers of an evaluation, for metrics.jsonl and TensorBoard."""
  return {f"eval/{k}": float(v) for k, v in result.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


HEALTH = "health"  # the step's finiteness flags, carried with its metrics


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def with_health(step_fn):
  """The step, with flags of which metrics and networks' parameters are finite.

  The flags are computed on the device inside the step (a reduction over the
  parameters, cheap beside the step) and read with the metrics at the next
  log, sample, checkpoint or evaluation boundary, so the loop never waits
  for them.
  """
  def step(state, batch):
    state, metrics = step_fn(state, batch)
    health = {k: jnp.all(jnp.isfinite(v)) for k, v in metrics.items()}
    health.update({f"params of the {name}": _all_finite(p) for name, p in state.params.items()})
    return state, {**metrics, HEALTH: health}
  return step


def first_fault(pending: list, num_seeds: int) -> str | None:
  """A description of the first non-finite value among (step, metrics) records, or None."""
  for step, metrics in pending:
    health = jax.device_get(metrics[HEALTH])
    bad = [k for k, ok in health.items() if not np.all(ok)]
    if bad:
      where = ""
      if num_seeds > 1:
        bad_seeds = sorted({int(i) for k in bad for i in np.flatnonzero(~np.asarray(health[k]))})
        where = f" of replica{'s' if len(bad_seeds) > 1 else ''} {bad_seeds} (num_seeds)"
      return f"at step {step} {', '.join(bad)}{where} became NaN or infinite"
  return None


LEARNING_RATES = ("g_lr", "d_lr", "lr")
ROLLBACK_FILE = "rollback.json"


def lowered_learning_rates(config, factor: float):
  """A copy of `config` with every learning rate times `factor`."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for key in LEARNING_RATES:
      if key in config:
        config[key] = config[key] * factor
  return config


def roll_back(fault: str, config, state, checkpoints, rollback_path: str, rolled_back: bool,
              lead: bool):
  """After a non-finite step: (restored step, state, config with lowered learning rates) of
  the last good checkpoint, when `on_nonfinite` is "rollback", the run has not rolled back
  before and a checkpoint exists; else GanjaxError saying where the last good state is.

  Records the rollback in `rollback_path`, so that a resumed run keeps the lowered rates.
  """
  checkpoints.wait()
  good = checkpoints.latest_step() or 0
  if config.get("on_nonfinite", "stop") == "rollback" and not rolled_back and good:
    factor = config.rollback_lr_factor
    good, state = checkpoints.restore_latest(state)
    if lead:
      write_json(rollback_path, {"fault": fault, "restored_step": good, "lr_factor": factor})
    logs.info(f"{fault}; rolled back to the checkpoint at step {good} and continuing with the"
              f" learning rates times {factor} (once; see {rollback_path})", lead)
    return good, state, lowered_learning_rates(config, factor)
  kept = (f"the last good checkpoint, step {good}, is in {checkpoints.directory}"
          if good else "no checkpoint was saved before it")
  advice = ("it already rolled back once" if rolled_back else
            "lower the learning rates, or set --config.on_nonfinite=rollback to go back to the"
            " last checkpoint with lower learning rates once")
  raise GanjaxError(f"{fault}; the run stopped and wrote nothing after it: {kept}; {advice}")


def train_and_evaluate(config, workdir: str):
  """Trains `config` in `workdir`, resuming from its newest checkpoint; returns the final state."""
  validation.required(config)  # the algorithm's name first: it says which checks apply
  algorithm = algorithms.get(config.algorithm)
  algorithm.validate(config)  # every check of the config, before anything is built
  mesh = parallel.make_mesh()
  backend = backends.resolve(mesh.devices.flat, config.algorithm)
  per_device = parallel.per_device_batch_size(config.batch_size, mesh)
  lead = jax.process_index() == 0
  # Mistakes in the data or in a resumed config are reported before the workdir is touched.
  data.check_source(config)
  resume.check_resume(config, os.path.abspath(workdir))
  workdir = prepare_workdir(workdir)

  # State: initialise, then replace with the newest readable checkpoint if there is one.
  # With num_seeds > 1 every leaf has a leading axis of independent replicas.
  num_seeds = seeds.count(config)
  state = seeds.init(algorithm, config, example_batch(config))
  state = parallel.replicate(jax.device_get(state), mesh)
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"), keep=config.keep_checkpoints)
  start, state = checkpoints.restore_latest(state)
  if start:
    logs.info(f"resuming from the checkpoint at step {start} in {checkpoints.directory}", lead)
  else:
    logs.info(f"starting a new run in {workdir}", lead)

  if lead:
    write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    data.save_class_names(config, workdir)  # classes.json, for sample --labels
    write_json(os.path.join(workdir, "summary.json"), {
        "algorithm": config.algorithm,
        "dataset": config.dataset,
        "params": {name: count_params(p) // num_seeds for name, p in state.params.items()},
        "num_seeds": num_seeds,
        "devices": mesh.size,
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
        "global_batch_size": config.batch_size,
        "per_device_batch_size": per_device,
        "per_process_batch_size": config.batch_size // jax.process_count(),
        "jax_version": jax.__version__,
        "backend": backend.describe(),
    })
  total = config.num_train_steps
  if start >= total:
    logs.info(f"already trained to step {start} (num_train_steps={total}); nothing to do", lead)
    checkpoints.close()
    return state

  # A run that was rolled back after a NaN keeps its lowered learning rates when resumed.
  rollback_path = os.path.join(workdir, ROLLBACK_FILE)
  rolled_back = os.path.isfile(rollback_path)
  if rolled_back:
    with open(rollback_path, encoding="utf-8") as f:
      factor = json.load(f)["lr_factor"]
    config = lowered_learning_rates(config, factor)
    logs.info(f"learning rates times {factor}, as since the rollback in {rollback_path}", lead)

  def make_step(config):
    step = functools.partial(algorithm.train_step, config, backend=backend)
    return parallel.data_parallel(seeds.over_seeds(with_health(step), config), mesh,
                                  batch_axis=batch_axis,
                                  compiler_options=backend.jit_options())

  def make_input(config, start):
    # Batches carry a leading axis of discriminator updates: [n_critic, batch, ...], and before it
    # one of seeds when there are several; replica i reads its own data order.
    replica_batches = [
        data.make_batches(seeds.replica_config(config, i) if num_seeds > 1 else config,
                          start_step=start, process_index=jax.process_index(),
                          process_count=jax.process_count(),
                          per_step=functools.partial(algorithm.discriminator_updates, config))
        for i in range(num_seeds)]
    return replica_batches[0] if num_seeds == 1 else seeds.stack_batches(replica_batches)

  batch_axis = 1 if num_seeds == 1 else 2
  train_step = make_step(config)
  batches = make_input(config, start)
  preview = jax.jit(seeds.over_seeds(functools.partial(algorithm.preview, config,
                                                       backend=backend), config,
                                     in_axes=(0, None)))
  examples = (data.preview_examples(config, config.num_samples)
              if data.is_unpaired(config.dataset) else None)
  preview_inputs, columns = algorithm.preview_inputs(config, examples)
  preview_inputs = parallel.replicate(preview_inputs, mesh)
  writer = logs.MetricWriter(workdir, lead)
  evaluator = make_evaluator(config, lead)
  best = BestCheckpoint(workdir, evaluator.main, lead) if evaluator else None
  progress = logs.Progress(total, start, lead)
  logs.info(f"training {config.algorithm} on {config.dataset} for {total} steps, batch"
            f" {config.batch_size} over {mesh.size} {jax.devices()[0].platform} device(s)", lead)
  logs.info(f"backend: {backend.describe()}", lead)

  def close():
    progress.close()
    checkpoints.wait()
    checkpoints.close()
    if best:
      best.close()
    writer.close()

  pending, checked = [], 0  # (step, metrics) since the last log; how many were checked
  t0 = time.perf_counter()
  step = start
  with preemption.StopRequest(sync_every=config.log_every) as stop:
    while step < total:
      step += 1  # `step` counts the steps completed after this one
      state, metrics = train_step(state, parallel.shard_batch(next(batches), mesh, batch_axis))
      pending.append((step, metrics))
      if len(pending) > 1:  # at most one step queued behind the running one: a stop is quick
        jax.block_until_ready(pending[-2][1])
      if step == start + 1:  # the first step compiles: time speed from its end
        jax.block_until_ready(metrics)
        progress.restart_clock(step)
        logs.info(f"compiled and ran the first step in {time.perf_counter() - t0:.1f}s", lead)
      stopping = stop.check(step)
      log = step % config.log_every == 0 or step == total or stopping
      sample = step % config.sample_every == 0 or step == total
      save = step % config.checkpoint_every == 0 or step == total or stopping
      evaluate = evaluator and not stopping and (
          step % config.eval_every == 0 or (step == total and total >= config.eval_every))

      # Nothing is logged, drawn, saved or evaluated from a state that went non-finite.
      if log or sample or save or evaluate:
        fault = first_fault(pending[checked:], num_seeds)
        checked = len(pending)
        if fault:
          try:
            good, state, config = roll_back(fault, config, state, checkpoints, rollback_path,
                                             rolled_back, lead)
          except GanjaxError:
            close()
            raise
          rolled_back = True
          train_step, batches = make_step(config), make_input(config, good)
          step, pending, checked = good, [], 0
          progress.restart_clock(step)
          continue

      if log:
        values = mean_metrics([m for _, m in pending], num_seeds)
        pending, checked = [], 0
        values["steps_per_sec"] = progress.log(step, values)
        writer.scalars(step, {k: v for k, v in values.items() if np.isfinite(v)})
      progress.tick(step)
      if sample:
        samples = np.asarray(jax.device_get(preview(state, preview_inputs)))
        writer.images(step, "samples", sample_figure(config, samples, columns))
      if save:
        checkpoints.save(step, state)
      if evaluate:
        result = evaluate_seeds(evaluator, state, num_seeds)
        writer.scalars(step, scalar_metrics(result))
        shown = ", ".join(f"{k} {result[k]:.4f}" for k in evaluator.main.keys)
        kept = best.offer(step, state, result)
        logs.info(f"evaluation at step {step}: {shown}{' (best so far)' if kept else ''}", lead)
        progress.restart_clock(step)  # the evaluation does not count against steps/s
      if stopping:
        close()
        logs.info(stop.message(step, checkpoints.directory), lead)
        return state
  close()
  logs.info(f"finished at step {total}; checkpoints, samples and metrics are in {workdir}", lead)
  return state
