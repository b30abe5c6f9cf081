#!/usr/bin/env python3
"""Build ftcurate's second bundled sample: a help-desk router that a tiny model learns.

The MathBuddy sample (``scripts/make_sample.py``) is real tutoring text; the demo model
(2 layers, 140K parameters) cannot learn to do arithmetic from it in a short CPU run, so an
evaluation of it shows no task metric moving. This sample is a task with a fixed, checkable
answer format that the demo model does learn within a minute or two: route a customer
message to a team and say whether it is urgent, answering with one line of JSON::

    {"team": "shipping", "urgent": false}

Writes (paths relative to the repository root):

* ``resources/sample/helpdesk/helpdesk_train.jsonl`` - training records (OpenAI chat JSONL)
  with planted problems for the review to find: conflicting copies (the same message with
  the wrong team or urgency), exact duplicates, answers that are not JSON, an empty answer,
  off-topic records and two training records that copy held-out messages;
* ``resources/sample/helpdesk/helpdesk_test.jsonl`` - the held-out golden set;
* ``resources/sample/helpdesk/helpdesk_schema.json`` - the JSON schema of an answer
  (``ftcurate evaluate --json-schema``);
* ``tests/data/helpdesk_manifest.json`` - where every planted record is (0-based record
  index in the training file).

Every text is written for this project by this script (templates and word lists below);
no other data is used. Standard library only and deterministic: the same seed gives
byte-identical files. Run with ``python3 scripts/make_demo_sample.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 20250301
REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path("resources/sample/helpdesk")
TRAIN_OUT = OUT_DIR / "helpdesk_train.jsonl"
TEST_OUT = OUT_DIR / "helpdesk_test.jsonl"
SCHEMA_OUT = OUT_DIR / "helpdesk_schema.json"
MANIFEST_OUT = Path("tests/data/helpdesk_manifest.json")

N_CLEAN = 240  # clean training records
N_TEST = 60  # held-out records
N_CONFLICT = 60  # copies of clean records with a wrong answer (the raw data contradicts itself)
N_DUPLICATE = 8
N_NOT_JSON = 10  # answers in prose instead of JSON
N_OFF_TOPIC = 4
N_LEAK = 2  # training records that copy a held-out message

SYSTEM_PROMPT = ("Route this help-desk message. Reply with JSON: "
                 "{\"team\": billing|shipping|account|technical, \"urgent\": true|false}")

TEAMS = ("billing", "shipping", "account", "technical")

# What customers write about, per team: sentence templates whose slots ({product}, {amount},
# {place}, {feature}, {code}, {when}) are filled at random. The held-out messages use templates
# and products that no training message uses, so that no golden item restates a training one
# (the scan's leakage check stays quiet); the words that tell the teams apart (charge, invoice,
# refund / parcel, delivery, courier / password, log in, account / error, app, crash) recur.
TEMPLATES = {
    "billing": [
        "I was charged twice for the {product}.", "My invoice for the {product} says {amount}, not what I agreed.",
        "Please refund the {amount} I paid for the {product}.", "My card payment for the {product} was declined.",
        "The price of my {product} subscription went up to {amount} without notice.",
        "I cancelled the {product} but you still charged my card {amount}.",
        "Could you send me an invoice with our VAT number for the {product}?",
        "There is a charge of {amount} on my statement that I do not recognise.",
        "The discount code was not applied, so I paid {amount} for the {product}.",
        "Your billing page lists two payments for one {product}.",
        # held out: only in the golden set
        "Why was my credit card charged {amount} {when}?", "I want my money back for the {product}, the refund "
        "never came.", "The invoice total for the {product} is wrong.", "A payment of {amount} left my account "
        "twice.",
    ],
    "shipping": [
        "My {product} has not arrived yet.", "The tracking number for the {product} shows no movement.",
        "The courier left the {product} at the wrong address in {place}.",
        "The {product} arrived broken, the parcel was crushed.", "When will the {product} be delivered to {place}?",
        "Only half of my order was in the parcel, the {product} is missing.",
        "The delivery of the {product} is late by a week.", "The shipment with the {product} is stuck at customs.",
        "Can I change the delivery address for the {product} to {place}?",
        "The parcel service says the {product} was delivered, but nothing came.",
        # held out
        "I have been waiting {when} for the delivery of the {product}.", "The courier never showed up with the "
        "{product}.", "Where is my parcel with the {product}?", "The {product} was shipped to {place} by mistake.",
    ],
    "account": [
        "I cannot log in to my account {when}.", "The password reset email never arrives.",
        "Please change the email address on my account.", "My account was locked after too many login attempts.",
        "How do I delete my account and all my data?", "The two-factor code for my account is not accepted.",
        "Someone changed the password of my account.", "I want to merge my two accounts into one.",
        "The login page keeps asking for my password again.", "My account username was changed without my "
        "consent.",
        # held out
        "I forgot my password and the reset link has expired.", "I am locked out of my account {when}.",
        "Please close my account.", "The sign-in code never reaches my phone, so I cannot log in.",
    ],
    "technical": [
        "The app crashes when I open the {feature}.", "The {feature} shows error {code} since the update.",
        "The website is very slow when I load the {feature}.", "Sync between my phone and laptop stopped working.",
        "The export to PDF in the {feature} produces an empty file.", "The {feature} button does nothing in the "
        "app.", "After the update the {feature} screen is blank.", "The app freezes when I upload a photo to the "
        "{feature}.", "I get error {code} every time I save in the {feature}.", "The {feature} does not load on "
        "my tablet.",
        # held out
        "The app keeps crashing {when}.", "Error {code} appears when I open the {feature}.",
        "The {feature} page is broken after the last update.", "The app is stuck on the loading screen.",
    ],
}
HELD_OUT_TEMPLATES = 4  # the last four of each team: golden set only
PRODUCTS = ["wool blanket", "desk lamp", "coffee grinder", "rain jacket", "garden hose", "bike helmet",
            "yoga mat", "tea kettle", "phone case", "laptop stand", "camping stove", "office chair", "cookbook",
            "running shoes", "bath towel set", "wall clock", "travel mug", "hiking boots", "table fan",
            "picture frame", "board game", "water filter", "mixing bowl", "umbrella", "backpack", "toaster",
            "guitar strings", "winter gloves", "reading glasses", "flower pot"]
GOLDEN_PRODUCTS = ["ceramic vase", "baby monitor", "chess set", "sleeping bag", "air purifier", "fishing rod",
                   "paint brushes", "bread knife", "sun hat", "record player"]
AMOUNTS = ["$12.99", "$49", "$5.50", "$120", "$89.90", "$30", "$249", "$15"]
PLACES = ["Leeds", "Porto", "Lyon", "Graz", "Utrecht", "Aarhus", "Cork", "Turin"]
FEATURES = ["calendar", "reports page", "settings", "photo gallery", "invoice editor", "team chat", "map view",
            "search"]
CODES = ["500", "403", "E42", "0x1F", "502", "E7"]
WHEN = ["since Monday", "for two weeks", "since this morning", "since yesterday", "for a month", "again today"]
OPENINGS = ["Hi,", "Hello,", "Hello team,", "Good morning.", "Hey there,", "Dear support,", "Hi Acme,", "Hi again,",
            "Good evening,", ""]
URGENT = ["This is urgent.", "Please help as soon as possible!", "I need this fixed today.",
          "It is blocking my whole team.", "Urgent, please.", "We are losing customers because of this.",
          "I need an answer within the hour."]
CALM = ["No rush.", "Whenever you have time.", "Thanks in advance.", "Just letting you know.",
        "It can wait until next week.", "Not urgent at all.", ""]
CLOSINGS = ["Thanks, Maria", "Best, Tom", "Regards, Priya", "Cheers, Sam", "Kind regards, Jonas", "- Lea",
            "Thank you!", "Many thanks, Ola", "Best wishes, Ken", "Yours, Ines", ""]
OFF_TOPIC = [
    ("Write a short poem about autumn leaves.", "Red and gold drift down, the path is soft with them."),
    ("What is the capital of Portugal?", "Lisbon."),
    ("Tell me a joke about cats.", "Why did the cat sit on the computer? To keep an eye on the mouse."),
    ("Translate 'good night' into German.", "Gute Nacht."),
]


def answer(team: str, urgent: bool) -> str:
    return json.dumps({"team": team, "urgent": urgent})


def chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}


def message(rng: random.Random, team: str, urgent: bool, golden: bool = False) -> str:
    pool = TEMPLATES[team]
    template = rng.choice(pool[-HELD_OUT_TEMPLATES:] if golden else pool[:-HELD_OUT_TEMPLATES])
    issue = template.format(product=rng.choice(GOLDEN_PRODUCTS if golden else PRODUCTS), amount=rng.choice(AMOUNTS),
                            place=rng.choice(PLACES), feature=rng.choice(FEATURES), code=rng.choice(CODES),
                            when=rng.choice(WHEN))
    opening = rng.choice(OPENINGS)
    if opening.endswith(",") and not issue.startswith("I "):
        issue = issue[0].lower() + issue[1:]  # "Hi, the parcel..."
    parts = [opening, issue, rng.choice(URGENT) if urgent else rng.choice(CALM), rng.choice(CLOSINGS)]
    return " ".join(p for p in parts if p)


def prose(team: str, urgent: bool) -> str:
    return f"This looks like a {team} question{', and it is urgent' if urgent else ''}. I will pass it on."


def build(seed: int = SEED) -> tuple[list[dict], list[dict], dict]:
    rng = random.Random(seed)
    seen: set[str] = set()

    def fresh(team: str, urgent: bool, golden: bool = False) -> str:
        while True:
            text = message(rng, team, urgent, golden)
            if text not in seen:
                seen.add(text)
                return text

    def items(n: int, golden: bool = False) -> list[tuple[str, str, bool]]:
        out = []
        for i in range(n):
            team = TEAMS[i % len(TEAMS)]
            urgent = rng.random() < 0.4
            out.append((fresh(team, urgent, golden), team, urgent))
        rng.shuffle(out)
        return out

    test = items(N_TEST, golden=True)
    clean = items(N_CLEAN)
    records: list[tuple[dict, str, str]] = [(chat(u, answer(t, g)), "clean", "") for u, t, g in clean]
    # Conflicting copies: the same message, another team (or the urgency flipped). A model
    # trained on the raw data sees two answers to one question, a quarter of the time.
    for k, (u, t, g) in enumerate(rng.sample(clean, N_CONFLICT)):
        if k % 3 == 2:
            wrong_team, wrong_urgent, what = t, not g, f"urgent {not g} instead of {g}"
        else:
            wrong_team = TEAMS[(TEAMS.index(t) + 1 + k % 3) % len(TEAMS)]
            wrong_urgent, what = g, f"team {wrong_team} instead of {t}"
        records.append((chat(u, answer(wrong_team, wrong_urgent)), "conflict", what))
    for u, t, g in rng.sample(clean, N_DUPLICATE):
        records.append((chat(u, answer(t, g)), "duplicate", ""))
    for _ in range(N_NOT_JSON):
        team, urgent = rng.choice(TEAMS), rng.random() < 0.4
        records.append((chat(fresh(team, urgent), prose(team, urgent)), "not_json", ""))
    team = rng.choice(TEAMS)
    records.append((chat(fresh(team, False), ""), "empty_answer", ""))
    for q, a in OFF_TOPIC[:N_OFF_TOPIC]:
        records.append((chat(q, a), "off_topic", ""))
    for u, t, g in test[:N_LEAK]:
        records.append((chat(u, answer(t, g)), "leak", ""))
    rng.shuffle(records)
    manifest: dict = {"seed": seed, "train": str(TRAIN_OUT), "test": str(TEST_OUT), "planted": {}}
    for i, (_, kind, what) in enumerate(records):
        if kind != "clean":
            manifest["planted"].setdefault(kind, []).append({"index": i, **({"detail": what} if what else {})})
    manifest["counts"] = {"train": len(records), "test": len(test), "clean": N_CLEAN}
    return [r for r, _, _ in records], [chat(u, answer(t, g)) for u, t, g in test], manifest


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Help-desk routing answer",
    "type": "object",
    "properties": {"team": {"enum": list(TEAMS)}, "urgent": {"type": "boolean"}},
    "required": ["team", "urgent"],
    "additionalProperties": False,
}


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root to write into")
    args = p.parse_args(argv)
    train, test, manifest = build(args.seed)
    for rel, lines in ((TRAIN_OUT, [dumps(r) for r in train]), (TEST_OUT, [dumps(r) for r in test])):
        path = args.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.root / SCHEMA_OUT).write_text(json.dumps(SCHEMA, indent=2) + "\n", encoding="utf-8")
    (args.root / MANIFEST_OUT).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{len(train)} training and {len(test)} held-out records written to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
