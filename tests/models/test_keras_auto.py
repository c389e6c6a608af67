"""`mode="auto"`, the default of `TextClassifier.from_encoder`: the first `fit` chooses the recipe from its data
(transfer.modes.auto's table), rebuilds the Keras model for it, and trains as the CLI's `--mode auto` does."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from harness import paraphrase_or_not

import tfhub_transfer
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.training.budget import auto_epochs

SEQ_LENGTH = 16
WORDS = {"pos": ["good", "great", "wonderful", "excellent", "fun", "joy"],
         "neg": ["bad", "awful", "terrible", "dull", "mess", "bore"]}
FILLER = ["the", "film", "was", "a", "and", "it", "story", "plot"]


def polarity(per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """Texts of filler words with two words of their class's vocabulary: a task any encoder can learn."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(per_class):
        for label, words in WORDS.items():
            chosen = [*rng.choice(FILLER, 3), *rng.choice(words, 2, replace=False)]
            texts.append(" ".join(rng.permutation(chosen)))
            labels.append(label)
    return texts, labels


def default_model(encoder, **options) -> TextClassifier:
    tf_keras.utils.set_random_seed(0)
    return TextClassifier.from_encoder(str(encoder), labels=["neg", "pos"], seq_length=SEQ_LENGTH, seed=0, **options)


def accuracy(model, texts, labels) -> float:
    return float(np.mean([p == y for p, y in zip(model.predict_labels(texts), labels)]))


def test_auto_is_the_default_and_a_model_before_its_first_fit_predicts_and_saves_as_auto(tiny_encoder, tmp_path):
    model = default_model(tiny_encoder)
    assert model.config.mode == "auto" and model.auto_choice is None
    assert model.mode.name == "finetune"  # built as plain fine-tuning until the data is seen
    logits = model.predict(["a great film"], verbose=0)
    model.save(tmp_path / "unfitted")
    loaded = tfhub_transfer.load(tmp_path / "unfitted")
    assert loaded.config.mode == "auto"
    np.testing.assert_allclose(loaded.predict(["a great film"], verbose=0), logits, atol=1e-5)


def test_few_labels_get_the_pairs_recipe_whose_model_learns_saves_and_exports(tiny_encoder, tmp_path, capsys):
    model = default_model(tiny_encoder)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").weights]
    texts, labels = polarity(12, seed=0)
    model.fit(texts, labels)
    out = capsys.readouterr().out
    assert "auto: 24 examples, 2 classes, 12 in the rarest -> contrastive, batches of 8" in out
    assert "no labels held out" in out
    assert model.config.mode == "contrastive" and model.auto_choice.mode == "contrastive"
    assert "unit_norm" in [layer.name for layer in model.layers]  # the graph the recipe reads
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(encoder_before, model.get_layer("encoder").weights))
    test_texts, test_labels = polarity(20, seed=1)
    assert accuracy(model, test_texts, test_labels) >= 0.75  # chance 0.5
    logits = model.predict(test_texts, verbose=0)
    model.save(tmp_path / "fitted")
    loaded = tfhub_transfer.load(tmp_path / "fitted")
    assert loaded.config.mode == "contrastive"
    np.testing.assert_allclose(loaded.predict(test_texts, verbose=0), logits, atol=1e-5)
    served = ExportedClassifier(model.export(tmp_path / "export", "reviews")).predict(test_texts)
    np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)


def test_few_sentence_pairs_are_read_apart_by_the_frozen_encoder_with_a_head_on_fixed_features(tiny_encoder):
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["different", "same"], pair=True,
                                        seq_length=SEQ_LENGTH, seed=0)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").weights]
    first, second, labels = paraphrase_or_not(64, seed=0)
    model.fit((first, second), labels, verbose=0)
    assert (model.config.mode, model.config.pairs, model.fixed_features) == ("freeze", "siamese", True)
    assert "pair_features" in [layer.name for layer in model.layers]
    for before, after in zip(encoder_before, model.get_layer("encoder").weights):
        np.testing.assert_array_equal(before, after.numpy())
    test_first, test_second, test_labels = paraphrase_or_not(64, seed=1)
    guessed = np.argmax(model.predict((test_first, test_second), verbose=0), axis=-1)
    assert np.mean(guessed == test_labels) >= 0.75  # chance 0.5


