"""The eval math and its printing (workbench/core/evals.py): pass@k against brute force, maj@k's ties, the summary
of records, and the tables `workbench eval` and `workbench show` print."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from math import comb

import pytest

from workbench.core import evals


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (c correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 8])
def test_pass_at_k_is_the_unbiased_estimator(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert evals.pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))
            assert evals.pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_pass_at_k_needs_k_at_most_n():
    with pytest.raises(ValueError):
        evals.pass_at_k(2, 1, 3)


def rec(i, j, answer, correct, formatted=True, tokens=10, truncated=False):
    return {"prompt_index": i, "sample": j, "answer": answer, "correct": correct, "formatted": formatted,
            "tokens": tokens, "truncated": truncated}


def test_majority_vote_ties_and_missing_answers_are_wrong():
    right, wrong = rec(0, 0, "4", True), rec(0, 1, "5", False)
    assert evals.majority_correct([right, dict(right, answer="4.0"), wrong])
    assert not evals.majority_correct([right, wrong]), "a tie is not a majority"
    assert not evals.majority_correct([rec(0, 0, None, False)] * 3), "no answer, no vote"
    assert evals.majority_correct([right, rec(0, 1, None, False), rec(0, 2, None, False)]), \
        "samples without an answer do not vote"
    assert not evals.majority_correct([wrong, wrong, right])


def test_vote_key_groups_the_same_number():
    assert evals.vote_key("4") == evals.vote_key(" 4.0 ") == evals.vote_key("4.") == "4"
    assert evals.vote_key("1,000") == evals.vote_key("1000")
    assert evals.vote_key("the  answer") == "the answer" and evals.vote_key(None) is None
    assert evals.vote_key("1/2") != evals.vote_key("0.5")


def test_summary_of_records():
    # prompt 0: 1 of 4 right (majority wrong); prompt 1: 3 of 4 right (majority right); prompt 2: no expected answer
    records = [rec(0, 0, "5", True), rec(0, 1, "6", False), rec(0, 2, "6", False), rec(0, 3, None, False, False)]
    records += [rec(1, j, "9", True, tokens=20) for j in range(3)] + [rec(1, 3, "8", False, truncated=True)]
    records += [rec(2, j, "x", None) for j in range(4)]
    s = evals.summarize(records, 4)
    assert (s["n_prompts"], s["n_scored"], s["n_completions"], s["k"]) == (3, 2, 12, 4)
    assert s["accuracy"] == pytest.approx((1 / 4 + 3 / 4) / 2)
    assert s["pass@k"] == 1.0 and s["maj@k"] == 0.5
    assert s["format_rate"] == pytest.approx(11 / 12)
    assert s["mean_length"] == pytest.approx((9 * 10 + 3 * 20) / 12)
    assert s["truncated_rate"] == pytest.approx(1 / 12)
    curve = {p["k"]: p for p in s["curve"]}
    assert list(curve) == [1, 2, 4]
    assert curve[1]["pass"] == pytest.approx(s["accuracy"]), "pass@1 is the expected accuracy"
    assert curve[2]["pass"] == pytest.approx((evals.pass_at_k(4, 1, 2) + evals.pass_at_k(4, 3, 2)) / 2)
    assert curve[1]["maj"] == pytest.approx(s["accuracy"]), "maj@1: each sample alone"
    # maj@2 over the runs of 2: prompt 0 [5, 6] tie, [6, -] wrong; prompt 1 [9, 9] right, [9, 8] tie
    assert curve[2]["maj"] == pytest.approx(0.25)


def test_summary_without_answers_has_no_accuracy_but_format_and_length():
    s = evals.summarize([rec(0, 0, None, None, formatted=False, tokens=7)], 1)
    assert s["accuracy"] is None and s["pass@k"] is None and s["curve"] == []
    assert s["format_rate"] == 0.0 and s["mean_length"] == 7.0
    assert evals.metric_row(s) == {"eval/format_rate": 0.0, "eval/mean_length": 7.0, "eval/truncated_rate": 0.0,
                                   "eval/prompts": 1, "eval/k": 1}


def result(target, acc, k=2):
    records = [rec(i, j, "1", j < round(acc * k)) for i in range(3) for j in range(k)]
    return {"name": target.split(":")[-1], "target": target, "data": "/d/held.jsonl", "k": k, "temperature": 0.7,
            "max_new_tokens": 32, "time": 1.0, "summary": evals.summarize(records, k)}


def test_printed_result_names_every_number_with_its_count():
    text = evals.format_result(result("builtin:tiny-lm", 0.5))
    assert "builtin:tiny-lm on held.jsonl: 3 prompts x 2 samples, temperature 0.7" in text
    assert "accuracy       0.500  (3 prompts with an answer)" in text
    assert "pass@2" in text and "maj@2" in text and "k=1: pass 0.500" in text
    assert "(6 completions)" in text


def test_comparison_shows_both_and_the_difference():
    text = evals.format_comparison(result("run-a/final", 1.0), result("builtin:tiny-lm", 0.5))
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:]}
    assert lines["accuracy"] == ["1.000", "0.500", "+0.500"]
    assert lines["pass@1"] == ["1.000", "0.500", "+0.500"], "the k curve below the headline numbers"
    assert lines["prompts"] == ["3", "3"]
    assert sum(1 for line in text.splitlines() if line.startswith("pass@2")) == 1


def test_results_are_read_from_a_folder_and_tabled(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({**result("builtin:tiny-lm", 0.5), "time": 2.0}))
    (tmp_path / "a.json").write_text(json.dumps(result("run/final", 1.0)))
    (tmp_path / "not-an-eval.json").write_text("{}")
    (tmp_path / "torn.json").write_text('{"summary": ')
    found = evals.read_results(tmp_path)
    assert [r["target"] for r in found] == ["run/final", "builtin:tiny-lm"], "oldest first, others skipped"
    table = evals.format_table(found).splitlines()
    assert table[0].split() == ["EVAL", "MODEL", "PROMPTS", "K", "ACC", "FORMAT", "PASS@K", "MAJ@K", "LEN", "TRUNC"]
    assert table[2].split()[:6] == ["tiny-lm", "builtin:tiny-lm", "3", "2", "0.500", "1.000"]


def test_safe_names():
    assert evals.safe_name("Qwen/Qwen2.5-0.5B") == "Qwen--Qwen2.5-0.5B"
    assert evals.safe_name("../x y") == "x-y" and evals.safe_name("///") == "eval"


def test_the_module_is_light():
    code = ("import sys; import workbench.core.evals, workbench.core.evalrun, workbench.core.rules_eval; "
            "bad = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'math_verify') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_leading_system_prompt_of_a_training_row():
    system = {"role": "system", "content": "Answer in the format"}
    user = {"role": "user", "content": "What is 1 + 2?"}
    assert evals.leading_system_prompt({"messages": [system, user]}) == "Answer in the format"
    assert evals.leading_system_prompt({"prompt": [system, user], "answer": "3"}) == "Answer in the format"
    assert evals.leading_system_prompt({"messages": [user]}) == ""
    assert evals.leading_system_prompt({"prompt": "What is 1 + 2?"}) == ""
    assert evals.leading_system_prompt(None) == ""
