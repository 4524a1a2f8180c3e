"""The self-improvement loop: SFT data, keep logic, diversity counts, settings refusal, the
completion-only loss, and (marked ``model``) one tiny round on the embedded model, re-run for free."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gapbench.harness import format as fmt
from gapbench.harness.digest import sha256_file
from gapbench.harness.errors import GapbenchError
from gapbench.harness.filters import parse_filter
from gapbench.harness.improve import loop as improve
from gapbench.harness.improve import sft
from gapbench.harness.improve.options import ImproveOptions
from gapbench.harness.improve.summary import Checkpoint, EvalStats, Round, SftData, Summary, load_round, load_summary, round_text, summary_text
from gapbench.harness.results import Metric, RelativeGap, Verification
from gapbench.verifiers.suite import keep_mask


class CharTokenizer:
    """One token per character: enough to check which positions carry loss."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def _rows():
    """Two prompts x 3 samples with u, g and answers."""
    out = []
    for doc, us, gs, answers in (
        ("a-0", [0.9, 0.2, 0.9], [1, 0, 0], ["7", "8", "9"]),
        ("a-1", [0.1, 0.2, 0.8], [0, 0, 0], ["5", "5", None]),
    ):
        for i, (u, g, a) in enumerate(zip(us, gs, answers)):
            out.append({"doc_id": doc, "sample": i, "prompt": f"Q: {doc}?\nA:", "response": f" {a}\n" if a else " dunno", "u": u, "g": g, "answer": a})
    return out


class FakeVerifier:
    method = "fake"

    def __init__(self, mask=None):
        self.mask = mask

    def keep(self, scores, rule):
        return self.mask


# --- keep selection and the SFT data set ------------------------------------------------------


def test_self_verification_keep_uses_the_scorer_rule_and_sft_has_exactly_the_kept_samples(tmp_path):
    rows = _rows()
    rule = parse_filter("quantile:0.5")
    u = {"fake": {}}
    for r in rows:
        u["fake"].setdefault(r["doc_id"], []).append(r["u"])
    masks = {d: keep_mask(FakeVerifier(), u, rule, d) for d in ("a-0", "a-1")}
    assert masks == {"a-0": [True, False, True], "a-1": [False, True, True]}
    assert keep_mask(FakeVerifier(), {"fake": {"t": [0.1, 0.1, 0.8]}}, rule, "t") == [True, True, True]  # ties at the cut stay
    for r in rows:
        r["keep"] = masks[r["doc_id"]][r["sample"]]
    records = sft.sft_records(2, rows)
    assert [(r["doc_id"], r["sample"]) for r in records] == [("a-0", 0), ("a-0", 2), ("a-1", 1), ("a-1", 2)]
    first = records[0]
    assert first == {"prompt": "Q: a-0?\nA:", "completion": " 7\n\n", "round": 2, "doc_id": "a-0", "sample": 0, "u": 0.9, "g": 1, "truncated": False}
    assert records[3]["completion"] == " dunno\n\n"  # trailing whitespace cut, the few-shot delimiter added
    cut = sft.sft_records(2, [{**rows[0], "keep": True, "response": " 7 + 8 = ", "truncated": True}])
    assert cut[0]["completion"] == " 7 + 8 = " and cut[0]["truncated"] is True  # hit the token limit: no stop taught

    path = tmp_path / "sft.jsonl"
    digest = sft.write_dataset(path, records)
    assert digest == sha256_file(path)
    assert sft.read_dataset(path) == records
    mtime = path.stat().st_mtime_ns
    assert sft.write_dataset(path, records) == digest and path.stat().st_mtime_ns == mtime  # unchanged: untouched
    assert sft.write_dataset(path, records[:1]) != digest and len(sft.read_dataset(path)) == 1


def test_a_verifier_with_its_own_keep_decides_for_itself():
    u = {"fake": {"d": [0.1, 0.9]}}
    assert keep_mask(FakeVerifier([True, False]), u, parse_filter("quantile:0.5"), "d") == [True, False]


