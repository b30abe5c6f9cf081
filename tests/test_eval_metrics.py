"""Task metrics, bootstrap intervals and the verdict sentences (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcurate.train.metrics import (MetricError, MetricOptions, Scorer, bootstrap_ci, chrf, contains_reference,
                                    default_metrics, exact_match, extract_final, final_answer_match, headline_metric,
                                    json_schema_match, json_valid, length_ratio, normalize_number, paired_difference,
                                    parse_metric_list, refusal, rouge_l, schema_validator, summarize, summarize_loss)
from ftcurate.train.verdict import describe_difference, outcome


# -- per-example metrics, hand-computed -----------------------------------------------------------------


def test_exact_match_ignores_whitespace_and_case():
    assert exact_match("  The  Answer\nis 4 ", "the answer is 4") == 1.0
    assert exact_match("the answer is 4.", "the answer is 4") == 0.0
    assert exact_match("", "") == 1.0


@pytest.mark.parametrize("text,expected", [
    ("so she pays $1,250.50 in total.", "1250.5"), ("The answer is 42.", "42"), ("-3 degrees", "-3"),
    ("about 2.50", "2.5"), ("3/4 of it", "3/4"), ("no number here", None), ("7 apples and 12 pears", "12"),
])
def test_last_number_extractor(text, expected):
    assert extract_final(text) == expected


def test_final_answer_extractors():
    assert final_answer_match("we get 1000 chairs", "The answer is 1,000.") == 1.0
    assert final_answer_match("we get 999 chairs", "The answer is 1,000.") == 0.0
    assert final_answer_match("no idea", "The answer is 5.") == 0.0
    assert final_answer_match("anything", "no final answer in the reference") is None
    assert extract_final("work...\n#### 72", "hashes") == "72"
    assert extract_final("#### 1,234 dollars", "hashes") == "1234"
    assert final_answer_match("#### 72\n", "steps\n#### 72", "hashes") == 1.0
    assert extract_final("Answer: Paris. Final: Lyon", "regex:Final: (\\w+)") == "lyon"
    options = MetricOptions(extractor="regex:Team: (\\w+)").prepare(["final_answer"])
    scores = Scorer(["final_answer"], options).score("Team: Billing", "Team: billing")
    assert scores == {"final_answer": 1.0}


def test_contains_json_schema_format_length_refusal():
    assert contains_reference("I think it is Paris, France.", "paris") == 1.0
    assert contains_reference("Lyon", "Paris") == 0.0 and contains_reference("x", "  ") is None
    assert json_valid('{"a": 1}') == 1.0 and json_valid("```json\n{\"a\": 1}\n```") == 1.0
    assert json_valid("{'a': 1}") == 0.0 and json_valid("") == 0.0
    validator = schema_validator({"type": "object", "properties": {"team": {"enum": ["a", "b"]}},
                                  "required": ["team"]})
    assert json_schema_match('{"team": "a"}', validator) == 1.0
    assert json_schema_match('{"team": "c"}', validator) == 0.0
    assert json_schema_match("team a", validator) == 0.0
    scorer = Scorer(["format"], MetricOptions(format_regex=r"The answer is \d+\."))
    assert scorer.score("The answer is 12.", "") == {"format": 1.0}
    assert scorer.score("So the answer is 12.", "") == {"format": 0.0}  # a full match
    assert length_ratio("one two three four", "one two") == 2.0 and length_ratio("x", "") is None
    assert refusal("I'm sorry, but as an AI language model I cannot help with that.") == 1.0
    assert refusal("The answer is 4.") == 0.0


def test_chrf_and_rouge_l_match_the_libraries():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    hyp, ref = "the cat sat on the mat", "a cat sat on a mat"
    assert chrf(hyp, ref) == pytest.approx(CHRF().sentence_score(hyp, [ref]).score / 100)
    assert rouge_l(hyp, ref) == pytest.approx(rouge_scorer.RougeScorer(["rougeL"]).score(ref, hyp)["rougeL"].fmeasure)
    assert chrf(ref, ref) == pytest.approx(1.0) and rouge_l(ref, ref) == pytest.approx(1.0)
    assert chrf("", ref) == 0.0 and chrf("x", "") is None
    # LCS of "the cat sat" and "cat sat on": 2 of 3 words each way
    assert rouge_l("the cat sat", "cat sat on") == pytest.approx(2 / 3)


def test_scorer_none_answers_and_missing_references():
    scorer = Scorer(["exact", "json_valid", "chrf", "loss"])
    assert scorer.metrics == ["exact", "json_valid", "chrf"]  # loss is not a generation metric
    assert scorer.score(None, "x") == {"exact": None, "json_valid": None, "chrf": None}
    assert scorer.score("{}", "") == {"exact": None, "json_valid": 1.0, "chrf": None}
    assert scorer.score("", "ref") == {"exact": 0.0, "json_valid": 0.0, "chrf": 0.0}  # an empty answer scores 0


def test_bad_settings_are_clear_errors():
    with pytest.raises(MetricError, match="unknown metric.*bleu"):
        parse_metric_list("exact,bleu")
    with pytest.raises(MetricError, match="not JSON"):
        MetricOptions(json_schema="{not json").prepare()
    with pytest.raises(MetricError, match="not valid"):
        MetricOptions(json_schema={"type": 5}).prepare()
    with pytest.raises(MetricError, match="does not parse"):
        MetricOptions(format_regex="(unclosed").prepare()
    with pytest.raises(MetricError, match="needs a JSON schema"):
        Scorer(["json_schema"])
    with pytest.raises(MetricError, match="extractor"):
        MetricOptions(extractor="first_word").prepare()


def test_default_metrics_follow_the_references():
    math_refs = ["Steps...\nThe answer is 18.", "So 3 + 4 = 7.\nThe answer is 7.", "The answer is 1,200."]
    assert default_metrics(math_refs)[0] == "final_answer"
    opts = MetricOptions()
    assert default_metrics(["...\n#### 5", "#### 6"], opts)[0] == "final_answer" and opts.extractor == "hashes"
    picked = default_metrics(['{"team": "billing", "urgent": false}'] * 3)
    assert picked[:2] == ["exact", "json_valid"] and "loss" in picked
    assert default_metrics(["positive", "negative"])[:2] == ["exact", "contains"]
    prose = ["A long answer that explains the idea in several words and sentences for the reader."] * 2
    assert default_metrics(prose)[:2] == ["chrf", "rouge_l"]
    assert default_metrics(["", " "]) == ["refusal", "loss", "perplexity"]  # no references
    assert headline_metric(["chrf", "exact"]) == "exact" and headline_metric(["length_ratio"]) is None


# -- properties ---------------------------------------------------------------------------------------


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_text, st.sampled_from([" ", "  ", "\n", "\t"]))
def test_exact_match_properties(text, ws):
    assert exact_match(text, text) == 1.0
    assert exact_match(ws + text.upper() + ws, text) == exact_match(text.upper(), text)


@settings(max_examples=60, deadline=None)
@given(st.integers(-10**9, 10**9))
def test_numbers_with_thousands_separators_match(n):
    assert final_answer_match(f"so it is {n:,}", f"The answer is {n}.") == 1.0
    assert normalize_number(f"{n}.00") == str(n)


@settings(max_examples=40, deadline=None)
@given(_text, _text)
def test_scores_stay_in_range(a, b):
    for value in (chrf(a, b), rouge_l(a, b)):
        assert value is None or 0.0 <= value <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=50))
def test_bootstrap_interval_holds_the_mean_and_stays_in_the_data_range(values):
    mean, (lo, hi), n = bootstrap_ci(values, n_boot=200)
    assert n == len(values)
    assert min(values) - 1e-12 <= lo <= mean <= hi <= max(values) + 1e-12
    assert mean == pytest.approx(sum(values) / len(values))


# -- bootstrap on known data ----------------------------------------------------------------------------


def test_bootstrap_matches_the_normal_approximation_on_known_data():
    values = [1.0] * 60 + [0.0] * 40  # p = 0.6, n = 100: se = sqrt(.24/100) = 0.049
    s = summarize(values, n_boot=4000, seed=1)
    assert s["mean"] == pytest.approx(0.6) and s["n"] == 100
    lo, hi = s["ci95"]
    assert lo == pytest.approx(0.6 - 1.96 * 0.049, abs=0.02) and hi == pytest.approx(0.6 + 1.96 * 0.049, abs=0.02)
    assert summarize(values, n_boot=500, seed=1) == summarize(values, n_boot=500, seed=1)  # seeded
    assert summarize([None, None]) == {"mean": None, "ci95": None, "n": 0}
    assert summarize([0.5])["ci95"] == [0.5, 0.5] and summarize([1, 1, 1])["ci95"] == [1.0, 1.0]


def test_paired_difference_keeps_the_pairing():
    # Always exactly 0.1 apart: a paired interval has no width, an unpaired one would.
    rng = np.random.default_rng(0)
    a = list(rng.random(50))
    b = [x - 0.1 for x in a]
    d = paired_difference(a, b, n_boot=500)
    assert d["mean"] == pytest.approx(0.1) and d["ci95"] == pytest.approx([0.1, 0.1])
    d = paired_difference([1, None, 1, 0], [0, 0, None, 0])
    assert d["n"] == 2 and d["mean"] == 0.5


def test_loss_is_token_weighted_and_perplexity_follows():
    out = summarize_loss([1.0, 3.0], [3, 1], n_boot=300)
    assert out["loss"]["mean"] == pytest.approx((1 * 3 + 3 * 1) / 4)
    assert out["perplexity"]["mean"] == pytest.approx(math.exp(1.5))
    lo, hi = out["loss"]["ci95"]
    assert out["perplexity"]["ci95"] == pytest.approx([math.exp(lo), math.exp(hi)])


def test_verdict_wording_and_direction():
    d = {"mean": 0.18, "ci95": [0.11, 0.25], "n": 60}
    assert describe_difference("final_answer", d) == "+18 points of final-answer match (95% CI +11 to +25)"
    assert outcome("exact", d) == "better"
    assert outcome("exact", {"mean": 0.02, "ci95": [-0.05, 0.09]}) == "same"
    assert outcome("loss", {"mean": -0.4, "ci95": [-0.5, -0.3]}) == "better"  # lower loss is better
    assert outcome("refusal", {"mean": 0.1, "ci95": [0.05, 0.15]}) == "worse"
    assert outcome("length_ratio", d) is None
