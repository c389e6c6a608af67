"""Helpers for the notebook tests: run a notebook top to bottom with small settings, read its outputs."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_env(out: Path, encoder: Path | None = None, epochs: int = 3, lr: str = "3e-3",
                 **extra: str) -> dict[str, str]:
    """The small settings the notebooks read from the environment."""
    env = {"TFHUB_TRANSFER_NOTEBOOK_EPOCHS": str(epochs), "TFHUB_TRANSFER_NOTEBOOK_LR": lr,
           "TFHUB_TRANSFER_NOTEBOOK_OUT": str(out), "TF_CPP_MIN_LOG_LEVEL": "3",
           **extra}
    if encoder is not None:
        env["TFHUB_TRANSFER_NOTEBOOK_ENCODER"] = str(encoder)
    return env


def execute(name: str, env: dict[str, str], tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def last_output(notebook, marker: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "code" and marker in cell.source:
            outputs = [o for o in cell.outputs if o.output_type == "execute_result"]
            return outputs[-1]["data"]["text/plain"]
    raise AssertionError(f"no cell with {marker!r}")


