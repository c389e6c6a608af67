"""Every public name of `tfhub_transfer` documents its arguments and shows an example, and the example runs.

The examples are doctests: they run here, in `make test`, so a docstring cannot drift from the code.
Examples that build a model use the default encoder (built once per machine by `make install`'s first use).
"""

from __future__ import annotations

import doctest
import inspect
import os

import pytest

import tfhub_transfer

PUBLIC = sorted(tfhub_transfer.__all__)
# Examples that train a model end to end (tens of seconds each on 2 cores) run with `make integration`;
# every other example runs in `make test`.
TRAINS = {"compare_modes", "study_layers", "train", "pretrain", "load", "open_export", "ExportedClassifier",
          "TFLiteClassifier", "OnnxClassifier", "TrainResult"}
EXAMPLES = [pytest.param(name, marks=pytest.mark.integration) if name in TRAINS else name for name in PUBLIC]


def _documented(name: str):
    return getattr(tfhub_transfer, name)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_args_and_example(name):
    obj = _documented(name)
    doc = inspect.getdoc(obj) or ""
    missing = [section for section in ("Args:", "Example:") if section not in doc]
    if inspect.isfunction(obj) and inspect.signature(obj).return_annotation not in (None, "None"):
        missing += [] if "Returns:" in doc else ["Returns:"]
    assert not missing, f"tfhub_transfer.{name}'s docstring lacks {missing}"
    assert ">>>" in doc, f"tfhub_transfer.{name}'s Example: shows no runnable line (>>>)"


@pytest.mark.parametrize("name", EXAMPLES)
def test_public_example_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    obj = _documented(name)
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(obj, name=f"tfhub_transfer.{name}", globs={}) if t.examples]
    assert tests, f"tfhub_transfer.{name} has no doctest example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"tfhub_transfer.{name}: {result.failed} of {result.attempted} example lines failed"
