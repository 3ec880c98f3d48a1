"""autocurriculum.run in a real Jupyter kernel (nbclient + ipykernel), on real Tunix GRPO.

The notebook runs the tiny model's curriculum (tests/policies/e2e.toml, shortened) in the kernel's
process. The first cell is interrupted the way Jupyter interrupts a cell, by SIGINT to the kernel
process, once the run has made its first automatic switch: the run must stop at a step boundary with
a checkpoint and leave the kernel's signal handlers as it found them. The second cell resumes the
run in the same kernel and finishes it; the third draws the report's figures with
autocurriculum.plot. The test reads the cells' outputs: the inline view, the results, the figures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
STEPS = 30

SETUP = """
import json, os, signal, threading, time
from pathlib import Path
import autocurriculum

POLICY = {policy!r}
RUN = Path({run_dir!r})
SETS = ["run.max_steps={steps}", "run.checkpoint_every=5"]

def interrupt_after_first_switch(margin=2):
    # what Jupyter's "interrupt" does: SIGINT to the kernel process, here once the run has switched by itself
    def watch():
        while True:
            time.sleep(0.2)
            try:
                moves = [json.loads(l) for l in (RUN / "transitions.jsonl").read_text().splitlines()]
                steps = len((RUN / "metrics.jsonl").read_text().splitlines())
            except (OSError, ValueError):
                continue
            automatic = [m for m in moves if m["reason"] in ("criteria_and_plateau", "settled")]
            if automatic and steps >= automatic[0]["step"] + margin:
                os.kill(os.getpid(), signal.SIGINT)
                return
    threading.Thread(target=watch, daemon=True).start()
"""

FIRST = """
handlers_before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
interrupt_after_first_switch()
first = autocurriculum.run(POLICY, run_dir=RUN, overrides=SETS, view_every=2)
handlers_after = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
print("FIRST " + json.dumps({"steps": first.steps, "stopped": first.stopped, "exit_code": first.exit_code,
                             "done": first.done, "transitions": first.transitions,
                             "checkpoints": sorted(p.name for p in (RUN / "checkpoints").iterdir()),
                             "handlers_restored": handlers_before == handlers_after,
                             "threads": [t.name for t in threading.enumerate() if t.name.startswith("autocurriculum")]}))
first
"""

SECOND = """
second = autocurriculum.run(POLICY, run_dir=RUN, overrides=SETS, resume=True, view_every=2)
print("SECOND " + json.dumps({"steps": second.steps, "stopped": second.stopped, "exit_code": second.exit_code,
                              "transitions": second.transitions}))
"""

THIRD = """
figures = autocurriculum.plot(RUN)
print("FIGURES " + json.dumps(sorted(figures)))
figures["timeline"]
"""


def _stdout(cell: dict) -> str:
    return "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == "stdout")


def _tagged(cell: dict, tag: str) -> dict:
    line = next(line for line in _stdout(cell).splitlines() if line.startswith(tag + " "))
    return json.loads(line[len(tag) + 1:])


def test_run_in_a_jupyter_kernel_is_interrupted_resumed_and_plotted(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    run_dir = tmp_path / "run"
    notebook = nbformat.v4.new_notebook()
    setup = SETUP.format(policy=str(REPO / "tests" / "policies" / "e2e.toml"), run_dir=str(run_dir), steps=STEPS)
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (setup, FIRST, SECOND, THIRD)]
    NotebookClient(notebook, timeout=1500, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    nbformat.write(notebook, tmp_path / "executed.ipynb")  # to look at when this fails
    _, first_cell, second_cell, third_cell = notebook.cells

    first = _tagged(first_cell, "FIRST")
    automatic = [t for t in first["transitions"] if t["reason"] in ("criteria_and_plateau", "settled")]
    assert automatic, first  # the first automatic switch was reached before the interrupt
    assert first["stopped"] and not first["done"] and first["exit_code"] == 0
    assert first["steps"] >= automatic[0]["step"] + 2 and first["steps"] < STEPS
    assert f"step_{first['steps']:08d}" in first["checkpoints"], first["checkpoints"]  # written at the interrupt
    assert first["handlers_restored"] and first["threads"] == []  # nothing left behind in the kernel

    # the inline view: one display, redrawn in place, last showing the step the run stopped at
    views = [o for o in first_cell["outputs"] if o["output_type"] == "display_data"
             and "autocurriculum-view" in o["data"].get("text/html", "")]
    assert len(views) == 1, first_cell["outputs"]
    view = views[0]["data"]["text/html"]
    assert f"step {first['steps']}, phase" in view and "plan step" in view
    assert "<th>verdict</th>" in view and "last decision:" in view and "<summary>evidence</summary>" in view
    result_html = [o for o in first_cell["outputs"] if o["output_type"] == "execute_result"]
    assert result_html and "stopped (resume with resume=True)" in result_html[0]["data"]["text/html"]

    second = _tagged(second_cell, "SECOND")
    assert second["exit_code"] == 0 and second["steps"] == STEPS
    progress = [int(m) for m in re.findall(r"^step\s+(\d+)\s", _stdout(second_cell), re.MULTILINE)]
    assert progress[0] == first["steps"] + 1  # resumed from the interrupt's checkpoint, not from step 1
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert second["transitions"][:len(first["transitions"])] == first["transitions"]

    assert _tagged(third_cell, "FIGURES") == ["heldout", "learnability", "rewards", "step_time", "timeline", "watched"]
    assert any("image/png" in o.get("data", {}) for o in third_cell["outputs"])
