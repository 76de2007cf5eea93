"""notebooks/ganjax_colab.ipynb runs top to bottom outside Colab, on the CPU, in its smoke mode.

The notebook reads GANJAX_NOTEBOOK_SMOKE=1 as: no installs, a 4-step run of
tiny networks, the cheap metrics on 200 samples, no TensorBoard, no Drive.
Without a checkout to use it says why in one line and runs to the end doing nothing.
"""

import json
import math
import pathlib
import re

import pytest

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "ganjax_colab.ipynb"


def test_notebook_trains_shows_samples_and_evaluates(tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  monkeypatch.setenv("GANJAX_NOTEBOOK_SMOKE", "1")
  monkeypatch.setenv("GANJAX_NOTEBOOK_WORKDIR", str(workdir))
  monkeypatch.setenv("XLA_FLAGS", "")  # one CPU device, as on a laptop (conftest sets 8)
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(parameters) == 1  # the cell a user edits (and papermill would override)

  NotebookClient(notebook, timeout=240, kernel_name="python3",
                 resources={"metadata": {"path": str(ROOT)}}).execute()

  # The run's workdir, as the README's contract says.
  checkpoints = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()
                       if p.name.isdigit())
  assert checkpoints == [2, 4]
  assert (workdir / "samples" / "step_4.png").is_file()
  with open(workdir / "metrics.jsonl", encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [1, 2, 3, 4]
  assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in records)
  assert list(workdir.glob("events.out.tfevents.*"))  # what TensorBoard reads

  with open(workdir / "eval.json", encoding="utf-8") as f:
    evaluation = json.load(f)
  assert (evaluation["step"], evaluation["num_samples"], evaluation["metrics"]) == (4, 200, "cheap")
  assert evaluation["classifier_fid"] > 0 and math.isfinite(evaluation["classifier_fid"])
  numbers = [v for v in evaluation.values() if isinstance(v, float)]
  assert len(numbers) >= 3 and all(math.isfinite(v) for v in numbers)

  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  html = "".join(o.get("data", {}).get("text/html", "") for o in outputs
                 if o.output_type in ("display_data", "update_display_data"))
  # Colab-only steps were skipped, and said so.
  assert "nothing installed" in text and "tensorboard --logdir" in text
  # The JAX it would install is the build for the runtime at the version the lock file pins.
  pinned = re.search(r"^jax==(\S+)$", (ROOT / "requirements-lock.txt").read_text(), re.M).group(1)
  assert re.search(r"JAX for it: jax(\[tpu\]|\[cuda12\])?==" + re.escape(pinned) + ";", text)
  assert "not copied to Drive" in text
  # The progress bar reached the last step, and a sample grid was shown inline.
  assert "<progress value='4' max='4'" in html
  assert any("image/png" in o.get("data", {}) for o in outputs)
  assert "sample grid:" in text and "step_4.png" in text


@pytest.mark.parametrize("source,expected", [
    ("", "no ganjax checkout here and no GANJAX_SOURCE: set GANJAX_SOURCE in the first code"
         " cell to the git URL of ganjax"),
    ("not_a_checkout", "GANJAX_SOURCE='not_a_checkout' is neither a git URL nor a ganjax"
                       " checkout"),
    ("file:///nonexistent/ganjax.git", "git clone file:///nonexistent/ganjax.git failed ("),
])
def test_notebook_without_a_checkout_says_why_in_one_line(tmp_path, monkeypatch, source,
                                                          expected):
  monkeypatch.setenv("GANJAX_NOTEBOOK_SMOKE", "1")
  monkeypatch.setenv("GANJAX_NOTEBOOK_WORKDIR", str(tmp_path / "run"))
  (tmp_path / "not_a_checkout").mkdir()
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  index = next(i for i, c in enumerate(notebook.cells)
               if "parameters" in c.metadata.get("tags", []))
  # As papermill injects parameters: a cell right after the parameters cell.
  notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(f"GANJAX_SOURCE = {source!r}"))

  # Run from a folder that is no ganjax checkout; a cell that raised would raise here.
  NotebookClient(notebook, timeout=120, kernel_name="python3",
                 resources={"metadata": {"path": str(tmp_path)}}).execute()

  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert all(o.output_type == "stream" for o in outputs), outputs
  lines = "".join(o.text for o in outputs).strip().splitlines()
  assert lines[0] == "Colab: False; smoke test: True"
  assert len(lines) == 2 and lines[1].startswith(expected), lines
  assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_checkout"]  # nothing written