def test_oracle_filter_keeps_exactly_the_correct_samples_and_may_keep_none():
    rows = _rows()
    for r in rows:
        r["keep"] = improve.oracle_mask([x["g"] for x in rows if x["doc_id"] == r["doc_id"]])[r["sample"]]
    records = sft.sft_records(0, rows)
    assert [(r["doc_id"], r["sample"], r["g"]) for r in records] == [("a-0", 0, 1)]
    stats = improve.filter_stats(rows)
    assert stats.kept == 1 and stats.precision == 1.0
    assert stats.prompts_none_kept == 1 and stats.prompts_kept == 1
    assert stats.J == pytest.approx((1 / 3 + 0) / 2)
    assert stats.J_filtered == pytest.approx((1 + 0) / 2)  # a-1 kept none: falls back to all its samples


def test_filter_stats_precision_and_answers():
    rows = _rows()
    keep = {("a-0", 0): True, ("a-0", 1): True, ("a-1", 0): True}
    for r in rows:
        r["keep"] = keep.get((r["doc_id"], r["sample"]), False)
    stats = improve.filter_stats(rows)
    assert stats.kept == 3 and stats.kept_share == pytest.approx(0.5)
    assert stats.precision == pytest.approx(1 / 3)
    assert stats.prompts_none_kept == 0
    assert stats.distinct_answers.mean == pytest.approx((3 + 1) / 2)
    assert stats.distinct_kept_answers.mean == pytest.approx((2 + 1) / 2)


# --- diversity ----------------------------------------------------------------------------------


def test_distinct_answers_ignore_missing_answers():
    got = improve.distinct_answers({"x": ["1", "1", "2", None], "y": [None, None, None, None], "z": ["3", "3", "3", "3"]})
    assert got.mean == pytest.approx((2 + 0 + 1) / 3)
    assert (got.min, got.max) == (0, 2)
    assert got.histogram == {"0": 1, "1": 1, "2": 1}
    assert got.unanswered_share == pytest.approx(5 / 12)
    assert improve.distinct_answers({}).mean is None


