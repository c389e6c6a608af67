"""Writes an encoder and its preprocessing as SavedModels in the TF Hub BERT format.

The encoder is saved as a plain tracked object with an explicit
`__call__(inputs, training)` and explicit `variables` / `trainable_variables`
lists, so `hub.KerasLayer(path, trainable=True)` fine-tunes exactly the encoder's
variables. The Keras encoder itself is reached only through those functions, not saved as a
subobject: its per-layer call traces would double the SavedModel and make it 4x slower to load.
The MLM head is a separate subobject `mlm`; keeping its variables out of the root lists stops
fine-tuning from warning "Gradients do not exist".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import tensorflow as tf

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.preprocessor_module import (
    BertPreprocessorModule,
    SentencepiecePreprocessorModule,
)
from tfhub_transfer.encoders.build.tokenizer_files import (
    SENTENCEPIECE,
    SENTENCEPIECE_MODEL_FILE,
    XLMR_ID_OFFSET,
    TokenizerFiles,
)
from tfhub_transfer.encoders.build.vocab import read_vocab, special_token_ids
from tfhub_transfer.files import MARKER, atomic_directory, file_record, record_damage

METADATA_FILE = "tfhub_transfer.json"
PAIR_MANIFEST = "manifest.json"  # every file's size, written last (write_size_manifest)
PAIR_FORMAT = "tfhub_transfer/bert-pair/1"  # the metadata `format` of encoder pairs this package writes
ENCODER_DIR = "encoder"
PREPROCESSOR_DIR = "preprocessor"
# 2: `pooled_output` follows `config.pooled_output` (+ `cls_pooled_output`), a `serving_default`
# signature, `vocab_file` / `do_lower_case` on the encoder. 3: the Keras encoder is no longer saved as a
# subobject (its per-layer traces made the SavedModel slow to load). Caches from older writers are rebuilt.
WRITER_VERSION = 3

POOLED_OUTPUT_NOTES = {
    "pooler": "BERT's tanh pooler over [CLS] (same as cls_pooled_output)",
    "mean": "mean of sequence_output over input_mask (sentence-transformers pooling); "
            "the [CLS] pooler is cls_pooled_output",
    "max": "max of sequence_output over input_mask (sentence-transformers pooling); "
           "the [CLS] pooler is cls_pooled_output",
    "first": "the [CLS] vector of sequence_output (sentence-transformers CLS pooling); "
             "the [CLS] pooler is cls_pooled_output",
}


def normalization_note(lower_case: bool | None) -> str:
    """How the preprocessor normalises text before WordPiece (tensorflow-text's BertTokenizer)."""
    if lower_case is None:
        return "unknown (a SentencePiece model normalises with its own rules, e.g. XLM-R's NFKC; cased)"
    if lower_case:
        return ("uncased: lower-cased (as BERT's tokenizer), NFD, accents (Mn) stripped; Hangul syllables "
                "decompose into jamo")
    return "cased: text kept as written (no case folding, no Unicode normalisation)"


def encoder_input_spec() -> dict[str, tf.TensorSpec]:
    return {
        name: tf.TensorSpec([None, None], tf.int32, name=name)
        for name in ("input_word_ids", "input_mask", "input_type_ids")
    }


def _trace_with_training(fn, spec) -> None:
    for training in (True, False):
        fn.get_concrete_function(spec, training)


def as_float32(outputs):
    """Float outputs as float32: encoders computing in bfloat16 still hand float32 to the model."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, outputs)


class _MlmModule(tf.train.Checkpoint):
    def __init__(self, encoder: BertEncoder, head: MaskedLMHead):
        super().__init__()
        self.variables = _unique(encoder.variables + head.variables)
        self.trainable_variables = _unique(encoder.trainable_variables + head.trainable_variables)
        self.regularization_losses = []

        @tf.function
        def call(inputs, training=False):
            encoder_inputs = {k: v for k, v in inputs.items() if k != "masked_lm_positions"}
            outputs = dict(encoder(encoder_inputs, training=training))
            outputs["mlm_logits"] = head(outputs["sequence_output"], inputs["masked_lm_positions"])
            return as_float32(outputs)

        spec = dict(encoder_input_spec())
        spec["masked_lm_positions"] = tf.TensorSpec([None, None], tf.int32, "masked_lm_positions")
        _trace_with_training(call, spec)
        self.__call__ = call


def signature_outputs(outputs: dict) -> dict[str, tf.Tensor]:
    """The encoder outputs as a flat dict (a signature cannot return a list):
    `encoder_outputs` becomes `encoder_outputs_0` ... `encoder_outputs_<L-1>`."""
    flat = {k: v for k, v in outputs.items() if k != "encoder_outputs"}
    flat.update({f"encoder_outputs_{i}": v for i, v in enumerate(outputs["encoder_outputs"])})
    return flat


class EncoderModule(tf.train.Checkpoint):
    """The root object written as an encoder SavedModel.

    Besides the reusable `__call__(inputs, training)` it carries what Model Garden's published
    encoders carry: a `serving_default` signature (int32 `input_word_ids`, `input_mask`,
    `input_type_ids` -> the outputs, `encoder_outputs` flattened), and the legacy `vocab_file`
    (an asset) and `do_lower_case` (a bool variable) attributes."""

    def __init__(self, encoder: BertEncoder, head: MaskedLMHead, vocab_path: str | Path | None = None,
                 lower_case: bool | None = None):
        super().__init__()
        self.variables = list(encoder.variables)
        self.trainable_variables = list(encoder.trainable_variables)
        self.regularization_losses = []
        self.mlm = _MlmModule(encoder, head)
        if vocab_path is not None:
            self.vocab_file = tf.saved_model.Asset(str(vocab_path))
        if lower_case is not None:
            self.do_lower_case = tf.Variable(lower_case, trainable=False, name="do_lower_case")

        @tf.function
        def call(inputs, training=False):
            return as_float32(encoder(inputs, training=training))

        _trace_with_training(call, encoder_input_spec())
        self.__call__ = call

        @tf.function(input_signature=list(encoder_input_spec().values()))
        def serve(input_word_ids, input_mask, input_type_ids):
            inputs = {"input_word_ids": input_word_ids, "input_mask": input_mask,
                      "input_type_ids": input_type_ids}
            return signature_outputs(as_float32(encoder(inputs, training=False)))

        self.serve = serve


def save_encoder_module(module: EncoderModule, path: str | Path) -> None:
    """Writes `module` as a SavedModel with its `serving_default` signature."""
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def _unique(variables: list[tf.Variable]) -> list[tf.Variable]:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def write_encoder(encoder: BertEncoder, head: MaskedLMHead, path: str | Path,
                  vocab_path: str | Path | None = None, lower_case: bool | None = None) -> None:
    """Saves `encoder` (with its MLM head as the `mlm` subobject) as a Hub SavedModel."""
    save_encoder_module(EncoderModule(encoder, head, vocab_path, lower_case), path)


def write_preprocessor(
    vocab_path: str | Path, lower_case: bool, path: str | Path, default_seq_length: int = 128,
    tokenizer: TokenizerFiles | None = None,
) -> None:
    """Saves the tensorflow-text preprocessing SavedModel for `vocab_path` (with `tokenizer`'s special tokens
    and packing when given: MPNet's)."""
    if tokenizer is not None:
        special_ids, packing = tokenizer.special_ids(), tokenizer.packing
    else:
        special_ids, packing = special_token_ids(read_vocab(vocab_path), str(vocab_path)), "bert"
    module = BertPreprocessorModule(str(vocab_path), special_ids, lower_case, default_seq_length, packing)
    tf.saved_model.save(module, str(path))


def write_sentencepiece_preprocessor(
    model_path: str | Path, special_ids: dict[str, int], path: str | Path, default_seq_length: int = 128
) -> None:
    """Saves the XLM-R SentencePiece preprocessing SavedModel for `model_path`."""
    module = SentencepiecePreprocessorModule(str(model_path), special_ids, XLMR_ID_OFFSET, default_seq_length)
    tf.saved_model.save(module, str(path))


def _write_sentencepiece_pair(encoder: BertEncoder, head: MaskedLMHead, tokenizer: TokenizerFiles,
                              tmp: Path) -> None:
    # Saved as the preprocessor's asset (preprocessor/assets/sentencepiece.model), so the pair does not depend
    # on the checkpoint's folder; the copy it is saved from is removed (a pair holds only what the cache knows).
    model_copy = tmp / SENTENCEPIECE_MODEL_FILE
    shutil.copy(tokenizer.path, model_copy)
    write_encoder(encoder, head, tmp / ENCODER_DIR)
    special_ids = tokenizer.special_ids(encoder.config.vocab_size)
    write_sentencepiece_preprocessor(model_copy, special_ids, tmp / PREPROCESSOR_DIR)
    model_copy.unlink()


def write_encoder_pair(
    encoder: BertEncoder,
    head: MaskedLMHead,
    vocab_path: str | Path | None,
    lower_case: bool | None,
    out_dir: str | Path,
    metadata: dict | None = None,
    overwrite: bool = False,
    tokenizer: TokenizerFiles | None = None,
) -> Path:
    """Writes `out_dir/encoder`, `out_dir/preprocessor` and a metadata file, atomically.

    The preprocessor tokenises with WordPiece from `vocab_path` / `lower_case`, or with `tokenizer` when it
    is a SentencePiece one. An existing non-empty `out_dir` is refused unless `overwrite` (and then replaced
    only when this package wrote it)."""
    out_dir = Path(out_dir)
    if tokenizer is not None and tokenizer.kind == SENTENCEPIECE:
        lower_case = None
    info = {
        "format": PAIR_FORMAT,
        "writer_version": WRITER_VERSION,
        "config": encoder.config.to_dict(),
        "lower_case": lower_case,
        "normalization": normalization_note(lower_case),
        "pooled_output": encoder.config.pooled_output,
        "has_embedding_output": True,
        "pooling": "cls",
        **(metadata or {}),
    }
    with atomic_directory(out_dir, overwrite) as tmp:
        if tokenizer is not None and tokenizer.kind == SENTENCEPIECE:
            _write_sentencepiece_pair(encoder, head, tokenizer, tmp)
        else:
            write_encoder(encoder, head, tmp / ENCODER_DIR, vocab_path, lower_case)
            write_preprocessor(vocab_path, lower_case, tmp / PREPROCESSOR_DIR, tokenizer=tokenizer)
            shutil.copy(vocab_path, tmp / "vocab.txt")
        (tmp / METADATA_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        write_size_manifest(tmp)  # last: a reader tells a complete pair from a damaged or partial one
    return out_dir


def write_size_manifest(pair_dir: Path) -> None:
    """`manifest.json`: every file's size (not its checksum: a stat per file keeps every load cheap)."""
    record = file_record(pair_dir, checksums=False)
    (pair_dir / PAIR_MANIFEST).write_text(json.dumps({"files": record}, indent=1), encoding="utf-8")


def pair_damage(pair_dir: str | Path) -> str | None:
    """What is wrong with a converted pair (a file missing, truncated or added), or None when it matches its
    manifest; pairs written before the manifest existed are not checked.

    Example:
        >>> pair_damage(Path("~/.cache/tfhub_transfer/encoders/all-MiniLM-L6-v2-float32").expanduser())
    """
    path = Path(pair_dir) / PAIR_MANIFEST
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {PAIR_MANIFEST} is unreadable"
    return record_damage(pair_dir, recorded, ignore=(PAIR_MANIFEST, MARKER))
