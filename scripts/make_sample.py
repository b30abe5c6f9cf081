#!/usr/bin/env python3
"""Build ftcurate's bundled sample dataset and its answer key.

Writes three files (paths relative to the repository root):

* ``resources/sample/chat_train.jsonl``  - a "MathBuddy" grade-school math tutor
  training set in OpenAI chat fine-tuning JSONL, with planted problems (duplicates,
  near duplicates, conflicts, off-topic outliers, test-set leakage, bad answers, an
  over-long example and malformed lines) shuffled in among clean records;
* ``resources/sample/heldout_test.jsonl`` - a held-out "golden" test set built from
  GSM8K *test* items;
* ``tests/data/sample_manifest.json``    - where every planted item is, by 0-based
  record index (position among the non-blank lines) and 1-based physical line.

Sources: GSM8K (openai/grade-school-math, MIT licence) train and test JSONL files,
read from ``../shared/realdata`` relative to the repository root (override with
``--gsm8k-dir``), and text written for this project (everything in this script).
No other data is used.

Standard library only, and deterministic: the same inputs give byte-identical
outputs. Run with ``/usr/bin/env python3 scripts/make_sample.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import string
import sys
from pathlib import Path

SEED = 20240917
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GSM8K_DIR = REPO_ROOT.parent / "shared" / "realdata"

TRAIN_OUT = Path("resources/sample/chat_train.jsonl")
HELDOUT_OUT = Path("resources/sample/heldout_test.jsonl")
MANIFEST_OUT = Path("tests/data/sample_manifest.json")

SYSTEM_PROMPT = "You are MathBuddy, a patient tutor who explains grade-school math step by step."

N_CLEAN_GSM8K = 240  # clean training records built from GSM8K train items
N_SPARE_GSM8K = 20  # further GSM8K train questions used by the bad-answer records
N_HELDOUT = 60
N_NO_SYSTEM = 8  # clean records without a system message
N_FOLLOWUP = 18  # clean records with a second user/assistant turn
JACCARD_N = 5
NEAR_DUP_MIN = 0.8  # every planted near-duplicate pair must be above this
UNRELATED_MAX = 0.5  # no unplanned pair of records may reach this

INTROS = [
    "Let's work through this step by step.",
    "Great question! Let's break it down.",
    "Sure! Here's how to think about it.",
    "Let's solve this together, one step at a time.",
    "No problem. Let's figure it out step by step.",
    "Happy to help! Let's look at the numbers carefully.",
]
# The same intros with a one-word edit (used by near-duplicate variants).
INTRO_TWEAKS = {
    "Let's work through this step by step.": "Let's work through this together step by step.",
    "Great question! Let's break it down.": "Good question! Let's break it down.",
    "Sure! Here's how to think about it.": "Sure! Here's how to think about this.",
    "Let's solve this together, one step at a time.": "Let's solve this together, one small step at a time.",
    "No problem. Let's figure it out step by step.": "No problem. Let's work it out step by step.",
    "Happy to help! Let's look at the numbers carefully.": "Glad to help! Let's look at the numbers carefully.",
}

# Generic second turns for multi-turn records: (user, assistant template).
FOLLOWUPS = [
    ("Thanks! Can you remind me what the final answer was?",
     "Of course! The final answer is {final}. You did a great job working through it with me."),
    ("How can I check that my answer makes sense?",
     "A good way to check is to work backwards. Start from {final} and undo each step to see if "
     "you get back to the numbers in the problem. If everything matches, you can be confident "
     "that {final} is right."),
    ("What was the very first step again?",
     "The first step was this: {first} Once you have that, the rest of the problem follows."),
]

# Conversations that open with a greeting (each greeting used once, so no two
# records share a first user message).
GREETINGS = [
    ("Hi MathBuddy! I'm stuck on my homework. Can you help me?",
     "Of course! Send me the problem and we'll work through it together."),
    ("Hello! My teacher gave us a word problem and I don't get it.",
     "Hello! Word problems can feel tricky, but we can break them into small steps. What does the problem say?"),
    ("Good evening! I have one more problem left tonight.",
     "Good evening! Let's finish strong. What's the problem?"),
    ("Hi! Can you explain a problem slowly? I want to really understand it.",
     "Absolutely. We'll go one step at a time, and you can ask questions whenever you like. What's the problem?"),
    ("Hi there, I need help with a story problem for class tomorrow.",
     "Happy to help! Share the story problem and we'll figure it out together."),
    ("Hey MathBuddy, my little sister asked me this and I want to explain it right.",
     "That's really kind of you! Tell me the problem and I'll show you a clear way to explain it."),
]

# Word swaps for near-duplicate variants (regex, replacement; first match in the question).
SWAPS = [
    (r"\bbought\b", "purchased"), (r"\bbuys\b", "purchases"), (r"\bstore\b", "shop"),
    (r"\bfriends\b", "pals"), (r"\bmoney\b", "cash"), (r"\bwants to\b", "would like to"),
    (r"\beach (?=(day|week|month|year)\b)", "every "), (r"\blarge\b", "big"),
]

# Clean records written for this project: (user, assistant).
OWN_CLEAN = [
    ("What is 3/4 + 1/8? I never know what to do with different denominators.",
     "Great question! When the bottom numbers (the denominators) are different, we first rewrite the "
     "fractions so they match.\n\nThe denominators are 4 and 8. Since 4 x 2 = 8, we can turn 3/4 into "
     "eighths by multiplying the top and the bottom by 2: 3/4 = 6/8.\nNow both fractions are in eighths, "
     "so we add the tops: 6/8 + 1/8 = 7/8.\n\nThe answer is 7/8."),
    ("How do I round 4,678 to the nearest hundred?",
     "Let's do it together!\n\nThe hundreds digit in 4,678 is 6, so the number is between 4,600 and 4,700.\n"
     "To decide which one is closer, look at the digit just to the right of the hundreds place. That is "
     "the tens digit, 7.\nSince 7 is 5 or more, we round up to 4,700.\n\nThe answer is 4,700."),
    ("A rectangle is 5 units long and 3 units wide. What is its area, and what is its perimeter? I always mix them up.",
     "Lots of people mix these up, so you're in good company!\n\nArea is the space inside the shape. For a "
     "rectangle, multiply the length by the width: 5 x 3 = 15 square units.\nPerimeter is the distance all "
     "the way around the outside. Add up all four sides: 5 + 3 + 5 + 3 = 16 units.\nA handy memory trick: "
     "perimeter has the word \"rim\" in it, like the rim around the edge of a cup.\n\nThe answer is an area "
     "of 15 square units and a perimeter of 16 units."),
    ("Is 91 a prime number?",
     "Good thinking to check! A prime number has exactly two factors: 1 and itself.\n\n91 is odd, so 2 does "
     "not divide it. Its digits add up to 9 + 1 = 10, so 3 does not divide it either. It does not end in 0 "
     "or 5, so 5 is out too.\nNow try 7: 7 x 13 = 91. That means 91 has the factors 7 and 13, so it is not "
     "prime.\n\nThe answer is no, 91 is not a prime number."),
    ("What is 15% of 80?",
     "Let's break it into easy pieces.\n\n10% of 80 is 80 / 10 = 8.\n5% is half of 10%, so 5% of 80 is "
     "8 / 2 = 4.\n15% is 10% plus 5%, so 15% of 80 is 8 + 4 = 12.\n\nThe answer is 12."),
    ("How many minutes are in 2.5 hours?",
     "Sure! There are 60 minutes in 1 hour.\n\n2 hours is 2 x 60 = 120 minutes.\nHalf an hour is "
     "60 / 2 = 30 minutes.\nSo 2.5 hours is 120 + 30 = 150 minutes.\n\nThe answer is 150."),
    ("What is the mean of 4, 8, 6, 10 and 7?",
     "The mean is the average: add all the numbers, then divide by how many numbers there are.\n\nFirst add "
     "them: 4 + 8 + 6 + 10 + 7 = 35.\nThere are 5 numbers, so divide: 35 / 5 = 7.\n\nThe answer is 7."),
    ("Can you put 1/2, 2/5 and 3/4 in order from smallest to largest?",
     "Let's compare them with a common denominator. The smallest number that 2, 5 and 4 all divide into "
     "is 20.\n\n1/2 = 10/20.\n2/5 = 8/20.\n3/4 = 15/20.\nNow we can compare the tops: 8 is less than 10, "
     "and 10 is less than 15.\n\nThe answer is 2/5, 1/2, 3/4."),
    ("I always forget 7 x 8. Is there a trick to remember it?",
     "There is a fun one! Write the numbers 5, 6, 7, 8 in a row and read them as 56 = 7 x 8.\n\nYou can "
     "also build it from a fact you already know: 7 x 4 = 28, and 8 is double 4, so 7 x 8 = 28 + 28 = 56."
     "\n\nThe answer is 56."),
    ("How many edges does a cube have?",
     "Think of a dice or a sugar cube.\n\nThe top face is a square with 4 edges.\nThe bottom face is "
     "another square with 4 edges.\nThen 4 upright edges join the top corners to the bottom corners.\nSo "
     "the total is 4 + 4 + 4 = 12 edges.\n\nThe answer is 12."),
    ("What is 1,000 - 457? I keep getting confused with all the zeros.",
     "Subtracting from a number with lots of zeros can be tricky, so here's a neat shortcut: take 1 away "
     "from both numbers first. The difference stays the same!\n\n1,000 - 1 = 999 and 457 - 1 = 456.\nNow "
     "999 - 456 needs no borrowing: 9 - 6 = 3, 9 - 5 = 4 and 9 - 4 = 5, which gives 543.\n\nThe answer is 543."),
    ("What is 0.3 + 0.45?",
     "Line up the decimal points so the place values match. It helps to write 0.3 as 0.30.\n\nFor "
     "0.30 + 0.45, add the hundredths: 0 + 5 = 5. Then add the tenths: 3 + 4 = 7.\nThat gives 0.75.\n\n"
     "The answer is 0.75."),
]

# Clean records written for this project whose near-duplicate copy changes one
# number in the story. The number is extra information, so the answer stays right.
# (user template with {n}, assistant, n in the original, n in the copy)
OWN_NUMBER_NEAR = [
    ("Every morning Leo leaves home at {n} o'clock to walk to school. He reads 15 pages of his library "
     "book each day for 6 days. How many pages does Leo read in all?",
     "Let's find the numbers that matter. The time Leo leaves home does not change how many pages he "
     "reads, so we can set it aside.\n\nLeo reads 15 pages each day for 6 days, so we multiply: "
     "15 x 6 = 90 pages.\n\nThe answer is 90.",
     "7", "8"),
    ("Priya's aunt lives {n} miles away. For her birthday, her aunt mails her 3 packs of stickers with 24 "
     "stickers in each pack. Priya already had 20 stickers. How many stickers does Priya have now?",
     "Let's sort out what we need. How far away her aunt lives is extra information, so we won't use it."
     "\n\nFirst find the new stickers: 3 packs x 24 stickers = 72 stickers.\nThen add the ones Priya "
     "already had: 72 + 20 = 92 stickers.\n\nThe answer is 92.",
     "40", "65"),
]

# Hand-written rephrasings of GSM8K test questions (0-based line in test.jsonl):
# same problem and numbers, different wording.
REPHRASED = {
    3: ("James decides to run 3 sprints 3 times a week.",
        "Every week James goes out 3 times, and each time he runs 3 sprints. Every sprint is 60 meters "
        "long. What is the total distance in meters that James covers in one week?"),
    55: ("Jean has 30 lollipops.",
         "Jean starts out with 30 lollipops and eats 2 of them. She wants to put the lollipops that are "
         "left into bags, with 2 lollipops in every bag. How many bags will she be able to fill?"),
    83: ("Dan plants 3 rose bushes.",
         "There are 3 rose bushes in Dan's garden. On every bush there are 25 roses, and every single rose "
         "has 8 thorns. What is the number of thorns altogether?"),
    127: ("After transferring to a new school, Amy made 20 more friends than Lily.",
          "Lily made 50 friends when she moved to a new school, and Amy made 20 more friends than Lily "
          "did. What is the combined number of friends that Amy and Lily made?"),
    262: ("Maddison has 5 boxes with 50 marbles in each box.",
          "There are 50 marbles in each one of Maddison's 5 boxes. A friend gives her 20 more marbles. "
          "What is the total number of marbles Maddison has at this point?"),
    396: ("Jenny is dividing up a pizza with 12 slices.",
          "A pizza is cut into 12 slices. Jenny hands 1/3 of the pizza to Bill and 1/4 of it to Mark, "
          "and then she eats 2 slices herself. How many slices remain?"),
}

OUTLIERS = [
    ("Write a sonnet about the sea at night.",
     "The tide comes in beneath a silver moon,\nAnd whispers secrets to the sleeping shore;\nThe gulls have "
     "gone, the wind has changed its tune,\nAnd waves roll on as they have done before.\nThe harbor lights "
     "are trembling on the deep,\nLike scattered coins upon a velvet gown;\nThe fishing boats are rocking "
     "half asleep,\nWhile lanterns glimmer in the quiet town.\nO restless sea, you keep no hour or day,\nYou "
     "carve the cliffs with patience, grain by grain;\nYou take the castles children build in play\nAnd "
     "smooth the sand to build them once again.\nSo let me rest where salt and starlight meet,\nAnd hear "
     "your ancient heartbeat at my feet."),
    ("Can you write a Python function that checks whether a string is a palindrome, ignoring punctuation and case?",
     "Here is a compact version:\n\n```python\nimport string\n\n\ndef is_palindrome(text: str) -> bool:\n"
     "    \"\"\"Return True if text reads the same forwards and backwards.\"\"\"\n"
     "    cleaned = [ch.lower() for ch in text if ch.isalnum()]\n    return cleaned == cleaned[::-1]\n\n\n"
     "if __name__ == \"__main__\":\n    print(is_palindrome(\"A man, a plan, a canal: Panama\"))  # True\n"
     "    print(is_palindrome(\"Hello, world\"))  # False\n```\n\nThe list comprehension keeps only letters "
     "and digits and lowercases them, and the slice `[::-1]` reverses the list for the comparison."),
    ("Give me a simple recipe for banana bread.",
     "Banana bread (one 9x5 inch loaf)\n\nIngredients:\n- 3 ripe bananas, mashed\n- 1/3 cup melted butter\n"
     "- 3/4 cup brown sugar\n- 1 egg, beaten\n- 1 teaspoon vanilla extract\n- 1 teaspoon baking soda\n"
     "- a pinch of salt\n- 1 1/2 cups all-purpose flour\n\nMethod:\n1. Preheat the oven to 350 F (175 C) "
     "and butter a loaf pan.\n2. Stir the melted butter into the mashed bananas.\n3. Mix in the sugar, egg "
     "and vanilla.\n4. Sprinkle the baking soda and salt over the mixture, then fold in the flour until "
     "just combined.\n5. Pour the batter into the pan and bake for 55 to 65 minutes, until a skewer comes "
     "out clean.\n6. Cool in the pan for 10 minutes, then turn out onto a rack. Walnuts or chocolate chips "
     "are a nice addition."),
    ("My landlord in California kept my whole security deposit because of normal wear on the carpet. Is that allowed?",
     "In general, no. Under California Civil Code section 1950.5, a landlord may deduct from a security "
     "deposit only for unpaid rent, for cleaning needed to return the unit to the level of cleanliness it "
     "had when you moved in, and for repairing damage beyond ordinary wear and tear. Carpet that is worn "
     "from normal use usually counts as ordinary wear and tear. Within 21 days after you move out, the "
     "landlord must return the deposit or send an itemized statement of deductions, with receipts for "
     "larger repairs. If the landlord keeps the deposit in bad faith, a court can award up to twice the "
     "deposit as a penalty. A common first step is a written demand letter, and small claims court handles "
     "these disputes. This is general information rather than legal advice; a local tenant rights "
     "organization can help with your specific situation."),
    ("Give me a long list of French kitchen vocabulary with the English translations.",
     "Here is a list of common French kitchen words:\n\nla cuisine - the kitchen\nla cuillère - the spoon\n"
     "la fourchette - the fork\nle couteau - the knife\nl'assiette - the plate\nle bol - the bowl\nle verre - "
     "the glass\nla tasse - the cup\nla casserole - the saucepan\nla poêle - the frying pan\nle four - the "
     "oven\nle micro-ondes - the microwave\nle réfrigérateur - the refrigerator\nle congélateur - the "
     "freezer\nl'évier - the sink\nle robinet - the tap\nle lave-vaisselle - the dishwasher\nla planche à "
     "découper - the cutting board\nle fouet - the whisk\nla passoire - the colander\nle tire-bouchon - the "
     "corkscrew\nl'ouvre-boîte - the can opener\nla spatule - the spatula\nla louche - the ladle\nle "
     "rouleau à pâtisserie - the rolling pin\nle grille-pain - the toaster\nla bouilloire - the kettle\nle "
     "placard - the cupboard\nle tablier - the apron\nla nappe - the tablecloth\nla serviette - the napkin\n"
     "le sel - the salt\nle poivre - the pepper\nle beurre - the butter\nla farine - the flour\nle sucre - "
     "the sugar\nl'huile - the oil\nle vinaigre - the vinegar\nl'œuf - the egg\nle pain - the bread\nle "
     "fromage - the cheese\nla recette - the recipe\n\nBon appétit !"),
    ("Write a SQL query that returns the top 5 customers by total order value, using tables customers(id, name) and orders(id, customer_id, amount, created_at), counting only orders from 2023.",
     "```sql\nSELECT c.id,\n       c.name,\n       SUM(o.amount) AS total_value\nFROM customers AS c\n"
     "JOIN orders AS o ON o.customer_id = c.id\nWHERE o.created_at >= DATE '2023-01-01'\n  AND o.created_at "
     "< DATE '2024-01-01'\nGROUP BY c.id, c.name\nORDER BY total_value DESC\nLIMIT 5;\n```\n\nThe half-open "
     "date range keeps the filter index-friendly and includes every timestamp on 31 December 2023. On SQL "
     "Server, replace `LIMIT 5` with `SELECT TOP 5`."),
    ("How often should I change the oil in my car, and what happens if I wait too long?",
     "Most modern cars using synthetic oil need an oil change every 7,500 to 10,000 miles, or about once "
     "a year, while older cars on conventional oil are often due every 3,000 to 5,000 miles. The owner's "
     "manual gives the exact interval, and many cars show a reminder on the dashboard. If you wait too "
     "long, the oil breaks down and collects dirt, so it lubricates and cools the engine less well. That "
     "speeds up wear on the bearings, camshaft and piston rings, can cause sludge to build up, and in "
     "extreme cases leads to the engine seizing. Checking the dipstick once a month is a cheap habit that "
     "catches leaks early."),
    ("How do I set up nginx as a reverse proxy for a Node.js app listening on port 3000?",
     "Create a server block, for example /etc/nginx/sites-available/myapp:\n\n```nginx\nserver {\n    listen "
     "80;\n    server_name example.com;\n\n    location / {\n        proxy_pass http://127.0.0.1:3000;\n"
     "        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        "
     "proxy_set_header Connection \"upgrade\";\n        proxy_set_header Host $host;\n        "
     "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }\n}\n```\n\nLink it into "
     "sites-enabled, run `nginx -t` to test the configuration, and reload nginx with `systemctl reload "
     "nginx`. The Upgrade and Connection headers keep WebSocket connections working."),
]

REFUSALS = [
    "As an AI language model, I cannot complete homework assignments for students. Please ask your teacher for help.",
    "I'm sorry, but as an AI assistant I am unable to help with this request.",
]
PLACEHOLDERS = ["N/A", "<noinput>", "TODO"]
WHITESPACE_ANSWERS = ["   ", "\n  \n"]
REPEATED_SENTENCE = "Remember to add the numbers carefully."

MOJIBAKE_SOURCE = (
    "At the café next to our school, a hot chocolate costs $3 and a muffin costs $2. Maya doesn’t want a "
    "muffin, but she buys 4 hot chocolates for her friends. How much does she spend?",
    "Let’s work it out! Maya doesn’t buy any muffins, so we only count the hot chocolates from the café."
    "\n\n4 hot chocolates x $3 = $12.\n\nThe answer is 12.",
)

IMAGE_RECORD = (
    "Can you help me with question 4 on my geometry worksheet? It asks for the perimeter of the rectangle.",
    "Sure! As shown in the image below, the rectangle is 8 cm long and 5 cm wide.\n\n"
    "![rectangle for question 4](https://example.com/worksheets/geometry-q4.png)\n\n"
    "The perimeter is the distance all the way around: 8 + 5 + 8 + 5 = 26 cm.\n\nThe answer is 26.",
)

# Text that clean records must not contain, so that scanners find only what was planted.
FORBIDDEN = re.compile(
    r"@|https?:|www\.|sk-|\bTODO\b|N/A|noinput|\bimage|\bpicture|diagram|shown|\bbelow\b|sorry|cannot|"
    r"can't|unable|as an ai|\d{3}-\d{4}|\d{7,}",
    re.IGNORECASE,
)


# ----------------------------------------------------------------------------------------------
# helpers


def shingles(text: str, n: int = JACCARD_N) -> set:
    """Word n-gram set of lower-cased, whitespace-split text."""
    toks = text.lower().split()
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def record_text(rec: dict) -> str:
    """All message text, one turn a line (what ftcurate's Record.text gives)."""
    return "\n".join((m.get("content") or "") for m in rec["messages"])


def norm_ws(s: str) -> str:
    return " ".join(s.split())


def numbers_of(q: str) -> tuple:
    return tuple(sorted(re.findall(r"\d+(?:\.\d+)?", q.replace(",", ""))))


def strip_calc(s: str) -> str:
    return re.sub(r"<<[^>]*>>", "", s)


def parse_gsm8k(item: dict) -> dict | None:
    """Question, cleaned solution steps and final answer, or None if unsuitable."""
    q, a = item["question"], item["answer"]
    if not (q.isascii() and a.isascii()):
        return None
    if not 80 <= len(q) <= 320:
        return None
    lines = a.split("\n")
    if not lines[-1].startswith("#### "):
        return None
    final = lines[-1][5:].strip()
    if not re.fullmatch(r"\d+", final):
        return None
    steps = []
    for line in lines[:-1]:
        s = re.sub(r"\s+", " ", strip_calc(line)).strip()
        if not s:
            continue
        if "<<" in s or ">>" in s or len(s) > 220:
            return None
        if s[-1] not in ".!?":
            s += "."
        steps.append(s)
    if not 2 <= len(steps) <= 5:
        return None
    if FORBIDDEN.search(q) or any(FORBIDDEN.search(s) for s in steps):
        return None
    return {"question": q, "steps": steps, "final": final}


def solution(steps: list[str], final: str, intro: str, numbered: bool = False) -> str:
    if numbered:
        body = "\n".join(f"Step {k}: {s}" for k, s in enumerate(steps, 1))
    else:
        body = "\n".join(steps)
    return f"{intro}\n\n{body}\n\nThe answer is {final}."


def chat(user: str, assistant: str, system: bool = True) -> dict:
    msgs = []
    if system:
        msgs.append({"role": "system", "content": SYSTEM_PROMPT})
    msgs.append({"role": "user", "content": user})
    msgs.append({"role": "assistant", "content": assistant})
    return {"messages": msgs}


def first_user_idx(rec: dict) -> int:
    """Position of the user turn that holds the problem (after a greeting, if any)."""
    users = [k for k, m in enumerate(rec["messages"]) if m["role"] == "user"]
    return users[1] if rec.get("_greeting") else users[0]


def swap_word(text: str) -> str | None:
    """Replace the first swappable word of text with a synonym."""
    for pattern, new in SWAPS:
        m = re.search(pattern, text)
        if m:
            return text[:m.start()] + new + text[m.end():]
    return None


def typo(text: str) -> str | None:
    """Swap two letters in the middle of the first long word (a realistic typo)."""
    for m in re.finditer(r"\b[a-z]{7,}\b", text):
        w = m.group()
        k = len(w) // 2
        if w[k] == w[k - 1]:
            continue
        return text[:m.start()] + w[:k - 1] + w[k] + w[k - 1] + w[k + 1:] + text[m.end():]
    return None


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def mojibake(s: str) -> str:
    """UTF-8 text wrongly decoded as Windows-1252 ("café" -> "cafÃ©", "don’t" -> "donâ€™t")."""
    return s.encode("utf-8").decode("cp1252")


# ----------------------------------------------------------------------------------------------
# build


def build(gsm8k_dir: Path) -> tuple[list[str], list[str], dict]:
    rng = random.Random(SEED)
    train_raw = [json.loads(l) for l in (gsm8k_dir / "gsm8k_train.jsonl").read_text("utf-8").splitlines() if l.strip()]
    test_raw = [json.loads(l) for l in (gsm8k_dir / "gsm8k_test.jsonl").read_text("utf-8").splitlines() if l.strip()]

    # -- held-out test set: the rephrase targets plus a seeded sample of suitable test items
    for ti, (prefix, _) in REPHRASED.items():
        assert test_raw[ti]["question"].startswith(prefix), (ti, test_raw[ti]["question"])
    test_ok = [(i, p) for i, p in ((i, parse_gsm8k(it)) for i, it in enumerate(test_raw)) if p]
    test_ok_idx = {i for i, _ in test_ok}
    assert all(ti in test_ok_idx for ti in REPHRASED)
    chosen: list[tuple[int, dict]] = [(i, p) for i, p in test_ok if i in REPHRASED]
    taken_sh = [shingles(p["question"]) for _, p in chosen]
    taken_nums = {numbers_of(p["question"]) for _, p in chosen}
    others = [(i, p) for i, p in test_ok if i not in REPHRASED]
    rng.shuffle(others)

    def fresh(p: dict, against: list) -> bool:
        nums = numbers_of(p["question"])
        if len(nums) >= 2 and nums in taken_nums:
            return False
        sh = shingles(p["question"])
        return all(jaccard(sh, o) < 0.25 for o in against)

    for i, p in others:
        if len(chosen) == N_HELDOUT:
            break
        if fresh(p, taken_sh):
            chosen.append((i, p))
            taken_sh.append(shingles(p["question"]))
            taken_nums.add(numbers_of(p["question"]))
    assert len(chosen) == N_HELDOUT
    rephrase_targets = [i for i, _ in chosen if i in REPHRASED]
    exact_leak_targets = [i for i, _ in chosen if i not in REPHRASED][:6]
    rng.shuffle(chosen)
    heldout = [chat(p["question"], solution(p["steps"], p["final"], rng.choice(INTROS))) for _, p in chosen]
    heldout_pos = {ti: k for k, (ti, _) in enumerate(chosen)}
    heldout_parsed = {ti: p for ti, p in chosen}

    # -- GSM8K train items for the training set, unlike each other and the held-out set
    train_ok = [p for p in (parse_gsm8k(it) for it in train_raw) if p]
    rng.shuffle(train_ok)
    pool: list[dict] = []
    for p in train_ok:
        if len(pool) == N_CLEAN_GSM8K + N_SPARE_GSM8K:
            break
        if fresh(p, taken_sh):
            pool.append(p)
            taken_sh.append(shingles(p["question"]))
            taken_nums.add(numbers_of(p["question"]))
    assert len(pool) == N_CLEAN_GSM8K + N_SPARE_GSM8K
    clean_src, spare = pool[:N_CLEAN_GSM8K], pool[N_CLEAN_GSM8K:]

    # -- clean records
    clean: list[dict] = []
    for p in clean_src:
        rec = chat(p["question"], solution(p["steps"], p["final"], rng.choice(INTROS), numbered=rng.random() < 0.25))
        rec["_src"] = p
        clean.append(rec)
    order = list(range(len(clean)))
    rng.shuffle(order)
    no_system = order[:N_NO_SYSTEM]
    followup = order[N_NO_SYSTEM:N_NO_SYSTEM + N_FOLLOWUP]
    greeting = order[N_NO_SYSTEM + N_FOLLOWUP:N_NO_SYSTEM + N_FOLLOWUP + len(GREETINGS)]
    for k in no_system:
        clean[k]["messages"] = [m for m in clean[k]["messages"] if m["role"] != "system"]
    for n, k in enumerate(followup):
        p = clean[k]["_src"]
        user, tmpl = FOLLOWUPS[n % len(FOLLOWUPS)]
        clean[k]["messages"] += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": tmpl.format(final=p["final"], first=p["steps"][0])},
        ]
    for n, k in enumerate(greeting):
        hello, reply = GREETINGS[n]
        msgs = clean[k]["messages"]
        head = [m for m in msgs if m["role"] == "system"]
        rest = [m for m in msgs if m["role"] != "system"]
        clean[k]["messages"] = head + [{"role": "user", "content": hello}, {"role": "assistant", "content": reply}] + rest
        clean[k]["_greeting"] = True
    multi_turn_ids = {id(clean[k]) for k in followup + greeting}

    own = [chat(u, a) for u, a in OWN_CLEAN]
    own_near = [chat(u.format(n=n1), a) for u, a, n1, _ in OWN_NUMBER_NEAR]

    items: list[dict] = []  # {"rec": dict | None, "raw": str | None, "cat": str, "group": ..., "detail": str}

    def add(rec=None, raw=None, cat="clean", group=None, detail=""):
        it = {"rec": rec, "raw": raw, "cat": cat, "group": group, "detail": detail}
        items.append(it)
        return it

    clean_items = [add(r) for r in clean] + [add(r) for r in own]
    own_near_items = [add(r) for r in own_near]

    # planted items take their bases from distinct clean GSM8K records
    base_order = list(range(len(clean)))
    rng.shuffle(base_order)
    used_bases: set[int] = set()

    def take_base(pred=lambda rec: True) -> int:
        for k in base_order:
            if k not in used_bases and pred(clean[k]):
                used_bases.add(k)
                return k
        raise RuntimeError("ran out of base records")

    single_turn = lambda rec: id(rec) not in multi_turn_ids and rec["messages"][0]["role"] == "system"

    # exact duplicates: 8 records, 3 of them present three times, 5 twice
    for g in range(8):
        k = take_base()
        base = clean_items[k]
        base["group"] = ("exact", g)
        for _ in range(2 if g < 3 else 1):
            add(copy.deepcopy(clean[k]), cat="exact_copy", group=("exact", g))

    # normalised duplicates: equal once whitespace is collapsed and trimmed
    for g in range(3):
        k = take_base(single_turn)
        clean_items[k]["group"] = ("norm", g)
        rec = copy.deepcopy(clean[k])
        u = first_user_idx(rec)
        a = len(rec["messages"]) - 1
        if g == 0:
            rec["messages"][u]["content"] = re.sub(r"([.?!,]) (?=\S)", r"\1   ", rec["messages"][u]["content"], count=2)
        elif g == 1:
            rec["messages"][u]["content"] += "\n"
            rec["messages"][a]["content"] += "\n"
        else:
            rec["messages"][u]["content"] = "  " + rec["messages"][u]["content"].replace(" ", "  ", 1) + " "
        assert record_text(rec) != record_text(clean[k])
        assert [norm_ws(m["content"]) for m in rec["messages"]] == [norm_ws(m["content"]) for m in clean[k]["messages"]]
        add(rec, cat="norm_copy", group=("norm", g), detail=["extra spaces", "trailing newline", "leading/trailing spaces"][g])

    # near duplicates: 8 GSM8K records with one or two words edited, plus the 2 own
    # records with a changed (irrelevant) number in the story
    near_pairs: list[tuple[dict, dict, str]] = []
    kinds = ["one word swapped for a synonym in the question", "typo in the question and intro edited",
             "typo and a synonym in the question"]
    while len(near_pairs) < 8:
        kind = len(near_pairs) % 3
        k = take_base()
        rec = copy.deepcopy(clean[k])
        u = first_user_idx(rec)
        q = rec["messages"][u]["content"]
        q = swap_word(q) if kind == 0 else typo(q)
        if q and kind == 2:
            q = swap_word(q)
        if not q:
            continue
        rec["messages"][u]["content"] = q
        if kind == 1:
            sol = next(m for m in rec["messages"] if m["role"] == "assistant" and m["content"].endswith(f"The answer is {clean[k]['_src']['final']}."))
            intro = sol["content"].split("\n\n", 1)[0]
            sol["content"] = INTRO_TWEAKS[intro] + sol["content"][len(intro):]
        j = jaccard(shingles(record_text(rec)), shingles(record_text(clean[k])))
        if j <= NEAR_DUP_MIN + 0.01:
            continue  # too short for a small edit to stay similar; try another record
        clean_items[k]["group"] = ("near", len(near_pairs))
        near_pairs.append((clean_items[k], add(rec, cat="near_copy", group=("near", len(near_pairs)), detail=kinds[kind]), kinds[kind]))
    for (u_t, a_t, n1, n2), base_item in zip(OWN_NUMBER_NEAR, own_near_items):
        g = len(near_pairs)
        base_item["group"] = ("near", g)
        near_pairs.append((base_item, add(chat(u_t.format(n=n2), a_t), cat="near_copy", group=("near", g),
                                          detail=f"number in the story changed ({n1} -> {n2})"), "number changed"))

    # conflicting examples: same prompt, a different (wrong) answer
    for g in range(3):
        k = take_base(single_turn)
        clean_items[k]["group"] = ("conflict", g)
        p = clean[k]["_src"]
        wrong = str(int(p["final"]) * 2) if g == 2 else str(int(p["final"]) + rng.choice([3, 5, 10, 12]))
        rec = copy.deepcopy(clean[k])
        rec["messages"][-1]["content"] = f"{rng.choice(INTROS)}\n\n{p['steps'][0]}\nAfter that I get {wrong}.\n\nThe answer is {wrong}."
        rec.pop("_src", None)
        add(rec, cat="conflict_copy", group=("conflict", g), detail=f"answer {wrong} instead of {p['final']}")

    # off-topic outliers
    for n, (u, a) in enumerate(OUTLIERS):
        add(chat(u, a, system=n not in (2, 6)), cat="outlier", detail=u[:40])

    # leakage from the held-out set
    for n, ti in enumerate(exact_leak_targets):
        p = heldout_parsed[ti]
        if n == 0:
            rec = copy.deepcopy(heldout[heldout_pos[ti]])
            detail = "identical to the held-out record"
        elif n < 3:
            rec = chat(p["question"], solution(p["steps"], p["final"], "Here is a worked solution.", numbered=True))
            detail = "same question, reworded answer"
        else:
            rec = chat(p["question"], f"{p['steps'][-1]}\n\nThe answer is {p['final']}.")
            detail = "same question, shorter answer"
        add(rec, cat="leak_exact", group=heldout_pos[ti], detail=detail)
    for ti in sorted(REPHRASED):
        p = heldout_parsed[ti]
        add(chat(REPHRASED[ti][1], solution(p["steps"], p["final"], rng.choice(INTROS))),
            cat="leak_rephrased", group=heldout_pos[ti], detail="question reworded by hand, same numbers")

    # answer problems (questions from spare GSM8K train items)
    sp = iter(spare)
    for a in ["", ""]:
        add(chat(next(sp)["question"], a), cat="empty_answer")
    for a in WHITESPACE_ANSWERS:
        add(chat(next(sp)["question"], a), cat="whitespace_answer", detail=repr(a))
    for a in PLACEHOLDERS:
        add(chat(next(sp)["question"], a), cat="placeholder_answer", detail=a)
    while sum(1 for it in items if it["cat"] == "truncated_answer") < 2:
        p = next(sp)
        if len(p["steps"]) < 2 or len(p["steps"][1].split()) < 8:
            continue
        words = p["steps"][1].split()
        cut = len(words) // 2 + 1
        while cut > 1 and not re.fullmatch(r"[A-Za-z]+", words[cut - 1]):
            cut -= 1
        partial = " ".join(words[:cut])
        add(chat(p["question"], f"{rng.choice(INTROS)}\n\n{p['steps'][0]}\n{partial}"), cat="truncated_answer",
            detail=f"ends with '{words[cut - 1]}'")
    for a in REFUSALS:
        add(chat(next(sp)["question"], a), cat="refusal", detail=a[:30])
    p = next(sp)
    add(chat(f"Please send the answer to my mom at jane.doe@example.com when we're done. {p['question']}",
             f"{solution(p['steps'], p['final'], rng.choice(INTROS))}\n\nIf she has any questions, she can call "
             f"the homework hotline at (555) 014-2368."),
        cat="pii", detail="email address and phone number")
    key_rng = random.Random(SEED + 1)
    api_key = "sk-" + "".join(key_rng.choice(string.ascii_letters + string.digits) for _ in range(40))
    p = next(sp)
    add(chat(f"My brother set up my homework app with OPENAI_API_KEY={api_key} so I hope that works. "
             f"Here's my question: {p['question']}",
             solution(p["steps"], p["final"], rng.choice(INTROS))),
        cat="pii", detail="API key")
    add(chat(mojibake(MOJIBAKE_SOURCE[0]), mojibake(MOJIBAKE_SOURCE[1])), cat="mojibake", detail="UTF-8 read as cp1252")
    p = next(sp)
    add(chat(p["question"], " ".join([REPEATED_SENTENCE] * 15) + f"\n\nThe answer is {p['final']}."),
        cat="repetition", detail="one sentence repeated 15 times")
    add(chat(*IMAGE_RECORD), cat="image_reference", detail="image the model cannot see, and a link")

    # a very long answer
    table = []
    for x in range(1, 21):
        table.append(f"The {x} times table:")
        for y in range(1, 21):
            table.append(f"{x} x {y} = {x * y}, because {x} groups of {y} make {x * y} altogether, "
                         f"and {y} groups of {x} make the same {x * y}.")
        table.append("")
    long_answer = ("Of course! Here is every multiplication fact from 1 x 1 to 20 x 20, worked out one times "
                   "table at a time.\n\n" + "\n".join(table) + "\nThat is the whole table. The answer is 400 "
                   "facts in all.")
    assert len(long_answer.split()) > 5000
    add(chat("Can you write out every multiplication fact from 1 x 1 up to 20 x 20 and explain each one?",
             long_answer), cat="too_long", detail=f"{len(long_answer.split())} words in the answer")

    # malformed lines
    add(raw='{"messages": [{"role": "system", "content": "' + SYSTEM_PROMPT + '"}, {"role": "user", "content": '
            '"What is 9 times 6?"}, {"role": "assistant", "content": "9 times 6 is 54. The answ',
        cat="malformed", detail="invalid_json")
    add(raw=dumps([{"role": "user", "content": "What is 12 divided by 4?"},
                   {"role": "assistant", "content": "12 divided by 4 is 3. The answer is 3."}]),
        cat="malformed", detail="data_type")
    add(raw=dumps({"msgs": [{"role": "system", "content": SYSTEM_PROMPT},
                            {"role": "user", "content": "How many sides does a pentagon have?"},
                            {"role": "assistant", "content": "A pentagon has 5 sides. The answer is 5."}]}),
        cat="malformed", detail="missing_messages_list")
    add(raw=dumps({"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                {"role": "user", "content": "What is half of 30?"},
                                {"role": "robot", "content": "Half of 30 is 15. The answer is 15."}]}),
        cat="malformed", detail="unrecognized_role")

    # -- shuffle and lay out the file
    rng.shuffle(items)
    lines: list[str] = []
    for it in items:
        if it["rec"] is not None:
            rec = {"messages": it["rec"]["messages"]}
            it["raw"] = dumps(rec)
            it["clean_rec"] = rec
        lines.append(it["raw"])
        assert "\n" not in it["raw"]
    blank_after = len(items) // 2  # one blank line after this many records
    for idx, it in enumerate(items):
        it["index"] = idx
        it["line"] = idx + 1 if idx < blank_after else idx + 2
    physical = lines[:blank_after] + [""] + lines[blank_after:]

    # -- manifest
    def idx_of(cat):
        return sorted(it["index"] for it in items if it["cat"] == cat)

    def groups(kind):
        out = {}
        for it in items:
            if it["group"] is not None and isinstance(it["group"], tuple) and it["group"][0] == kind:
                out.setdefault(it["group"][1], []).append(it["index"])
        return sorted(sorted(v) for v in out.values())

    shs = {it["index"]: shingles(record_text(it["clean_rec"])) for it in items if it["rec"] is not None}
    near = []
    for g in groups("near"):
        i, j = g
        near.append([i, j, round(jaccard(shs[i], shs[j]), 4)])
        assert near[-1][2] > NEAR_DUP_MIN, near[-1]
    conflicts = groups("conflict")
    conflict_j = [[i, j, round(jaccard(shs[i], shs[j]), 4)] for i, j in conflicts]
    exact = groups("exact")
    normg = groups("norm")

    # every pair of records at or above UNRELATED_MAX must be a planted relation
    related = set()
    for g in exact + normg + [[i, j] for i, j, _ in near] + conflicts:
        for a in g:
            for b in g:
                if a < b:
                    related.add((a, b))
    keys = sorted(shs)
    max_unrelated = (0.0, None)
    for x, a in enumerate(keys):
        for b in keys[x + 1:]:
            j = jaccard(shs[a], shs[b])
            if (a, b) in related:
                continue
            assert j < UNRELATED_MAX, (a, b, j)
            if j > max_unrelated[0]:
                max_unrelated = (j, [a, b])

    def leak(cat):
        return sorted([it["index"], it["group"]] for it in items if it["cat"] == cat)

    malformed = [{"line": it["line"], "index": it["index"], "kind": it["detail"]}
                 for it in sorted(items, key=lambda it: it["index"]) if it["cat"] == "malformed"]
    label = {"exact": "exact_duplicate", "norm": "normalised_duplicate", "near": "near_duplicate",
             "conflict": "conflicting"}
    # "group" in the planted list is the position of the item's group in the list above
    group_pos = {i: g for lists in (exact, normg, [p[:2] for p in near], conflicts)
                 for g, grp in enumerate(lists) for i in grp}
    planted = []
    for it in sorted(items, key=lambda it: it["index"]):
        cat = it["cat"]
        if cat == "clean" and it["group"] is None:
            continue
        if isinstance(it["group"], tuple):
            role = "copy" if cat.endswith("_copy") else "original"
            planted.append({"index": it["index"], "line": it["line"], "category": label[it["group"][0]],
                            "group": group_pos[it["index"]], "role": role, "detail": it["detail"]})
        else:
            e = {"index": it["index"], "line": it["line"], "category": cat, "detail": it["detail"]}
            if cat.startswith("leak"):
                e["heldout_index"] = it["group"]
            planted.append(e)

    recs_ok = [it for it in items if it["rec"] is not None]
    manifest = {
        "description": "Answer key for resources/sample/chat_train.jsonl, generated by scripts/make_sample.py.",
        "notes": {
            "index": "0-based position among the non-blank lines of chat_train.jsonl (malformed lines count)",
            "line": "1-based physical line number in chat_train.jsonl (the blank line counts)",
            "heldout_index": "0-based line of resources/sample/heldout_test.jsonl",
            "jaccard5": "Jaccard similarity of the sets of word 5-grams of the record text (all message "
                        "contents joined with newlines, lower-cased, split on whitespace)",
            "exact_duplicate_groups": "groups of byte-identical records (original first)",
            "normalised_duplicate_groups": "groups equal only after collapsing/trimming whitespace in every "
                                           "message (not byte-identical)",
            "conflicting_pairs": "same system and user messages, different assistant answer [i, j, jaccard5]",
            "sources": "GSM8K train/test (openai/grade-school-math, MIT) and text written for ftcurate",
        },
        "seed": SEED,
        "system_prompt": SYSTEM_PROMPT,
        "records": len(items),
        "physical_lines": len(physical),
        "blank_lines": [blank_after + 1],
        "valid_records": len(recs_ok),
        "heldout_records": len(heldout),
        "exact_duplicate_groups": exact,
        "normalised_duplicate_groups": normg,
        "near_duplicate_pairs": near,
        "conflicting_pairs": conflict_j,
        "outliers": idx_of("outlier"),
        "leak_exact": leak("leak_exact"),
        "leak_rephrased": leak("leak_rephrased"),
        "empty_answers": idx_of("empty_answer"),
        "whitespace_answers": idx_of("whitespace_answer"),
        "placeholder_answers": idx_of("placeholder_answer"),
        "truncated_answers": idx_of("truncated_answer"),
        "refusals": idx_of("refusal"),
        "pii": idx_of("pii"),
        "mojibake": idx_of("mojibake"),
        "repetition": idx_of("repetition"),
        "image_reference": idx_of("image_reference"),
        "too_long": idx_of("too_long"),
        "malformed": malformed,
        "no_system_message": sorted(it["index"] for it in recs_ok if it["clean_rec"]["messages"][0]["role"] != "system"),
        "multi_turn": sorted(it["index"] for it in recs_ok
                             if sum(m["role"] == "assistant" for m in it["clean_rec"]["messages"]) > 1),
        "max_unrelated_jaccard5": [round(max_unrelated[0], 4)] + max_unrelated[1],
        "planted": planted,
    }
    heldout_lines = [dumps(r) for r in heldout]
    return physical, heldout_lines, manifest


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gsm8k_dir", nargs="?", type=Path, default=DEFAULT_GSM8K_DIR,
                    help="folder holding gsm8k_train.jsonl and gsm8k_test.jsonl (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT, help="repository root to write into (default: %(default)s)")
    args = ap.parse_args(argv)
    train_lines, heldout_lines, manifest = build(args.gsm8k_dir)
    write_lines(args.out / TRAIN_OUT, train_lines)
    write_lines(args.out / HELDOUT_OUT, heldout_lines)
    (args.out / MANIFEST_OUT).parent.mkdir(parents=True, exist_ok=True)
    (args.out / MANIFEST_OUT).write_bytes(
        (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    print(f"wrote {manifest['records']} records ({manifest['physical_lines']} lines) to {TRAIN_OUT}, "
          f"{manifest['heldout_records']} to {HELDOUT_OUT}, manifest to {MANIFEST_OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