def test_pass_at_k_curve_has_every_k():
    G = np.array([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=float)
    curve = improve.pass_at_k_curve(G)
    assert list(curve) == ["1", "2", "3", "4"]
    assert curve["1"] == pytest.approx((0.25 + 0.5) / 2)
    assert curve["2"] == pytest.approx(((1 - 3 / 6) + (1 - 1 / 6)) / 2)
    assert curve["4"] == pytest.approx(1.0)


def test_realised_compares_the_next_round_with_the_filtered_accuracy():
    r = improve.realised(0.4, 0.5, 0.45)  # J(f_t), J(f_t[w]), J(f_t+1)
    assert r.improvement == pytest.approx(0.05) and r.predicted_gap == pytest.approx(0.1)
    assert r.J_minus_J_filtered_t == pytest.approx(-0.05) and r.realised_share == pytest.approx(0.5)
    assert improve.realised(0.4, 0.4, 0.45).realised_share is None
    with pytest.raises(GapbenchError, match="reported no accuracy"):
        improve.realised(None, 0.4, 0.45)


# --- round.json and summary.json ---------------------------------------------------------------


def _round(t=0, *, last=False):
    """A round as the loop makes it, from the pure pieces (no model)."""
    rows = _rows()
    for r in rows:
        r["keep"] = r["g"] == 1 or r["sample"] == 2
    e = EvalStats(
        dir="runs/eval", split="test", n_prompts=2, n=3, J=Metric(0.5, [0.25, 0.75]), J_filtered=Metric(0.6, [0.3, 0.9]),
        gap=Metric(0.1, [-0.0001, 0.2]), relative_gap=RelativeGap(-0.0002, None, 1),
        verification=Verification(accuracy=0.5, precision=None, recall=0.0, auroc=0.75, positive_rate=0.0),
        filter_precision=0.5, best_of_n=0.5, J_filtered_train_filter=0.6, J_filtered_oracle=1.0,
        pass_at_k={"1": 0.5, "2": 0.75}, maj_at_k={"1": 0.5}, distinct_answers=improve.distinct_answers({"a": ["1", "2"], "b": [None, "3"]}),
        timings={"generate": 1.5}, results="runs/eval/results.json", seconds_this_invocation=2.0,
    )  # fmt: skip
    r = Round(round=t, model="m", base="m", eval=e, train=None, sft=None, next=None)
    if not last:
        r.train = improve.filter_stats(rows)
        r.train.dir, r.train.timings, r.train.seconds_this_invocation = "runs/train", {"generate": 1.0}, 1.0
        r.sft = SftData(path="out/round-0/sft.jsonl", sha256="ab", examples=3, format="prompt/completion")
        r.checkpoint = Checkpoint(path="out/round-1/model", training={"lr": 1e-5, "steps": 2, "loss_first": 2.5, "loss_last": 1.25, "seconds": 3.0})
        r.next = improve.realised(0.5, 0.6, 0.55)
    return r


def _summary(rounds):
    opts = ImproveOptions(out="out", rounds=len(rounds) - 1, limit=2, max_steps=2)
    return Summary(schema_version=1, gapbench_version="0.1.0", created="2025-01-01T00:00:00+00:00", settings=opts,
                           base="m", filter="mc quantile:0.5", verifier="mc", rounds=rounds)  # fmt: skip


def test_round_and_summary_files_load_back_to_the_same_types_and_bytes(tmp_path):
    rounds = [_round(0), _round(1, last=True)]
    summary = _summary(rounds)
    text = summary_text(summary)
    assert text == json.dumps(json.loads(text), indent=2) + "\n"  # plain JSON, keys as written
    (tmp_path / "summary.json").write_text(text)
    loaded = load_summary(tmp_path / "summary.json")
    assert loaded == summary and summary_text(loaded) == text
    assert "schema_version" not in json.loads(text)["rounds"][0] and "checkpoint" not in json.loads(text)["rounds"][1]
    (tmp_path / "round.json").write_text(round_text(rounds[0]))
    assert list(json.loads(round_text(rounds[0])))[:2] == ["schema_version", "round"]
    assert load_round(tmp_path / "round.json") == rounds[0]


def test_files_of_older_loops_load_and_keep_their_bytes(tmp_path):
    """A loop of gapbench before seconds_this_invocation, with settings that lacked later options."""
    doc = json.loads(round_text(_round(0)))
    for block in (doc["eval"], doc["train"], doc["checkpoint"]):
        del block["seconds_this_invocation"]
    del doc["eval"]["relative_gap"]["ci"]
    old = json.dumps(doc, indent=2) + "\n"
    (tmp_path / "round.json").write_text(old)
    r = load_round(tmp_path / "round.json")
    assert r.eval.seconds_this_invocation is None and r.checkpoint and r.checkpoint.seconds_this_invocation is None
    assert round_text(r) == old
    s = json.loads(summary_text(_summary([_round(0)])))
    del s["settings"]["eval_n"], s["settings"]["verifier_model"]
    (tmp_path / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    loaded = load_summary(tmp_path / "summary.json")
    assert loaded.settings.eval_n is None and loaded.settings.verifier_model is None  # the current defaults
    assert "(f_t's own)" in improve.render_markdown(loaded)


def test_a_diverged_loss_loads(tmp_path):
    r = _round(0)
    assert r.checkpoint and r.checkpoint.training
    r.checkpoint.training["loss_last"] = float("nan")
    (tmp_path / "round.json").write_text(round_text(r))
    assert "NaN" in (tmp_path / "round.json").read_text()
    assert math.isnan(load_round(tmp_path / "round.json").checkpoint.training["loss_last"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["eval"]["J"].update(value="abc"), r"round.json: eval.J.value: expected a number or null, got \"abc\"\. This round.json is damaged"),
        (lambda d: d.pop("eval"), r"missing field 'eval.dir'; this round.json is incomplete\. Run `gapbench improve` again"),
        (lambda d: d["train"].update(kept=1.5), r"train.kept: expected a whole number"),
        (lambda d: d.update(schema_version=7), r"round.json schema_version 7 is not one this gapbench reads \(1\)"),
        (lambda d: d.pop("schema_version"), r"no schema_version field; this is not a gapbench round.json"),
    ],
)
def test_a_damaged_round_file_is_named_with_its_field(tmp_path, change, message):
    doc = json.loads(round_text(_round(0)))
    change(doc)
    (tmp_path / "round.json").write_text(json.dumps(doc))
    with pytest.raises(GapbenchError, match=message):
        load_round(tmp_path / "round.json")
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(GapbenchError, match=r"summary.json: not valid JSON .* This summary.json is damaged"):
        load_summary(tmp_path / "summary.json")


def test_summary_markdown_cells():
    md = improve.render_markdown(_summary([_round(0), _round(1, last=True)]))
    assert "Train: train (2 prompts x n=8); evaluation: test (all prompts x n=8). Verifier mc (f_t's own)" in md
    assert ", max 2 steps." in md
    # J, J[w], gap, relative gap (a tiny negative keeps its sign), oracle, distinct answers, J(f_t+1), improvement, J(f_t+1) - J(f_t[w])
    assert "| 0 | 0.500 | 0.600 | 0.100 | -0.000 | 1.000 | 1.50 | 0.550 | 0.050 | -0.050 |" in md
    assert "| 1 | 0.500 | 0.600 | 0.100 | -0.000 | 1.000 | 1.50 | n/a | n/a | n/a |" in md
    assert "| 0 | 0.500 | 0.750 |" in md  # pass@1, pass@2
    assert md.count("| 0 | 0.167 | 0.250 | 3 | 0.50 | 0.333 | 0 | 2.00 | 3 | 2 | 2.500 -> 1.250 | 3.0 |") == 1


def test_plain_prints_the_summary_cells():
    assert [fmt.plain(x) for x in (None, 0.25, -0.0004, 3, "n/a", True)] == ["n/a", "0.250", "-0.000", "3", "n/a", "True"]
    assert fmt.plain(2.0 / 3, 2) == "0.67" and fmt.plain(-1.25, 1) == "-1.2"


# --- settings ----------------------------------------------------------------------------------


def test_an_out_dir_with_other_settings_is_refused_naming_the_difference(tmp_path):
    path = tmp_path / "improve.json"
    opts = ImproveOptions(out=str(tmp_path), n=4, rounds=2)
    assert improve.check_settings(path, opts) is False
    assert json.loads(path.read_text())["settings"]["n"] == 4
    # more rounds, another generation batch size: the same loop, resumed and extended
    assert improve.check_settings(path, ImproveOptions(out=str(tmp_path), n=4, rounds=3, gen_batch_size=2)) is True
    with pytest.raises(GapbenchError) as err:
        improve.check_settings(path, ImproveOptions(out=str(tmp_path), n=8, rounds=3, oracle_filter=True))
    assert "n: 4 -> 8" in str(err.value) and "oracle_filter: false -> true" in str(err.value)
    assert json.loads(path.read_text())["settings"]["n"] == 4  # the refused settings were not written


def test_the_resolved_task_configuration_is_compared_not_its_spelling(tmp_path):
    from gapbench.tasks import TASKS

    path = tmp_path / "improve.json"
    resolved = lambda args: {"task_config": TASKS.get("arith")(**args).config()}  # noqa: E731
    old = ImproveOptions(out=str(tmp_path), task_args={"levels": "add2"})
    improve.check_settings(path, old, resolved({"levels": "add2"}))
    default = TASKS.get("arith").defaults["per_level"]
    spelled = ImproveOptions(out=str(tmp_path), task_args={"levels": "add2", "per_level": str(default)})
    assert improve.check_settings(path, spelled, resolved({"levels": "add2", "per_level": str(default)})) is True
    other = ImproveOptions(out=str(tmp_path), task_args={"levels": "add2", "per_level": str(default + 1)})
    with pytest.raises(GapbenchError, match=f"task_config.options.per_level: {default} -> {default + 1}"):
        improve.check_settings(path, other, resolved({"levels": "add2", "per_level": str(default + 1)}))


def test_bad_training_settings_are_user_errors():
    with pytest.raises(GapbenchError, match="--lr"):
        sft.TrainSettings(lr=0).check()
    with pytest.raises(GapbenchError, match="--epochs"):
        sft.TrainSettings(epochs=0).check()


def test_schedule_covers_every_example_once_per_epoch_and_stops_at_max_steps():
    steps = sft.TrainSettings(batch_size=4, epochs=2, seed=3).schedule(10)
    assert [len(s) for s in steps] == [4, 4, 2, 4, 4, 2]
    assert sorted(i for s in steps[:3] for i in s) == list(range(10))
    assert steps[:3] != steps[3:]  # reshuffled per epoch
    assert len(sft.TrainSettings(batch_size=4, max_steps=1).schedule(10)) == 1


def test_cli_registers_improve_and_maps_the_options():
    from gapbench.harness.cli import build_parser
    from gapbench.harness.improve.cli import options_from_args

    args = build_parser().parse_args(
        ["improve", "--out", "x", "--task", "arith", "--task-args", "arith.levels=add2", "--verifiers", "cot-binary",
         "--oracle-filter", "--n", "4", "--rounds", "2", "--lr", "3e-5", "--max-steps", "5", "--eval-limit", "20"]
    )
    opts = options_from_args(args)
    assert (opts.verifier, opts.oracle_filter, opts.n, opts.rounds, opts.lr, opts.max_steps, opts.eval_limit) == ("cot-binary", True, 4, 2, 3e-5, 5, 20)
    assert opts.task_args == {"levels": "add2"}
    bad = build_parser().parse_args(["improve", "--out", "x", "--task", "arith", "--task-args", "gsm8k.num_fewshot=2"])
    with pytest.raises(GapbenchError, match="not --task arith"):
        options_from_args(bad)


# --- the completion-only loss --------------------------------------------------------------------


def test_prompt_tokens_get_label_minus_100():
    e = sft.encode_example(CharTokenizer(), "Q: 1+1?\nA:", " 2\n\n", max_length=100)
    assert len(e["input_ids"]) == len("Q: 1+1?\nA:") + 4
    assert e["labels"][: len("Q: 1+1?\nA:")] == [sft.IGNORE] * len("Q: 1+1?\nA:")
    assert e["labels"][-4:] == [ord(c) for c in " 2\n\n"]
    # too long: the prompt loses its start, the completion stays whole
    e = sft.encode_example(CharTokenizer(), "abcdefgh", "XY", max_length=5)
    assert e["input_ids"] == [ord(c) for c in "fghXY"] and e["labels"] == [sft.IGNORE] * 3 + [ord("X"), ord("Y")]


def test_the_loss_ignores_prompt_and_padding_positions():
    import torch

    short = sft.encode_example(CharTokenizer(), "ab", "c", max_length=10)
    long = sft.encode_example(CharTokenizer(), "abcd", "ef", max_length=10)
    short = {"input_ids": [i % 7 for i in short["input_ids"]], "labels": [t if t < 0 else t % 7 for t in short["labels"]]}
    long = {"input_ids": [i % 7 for i in long["input_ids"]], "labels": [t if t < 0 else t % 7 for t in long["labels"]]}
    ids, mask, labels = sft.collate([short, long], pad_id=0)
    assert ids.shape == (2, 6) and mask[0].tolist() == [1, 1, 1, 0, 0, 0]
    assert labels[0].tolist() == [-100, -100, b"c"[0] % 7, -100, -100, -100]
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 7)
    loss, count = sft.completion_loss(logits, labels)
    assert count == 3  # one completion token in the first example, two in the second
    # the loss is the cross-entropy of exactly those three predictions
    expected = sum(-torch.log_softmax(logits[b, p - 1], -1)[labels[b, p]] for b, p in ((0, 2), (1, 4), (1, 5)))
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    moved = logits.clone()
    moved[0, 0, 1] += 5.0  # predicts a prompt token
    moved[0, 4, 2] -= 3.0  # predicts padding
    assert float(sft.completion_loss(moved, labels)[0]) == pytest.approx(float(loss), rel=1e-6)
    moved[1, 3, 1] += 5.0  # predicts the first completion token of the second example
    assert not math.isclose(float(sft.completion_loss(moved, labels)[0]), float(loss), rel_tol=1e-6)


