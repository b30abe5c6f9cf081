"""Tests for the quality heuristics (ftcurate.core.quality.heuristics).

Each flag gets positives and tricky negatives (code, math, lists and ordinary prose must
not light up), every flag can be switched off, the bundled sample's planted defects are
all found with no flag on a clean record, and real public data stays nearly quiet."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from ftcurate.core.io.formats import DatasetReader
from ftcurate.core.quality.heuristics import (
    FLAG_SETTING,
    FLAGS,
    Flag,
    HeuristicSettings,
    check_record,
    count_flags,
    scan_heuristics,
)
from ftcurate.core.progress import Cancelled
from ftcurate.core.project.records import Message, Record
from ftcurate.core.io.validate import TokenCounter

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
MANIFEST = Path(__file__).resolve().parent / "data" / "sample_manifest.json"

ALL_ON = HeuristicSettings(language=True)


def rec(answer, prompt: str = "Can you help me with this?", system: str | None = None) -> Record:
    msgs = [Message("system", system)] if system else []
    msgs.append(Message("user", prompt))
    msgs.append(Message("assistant", answer))
    return Record(messages=msgs)


def flagged(record: Record, settings: HeuristicSettings = ALL_ON) -> dict[str, str]:
    return dict(check_record(record, settings))


def names(answer, prompt: str = "Can you help me with this?", settings: HeuristicSettings = ALL_ON) -> set:
    return set(flagged(rec(answer, prompt), settings))


# --------------------------------------------------------------------------------------
# API and settings
# --------------------------------------------------------------------------------------


def test_flag_names_are_stable():
    assert set(FLAGS) == {"empty_answer", "placeholder_answer", "truncated_answer", "too_long", "refusal",
                          "pii", "mojibake", "repetition", "unseen_media", "wrong_language",
                          "template_placeholder"}
    assert set(FLAG_SETTING) == set(FLAGS)
    assert all(isinstance(v, str) and v for v in FLAGS.values())
    defaults = HeuristicSettings()
    for flag, setting in FLAG_SETTING.items():
        assert isinstance(getattr(defaults, setting), bool)
        assert defaults.enabled(flag) == (flag != "wrong_language")


def test_settings_defaults_and_help():
    s = HeuristicSettings()
    assert s.max_tokens == 4096 and s.target_language == "en" and s.language is False
    assert 0 < s.repetition_threshold < 1
    for f in fields(HeuristicSettings):
        assert f.metadata.get("help"), f"{f.name} has no help text"
    assert set(HeuristicSettings.help()) == {f.name for f in fields(HeuristicSettings)}


def test_settings_round_trip_and_coercion():
    s = HeuristicSettings(pii=False, max_tokens=2048, repetition_threshold=0.8, target_language="de")
    assert HeuristicSettings.from_dict(s.to_dict()) == s
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()
    t = HeuristicSettings.from_dict({"pii": "false", "max_tokens": "1024", "refusal": 0, "unknown": 1,
                                     "repetition_threshold": "0.9", "language": "yes", "mojibake": None})
    assert t.pii is False and t.max_tokens == 1024 and t.refusal is False and t.language is True
    assert t.repetition_threshold == 0.9 and t.mojibake is True
    assert HeuristicSettings.from_dict(None) == HeuristicSettings()
    assert HeuristicSettings.from_dict({"max_tokens": "lots"}).max_tokens == 4096


def test_check_record_returns_flag_reason_pairs():
    out = check_record(rec("N/A"))
    assert out == [("placeholder_answer", "answer is a placeholder: 'N/A'")]
    assert check_record(rec("The answer is 12.")) == []


# --------------------------------------------------------------------------------------
# Per-flag positives and tricky negatives
# --------------------------------------------------------------------------------------

POSITIVES = {
    "empty_answer": [rec("   "), rec("\n  \n"), rec(""), rec(None)],
    "placeholder_answer": [rec(x) for x in ("N/A", "<noinput>", "TODO", "n/a", "none", "-", "...", "TBD",
                                            "Lorem ipsum dolor sit amet.", "<nooutput>", " None. ", '"N/A"')],
    "truncated_answer": [
        rec("No problem. Let's figure it out.\n\nOn Monday she paints 30 square feet.\nShe paints 2 x 30 square feet on"),
        rec("There are 5 apples. Then she gives 2 to the"),
        rec("Let's compute. The total cost is 5 dollars and"),
        rec("Here is the function:\n```python\ndef f(x):\n    return x * 2\n"),
        rec("Great question! Let's break it down.\n\nShe spent $60 on her younger sister because 4 x 15 = 60.\n"
            "She buys 3 lego sets for her older"),
    ],
    "refusal": [rec(x) for x in (
        "As an AI language model, I cannot complete homework assignments.",
        "I'm sorry, but I can't help with that.",
        "I'm sorry, but as an AI, I don't have the capability to perform external tasks such as ordering a pizza.",
        "I am unable to assist with that request.",
        "As a large language model, I do not have feelings.",
        "I don't have personal opinions, but here are some common views.",
        "I cannot help with that.",
        "I’m sorry, but I’m unable to book flights.",
    )],
    "pii": [rec(x) for x in (
        "Email me at alice.smith@acme-corp.com.", "jane.doe@example.com is my address.",
        "Call +44 20 7946 0958 after six.",
        "Our hotline is (555) 014-2368.",
        "Call 415-555-0132 today.",
        "Pay with 4111 1111 1111 1111.",
        "My key is sk-2nwzDFh5jp3h3EahSoZnxd4l9kKaygHSN9AqskE1 ok?",
        "AWS key AKIAIOSFODNN7EXAMPLE",
        "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "xoxb-1234567890-abcdefghij",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        'client_secret = "q8Zr2LmX9vT4pW7sK1nB"',
        "My SSN: 123-45-6789",
    )],
    "mojibake": [rec("Letâ€™s work it out at the cafÃ©."), rec("naÃ¯ve rÃ©sumÃ©"), rec("Lost \ufffd here.")],
    "repetition": [
        rec("Remember to add the numbers carefully. " * 15 + "\n\nThe answer is 10."),
        rec("I like it. " * 12),
        rec("Answer: " + "the " * 20 + "end."),
        rec("so we keep going and going and the story goes on and on and on " * 8),
    ],
    "unseen_media": [
        rec("Sure! As shown in the image below, the rectangle is 8 cm long."),
        rec("Please see the attached file for details."),
        rec("Here it is:\n\n![rectangle](https://example.com/q4.png)\n\nThe perimeter is 26 cm."),
        rec("Click the link to read more."),
        rec("Sure.", prompt="What is in this picture?"),
        rec("Sure.", prompt="Summarize this article: https://news.example.com/story/123"),
        rec("The chart below shows sales by month."),
        rec("In the picture above, there are three cats."),
    ],
    "template_placeholder": [rec("Hello! I am {{name}}, an AI assistant developed by {{author}}."),
                             rec("Hi.", prompt="Tell {{ user_name }} about the plan."),
                             rec("{{author}} trained me.")],
    "wrong_language": [
        rec("La capital de Francia es París y es una ciudad muy bonita con muchos museos y parques."),
        rec("您好，我是一个人工智能助手，很高兴为您提供帮助。请问有什么可以帮您的吗？"),
        rec("Привет! Я ассистент и всегда рад помочь вам с любыми вопросами."),
    ],
}

NEGATIVES = {
    "empty_answer": [rec("0"), rec("."), rec("No.")],
    "placeholder_answer": [rec(x) for x in ("None of the above options is prime.", "NA is the symbol for sodium? "
                                            "No, that is Na.", "0", "Yes", "To do this, add 2 and 3.",
                                            "undefined", "null", "-5", "The answer is none.")],
    "truncated_answer": [rec(x) for x in (
        "The answer is 42", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
        "Here's the code:\n```python\nprint('hi')\n```", "See https://example.com/docs", "x = a + b",
        "- eggs\n- milk\n- flour", "1. Preheat the oven.\n2. Mix the flour and sugar",
        "Roses are red\nViolets are blue", "I hope this helps! Let me know if you have any other questions",
        "Done. Here is the list:\n\nfoo\nbar", "The result is:\n\n$$x = \\frac{a}{b}$$",
        "It works. The function returns True if the string is a palindrome and False otherwise",
        "Yes. That is what it is", "OK. And so on and so forth", "The capital of France is Paris",
        "def f(x):\n    return x and y", "SELECT name FROM users WHERE age > 30 AND city = 'Paris'",
        "Good morning! 😊", 'He said "hello"', "Call f(x)", "The total is $60",
        "That's 5 apples (2 red and 3 green)", "import numpy as np\nfrom os import path",
        "Reverse it: dog lazy the over jumped fox brown quick The",
        "First line.\nSecond line.\nsed -i -e \"s/$old/$new/g\" $fileName",
        "The steps are as follows:", "Step 1. Open the app. Step 2. Log in",
        "Thanks for asking.\nHere is the plan.\nLet me know if anything is unclear",
        "It is 3.\nIt is 4.\nWe logged in", "Use it like this:\n\n```\nfoo --bar\n```",
    )],
    "refusal": [rec(x) for x in (
        "I cannot stress enough how important sleep is.", "I'm sorry to hear that! Here is what you can do.",
        "Dear John,\n\nUnfortunately, I am unable to attend the meeting on Friday.",
        "As an AI researcher, I find this fascinating.",
        "```python\nprint(\"I'm sorry, but I can't do that\")\n```",
        "I'm sorry, but the website is unavailable right now.",
        "I'm sorry, but I couldn't find any restaurants nearby.",
        "I am Vicuna, a language model trained by researchers from LMSYS.",
        "Viruses cannot survive without a host cell.", "Countries that are unable to compete fall behind.",
    )],
    "pii": [rec(x) for x in (
        "2+2=4 and 1,000,000 is a million. In 1999 the price was $1,234.56.", "Call 911 now!",
        "ISBN 978-3-16-148410-0", "The IP is 192.168.1.1 and version 1.2.3.", "x = 5551234567",
        "Use the @property decorator", "pip install pkg@1.2.3", "git clone git@github.com:user/repo.git",
        'api_key = "YOUR_API_KEY_HERE"', "The date is 2023-10-12 at 10:30.", "pi = 3.14159265358979323846",
        "sk-learn is great", "4 + 3 = 7, 12 - 5 = 7, 100 - 93 = 7", "Population: 331,449,281 (2020 census)",
        "Timestamp 1697040000123", "1234567890123456 is just a number", "The product is 12 x 345 = 4140.",
        'email = "john.doe@example.com"', "`user@example.com` is the format", "<img src=\"icon@2x.png\">",
        'password = "hunter2hunter2hunter2"', "Add +1 to 2, then -3.", "Natalia sold 48+24 = <<48+24=72>>72 clips.",
    )],
    "mojibake": [rec(x) for x in (
        "café naïve résumé Zürich 30°C 5 × 3 = 15 “quotes” — dash", "Привет, как дела? Россия",
        "中文回答，没有问题。", "Größe: 5 m², ½ cup, €20, £5, ¢10", "It’s “fine” – really…",
    )],
    "repetition": [
        rec("\n".join(f"{i} x {j} = {i * j}" for i in range(1, 11) for j in range(1, 11))),
        rec("\n".join(f"{i} x {j} = {i * j}, because {i} groups of {j} make {i * j}." for i in range(1, 8)
                      for j in range(1, 8))),
        rec("\n".join(f"Step {i}: Add {i} to the total and write the new total down." for i in range(1, 12))),
        rec(("Twinkle twinkle little star.\nHow I wonder what you are.\n" * 3) + "The end."),
        rec("<table>\n" + "<tr><td></td><td></td></tr>\n" * 20 + "</table>"),
        rec("```html\n" + "<div class=\"cell\"></div>\n" * 30 + "```"),
        rec("import numpy as np\n\narr = np.zeros((3,3,3))\nprint(arr)\n\n# Output\n"
            + "[[0 0 0]\n  [0 0 0]\n  [0 0 0]]\n" * 3),
        rec("Yes, yes, yes! It works."),
    ],
    "unseen_media": [
        rec("Sure.", prompt="Write a function to resize an image."),
        rec("In the table below, the totals are listed.\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
        rec("Let's figure out the answer."), rec("Sure.", prompt="Create a button with the text 'Click here' in HTML."),
        rec("Image processing is fun."), rec("The photo shoot took 3 hours."),
        rec("He spent an extra $200 on the video card."),
        rec("Sure.", prompt="Write a Python script that downloads https://example.com/data.csv"),
        rec("Sure.", prompt="There are 5 people in the photo. 2 leave. How many are left?"),
        rec("Use `![alt](url)` to add an image in Markdown."),
    ],
    "template_placeholder": [
        rec("In Jinja use {{ name }} to print a variable."), rec("$$\\frac{{a}}{b}$$"),
        rec("```html\n<p>{{ message }}</p>\n```"), rec("Use f'{{x}}' to print braces."),
        rec("<div>{{ user.name }}</div>"),
    ],
    "wrong_language": [
        rec("Paris is the capital of France and it has many museums and parks to visit."),
        rec("def add(u, v):\n    return [a + b for a, b in zip(u, v)]"),
        rec("Here is a list of French kitchen words:\n\nla cuisine - the kitchen\nla cuillère - the spoon\n"
            "la fourchette - the fork\nle couteau - the knife\nBon appétit !"),
        rec("42"), rec("The word 'Schadenfreude' means joy at someone else's misfortune."),
    ],
}


@pytest.mark.parametrize("flag", sorted(POSITIVES))
def test_positives(flag):
    for r in POSITIVES[flag]:
        got = flagged(r)
        assert flag in got, f"{flag} not raised for {r.answer_text!r}: {got}"
        assert got[flag]


@pytest.mark.parametrize("flag", sorted(NEGATIVES))
def test_tricky_negatives(flag):
    for r in NEGATIVES[flag]:
        got = flagged(r)
        assert flag not in got, f"{flag} raised for {r.text!r}: {got[flag]}"


@pytest.mark.parametrize("flag", sorted(POSITIVES))
def test_each_flag_can_be_turned_off(flag):
    off = HeuristicSettings.from_dict({**ALL_ON.to_dict(), FLAG_SETTING[flag]: False})
    for r in POSITIVES[flag]:
        assert flag not in flagged(r, off)


def test_everything_off_flags_nothing():
    off = HeuristicSettings.from_dict({setting: False for setting in FLAG_SETTING.values()})
    for group in POSITIVES.values():
        for r in group:
            assert check_record(r, off) == []


def test_language_is_off_by_default_and_follows_target():
    spanish = rec("La capital de Francia es París y es una ciudad muy bonita con muchos museos y parques.")
    assert "wrong_language" not in flagged(spanish, HeuristicSettings())
    assert "wrong_language" not in flagged(spanish, HeuristicSettings(language=True, target_language="es"))
    english = rec("Paris is the capital of France and it has many museums and parks to visit.")
    got = flagged(english, HeuristicSettings(language=True, target_language="es"))
    assert "English" in got["wrong_language"]
    chinese = rec("您好，我是一个人工智能助手，很高兴为您提供帮助。请问有什么可以帮您的吗？")
    assert "wrong_language" not in flagged(chinese, HeuristicSettings(language=True, target_language="zh"))
    assert "Han" in flagged(chinese, HeuristicSettings(language=True))["wrong_language"]


# --------------------------------------------------------------------------------------
# Details of single checks
# --------------------------------------------------------------------------------------


def test_empty_answer_ignores_tool_call_turns():
    r = Record(messages=[
        Message("user", "Book it."),
        Message("assistant", "", tool_calls=[{"id": "c", "type": "function",
                                              "function": {"name": "book", "arguments": "{}"}}]),
        Message("tool", '{"ok": true}'),
        Message("assistant", "Done, it is booked."),
    ])
    assert check_record(r) == []
    r.messages[-1].content = "  "
    assert flagged(r)["empty_answer"] == "assistant turn 2: answer is empty ('  ')"
    assert flagged(Record(messages=[Message("user", "Hi")]))["empty_answer"] == "no assistant answer"


def test_truncation_looks_at_the_last_answer_only():
    r = Record(messages=[Message("user", "a"), Message("assistant", "There are 5 apples. She gives 2 to the"),
                         Message("user", "b"), Message("assistant", "The answer is 3.")])
    assert "truncated_answer" not in flagged(r)
    r.messages[-1].content = "So the answer is 3 and"
    assert "'and'" in flagged(r)["truncated_answer"]


def test_too_long_uses_the_counter_and_max_tokens():
    long_answer = "word " * 5000  # ~6,250 estimated tokens
    r = rec(long_answer.strip() + ".")
    assert "too_long" in flagged(r)
    assert "too_long" not in flagged(r, HeuristicSettings(max_tokens=10_000))
    assert "too_long" not in flagged(rec("Short."))

    class Fixed:
        name = "fixed"

        def messages(self, record):
            return 9999, 9000

    got = dict(check_record(rec("Short."), HeuristicSettings(max_tokens=100), counter=Fixed()))
    assert got["too_long"] == "9,999 tokens > max 100 (fixed)"
    got = dict(check_record(r, HeuristicSettings(max_tokens=4096), counter=TokenCounter()))
    assert "> max 4,096" in got["too_long"] and "estimate" in got["too_long"]


def test_refusal_reason_has_the_phrase():
    assert flagged(rec("As an AI language model, I cannot do that."))["refusal"] == \
        "refusal/boilerplate phrase: 'As an AI language model,'"
    assert "I'm sorry, but I can't" in flagged(rec("Well, I'm sorry, but I can't do it."))["refusal"]


def test_pii_reason_names_the_kind_and_masks_the_value():
    key = "sk-2nwzDFh5jp3h3EahSoZnxd4l9kKaygHSN9AqskE1"
    reason = flagged(rec("ok", prompt=f"My key is OPENAI_API_KEY={key} thanks"))["pii"]
    assert reason == "OpenAI API key sk-…skE1" and key not in reason
    reason = flagged(rec("Email jane.doe@example.com or call (555) 014-2368."))["pii"]
    assert "e-mail j…@example.com" in reason and "phone number …2368" in reason
    assert "jane.doe" not in reason
    reason = flagged(rec("Card 4111-1111-1111-1111 please"))["pii"]
    assert reason == "card number (Visa) …1111"
    assert "pii" not in flagged(rec("Card 4111-1111-1111-1112 please"))  # fails the Luhn check
    reason = flagged(rec('config = {"api_key": "a8Fk2LmQ9xZ7pR4tY6wE1"}'))["pii"]
    assert reason.startswith("secret in assignment") and "a8Fk2LmQ9xZ7pR4tY6wE1" not in reason


def test_mojibake_reason_shows_the_fix():
    reason = flagged(rec("At the cafÃ© we met."))["mojibake"]
    assert "cafÃ©" in reason and "café" in reason


def test_repetition_threshold_is_a_setting():
    text = "\n".join(f"Step {i}: Add {i} to the total and write the new total down." for i in range(1, 12))
    assert "repetition" not in flagged(rec(text))
    assert "repetition" in flagged(rec(text), HeuristicSettings(repetition_threshold=0.5))
    looped = rec("It is fine. " * 6 + "The answer is 4.")
    assert "repetition" in flagged(looped)
    assert "repetition" not in flagged(looped, HeuristicSettings(repetition_repeats=10))


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400), st.text(max_size=200))
def test_check_record_never_crashes(answer, prompt):
    out = check_record(rec(answer, prompt), ALL_ON)
    assert all(flag in FLAGS and isinstance(reason, str) and reason for flag, reason in out)
    assert len({flag for flag, _ in out}) == len(out)


# --------------------------------------------------------------------------------------
# scan_heuristics
# --------------------------------------------------------------------------------------


def test_scan_indexes_progress_and_cancel():
    records = [rec("Fine."), None, rec("N/A"), rec("I'm sorry, but I can't help with that.")]
    calls = []
    flags = scan_heuristics(records, progress=lambda d, t, m: calls.append((d, t)))
    assert flags == [Flag(2, "placeholder_answer", "answer is a placeholder: 'N/A'"),
                     Flag(3, "refusal", 'refusal/boilerplate phrase: "I\'m sorry, but I can\'t"')]
    assert calls and calls[-1] == (4, 4)
    assert count_flags(flags)["refusal"] == 1 and count_flags(flags)["pii"] == 0
    assert list(count_flags(flags)) == list(FLAGS)
    assert flags[0].to_dict() == {"index": 2, "flag": "placeholder_answer",
                                  "reason": "answer is a placeholder: 'N/A'"}
    with pytest.raises(Cancelled):
        scan_heuristics(records, cancel=lambda: True)
    assert scan_heuristics([rec("N/A")], HeuristicSettings(placeholder=False)) == []
    assert scan_heuristics(iter([rec("N/A")]))[0].index == 0  # any iterable


def test_scan_of_clean_records_flags_nothing():

    base = [rec("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
                "clips altogether in April and May.\n#### 72",
                "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
                "May. How many clips did Natalia sell altogether in April and May?"),
            rec("Here is a function:\n```python\ndef f(x):\n    return x * 2\n```\nIt doubles x.",
                "Write a Python function that doubles a number.")]
    records = base * 2500
    flags = scan_heuristics(records)  # (its speed: benchmarks/bench_scan.py, not a timed test)
    assert flags == []


# --------------------------------------------------------------------------------------
# The bundled sample and real data
# --------------------------------------------------------------------------------------

MANIFEST_FLAGS = {
    "whitespace_answers": "empty_answer", "placeholder_answers": "placeholder_answer",
    "truncated_answers": "truncated_answer", "refusals": "refusal", "pii": "pii", "mojibake": "mojibake",
    "repetition": "repetition", "image_reference": "unseen_media", "too_long": "too_long",
}


def test_sample_planted_defects_are_found_and_clean_records_stay_clean():
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    parsed = list(DatasetReader(str(SAMPLE)))
    assert len(parsed) == manifest["records"]
    flags = scan_heuristics([p.record for p in parsed])
    by_index: dict[int, set] = {}
    for f in flags:
        by_index.setdefault(f.index, set()).add(f.flag)
    planted = set()
    for key, flag in MANIFEST_FLAGS.items():
        for i in manifest[key]:
            planted.add(i)
            assert parsed[i].record is not None
            assert flag in by_index.get(i, set()), f"record {i} ({key}) lacks {flag}: {by_index.get(i)}"
    for i in manifest["empty_answers"]:  # rejected at load time: never reach the heuristics
        assert parsed[i].record is None and i not in by_index
    extra = {i: sorted(v) for i, v in by_index.items() if i not in planted}
    assert extra == {}, f"clean records flagged: {extra}"
    # Planted records carry only their own flag (the too-long times table is not 'repetition').
    assert by_index[64] == {"too_long"} and by_index[52] == {"repetition"}


def _scan(path: Path, settings: HeuristicSettings | None = None) -> tuple[list, list[Flag]]:
    records = [p.record for p in DatasetReader(str(path))]
    return records, scan_heuristics(records, settings)


def test_gsm8k_is_nearly_clean(realdata):
    records, flags = _scan(realdata / "gsm8k_train.jsonl", ALL_ON)
    assert len(records) == 7473
    assert len({f.index for f in flags}) <= 5, flags[:10]


def test_code_alpaca_code_does_not_trip_truncation_or_repetition(realdata):
    records, flags = _scan(realdata / "code_alpaca_2k.json")
    counts = count_flags(flags)
    assert counts["truncated_answer"] + counts["repetition"] <= 3, [f for f in flags if f.flag != "pii"]
    assert counts["unseen_media"] <= 3 and counts["refusal"] == 0
    assert len({f.index for f in flags}) <= 10


def test_glaive_refusals_are_caught(realdata):
    records, flags = _scan(realdata / "glaive_toolcall_en_demo.json")
    refusals = {f.index for f in flags if f.flag == "refusal"}
    assert 0 in refusals  # "I'm sorry, but as an AI, I don't have the capability to perform external tasks"
    assert len(refusals) >= 40
    for i in refusals:
        answer = records[i].answer_text.lower().replace("\u2019", "'")
        assert "sorry" in answer or "unable" in answer or "as an ai" in answer


def test_identity_template_placeholders(realdata):
    records, flags = _scan(realdata / "identity.json")
    templ = {f.index for f in flags if f.flag == "template_placeholder"}
    assert len(templ) >= 80
    assert all("{{" in records[i].text for i in templ)
