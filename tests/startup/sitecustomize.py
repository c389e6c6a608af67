"""Python processes the tests start (CLI runs, notebook kernels, multi-worker scripts) get this
directory on PYTHONPATH: like the test process itself (conftest.py), they run with Grappler's
graph rewrites off, which change no asserted value and cost seconds per traced function."""

import importlib.abc
import importlib.util
import os
import sys


class _GrapplerOffOnImport(importlib.abc.MetaPathFinder):
    """Turns Grappler off right after `tensorflow` is first imported (lazily: most of these
    processes import TensorFlow anyway, but startup should not pay for it when they do not)."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_configure(module):
            exec_module(module)
            module.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

        spec.loader.exec_module = exec_then_configure
        return spec


if os.environ.get("TFHUB_TRANSFER_TEST_GRAPPLER") != "1":
    sys.meta_path.insert(0, _GrapplerOffOnImport())