# --- the real model, end to end ------------------------------------------------------------------


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.model
def test_one_round_on_the_embedded_model_and_a_free_rerun(tmp_path, embedded_model):
    import torch
    from safetensors import safe_open

    out = tmp_path / "improve"
    opts = ImproveOptions(
        out=str(out),
        task="arith",
        task_args={"levels": "add1", "per_level": "4"},
        limit=2,
        eval_limit=2,
        n=2,
        verifier="mc",
        rounds=1,
        max_steps=1,
        lr=5e-5,
        n_boot=50,
    )
    improver = improve.Improver(opts, log=lambda *_: None)
    summary = improver.run()
    assert improver.trained == 1 and improver.model_calls > 0

    # the data set: exactly the samples the filter kept, with provenance
    r0 = load_round(out / "round-0" / "round.json")
    assert r0.train and r0.sft and r0.next and r0.checkpoint
    sft_rows = [json.loads(line) for line in _lines(out / "round-0" / "sft.jsonl")]
    assert len(sft_rows) == r0.train.kept == r0.sft.examples > 0
    grades = {(g["doc_id"], g["sample"]): g for g in map(json.loads, _lines(out / "round-0" / "train" / "arith" / "grades.jsonl"))}
    samples = {(s["doc_id"], s["sample"]): s for s in map(json.loads, _lines(out / "round-0" / "train" / "arith" / "samples.jsonl"))}
    verdicts = [json.loads(line) for line in _lines(out / "round-0" / "train" / "arith" / "verdicts.jsonl")]
    assert len(samples) == 4 and {v["method"] for v in verdicts} == {"mc"}
    for row in sft_rows:
        key = (row["doc_id"], row["sample"])
        assert row["round"] == 0 and row["g"] == grades[key]["g"] and 0.0 <= row["u"] <= 1.0
        assert row["completion"] == samples[key]["response"].rstrip() + "\n\n" or row["truncated"]
        assert row["prompt"].endswith("A:") and "Q: What is" in row["prompt"]
    # quantile:0.5 keeps per prompt the samples at or above the median u: at least one each
    assert {r["doc_id"] for r in sft_rows} == {d for d, _ in samples}

    # the round-1 checkpoint loads and differs from the base
    ckpt = out / "round-1" / "model"
    meta = json.loads((ckpt / "gapbench_meta.json").read_text())
    assert meta["round"] == 1 and meta["base"] == "smollm2-135m-instruct" and meta["kept"] == len(sft_rows)
    assert meta["dataset"]["sha256"] == sha256_file(out / "round-0" / "sft.jsonl")
    assert meta["training"]["steps"] == 1 and meta["training"]["lr"] == 5e-5
    with safe_open(str(embedded_model / "model.safetensors"), "pt") as base_w, safe_open(str(ckpt / "model.safetensors"), "pt") as new_w:
        assert set(base_w.keys()) == set(new_w.keys())
        assert any(not torch.equal(base_w.get_tensor(k), new_w.get_tensor(k)) for k in base_w.keys())

    # the evaluation of f_1 ran on the checkpoint and carries base/round
    res1 = json.loads((out / "round-1" / "eval" / "arith" / "results.json").read_text())
    assert res1["model"]["base"] == "smollm2-135m-instruct" and res1["model"]["round"] == 1
    assert res1["model"]["name"].endswith("-r1") and "/" not in res1["model"]["name"]  # a display name, not a path
    assert res1["model"]["id"] == str(ckpt.resolve()) and res1["model"]["parameters"] > 100_000_000  # it loaded
    res0 = json.loads((out / "round-0" / "eval" / "arith" / "results.json").read_text())
    assert res0["model"]["round"] == 0 and res0["task"]["split"] == "test"

    # the reported fields
    for key in ("J", "J_filtered", "gap", "relative_gap", "pass@k", "distinct_answers", "J_filtered_oracle"):
        assert key in json.loads((out / "round-0" / "round.json").read_text())["eval"], key
    assert list(r0.eval.pass_at_k) == ["1", "2"] and r0.eval.J.ci is not None
    assert r0.checkpoint.training and r0.checkpoint.training["steps"] == 1
    assert r0.next.J == res1["generation"]["J"]["value"]
    assert r0.next.J_filtered_t == res0["verifiers"]["mc"]["J_filtered"]["value"]
    r1 = load_round(out / "round-1" / "round.json")
    assert r1.train is None and r1.next is None and r1.eval.J.value == res1["generation"]["J"]["value"]
    on_disk = load_summary(out / "summary.json")
    assert [r.round for r in on_disk.rounds] == [0, 1] == [r.round for r in summary.rounds]
    assert on_disk.settings == opts and summary_text(on_disk) == (out / "summary.json").read_text()
    md = (out / "summary.md").read_text()
    assert "| 0 |" in md and "| 1 |" in md and "pass@2" in md and "filter precision" in md
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"

    # the same command again: no model call, no training, nothing new sampled
    mtime = (ckpt / "model.safetensors").stat().st_mtime_ns
    sft_mtime = (out / "round-0" / "sft.jsonl").stat().st_mtime_ns
    counts = {p: len(_lines(p)) for p in out.rglob("*.jsonl")}
    again = improve.Improver(ImproveOptions(**{**opts.__dict__}), log=lambda *_: None)
    summary2 = again.run()
    assert again.model_calls == 0 and again.trained == 0
    assert (ckpt / "model.safetensors").stat().st_mtime_ns == mtime
    assert (out / "round-0" / "sft.jsonl").stat().st_mtime_ns == sft_mtime
    assert {p: len(_lines(p)) for p in counts if p.name in ("samples.jsonl", "verdicts.jsonl")} == {
        p: n for p, n in counts.items() if p.name in ("samples.jsonl", "verdicts.jsonl")
    }
    assert summary2.rounds[1].eval.J == summary.rounds[1].eval.J

    # other settings in the same out dir are refused before any work
    with pytest.raises(GapbenchError, match="n: 2 -> 3"):
        improve.Improver(ImproveOptions(**{**opts.__dict__, "n": 3}), log=lambda *_: None).run()


