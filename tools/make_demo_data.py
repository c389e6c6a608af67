"""Writes the demo dataset shipped with the package (written by this project, CC0).

Short product and film reviews built from templates, labelled positive/negative.
Deterministic: running it again reproduces tfhub_transfer/demo_data/reviews.tsv.

    python tools/make_demo_data.py tfhub_transfer/demo_data/reviews.tsv
"""

import random
import sys

SUBJECTS = [
    "the film", "this movie", "the soundtrack", "the acting", "the plot", "the ending",
    "this phone", "the battery", "the screen", "the camera", "this laptop", "the keyboard",
    "the service", "the food", "the hotel room", "the staff", "this book", "the story",
    "the headphones", "the delivery",
]
POSITIVE = [
    "wonderful", "excellent", "delightful", "brilliant", "superb", "charming", "great",
    "fantastic", "lovely", "impressive", "moving", "reliable",
]
NEGATIVE = [
    "terrible", "awful", "boring", "dreadful", "disappointing", "poor", "weak", "clumsy",
    "tedious", "broken", "useless", "annoying",
]
POSITIVE_TAILS = [
    "and I would happily recommend it", "and it made my day", "and worth every penny",
    "and I loved every minute", "and I will buy it again", "and exceeded my expectations",
]
NEGATIVE_TAILS = [
    "and I want my money back", "and I regret it", "and a waste of time",
    "and I would not recommend it", "and I gave up halfway", "and it fell short",
]
TEMPLATES = [
    "{subject} was {adjective}, {tail}.",
    "Honestly, {subject} is {adjective} {tail}.",
    "I found {subject} {adjective}.",
    "{subject} felt {adjective} from start to finish.",
    "All in all, {subject} was {article} {adjective} experience, {tail}.",
]


def make_rows(count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        positive = i % 2 == 0
        adjective = rng.choice(POSITIVE if positive else NEGATIVE)
        text = rng.choice(TEMPLATES).format(
            subject=rng.choice(SUBJECTS),
            adjective=adjective,
            article="an" if adjective[0] in "aeio" else "a",
            tail=rng.choice(POSITIVE_TAILS if positive else NEGATIVE_TAILS),
        )
        rows.append((text[0].upper() + text[1:], "positive" if positive else "negative"))
    rng.shuffle(rows)
    return rows


def main(path: str, count: int = 400) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("text\tlabel\n")
        for text, label in make_rows(count):
            f.write(f"{text}\t{label}\n")


if __name__ == "__main__":
    main(sys.argv[1])