def test_a_few_more_labels_fine_tune_in_the_recipes_batches_for_the_step_budget(tiny_encoder):
    model = default_model(tiny_encoder, dropout=0.0)
    texts, labels = polarity(70, seed=0)  # past the pairs' 64 per class
    model.fit(texts, labels, verbose=0)
    assert model.auto_choice.mode == "finetune" and model.auto_choice.batch_size == 8
    steps = -(-len(texts) // 8)
    assert int(model.optimizer.iterations.numpy()) == auto_epochs(len(texts), 8) * steps  # >= 200 steps, batches of 8
    test_texts, test_labels = polarity(20, seed=1)
    assert accuracy(model, test_texts, test_labels) >= 0.75


def test_what_the_user_gives_is_kept_a_mode_batch_size_epochs_and_compile_arguments(tiny_encoder):
    texts, labels = polarity(70, seed=0)
    given = default_model(tiny_encoder, mode="finetune")
    given.fit(texts, labels, epochs=1, verbose=0)
    assert given.auto_choice is None and int(given.optimizer.iterations.numpy()) == -(-len(texts) // 32)
    chosen = default_model(tiny_encoder)
    chosen.compile(learning_rate=1e-4, warmup_fraction=0.0)
    chosen.fit(texts, labels, batch_size=16, epochs=2, verbose=0)
    assert chosen.auto_choice.mode == "finetune"
    assert int(chosen.optimizer.iterations.numpy()) == 2 * -(-len(texts) // 16)
    assert chosen.compile_options["learning_rate"] == 1e-4  # compiled again, as asked, after the rebuild


def test_fit_options_the_pairs_cannot_honour_steer_auto_to_a_recipe_that_does(tiny_encoder):
    texts, labels = polarity(8, seed=0)
    model = default_model(tiny_encoder)
    model.fit(texts, labels, sample_weight=np.ones(len(texts)), epochs=1, verbose=0)
    assert model.auto_choice.mode == "finetune"  # not contrastive, which draws its own pairs and takes no weights


def test_auto_on_a_dataset_of_encoder_inputs_is_one_error_saying_what_to_pass(tiny_encoder):
    model = default_model(tiny_encoder)
    inputs = model.preprocessor.encode(["a great film", "a dull film"], SEQ_LENGTH)
    dataset = tf.data.Dataset.from_tensor_slices((dict(inputs), [1, 0])).batch(2)
    with pytest.raises(ConfigError, match="mode='auto' chooses the recipe from the labels"):
        model.fit(dataset, verbose=0)
    assert model.config.mode == "auto"  # nothing chosen, nothing rebuilt


def test_epochs_auto_without_a_known_length_is_one_error_naming_the_argument(tiny_encoder):
    model = default_model(tiny_encoder, mode="finetune")
    inputs = model.preprocessor.encode(["a great film", "a dull film"], SEQ_LENGTH)
    endless = tf.data.Dataset.from_tensor_slices((dict(inputs), [1, 0])).batch(2).repeat().take(3)
    endless = endless.filter(lambda x, y: True)  # a length tf.data cannot tell
    with pytest.raises(ConfigError, match=r"fit\(epochs='auto'\)"):
        model.fit(endless, epochs="auto", verbose=0)


def test_multi_label_past_the_pairs_gets_a_standardised_head_on_fixed_features_that_predicts_labels(tiny_encoder):
    rng = np.random.default_rng(0)
    vocab = {"sport": ["goal", "match", "team"], "money": ["bank", "price", "market"],
             "food": ["bread", "soup", "cake"]}

    def texts_of(count):
        texts, labels = [], []
        for _ in range(count):
            names = sorted(rng.choice(list(vocab), rng.integers(1, 3), replace=False))
            words = [*rng.choice(FILLER, 3), *(rng.choice(vocab[name]) for name in names)]
            texts.append(" ".join(rng.permutation(words)))
            labels.append(",".join(names))
        return texts, labels

    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=list(vocab), task="multi_label",
                                        seq_length=SEQ_LENGTH, seed=0)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").weights]
    model.fit(*texts_of(200), verbose=0)  # each label on ~100 texts: past the pairs' 64 per class
    assert (model.config.mode, model.fixed_features) == ("freeze", True)
    for before, after in zip(encoder_before, model.get_layer("encoder").weights):
        np.testing.assert_array_equal(before, after.numpy())
    texts, labels = texts_of(40)
    truth = np.array([[name in y.split(",") for name in vocab] for y in labels])
    guess = model.predict(texts, verbose=0) > 0.0
    assert guess.any(axis=0).all()  # every label predicted somewhere (a head on raw features predicted none)
    assert (guess & truth).sum() / max(guess.sum(), 1) >= 0.6 and (guess & truth).sum() / truth.sum() >= 0.6


def test_the_multi_label_heads_standardisation_folds_into_the_classifiers_head(tiny_encoder):
    from tfhub_transfer.models.contrastive import FeatureHead, embed, feature_standardisation

    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["a", "b", "c"], task="multi_label", mode="freeze",
                                        seq_length=SEQ_LENGTH, seed=0)
    texts, _ = polarity(6, seed=0)
    features = embed(model, texts)
    centre, scale, l2 = feature_standardisation(model, features)
    assert scale is not None and l2 == 0.0 and np.all(scale > 0)
    head = FeatureHead(model, features.shape[-1], centre=centre, scale=scale)
    head.get_layer("head").set_weights([w + 0.1 for w in head.get_layer("head").get_weights()])  # a bias too
    expected = head.predict((features - centre) / scale, verbose=0)
    head.copy_weights_to(model)
    np.testing.assert_allclose(model.predict(texts, verbose=0), expected, atol=1e-4)


def test_a_head_layer_of_ones_own_and_a_dataset_of_strings_get_a_recipe_that_trains_them(tiny_encoder):
    texts, labels = polarity(8, seed=0)
    own = default_model(tiny_encoder, head=tf_keras.layers.Dense(2, name="head"))
    own.fit(texts, labels, epochs=1, verbose=0)
    assert own.auto_choice.mode == "finetune"  # contrastive would fit a dense head of its own
    batched = default_model(tiny_encoder)
    batched.fit(tf.data.Dataset.from_tensor_slices((texts, labels)).batch(4), verbose=0)
    assert batched.auto_choice.mode == "contrastive"  # the dataset's strings and labels were counted


def test_bad_validation_data_is_one_error_before_a_recipe_is_chosen(tiny_encoder):
    from tfhub_transfer.errors import DataError

    texts, labels = polarity(8, seed=0)
    model = default_model(tiny_encoder)
    with pytest.raises(DataError, match="validation_data"):
        model.fit(texts, labels, validation_data=(texts, labels[:2]), verbose=0)
    assert model.config.mode == "auto" and model.auto_choice is None


def test_a_tagger_in_auto_mode_gets_the_token_rule_when_built(tiny_encoder):
    from tfhub_transfer.models.token_classifier import TokenClassifier

    tagger = TokenClassifier.from_encoder(str(tiny_encoder), tags=["O", "B-X", "I-X"], seq_length=SEQ_LENGTH)
    assert (tagger.config.mode, tagger.mode.name, tagger.mode.encoder_trainable) == ("finetune", "finetune", True)
    frozen = TokenClassifier.from_encoder(str(tiny_encoder), tags=["O", "B-X"], seq_length=SEQ_LENGTH, mode="freeze")
    assert frozen.config.mode == "freeze"


MIRRORED_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfhub_transfer.models.text_classifier import TextClassifier

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = TextClassifier.from_encoder(sys.argv[1], labels=["neg", "pos"], seq_length=16, seed=0)
texts = ["the film was wonderful and great fun", "the plot was awful and a dull mess"] * 70
labels = ["pos", "neg"] * 70
model.fit(texts, labels, epochs=1, verbose=0)  # 70 per class: fine-tuning in batches of 8, rebuilt in the scope
head = model.get_layer("head").weights[0]
json.dump({"mode": model.config.mode, "replicas": model.distribute_strategy.num_replicas_in_sync,
           "mirrored": type(head).__name__, "steps": int(model.optimizer.iterations.numpy())}, sys.stdout)
"""


@pytest.mark.integration  # a subprocess with two logical devices, ~30 s: make integration (CI)
def test_auto_rebuilds_a_model_made_under_a_strategy_inside_that_strategy(tiny_encoder):
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tiny_encoder)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["mode"], result["replicas"], result["steps"]) == ("finetune", 2, 140 // 8 + 1)
    assert "Mirrored" in result["mirrored"]  # the new head's variables are the strategy's
