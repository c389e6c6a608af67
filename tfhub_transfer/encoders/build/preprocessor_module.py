"""The preprocessing SavedModel of the TF Hub text API, built on tensorflow-text.

The saved object follows the interface of published BERT preprocessors:
- calling it maps a batch of strings to `input_word_ids`, `input_mask`,
  `input_type_ids` at the default sequence length;
- `.tokenize(strings)` returns word pieces as a RaggedTensor [batch, words, pieces];
- `.tokenize.get_special_tokens_dict()` returns the special ids and the vocab size;
- `.bert_pack_inputs(segments, seq_length=...)` trims and packs 1 or 2 segments.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as text
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer  # BertTokenizer's first step


def pack_segments(
    segments: list[tf.RaggedTensor], seq_length, special_ids: dict[str, int]
) -> dict[str, tf.Tensor]:
    """Trims segments round-robin, adds [CLS]/[SEP] and pads to `seq_length`."""
    flat = [s.merge_dims(-2, -1) if s.shape.rank > 2 else s for s in segments]
    flat = [tf.cast(s, tf.int32) for s in flat]
    budget = tf.cast(seq_length, tf.int32) - len(flat) - 1
    trimmed = text.RoundRobinTrimmer(max_seq_length=budget).trim(flat)
    word_ids, type_ids = text.combine_segments(
        trimmed,
        start_of_sequence_id=special_ids["start_of_sequence_id"],
        end_of_segment_id=special_ids["end_of_segment_id"],
    )
    input_word_ids, input_mask = text.pad_model_inputs(
        word_ids, max_seq_length=seq_length, pad_value=special_ids["padding_id"]
    )
    input_type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=seq_length, pad_value=0)
    return {
        "input_word_ids": tf.cast(input_word_ids, tf.int32),
        "input_mask": tf.cast(input_mask, tf.int32),
        "input_type_ids": tf.cast(input_type_ids, tf.int32),
    }


def pack_xlmr_segments(
    segments: list[tf.RaggedTensor], seq_length, special_ids: dict[str, int]
) -> dict[str, tf.Tensor]:
    """XLM-R's packing: `<s> A </s>` or `<s> A </s></s> B </s>`, every token type 0 (XLM-R's tokenizer gives
    no types), trimmed round-robin and padded with <pad> to `seq_length`."""
    flat = [s.merge_dims(-2, -1) if s.shape.rank > 2 else s for s in segments]
    flat = [tf.cast(s, tf.int32) for s in flat]
    budget = tf.cast(seq_length, tf.int32) - 2 * len(flat)
    trimmed = text.RoundRobinTrimmer(max_seq_length=budget).trim(flat)
    end = special_ids["end_of_segment_id"]
    # The extra </s> opening each later segment; combine_segments adds <s> and each closing </s>.
    trimmed = trimmed[:1] + [tf.concat([tf.fill([s.nrows(), 1], end), s], axis=1) for s in trimmed[1:]]
    word_ids, _ = text.combine_segments(
        trimmed, start_of_sequence_id=special_ids["start_of_sequence_id"], end_of_segment_id=end)
    input_word_ids, input_mask = text.pad_model_inputs(
        word_ids, max_seq_length=seq_length, pad_value=special_ids["padding_id"])
    return {
        "input_word_ids": tf.cast(input_word_ids, tf.int32),
        "input_mask": tf.cast(input_mask, tf.int32),
        "input_type_ids": tf.zeros_like(input_mask, tf.int32),
    }


MAX_CHARS_PER_WORD = 100  # BERT's WordPiece gives a longer word one [UNK]


def bert_uncased(strings: tf.Tensor) -> tf.Tensor:
    """BERT's uncased normalisation: lower case, NFD, accents (Unicode category Mn) removed."""
    lowered = tf.strings.lower(strings, encoding="utf-8")
    return tf.strings.regex_replace(text.normalize_utf8(lowered, "NFD"), r"\p{Mn}", "")


def _string_batch() -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string)


class _SpecialTokens(tf.train.Checkpoint):
    def __init__(self, special_ids: dict[str, int]):
        super().__init__()
        ids = dict(special_ids)
        self.__call__ = tf.function(
            lambda: {k: tf.constant(v, tf.int32) for k, v in ids.items()}, input_signature=[]
        )


class _Tokenize(tf.train.Checkpoint):
    def __init__(self, tokenizer, special_ids: dict[str, int], to_ids=None):
        super().__init__()
        self._tokenizer = tokenizer
        to_ids = to_ids or (lambda strings: tf.cast(tokenizer.tokenize(strings), tf.int32))

        @tf.function(input_signature=[_string_batch()])
        def tokenize(strings):
            return to_ids(strings)

        self.__call__ = tokenize
        self.get_special_tokens_dict = _SpecialTokens(special_ids)


