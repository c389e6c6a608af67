"""WordPiece tokenisation and BERT packing built only from ops that TFLite runs.

The preprocessing SavedModel tokenises with tensorflow-text's `BertTokenizer` (a hash-table
lookup, a flex op in TFLite) and packs with `RoundRobinTrimmer`. `ServingTokenizer` gives
the same ids with `FastBertTokenizer` (TFLite kernels in tensorflow-text's op registrar) and
trims and packs with plain TensorFlow ops (range, gather, where) on dense tensors, so the
whole raw-string classifier converts to TFLite builtins plus the two tokenizer ops.

It is also how ONNX exports, which take token ids, are fed: `vocab.txt` and `tokenizer.json`
ship beside `model.onnx`.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf
import tensorflow_text as text

from tfhub_transfer.errors import ExportError

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"


def pack_dense(segments: list[tf.RaggedTensor], seq_length: int, special_ids: dict[str, int]) -> dict:
    """[CLS] a [SEP] (b [SEP]) for 1 or 2 tokenised segments, padded to the longest row (at most `seq_length`).

    Trims round-robin like tensorflow-text's `RoundRobinTrimmer`: with a budget of B pieces,
    the first segment keeps min(len_a, max(B - len_b, ceil(B / 2))) and the second what is left.
    """
    budget = seq_length - len(segments) - 1
    lengths = [tf.cast(s.row_lengths(), tf.int32) for s in segments]
    if len(segments) == 1:
        keep = [tf.minimum(lengths[0], budget)]
    else:
        first = tf.minimum(lengths[0], tf.maximum(budget - lengths[1], (budget + 1) // 2))
        keep = [first, tf.minimum(lengths[1], budget - first)]
    total = len(segments) + 1 + tf.add_n(keep)
    width = tf.reduce_max(tf.concat([total, [0]], 0))
    position = tf.range(width)[tf.newaxis, :] + tf.zeros_like(total)[:, tf.newaxis]  # [batch, width]
    word_ids = tf.where(position == 0, special_ids["start_of_sequence_id"], special_ids["padding_id"])
    type_ids = tf.zeros_like(word_ids)
    start = tf.ones_like(total)[:, tf.newaxis]
    for index, (segment, kept) in enumerate(zip(segments, keep)):
        end = start + kept[:, tf.newaxis]
        values = tf.concat([tf.cast(segment.flat_values, tf.int32), [0]], 0)  # never empty for gather
        row_start = tf.cast(segment.row_splits[:-1], tf.int32)[:, tf.newaxis]
        source = tf.clip_by_value(row_start + position - start, 0, tf.size(values) - 1)
        inside = (position >= start) & (position < end)
        word_ids = tf.where(inside, tf.gather(values, source), word_ids)
        word_ids = tf.where(position == end, special_ids["end_of_segment_id"], word_ids)
        if index:
            type_ids = tf.where((position >= start) & (position <= end), 1, type_ids)
        start = end + 1
    mask = tf.cast(position < total[:, tf.newaxis], tf.int32)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def _asset_path(obj) -> str | None:
    asset = getattr(obj, "vocab_file", None)
    if asset is None:
        return None
    path = asset.asset_path if hasattr(asset, "asset_path") else asset
    return path.numpy().decode("utf-8") if hasattr(path, "numpy") else str(path)


def _lower_case(obj) -> bool | None:
    flag = getattr(obj, "do_lower_case", None)
    return None if flag is None else bool(flag.numpy() if hasattr(flag, "numpy") else flag)


class ServingTokenizer:
    """FastBertTokenizer + dense packing with the ids of a model's preprocessor."""

    def __init__(self, vocab: list[str], lower_case: bool, special_ids: dict[str, int]):
        self.vocab = list(vocab)
        self.lower_case = bool(lower_case)
        self.special_ids = {k: int(v) for k, v in special_ids.items()}
        unknown = self.special_ids.get("unknown_id")
        self._tokenizer = text.FastBertTokenizer(
            self.vocab, token_out_type=tf.int32, lower_case_nfd_strip_accents=self.lower_case,
            unknown_token=self.vocab[unknown] if unknown is not None else "[UNK]")
        self._compiled: dict[tuple[int, bool], tf.types.experimental.GenericFunction] = {}

    @classmethod
    def of_model(cls, model) -> ServingTokenizer:
        """The tokenizer of a task model's preprocessor (vocabulary and casing read from its SavedModels)."""
        preprocessor = model.preprocessor
        holders = [preprocessor.module, getattr(preprocessor.module, "tokenize", None)]
        holders += [layer.resolved_object for layer in model.layers if hasattr(layer, "resolved_object")]
        vocab_path = next((p for p in map(_asset_path, holders) if p), None)
        lower_case = next((c for c in map(_lower_case, holders) if c is not None), None)
        if hasattr(preprocessor.module, "sentencepiece_model"):  # encoders.build: XLM-R-tokenised pairs
            raise ExportError(
                f"{preprocessor.handle} tokenises with SentencePiece (XLM-R layout); TFLite and ONNX exports "
                "tokenise with WordPiece only. Use export --format saved_model (it takes raw strings).")
        if hasattr(preprocessor.module, "pair_packing"):  # encoders.build: MPNet's <s> A </s></s> B </s>
            raise ExportError(
                f"{preprocessor.handle} packs inputs as <s> A </s></s> B </s> (MPNet); TFLite and ONNX exports "
                "pack BERT's way only. Use export --format saved_model (it takes raw strings).")
        if vocab_path is None or lower_case is None:
            raise ExportError(
                f"{preprocessor.handle} does not say which vocabulary and casing it uses (no `vocab_file` / "
                "`do_lower_case`), which a TFLite or ONNX export needs to tokenise the same way. Use an encoder "
                "this package wrote (`tfhub-transfer encoders convert`) or export --format saved_model.")
        vocab = tf.io.gfile.GFile(vocab_path).read().splitlines()
        return cls(vocab, lower_case, preprocessor.special_ids)

    @classmethod
    def read(cls, directory: str | Path) -> ServingTokenizer:
        """The tokenizer written beside an export by `write`."""
        directory = Path(directory)
        try:
            settings = json.loads((directory / TOKENIZER_FILE).read_text("utf-8"))
            vocab = (directory / VOCAB_FILE).read_text("utf-8").splitlines()
        except (OSError, ValueError) as err:
            raise ExportError(f"{directory}: cannot read its tokenizer ({VOCAB_FILE}, {TOKENIZER_FILE}): "
                              f"{err}. Export the model again.") from None
        return cls(vocab, settings["lower_case"], settings["special_ids"])

    def write(self, directory: Path, seq_length: int) -> None:
        (directory / VOCAB_FILE).write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        settings = {"tokenizer": "WordPiece (BERT): tensorflow_text.FastBertTokenizer",
                    "lower_case": self.lower_case, "special_ids": self.special_ids, "seq_length": seq_length,
                    "inputs": list(INPUT_NAMES),
                    "packing": "[CLS] text [SEP] (text_b [SEP]); round-robin trimmed to seq_length; "
                               "padded with padding_id to the longest row; input_mask 1 on real tokens; "
                               "input_type_ids 1 on text_b and its [SEP]"}
        (directory / TOKENIZER_FILE).write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Strings to word-piece ids, [batch, (pieces)]."""
        return self._tokenizer.tokenize(strings)

    def encode(self, strings, seq_length: int, strings_b=None) -> dict[str, tf.Tensor]:
        """Strings (and second segments) to packed int32 encoder inputs (a graph, traced once per length)."""
        key = (seq_length, strings_b is not None)
        if key not in self._compiled:
            spec = tf.TensorSpec([None], tf.string)
            self._compiled[key] = tf.function(
                lambda *texts: pack_dense([self.tokenize(t) for t in texts], seq_length, self.special_ids),
                input_signature=[spec] * (1 + key[1]), autograph=False)
        texts = [strings] if strings_b is None else [strings, strings_b]
        return self._compiled[key](*[tf.convert_to_tensor(t, tf.string) for t in texts])
