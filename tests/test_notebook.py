"""examples/quickstart.ipynb, executed by a real Jupyter kernel: it renders and shows the video."""

import base64
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from helpers import decode
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent


@pytest.mark.cluster
def test_quickstart_notebook_renders_and_shows_the_video(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("CELERY_")]:
        monkeypatch.delenv(name)  # the notebook is about the embedded default
    notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    video = tmp_path / "spiral.mp4"
    frames = decode(video)
    assert len(frames) == 90 and frames[0].shape == (480, 480, 3)
    shown = notebook.cells[-1].outputs[-1]["data"]["text/html"]
    assert "<video" in shown
    embedded = shown.split("base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(embedded) == video.read_bytes()
    for cell in notebook.cells:  # no traceback, error or warning output anywhere
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", output
            assert "Traceback" not in output.get("text", "")
            assert "Warning" not in output.get("text", ""), output  # tqdm's "IProgress not found"
    # The progress bars show, though a kernel's stderr is no terminal: widgets with ipywidgets,
    # else text, which ends with each bar at 90/90.
    outputs = notebook.cells[-1].outputs
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    if importlib.util.find_spec("ipywidgets"):
        assert len(widgets) == 2, outputs
    else:
        assert not widgets
        for bar in ("Rendering frames", "Encoding video"):
            assert f"{bar}: 100%" in text and "90/90" in text, text