class _PackInputs(tf.train.Checkpoint):
    def __init__(self, special_ids: dict[str, int], default_seq_length: int, packer=pack_segments):
        super().__init__()
        ids = dict(special_ids)

        @tf.function(autograph=False)
        def pack(inputs, seq_length=default_seq_length):
            return packer(list(inputs), seq_length, ids)

        self.__call__ = pack
        for ragged_rank in (1, 2):
            for num_segments in (1, 2):
                pack.get_concrete_function(
                    [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32)] * num_segments,
                    seq_length=tf.TensorSpec([], tf.int32),
                )


class BertPreprocessorModule(tf.train.Checkpoint):
    """The root object written as a preprocessing SavedModel."""

    def __init__(
        self,
        vocab_path: str,
        special_ids: dict[str, int],
        lower_case: bool,
        default_seq_length: int = 128,
        packing: str = "bert",
    ):
        super().__init__()
        initializer = tf.lookup.TextFileInitializer(
            vocab_path,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self._vocab_table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        # tensorflow-text's BertTokenizer, in its two steps, so that two of its rules can follow BERT's (and
        # Hugging Face's): lower-casing as `bert_uncased` (its `lower_case` case-folds with NFKC, which differs
        # on e.g. "ß" and compatibility jamo "ㅋ"), and [UNK] for words over 100 characters (it counts bytes,
        # so a 34-syllable Hangul word would be [UNK]).
        words = BasicTokenizer(lower_case=False)
        pieces = text.WordpieceTokenizer(self._vocab_table, token_out_type=tf.int64,
                                         max_bytes_per_word=4 * MAX_CHARS_PER_WORD)

        def to_ids(strings):
            split = words.tokenize(bert_uncased(strings) if lower_case else strings)
            too_long = tf.strings.length(split.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
            split = split.with_flat_values(tf.where(too_long, "[UNK]", split.flat_values))
            return tf.cast(pieces.tokenize(split), tf.int32)

        self.tokenize = _Tokenize(pieces, special_ids, to_ids)
        xlmr = packing == "xlmr"  # MPNet
        self.bert_pack_inputs = _PackInputs(special_ids, default_seq_length,
                                            pack_xlmr_segments if xlmr else pack_segments)
        if xlmr:  # tells exports, which pack BERT's way, that this preprocessor does not
            self.pair_packing = tf.Variable("<s> A </s></s> B </s>", trainable=False)
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        self.do_lower_case = tf.Variable(lower_case, trainable=False)

        @tf.function(input_signature=[_string_batch()])
        def preprocess(strings):
            # Instance-level __call__ attributes are not found by Python's call syntax.
            tokens = self.tokenize.__call__(strings)
            return self.bert_pack_inputs.__call__([tokens], seq_length=default_seq_length)

        self.__call__ = preprocess


UNICODE_SPACES = r"[\t\n\x0b\x0c\r\x{85}\p{Zs}\x{2028}\x{2029}]"


class SentencepiecePreprocessorModule(tf.train.Checkpoint):
    """The preprocessing SavedModel of an XLM-R-tokenised encoder: tensorflow-text's SentencepieceTokenizer,
    XLM-R's fairseq ids (SentencePiece's ids + 1, its <unk> 0 -> 3) and `<s> A </s></s> B </s>` packing.

    Same interface as BertPreprocessorModule, except that `tokenize` gives [batch, pieces] (no word level)
    and it carries `sentencepiece_model` (an asset) instead of `vocab_file` / `do_lower_case`."""

    def __init__(self, model_path: str, special_ids: dict[str, int], id_offset: int,
                 default_seq_length: int = 128):
        super().__init__()
        with open(model_path, "rb") as f:
            tokenizer = text.SentencepieceTokenizer(model=f.read(), out_type=tf.int32)
        unknown = special_ids["unknown_id"]

        def to_ids(strings):
            # Every Unicode space splits words, as in Hugging Face's XLM-R tokenizer (a model whose own
            # normalisation maps them to spaces, like XLM-R's nmt_nfkc, gives the same pieces either way).
            pieces = tokenizer.tokenize(tf.strings.regex_replace(strings, UNICODE_SPACES, " "))
            ids = pieces.flat_values
            return pieces.with_flat_values(tf.where(ids == 0, unknown, ids + id_offset))

        self.tokenize = _Tokenize(tokenizer, special_ids, to_ids)
        self.bert_pack_inputs = _PackInputs(special_ids, default_seq_length, pack_xlmr_segments)
        self.sentencepiece_model = tf.saved_model.Asset(model_path)
        self.pair_packing = tf.Variable("<s> A </s></s> B </s>", trainable=False)

        @tf.function(input_signature=[_string_batch()])
        def preprocess(strings):
            tokens = self.tokenize.__call__(strings)
            return self.bert_pack_inputs.__call__([tokens], seq_length=default_seq_length)

        self.__call__ = preprocess
