"""`tokens`: a tag per word (named entities, IOB2) from CoNLL column files; entity F1 headlines."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task

_RECIPE = "a tagger takes the modes' default recipes (its config has no field for this option)"
_CONLL = "CoNLL files hold one word and its tag per line"
_ENCODER = "taggers are built on an encoder"


@register_task
class Tokens(TaskSpec):
    """Sparse categorical cross-entropy per word piece, weighted to each word's first piece."""

    name = "tokens"
    help = "a tag per word, token classification (NER) on CoNLL column files"
    loss = "sparse_categorical_crossentropy"
    metrics = ("token_accuracy",)
    weighted_metrics = True
    activation = "softmax"
    target = "tag"
    monitor, monitor_mode, headline, headline_label = "val_token_accuracy", "max", "f1", "entity_f1"
    no_class_weights = "taggers weight every word alike"
    per_token = True
    needs_encoder = "trains a tagger on an encoder"
    refuses = {
        **dict.fromkeys(("text_b_column", "label_separator", "text_column", "label_column", "label_names"), _CONLL),
        **dict.fromkeys(("word_vectors", "embedding_mode", "slow_factor", "rnn", "rnn_units", "max_tokens",
                         "text_embedding"), _ENCODER),
        "pooling": "a tagger labels each word's first piece; there is nothing to pool",
        **dict.fromkeys(("frozen_epochs", "lr_mult", "tune_head", "standardize_features"), _RECIPE),
        "long_text": "a tagger labels the words of each sentence (it splits none into windows)",
        "pairs": "a tagger reads one sentence at a time (there is no second text to read apart)",
        "packing": "packing is built for sentence-level tasks (one output per example)",
        **dict.fromkeys(("export_format", "quantize"),
                        "a tagger exports as a SavedModel (TFLite and ONNX exports are for sentence classifiers)"),
        "weight_column": "CoNLL files have no columns to read it from",
    }
    export_outputs = ("tags", "words", "num_words")
