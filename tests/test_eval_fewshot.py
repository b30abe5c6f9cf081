"""Few-shot prompts: example choice and assembly through the chat template."""

from __future__ import annotations

import pytest

from ftcurate.core.project.records import Message, Record
from ftcurate.train.data import FALLBACK_CHAT_TEMPLATE, format_chat, prompt_and_reference, render
from ftcurate.train.fewshot import (FewShotSettings, fewshot_messages, fewshot_record, question_text, select_shots,
                                    usable_shots)
from ftcurate.train.model import CHATML_TEMPLATE


def rec(q: str, a: str, system: str = "Be brief.") -> Record:
    msgs = ([Message("system", system)] if system else []) + [Message("user", q), Message("assistant", a)]
    return Record(msgs)


POOL = [rec("What colour is the sky?", "Blue."), rec("How many legs has a cat?", "Four."),
        rec("What colour is grass?", "Green."), rec("Capital of France?", "Paris."),
        rec("How many legs has a spider?", "Eight."), rec("", "no question"), rec("Q?", "")]


class _Tok:
    """The bits of a tokenizer format_chat needs, with a real jinja chat template."""

    def __init__(self, template: str) -> None:
        self.chat_template = template
        self.bos_token = ""
        self.eos_token = "<|im_end|>"

    def apply_chat_template(self, messages, chat_template, tokenize, add_generation_prompt, **kw):
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        return env.from_string(chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                     bos_token=self.bos_token, eos_token=self.eos_token, **kw)


def test_usable_shots_need_a_question_and_a_reply():
    assert len(usable_shots(POOL)) == 5


def test_random_shots_are_seeded_and_never_the_question_itself():
    queries = [rec("What colour is the sky?", "Blue."), rec("Capital of Spain?", "Madrid.")]
    pool = usable_shots(POOL)
    a = select_shots(pool, queries, FewShotSettings(k=3, method="random", seed=7))
    assert a == select_shots(pool, queries, FewShotSettings(k=3, method="random", seed=7))
    assert all(len(s) == 3 for s in a)
    assert 0 not in a[0]  # the pool's copy of the first question is never its example
    assert select_shots(pool, queries, FewShotSettings(k=10, method="random"))[1] == \
        select_shots(pool, queries, FewShotSettings(k=10, method="random"))[1]
    assert len(select_shots(pool, queries, FewShotSettings(k=10, method="random"))[1]) == 5  # the whole pool


def test_similar_shots_put_the_closest_example_next_to_the_question():
    pool = usable_shots(POOL)
    query = rec("How many legs has a dog?", "Four.")
    (chosen,) = select_shots(pool, [query], FewShotSettings(k=2, method="similar"))
    texts = [question_text(pool[i]) for i in chosen]
    assert len(chosen) == 2 and all("legs" in t for t in texts)  # the two questions about legs


def test_fewshot_prompt_through_the_chat_template():
    shots = [POOL[0], POOL[1]]
    query = rec("What colour is snow?", "White.", system="You answer in one word.")
    messages, reference = prompt_and_reference(query)
    conv = fewshot_messages(shots, messages)
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert conv[0]["content"] == "You answer in one word."  # the question's system message, once
    text = format_chat(_Tok(CHATML_TEMPLATE), conv, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou answer in one word.<|im_end|>\n"
                    "<|im_start|>user\nWhat colour is the sky?<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"
                    "<|im_start|>user\nHow many legs has a cat?<|im_end|>\n<|im_start|>assistant\nFour.<|im_end|>\n"
                    "<|im_start|>user\nWhat colour is snow?<|im_end|>\n<|im_start|>assistant\n")
    fallback = format_chat(_Tok(FALLBACK_CHAT_TEMPLATE), conv, add_generation_prompt=True)
    assert fallback.count("<|user|>") == 3 and fallback.endswith("<|user|>\nWhat colour is snow?\n<|assistant|>\n")
    assert fallback.count("Blue.<|im_end|>") == 1  # the examples' replies end like trained replies


def test_fewshot_record_scores_only_the_question_reply():
    pytest.importorskip("transformers")
    from ftcurate.train.model import create_demo_model
    from transformers import AutoTokenizer

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        create_demo_model(tmp, hidden_size=16, num_layers=1, vocab_size=300,
                          texts=["What colour is the sky? Blue. How many legs has a cat? Four. snow White."])
        tok = AutoTokenizer.from_pretrained(tmp)
    query = rec("What colour is snow?", "White.")
    record = fewshot_record([POOL[0], POOL[1]], query)
    ids, labels = render(tok, record, max_len=4096)
    learned = tok.decode([t for t, lab in zip(ids, labels) if lab != -100])
    assert learned.strip().startswith("White.") and "Blue" not in learned and "Four" not in learned
