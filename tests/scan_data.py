"""Synthetic chat datasets with planted problems, for engine comparisons (tests and benchmarks).

Words come from the bundled sample's texts (MIT). ``make_dataset(n, n_test)`` returns training
and test records (OpenAI chat dicts) with about 2% exact copies, 3% near copies (a few words
changed), 1% off-topic outliers (other words, other shape), and 3% of the test prompts leaked
into the training set (some verbatim, some with a changed answer).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "sample" / "chat_train.jsonl"


def _vocabulary() -> list[str]:
    words: set[str] = set()
    with open(SAMPLE, encoding="utf-8") as f:
        for line in f:
            words.update(re.findall(r"[a-z]{3,}", line.lower()))
    return sorted(words)


def _record(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "system", "content": "You are a helpful tutor."},
                         {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def make_dataset(n: int, n_test: int = 200, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rnd = random.Random(seed)
    vocab = _vocabulary()
    topics = [rnd.sample(vocab, 60) for _ in range(40)]
    odd = [w[::-1] + "zq" for w in rnd.sample(vocab, 300)]

    def text(words: list[str], k: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(k))

    def item(words: list[str]) -> tuple[str, str]:
        a, b, c = rnd.randint(2, 99), rnd.randint(2, 99), rnd.randint(2, 99)
        prompt = f"{text(words, rnd.randint(12, 30))} {a} and {b}?"
        answer = f"{text(words, rnd.randint(15, 40))} so the answer is {a * b + c}."
        return prompt, answer

    test = [_record(*item(rnd.choice(topics))) for _ in range(n_test)]
    train: list[dict] = []
    while len(train) < n:
        r = rnd.random()
        if r < 0.02 and train:
            train.append(json.loads(json.dumps(rnd.choice(train))))
        elif r < 0.05 and train:
            src = rnd.choice(train)
            words = src["messages"][2]["content"].split()
            for _ in range(max(1, len(words) // 25)):
                words[rnd.randrange(len(words))] = rnd.choice(vocab)
            train.append(_record(src["messages"][1]["content"], " ".join(words)))
        elif r < 0.06:
            train.append(_record(text(odd, rnd.randint(3, 8)), text(odd, rnd.randint(60, 120))))
        elif r < 0.09:
            t = rnd.choice(test)
            answer = t["messages"][2]["content"] if rnd.random() < 0.5 else item(rnd.choice(topics))[1]
            train.append(_record(t["messages"][1]["content"], answer))
        else:
            train.append(_record(*item(rnd.choice(topics))))
    return train, test


def write_jsonl(path, records: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)
