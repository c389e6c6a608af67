"""Transfer modes as registered classes: the registry, the one-file extension point, and what reads it."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes import TransferMode, mode_classes, mode_names, register_mode
from tfhub_transfer.transfer.modes import base as modes_base

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tfhub_transfer"
EXAMPLE_ARGUMENT = {"K": "2", "STEPS": "50", "DECAY": "0.8", "FACTOR": "0.1", "ITERATIONS": "4"}


def written_forms(cls) -> list[str]:
    """The ways a user writes the mode: bare (where allowed) and with an example argument."""
    forms = [] if cls.argument is not None and not cls.argument_optional else [cls.name]
    if cls.argument is not None:
        forms.append(f"{cls.name}:{EXAMPLE_ARGUMENT[cls.argument]}")
    return forms


@pytest.mark.parametrize("spec", [f for cls in mode_classes() for f in written_forms(cls)])
def test_every_registered_mode_round_trips_through_its_text(spec):
    mode = TransferMode.parse(spec)
    assert TransferMode.parse(str(mode)) == mode
    assert str(mode).partition(":")[0] == spec.partition(":")[0]


def test_aliases_reach_their_mode():
    assert str(TransferMode.parse("freeze_bottom:2")) == "partial:2"
    assert TransferMode.parse("feature_extraction").name == "freeze"
    assert TransferMode.parse("layerwise").name == "discriminative"


@pytest.mark.parametrize("typo, suggestion", [("fintune", "finetune"), ("gradul", "gradual"), ("bitfitt", "bitfit")])
def test_unknown_mode_suggests_the_closest(typo, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'"):
        TransferMode.parse(typo)


def test_the_registry_loads_without_tensorflow():
    code = ("import sys; from tfhub_transfer.transfer.modes import mode_names; "
            "assert 'bitfit' in mode_names(); assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_new_mode_is_one_class():
    """What one new module holds: a registered subclass; parsing, printing and the CLI syntax follow."""

    @register_mode
    @dataclasses.dataclass(frozen=True)
    class TopOnly(TransferMode):
        keep: int = 1
        name = "top_only_test"
        argument = "N"
        summary = "the top N layers"
        needs_layer_groups = True

        @classmethod
        def from_argument(cls, spec, value, **options):
            return cls(keep=int(value or 1), **options)

        def argument_value(self):
            return self.keep

        def settled_frozen(self, groups):
            return groups.order[:-self.keep]

    try:
        mode = TransferMode.parse("top_only_test:2")
        assert (type(mode), mode.keep, str(mode)) == (TopOnly, 2, "top_only_test:2")
        assert "top_only_test[:N]" in modes_base.mode_syntax()
        groups = type("Groups", (), {"order": ["embeddings", "layer_0", "layer_1", "pooler"]})()
        assert mode.initially_frozen(groups) == ["embeddings", "layer_0"]
    finally:
        modes_base._REGISTRY.pop("top_only_test")


def test_a_mode_registered_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_mode(type(TransferMode.parse("finetune")))


def test_readme_mode_table_lists_every_registered_mode():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| `--mode` | what trains |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"^\| `([a-z_]+)", table, flags=re.M))
    assert listed == set(mode_names())


@pytest.mark.parametrize("name", ["freeze", "finetune"])
def test_text_embedding_modules_take_the_modes_that_need_no_groups(name):
    TransferMode.parse(name).check_applies("single_label", architecture="text_embedding")


@pytest.mark.parametrize("spec", ["gradual", "partial:1", "bitfit", "contrastive"])
def test_modes_that_need_groups_refuse_text_embedding_modules(spec):
    with pytest.raises(ConfigError, match="freeze or finetune"):
        TransferMode.parse(spec).check_applies("single_label", architecture="text_embedding")


@pytest.mark.parametrize("task, pair, windowed, what", [
    ("regression", False, False, "--task regression"), ("single_label", True, False, "sentence pairs"),
    ("single_label", False, True, "--long-text windows")])
def test_contrastive_declares_where_it_applies(task, pair, windowed, what):
    with pytest.raises(ConfigError, match=what):
        TransferMode.parse("contrastive").check_applies(task, pair, windowed)
    TransferMode.parse("contrastive").check_applies("multi_label")


def test_no_mode_name_compared_outside_the_mode_modules():
    """Behaviour lives in the mode classes: nothing else asks `mode.kind == ...`."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "modes" in path.relative_to(PACKAGE).parts[:2]:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"mode(\(\))?\.(kind|name)\s*(==|!=|in|not in)\s", line) or \
                    re.search(r"TransferMode\.parse\([^)]*\)\.(kind|name)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_bitfit_trains_only_the_encoders_biases_and_the_head(tiny_encoder):
    import numpy as np

    from tfhub_transfer.models.text_classifier import TextClassifier

    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], mode="bitfit")
    encoder = model.get_layer("encoder")
    before = {v.name: v.numpy().copy() for v in encoder.weights}
    head_before = [w.numpy().copy() for w in model.get_layer("head").weights]
    texts = ["the film was wonderful", "the plot was awful", "I loved the food", "the staff were rude"] * 4
    model.compile(learning_rate=1e-2, schedule="constant")
    model.fit(texts, ["pos", "neg", "pos", "neg"] * 4, batch_size=8, epochs=2, verbose=0)
    changed = {v.name for v in encoder.weights if not np.array_equal(before[v.name], v.numpy())}
    biases = {v.name for v in encoder.weights if re.search(r"/(bias|beta):\d+$", v.name)}
    assert changed, "no encoder weight trained"
    assert changed <= biases, f"non-bias weights changed: {sorted(changed - biases)[:3]}"
    assert len(changed) >= len(biases) // 2  # the used biases train (the pooler's gets no gradient)
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(head_before, model.get_layer("head").weights))
    assert TransferMode.parse("bitfit").default_rate(5e-5) == pytest.approx(1e-3)
