"""What runs leave behind for the next step: `workbench show` prints each sampled prompt with its completions
(a chat prompt as "system: … / user: …") and the dataset a best-of-k or distill-offline run wrote; the editor's
dataset picker offers those datasets (discovery.dataset_choices) besides the shipped assets and this folder."""
from __future__ import annotations

import json
import time

from tests.core.test_cli import finished_run, wb
from workbench.core import discovery
from workbench.core.rundir import RunDir, hostname
from workbench.core.samples import chat_line, prompt_messages

SYSTEM = "Respond in the format <reasoning>...</reasoning><answer>...</answer>"
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 3?"}]


def best_of_k_run(runs_dir, name="bok", rows=3, state="completed") -> RunDir:
    """A best-of-k run as its Curation leaves it: samples with the chat prompt as JSON text, dataset.jsonl."""
    rd = RunDir.create(runs_dir, name)
    now = time.time()
    rd.launch_path.write_text(json.dumps({"argv": ["python", "-m", "workbench.train", str(rd.path)]}))
    rd.write_status(state=state, stage="best-of-k", name=name, model="builtin:tiny-lm", created=now - 9,
                    started=now - 8, ended=now - 1, exit_code=0, host=hostname(), runner_pid=None)
    rd.metrics_path.write_text(json.dumps({"step": 1, "time": now - 5, "reward": 1.5}) + "\n")
    samples = [{"step": 1, "group": 0, "index": i, "prompt": json.dumps(CHAT), "completion": f"<answer>{a}</answer>",
                "rewards": {"correctness": r}, "reward": r, "advantage": None}
               for i, (a, r) in enumerate([("4", 0.0), ("5", 2.0)])]
    rd.samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    (rd.path / "dataset.jsonl").write_text("".join(json.dumps({"prompt": CHAT, "completion": [
        {"role": "assistant", "content": "<answer>5</answer>"}], "reward": 2.0}) + "\n" for _ in range(rows)))
    return rd


def test_prompts_read_as_chat():
    assert prompt_messages(json.dumps(CHAT)) == CHAT and prompt_messages(CHAT) == CHAT
    assert prompt_messages("What is 2 + 3?") is None and prompt_messages("[not json") is None
    chatml = "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert prompt_messages(chatml) == [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "What is 2 + 3?"}]
    assert chat_line(json.dumps(CHAT)) == f"system: {SYSTEM[:59]}… / user: What is 2 + 3?"  # the system prompt cut
    assert chat_line([{"role": "user", "content": "alone\nhere"}]) == "alone here"
    assert chat_line("x" * 300, width=20) == "…" + "x" * 19


def test_show_prints_prompts_with_their_completions(runs_dir):
    rd = finished_run(runs_dir)
    out = wb("--runs-dir", str(runs_dir), "show", rd.id).stdout.splitlines()
    i = out.index("samples   step 3, 2 completions (best first):")
    assert out[i + 1] == "  prompt  What is 2 + 3?"
    assert out[i + 2].startswith("    reward 3 ") and "<answer>5</answer>" in out[i + 2]
    assert out[i + 3].startswith("    reward 1 ") and "<answer>4</answer>" in out[i + 3]
    assert not any(line.startswith("dataset") for line in out), "a grpo run writes no dataset"


def test_show_renders_a_best_of_k_chat_prompt_and_lists_its_dataset(runs_dir):
    rd = best_of_k_run(runs_dir, rows=3)
    proc = wb("--runs-dir", str(runs_dir), "show", rd.id)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "  prompt  system: Respond in the format" in out and " / user: What is 2 + 3?" in out
    assert '[{"role"' not in out and "\\u" not in out
    dataset = rd.path / "dataset.jsonl"
    assert f"dataset   {dataset}  (3 rows of prompt/completion; an sft recipe trains on it: " \
           f'data.path = "{dataset}")' in out


def test_dataset_picker_offers_earlier_runs_datasets_first(runs_dir, tmp_path, monkeypatch):
    finished_run(runs_dir)  # no dataset
    old = best_of_k_run(runs_dir, "bok-1-old", rows=2)
    new = best_of_k_run(runs_dir, "bok-2-new", rows=1200, state="stopped")
    (new.path / "dataset.jsonl").write_bytes((new.path / "dataset.jsonl").read_bytes().rstrip(b"\n"))  # torn end
    (tmp_path / "mine.jsonl").write_text('{"prompt": "p", "completion": "c"}\n')
    monkeypatch.chdir(tmp_path)
    assert [r.run for r in discovery.run_datasets(runs_dir)] == [new.id, old.id]
    assert discovery.count_rows(new.path / "dataset.jsonl") == 1200
    choices = discovery.dataset_choices(runs_dir, [tmp_path])
    assert [c.value for c in choices[:2]] == [str(new.path / "dataset.jsonl"), str(old.path / "dataset.jsonl")]
    assert choices[0].label == f"{new.id}/dataset.jsonl  (earlier run: best-of-k, 1,200 rows, stopped)"
    assert choices[1].label == f"{old.id}/dataset.jsonl  (earlier run: best-of-k, 2 rows)"
    values = [c.value for c in choices]
    assert str(tmp_path / "mine.jsonl") in values, "the current folder's files"
    assert any(v.endswith("assets/data/arith-prompts.jsonl") for v in values), "the shipped assets"
    assert len(values) == len(set(values)), "runs/ is not walked a second time as part of this folder"