def test_a_finished_checkpoint_is_reused_and_one_from_other_data_is_refused(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    out = tmp_path / "improve"
    improver = improve.Improver(ImproveOptions(out=str(out), model=str(base), rounds=1), log=lambda *_: None)
    assert improver.model_options(0) == (str(base), None)
    assert improver.model_options(1) == (str((out / "round-1" / "model").resolve()), None)
    ckpt = out / "round-1" / "model"
    ckpt.mkdir(parents=True)
    (ckpt / sft.META_FILE).write_text(json.dumps({"round": 1, "dataset": {"sha256": "aaa"}}))
    sft_path = out / "round-0" / "sft.jsonl"
    assert improver.fine_tune(0, sft_path, "aaa", 3)["round"] == 1 and improver.trained == 0  # no training
    with pytest.raises(GapbenchError, match="sha256 aaa"):
        improver.fine_tune(0, sft_path, "bbb", 3)


def test_the_shared_prompt_prefix_leaves_each_example_a_prompt_token():
    a = {"input_ids": [1, 2, 3, 4, 5, 6], "labels": [sft.IGNORE] * 4 + [5, 6]}
    b = {"input_ids": [1, 2, 3, 9, 5], "labels": [sft.IGNORE] * 4 + [5]}
    c = {"input_ids": [1, 2, 3, 4, 7], "labels": [sft.IGNORE] * 4 + [7]}
    assert sft.shared_prompt_prefix([a, b]) == 3
    assert sft.shared_prompt_prefix([a, c]) == 3  # the 4th token is shared but is the last prompt token
    assert sft.shared_prompt_prefix([a]) == 3


@pytest.mark.model
def test_the_shared_head_gives_the_loss_and_gradients_of_whole_examples(embedded_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model, dtype=torch.float32)
    model.train()
    head = "Q: What is 12 + 30?\nA: 42\n\nQ: What is 7 * 6?\nA: 42\n\nQ: What is 100 - 1?\nA: 99\n\n" * 2
    examples = [
        sft.encode_example(tok, head + f"Q: What is {a} + {b}?\nA:", f" {a + b}" + sft.COMPLETION_END, 2048)
        for a, b in ((3, 4), (15, 27), (120, 5))
    ]
    assert sft.shared_prompt_prefix(examples) >= 32
    results = []
    for share in (True, False):
        model.zero_grad()
        loss = sft.micro_batch_loss(model, examples, tok.pad_token_id or 0, "cpu", share_prefix=share)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((float(loss.detach()), grads))
    (shared_loss, shared_grads), (whole_loss, whole_grads) = results
    assert shared_loss == pytest.approx(whole_loss, rel=1e-5)
    assert float((shared_grads - whole_grads).norm() / whole_grads.norm()) < 1e-4
    assert float(whole_grads.norm()) > 0
