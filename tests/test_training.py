"""Training invariants on tiny BERTs: surgery, frozen trunk, cache, distillation, search choice, data errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from mtserve.core import corpus
from mtserve.core.errors import UserError
from mtserve.core.task_file import GLUE, load_glue
from mtserve.core.tasks import Split, TaskSpec, load_tsv, score
from mtserve.training.accuracy_report import write_accuracy
from mtserve.training.backbone import full_model, make_branch, make_trunk, student_from_teacher
from mtserve.training.config import SearchConfig, TrainConfig
from mtserve.training.features import FeatureCache, LiveFeatures, encode, trunk_fingerprint
from mtserve.training.finetune import distil, distil_loss, train_partial
from mtserve.training.pipeline import train
from mtserve.training.run_dir import Run, SearchRecord
from mtserve.training.search import Candidate, choose, choose_jointly, layers_served

from .conftest import GLUE_DIR, tiny_bert


def _ids(vocab=99, b=3, s=9):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (b, s), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    return ids, torch.zeros_like(ids), mask


def _fingerprint(module) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode() + t.detach().numpy().tobytes())
    return h.hexdigest()


def test_trunk_plus_branch_equals_the_backbone():
    """Splitting a BERT into trunk + branch computes exactly what the unsplit encoder computes."""
    bert = tiny_bert(num_layers=4)
    ids, tt, mask = _ids()
    with torch.no_grad():
        ref = bert(
            input_ids=ids, token_type_ids=tt, attention_mask=mask, output_hidden_states=True
        ).hidden_states
        trunk = make_trunk(bert, 4, [0, 2, 4])
        outs = trunk(ids, tt, mask)
    for got, d in zip(outs, [0, 2, 4], strict=True):
        torch.testing.assert_close(got[mask.bool()], ref[d][mask.bool()], atol=1e-6, rtol=0)
    # and a branch's layers, run on the trunk's depth-2 output, reproduce depth 4
    from mtserve.training.backbone import _layer, extended_mask

    branch = make_branch(bert, depth=2, num_layers=2, num_labels=2, regression=False).eval()
    with torch.no_grad():
        hidden = outs[1]
        for layer in branch.layers:
            hidden = _layer(layer, hidden, extended_mask(mask, hidden.dtype))
    torch.testing.assert_close(hidden[mask.bool()], ref[4][mask.bool()], atol=1e-5, rtol=0)


def test_student_is_initialised_from_the_teachers_lowest_layers():
    bert = tiny_bert(num_layers=4)
    teacher = make_branch(bert, depth=1, num_layers=3, num_labels=3, regression=False)
    student = student_from_teacher(teacher, 2)
    for i in range(2):
        pairs = zip(teacher.layers[i].named_parameters(), student.layers[i].named_parameters(), strict=True)
        for (n1, p1), (n2, p2) in pairs:
            assert n1 == n2 and torch.equal(p1, p2)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert student.config.depth == teacher.config.depth == 1
    with pytest.raises(ValueError):
        student_from_teacher(teacher, 4)


def test_distillation_loss_is_zero_when_student_and_teacher_agree():
    cls = TaskSpec("x", ("a", "b", "c"), "accuracy")
    # a confident teacher that is right: KL is 0 and CE is ~0
    logits = torch.tensor([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0]])
    gold = torch.tensor([0, 1])
    assert float(distil_loss(cls, logits, logits, gold, 2.0)) < 1e-6
    # disagreeing student: strictly positive soft term
    assert float(distil_loss(cls, logits.flip(0), logits, gold, 2.0)) > 1.0
    # a hand-computed case: teacher [2, 0], student [0, 0], T = 2, gold 0
    import math

    p_t = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]
    kl = sum(p * math.log(p / 0.5) for p in p_t)  # KL(teacher_T || student_T); the reverse direction differs
    expected = 4 * kl + math.log(2)
    two = TaskSpec("y", ("a", "b"), "accuracy")
    got = float(
        distil_loss(two, torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([0]), 2.0)
    )
    assert got == pytest.approx(expected, rel=1e-5)
    reg = TaskSpec("r", None, "pearson")
    v = torch.tensor([[0.3], [0.7]])
    assert float(distil_loss(reg, v, v.clone(), v.squeeze(-1), 2.0)) == 0.0


def test_frozen_trunk_never_changes_and_cache_matches_uncached(tiny_backbone, tiny_data):
    bert, tok = tiny_backbone
    backbone_fingerprint = _fingerprint(bert)
    data = tiny_data["sentiment"]
    trunk = make_trunk(bert, 4, list(range(5)))
    before = trunk_fingerprint(trunk)
    enc_tr, enc_dev = encode(tok, data.train, 32), encode(tok, data.dev, 32)
    cache = FeatureCache(None)
    f_tr = cache.get(trunk, before, enc_tr, [3])[3]
    f_dev = cache.get(trunk, before, enc_dev, [3])[3]
    cfg = TrainConfig(epochs_partial=1, lr_partial=1e-3)
    b1, s1 = train_partial(bert, data.spec, 1, f_tr, data.train.labels, f_dev, data.dev.labels, cfg)
    shallow = make_trunk(bert, 3, [3])
    b2, s2 = train_partial(
        bert,
        data.spec,
        1,
        LiveFeatures(shallow, enc_tr),
        data.train.labels,
        LiveFeatures(shallow, enc_dev),
        data.dev.labels,
        cfg,
    )
    assert trunk_fingerprint(trunk) == before, "a training step changed the frozen trunk"
    # the pre-trained backbone itself is never trained in place: branches and trunks are copies
    assert backbone_fingerprint == _fingerprint(bert), "training changed the pre-trained backbone's weights"
    assert trunk_fingerprint(shallow) == trunk_fingerprint(make_trunk(bert, 3, [3]))
    # fp16 cache vs fp32 on-the-fly features: same training up to rounding
    for p1, p2 in zip(b1.parameters(), b2.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, atol=5e-3, rtol=0)
    # a second request for the same split and depth is a hit
    cache.get(trunk, before, enc_tr, [3])
    assert cache.hits >= 1


def test_full_finetuning_updates_every_layer(tiny_backbone):
    bert, _ = tiny_backbone
    model = full_model(bert, 3, False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for p in model.parameters())
    assert model.trunk.depth == 0 and model.branch.config.num_layers == 4


def test_regression_task_distils(tiny_backbone, tiny_data):
    """A 1-layer student distilled from a 2-layer regression teacher ends up closer to the teacher than
    its copy-initialisation was, and tracks it."""
    from mtserve.training.finetune import branch_outputs

    bert, tok = tiny_backbone
    data = tiny_data["urgency"]
    trunk = make_trunk(bert, 4, [2])
    fp = trunk_fingerprint(trunk)
    cache = FeatureCache(None)
    f_tr = cache.get(trunk, fp, encode(tok, data.train, 32), [2])[2]
    f_dev = cache.get(trunk, fp, encode(tok, data.dev, 32), [2])[2]
    teacher = make_branch(bert, depth=2, num_layers=2, num_labels=1, regression=True, seed=1).eval()
    with torch.no_grad():  # a teacher worth distilling: a wide output range, and a top layer that matters
        g = torch.Generator().manual_seed(0)
        teacher.classifier.weight.mul_(20.0)
        for p in teacher.layers[1].parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    labels = branch_outputs(teacher, f_tr).squeeze(-1).tolist()
    dev_labels = branch_outputs(teacher, f_dev).squeeze(-1).tolist()
    init = student_from_teacher(teacher, 1)
    cfg = TrainConfig(epochs_distil=4, lr_distil=1e-3)
    student, s_score = distil(teacher, data.spec, 1, f_tr, labels, f_dev, dev_labels, cfg)
    assert student.config.num_layers == 1 and student.config.regression and np.isfinite(s_score)
    t_out = torch.tensor(dev_labels)
    mse = lambda b: float(((branch_outputs(b, f_dev).squeeze(-1) - t_out) ** 2).mean())  # noqa: E731
    assert mse(student) < 0.5 * mse(init), (mse(student), mse(init))
    assert s_score > 0.3, f"student's Pearson with its teacher: {s_score}"


def test_choice_prefers_fewest_task_layers_then_deepest_trunk():
    cands = [
        _cand("partial", 3, 3, 3, 0.90),
        _cand("distilled", 3, 1, 3, 0.897),
        _cand("partial", 1, 1, 5, 0.896),
        _cand("partial", 2, 2, 4, 0.91),
    ]
    chosen, met = choose(cands, 0.90, 0.995)
    assert met and chosen.branch_depth == 5 and chosen.task_layers == 1
    chosen, met = choose(cands, 1.0, 0.995)  # nothing reaches 0.995: the best score, flagged
    assert not met and chosen.score == 0.91


def _cand(kind, k, n_layers, depth, score):
    return Candidate(kind, k, n_layers, depth, score)


def test_joint_choice_serves_fewer_layers_than_each_task_alone():
    # a: alone it would take the 1-layer branch at depth 5 (deepest trunk), which makes the trunk 5 deep for
    # everybody; b and c can only reach their target at depth 3. Across tasks, a branches at 3 too: 3 + 3 layers.
    searches = {
        "a": (
            [
                _cand("partial", 1, 1, 5, 0.90),
                _cand("distilled", 3, 1, 3, 0.91),
                _cand("partial", 3, 3, 3, 0.92),
            ],
            0.90,
        ),
        "b": ([_cand("partial", 1, 1, 5, 0.70), _cand("distilled", 3, 1, 3, 0.80)], 0.80),
        "c": ([_cand("partial", 2, 2, 4, 0.60), _cand("distilled", 3, 1, 3, 0.79)], 0.79),
    }
    alone = {t: choose(c, f, 0.995)[0] for t, (c, f) in searches.items()}
    assert alone["a"].branch_depth == 5 and layers_served(alone) == 5 + 3
    joint = choose_jointly(searches, 0.995)
    picks = {t: c for t, (c, _) in joint.items()}
    assert all(met for _, met in joint.values())
    assert {t: c.key for t, c in picks.items()} == {
        "a": ("distilled", 3, 1),
        "b": ("distilled", 3, 1),
        "c": ("distilled", 3, 1),
    }
    assert layers_served(picks) == 3 + 3


def test_joint_choice_keeps_a_task_below_target_at_its_best_and_never_costs_more():
    searches = {
        # d reaches no target: its best branch (depth 4, 2 layers) is kept and sets the trunk's floor at 4
        "d": ([_cand("partial", 1, 1, 5, 0.50), _cand("partial", 2, 2, 4, 0.60)], 0.70),
        # e: a 1-layer branch at depth 5 (would deepen the trunk) or at depth 4 with a lower score
        "e": ([_cand("partial", 1, 1, 5, 0.99), _cand("distilled", 2, 1, 4, 0.985)], 0.98),
    }
    joint = choose_jointly(searches, 0.995)
    assert joint["d"][0].score == 0.60 and joint["d"][1] is False
    assert joint["e"][0].branch_depth == 4 and joint["e"][1] is True
    alone = {t: choose(c, f, 0.995)[0] for t, (c, f) in searches.items()}
    assert layers_served({t: c for t, (c, _) in joint.items()}) == 4 + 3 < layers_served(alone) == 5 + 3
    assert choose_jointly({}, 0.995) == {}


def test_revision_across_tasks_swaps_the_served_branch(tiny_backbone, tiny_data, tmp_path):
    """revise_jointly on real branches: the served file becomes the joint pick, with its fp32 served score."""
    from mtserve.training.backbone import load_branch, save_branch
    from mtserve.training.pipeline import candidate_path, revise_jointly, served_dev_score

    bert, tok = tiny_backbone  # 4 layers
    data = {t: tiny_data[t] for t in ("domain", "sentiment")}
    full = {"domain": 0.90, "sentiment": 0.80}
    cands = {  # domain alone takes the deeper of its two 1-layer branches; sentiment only reaches it at depth 1
        "domain": [_cand("partial", 1, 1, 3, 0.90), _cand("distilled", 3, 1, 1, 0.91)],
        "sentiment": [_cand("distilled", 3, 1, 1, 0.80)],
    }
    results = {}
    for task, d in data.items():
        task_dir = tmp_path / "tasks" / task
        for i, c in enumerate(cands[task]):
            b = make_branch(bert, c.branch_depth, 1, d.spec.num_labels, d.spec.is_regression, seed=i)
            save_branch(b, candidate_path(task_dir, c), {"chosen": c.to_dict()})
        alone = choose(cands[task], full[task], 0.995)[0]
        save_branch(
            make_branch(bert, alone.branch_depth, 1, d.spec.num_labels, d.spec.is_regression),
            task_dir / "branch.safetensors",
            {"chosen": alone.to_dict()},
        )
        results[task] = SearchRecord(
            task=d.spec.to_dict(),
            metric=d.spec.metric,
            full=full[task],
            candidates=[c.to_dict() for c in cands[task]],
            chosen={**alone.to_dict(), "meets_target": True},
            train_examples=len(d.train),
            dev_examples=len(d.dev),
            seconds={},
        )
        results[task].write(task_dir / "search.json")  # as train_task leaves it
    assert results["domain"].chosen["branch_depth"] == 3  # 3 + 2 layers served, against 1 + 2 jointly

    trunk = make_trunk(bert, 4, list(range(5)))
    revise_jointly(
        tmp_path,
        data,
        results,
        bert.config,
        tok,
        trunk,
        TrainConfig(max_length=32),
        SearchConfig([1, 3], 1, 0.995),
    )
    domain = tmp_path / "tasks" / "domain"
    got = json.loads((domain / "search.json").read_text())
    assert got["chosen"]["branch_depth"] == 1 and got["chosen_alone"]["branch_depth"] == 3
    branch, meta = load_branch(bert.config, domain / "branch.safetensors")
    assert branch.config.depth == 1 and meta["chosen"] == got["chosen"]
    served = served_dev_score(
        trunk, branch, encode(tok, data["domain"].dev, 32), data["domain"].dev.labels, data["domain"].spec
    )
    assert got["chosen"]["served"] == pytest.approx(served, abs=1e-9)
    assert "chosen_alone" not in json.loads((tmp_path / "tasks" / "sentiment" / "search.json").read_text())
    assert not (domain / "candidates").exists()  # kept only until the choice is made


def test_pipeline_writes_a_traceable_run(tiny_run):
    run = Run(tiny_run)
    meta = run.meta
    assert meta["tasks"] == ["domain", "intent", "sentiment", "urgency"]
    for task in meta["tasks"]:
        result = run.task_result(task)
        kinds = {c["kind"] for c in result["candidates"]}
        assert kinds == {"partial", "distilled"}
        branch, bmeta = run.branch(task)
        assert bmeta["config"]["seed"] == 0  # the resolved config travels with the checkpoint
        assert branch.config.depth + branch.config.num_layers <= meta["num_layers"]
        assert bmeta["chosen"] == result["chosen"]  # the branch on disk is the recorded choice
        assert branch.config.depth == result["chosen"]["branch_depth"]
        assert not (
            tiny_run / "tasks" / task / "candidates"
        ).exists()  # kept only until the choice across tasks
    results = {t: run.task_result(t) for t in meta["tasks"]}
    assert layers_served({t: Candidate.from_dict(r["chosen"]) for t, r in results.items()}) <= layers_served(
        {t: Candidate.from_dict(r.get("chosen_alone", r["chosen"])) for t, r in results.items()}
    )


def test_validation_split_is_a_seeded_share_held_out_of_train(tiny_data):
    from mtserve.core.tasks import VALIDATION_FRACTION, TaskData, with_validation

    d = tiny_data["sentiment"]
    a, again, other = with_validation(d, 3), with_validation(d, 3), with_validation(d, 4)
    assert len(a.validation) == round(len(d.train) * VALIDATION_FRACTION) == 40
    assert len(a.train) + len(a.validation) == len(d.train) and a.dev is d.dev

    def rows(s):
        return sorted(zip(s.texts, s.labels, strict=True))

    assert rows(a.train) + rows(a.validation) != [] and sorted(rows(a.train) + rows(a.validation)) == rows(
        d.train
    )
    assert a.validation.texts == again.validation.texts and a.validation.texts != other.validation.texts
    assert any("held out of training" in n for n in a.notes) and d.validation is None  # d itself unchanged
    assert with_validation(a, 9) is a  # a task's own validation split is kept
    few = with_validation(TaskData(d.spec, d.train.head(5), d.dev), 0)
    assert few.validation is few.train and any("nothing held out" in n for n in few.notes)


def test_the_choice_scores_on_validation_and_the_report_on_dev(tiny_backbone, tiny_data, tmp_path):
    """Validation = the dev rows with the regression target negated: every score the choice compares (each
    candidate's `score`, full fine-tuning's `full_validation`) must be exactly minus its dev score. Had any of
    them been computed on dev, it would carry the dev sign."""
    import dataclasses

    from mtserve.core.tasks import Split
    from mtserve.training.accuracy_report import accuracy

    bert, tok = tiny_backbone
    d = tiny_data["urgency"]  # pearson: negating the target negates the score
    flipped = Split(d.dev.texts, d.dev.pairs, [-y for y in d.dev.labels])
    data = dataclasses.replace(d, validation=flipped)
    cfg = TrainConfig(max_length=32, epochs_full=1, epochs_partial=1, epochs_distil=1)
    train(
        {"urgency": data},
        tmp_path,
        backbone="tiny-test-bert",
        cfg=cfg,
        search=SearchConfig([1, 2], 1, 0.9),
        cache_dir=None,
        bert=bert,
        tokenizer=tok,
    )
    r = Run(tmp_path).task_result("urgency")
    assert r["validation_examples"] == len(d.dev) and r["train_examples"] == len(d.train)
    assert r["full_validation"] == pytest.approx(-r["full"], abs=1e-4)
    assert len(r["candidates"]) == 3
    for c in r["candidates"]:
        assert c["score"] == pytest.approx(-c["dev"], abs=1e-4) and abs(c["dev"]) > 1e-3
    acc = accuracy(Run(tmp_path))["tasks"]["urgency"]
    chosen = Candidate.from_dict(r["chosen"])
    assert acc["choice_on"] == "validation" and acc["served"] == chosen.served
    if acc["full_learned"] is False:  # the tiny BERT's one epoch at the default rate: flagged, no ratio
        assert acc["retention"] is None and "full fine-tuning did not learn" in " ".join(acc["notes"])
    else:
        assert acc["retention"] == pytest.approx(chosen.served / r["full"] if r["full"] > 0 else 0.0)


def test_peer_baseline_fine_tunes_with_transformers_trainer(tiny_backbone, tiny_data, tmp_path):
    """--peer-baseline: Hugging Face's AutoModelForSequenceClassification + Trainer on the same rows and settings,
    its dev score beside ours in accuracy.{json,md}."""
    bert, tok = tiny_backbone
    # the tiny random BERT learns from its [CLS] pooler slowly: 15 epochs (a few seconds)
    cfg = TrainConfig(max_length=32, epochs_full=15, lr_full=1e-3, epochs_partial=1, epochs_distil=1)
    train(
        {"domain": tiny_data["domain"]},
        tmp_path,
        backbone="tiny-test-bert",
        cfg=cfg,
        search=SearchConfig([1], 0, 0.9),
        cache_dir=None,
        bert=bert,
        tokenizer=tok,
        peer_baseline=True,
    )
    r = Run(tmp_path).task_result("domain")
    peer = r["peer"]
    assert peer["settings"] == {
        "epochs": 15,
        "learning_rate": 1e-3,
        "batch_size": cfg.batch_size,
        "warmup": cfg.warmup,
        "weight_decay": cfg.weight_decay,
        "max_length": 32,
        "seed": 0,
        "train_examples": r["train_examples"],
        "dev_examples": r["dev_examples"],
    }
    assert peer["settings"]["train_examples"] == r["train_examples"] == 360
    assert peer["settings"]["dev_examples"] == r["dev_examples"] == 100
    assert peer["score"] > 0.5  # it learned: 6 balanced domains, chance is 1/6
    acc = write_accuracy(Run(tmp_path), tmp_path / "reports")
    assert acc["tasks"]["domain"]["peer"] == peer["score"]
    assert acc["tasks"]["domain"]["full_vs_peer"] == pytest.approx(r["full"] - peer["score"])
    md = (tmp_path / "reports" / "accuracy.md").read_text()
    assert "peer: HF Trainer" in md and f"{peer['score']:.4f} | {r['full']:.4f}" in md


def test_search_without_the_cache_is_the_same_search(tiny_backbone, tiny_data, tmp_path):
    """--measure-uncached reruns every candidate with the trunk computed per batch: same candidates, same
    scores up to the fp16 rounding of the cache, and its time recorded beside the cached search's."""
    bert, tok = tiny_backbone
    cfg = TrainConfig(
        max_length=32, epochs_full=1, epochs_partial=1, epochs_distil=1, lr_partial=1e-3, lr_distil=1e-3
    )
    train(
        {"sentiment": tiny_data["sentiment"]},
        tmp_path,
        backbone="tiny-test-bert",
        cfg=cfg,
        search=SearchConfig([1, 2], 1, 0.9),
        cache_dir=None,
        bert=bert,
        tokenizer=tok,
        measure_uncached=True,
    )
    result = Run(tmp_path).task_result("sentiment")
    assert result["seconds"]["search_uncached"] > 0
    cached, live = result["candidates"], result["uncached"]["candidates"]
    assert [(c["kind"], c["k"], c["l"]) for c in live] == [(c["kind"], c["k"], c["l"]) for c in cached]
    for c, u in zip(cached, live, strict=True):
        assert u["score"] == pytest.approx(c["score"], abs=0.03)
    write_accuracy(Run(tmp_path), tmp_path / "reports")
    md = (tmp_path / "reports" / "accuracy.md").read_text()
    assert "search without the cache" in md and "| sentiment |" in md


def test_corrupt_checkpoint_is_a_clear_error(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    ckpt = copy / "tasks" / "domain" / "branch.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupt checkpoint"):
        Run(copy).branch("domain")


def test_embedded_corpus_is_deterministic_and_disjoint():
    a, b = corpus.generate(300, 50, seed=3), corpus.generate(300, 50, seed=3)
    assert a["intent"].train.texts == b["intent"].train.texts
    assert not set(a["intent"].train.texts) & set(a["intent"].dev.texts)
    assert set(a) == {"domain", "intent", "sentiment", "urgency"}
    assert a["urgency"].spec.is_regression and all(0 <= v <= 1 for v in a["urgency"].train.labels)


def test_metrics():
    spec = TaskSpec("m", ("0", "1"), "mcc")
    assert score(spec, np.array([[0.9, 0.1], [0.1, 0.9]]), [0, 1]) == pytest.approx(1.0)
    assert score(
        TaskSpec("f", ("0", "1"), "f1"), np.array([[0.1, 0.9], [0.1, 0.9]]), [1, 0]
    ) == pytest.approx(2 / 3)
    assert score(TaskSpec("p", None, "spearman"), np.array([1.0, 2.0, 3.0]), [10, 20, 35]) == pytest.approx(
        1.0
    )


@pytest.mark.skipif(not GLUE_DIR.is_dir(), reason="../shared/glue is not beside this checkout")
@pytest.mark.parametrize("name", ["cola", "sst2", "mrpc", "stsb", "rte", "wnli", "qnli"])
def test_glue_loaders_read_the_real_files(name):
    first_dev = {  # (text starts with, pair starts with, label) of each dev file's first row
        "cola": ("The sailors rode the breeze", None, 1),
        "sst2": ("it 's a charming", None, 1),
        "mrpc": ("He said the foodservice pie", '" The foodservice pie', 1),
        "stsb": ("A man with a hard hat is dancing.", "A man wearing a hard hat", 5.0),
        "rte": ("Dana Reeve, the widow", "Christopher Reeve had an accident.", 1),
        "wnli": ("The drain is clogged with hair.", "The hair has to be cleaned.", 0),
    }
    data = load_glue(name, GLUE_DIR, max_train=50)
    if name in first_dev:
        text, pair, label = first_dev[name]
        assert data.dev.texts[0].startswith(text) and data.dev.labels[0] == label
        assert pair is None or data.dev.pairs[0].startswith(pair)
    assert len(data.train) == 50 and len(data.dev) > 50
    assert (data.train.pairs is not None) == (GLUE[name].text_pair is not None)
    if name == "qnli":
        assert any("split 80/20" in n for n in data.notes)


def test_data_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="missing data file"):
        load_tsv(tmp_path / "nope.tsv", name="x")
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\tpos\nbroken row\n")
    with pytest.raises(UserError, match="bad.tsv:3: bad row"):
        load_tsv(bad, name="x")
    spec = TaskSpec("x", ("neg", "pos"), "accuracy")
    unk = tmp_path / "unk.tsv"
    unk.write_text("text\tlabel\nhello\tmaybe\n")
    with pytest.raises(UserError, match="unknown label 'maybe'"):
        load_tsv(unk, spec)
    with pytest.raises(UserError, match="must match"):
        TaskSpec("Bad-Name", ("a", "b"), "accuracy")
    with pytest.raises(UserError, match="GLUE folder not found"):
        load_glue("rte", tmp_path)
    ok = tmp_path / "ok.tsv"
    ok.write_text("text\ttext_pair\tlabel\na\tb\t0.5\nc\td\t1.5\n")
    spec2, split = load_tsv(ok, name="sim", is_pair=True, regression=True)
    assert spec2.is_regression and split.pairs == ["b", "d"] and split.labels == [0.5, 1.5]
    assert isinstance(split, Split) and json.dumps(spec2.to_dict())


# ---------------------------------------------------------------- settings: the dataclass is the CLI
def _train_parser():
    import argparse

    from mtserve.training import pipeline

    p = argparse.ArgumentParser(prog="mtserve train")
    pipeline.configure(p)
    return p


def test_train_flags_are_the_config_dataclasses(monkeypatch):
    """Every TrainConfig / SearchConfig field is a `mtserve train` flag, its default and help the field's own."""
    from dataclasses import fields

    from mtserve.training.pipeline import config_from_args

    monkeypatch.setenv("COLUMNS", "1000")  # one line per option in the help text
    p = _train_parser()
    assert config_from_args(p.parse_args([])) == (TrainConfig(), SearchConfig())
    dests = {a.dest for a in p._actions}
    assert {f.name for f in fields(TrainConfig) + fields(SearchConfig)} <= dests
    argv = ["--k", "3,1,3", "--lr-full", "1e-3", "--pooling", "cls", "--max-student-layers", "0"]
    cfg, search = config_from_args(p.parse_args(argv))
    assert search == SearchConfig([1, 3], 0, 0.995)
    assert cfg == TrainConfig(lr_full=1e-3, pooling="cls")
    assert search.pooling_of_branches(cfg) == "cls"  # branches pool as full fine-tuning unless told otherwise
    _, search = config_from_args(p.parse_args([*argv, "--branch-pooling", "mean"]))
    assert search.pooling_of_branches(cfg) == "mean" and search.to_dict()["branch_pooling"] == "mean"
    # a run recorded before the setting existed searched as the default does: the two records compare equal
    assert "branch_pooling" not in SearchConfig().to_dict()
    assert SearchConfig.from_dict(SearchConfig().to_dict()) == SearchConfig()
    help_text = p.format_help()
    assert re.search(
        r"--k K,\.\.\.\s+numbers of fine-tuned top layers to try.*\(default: 1,2,3\)\n", help_text
    )
    assert re.search(
        r"--lr-full FLOAT\s+peak learning rate of full fine-tuning \(default: 5e-05\)\n", help_text
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr-full", "0"], "--lr-full must be > 0, got 0.0"),
        (["--warmup", "1.5"], "--warmup must be in [0, 1], got 1.5"),
        (["--retention-target", "0"], "--retention-target must be in (0, 1]"),
        (["--k", ","], "--k must name at least one k, got []"),
        (["--max-student-layers", "-1"], "--max-student-layers must be >= 0"),
    ],
)
def test_bad_settings_are_refused_naming_their_flag(argv, message, capsys):
    from mtserve.cli import main

    assert main(["train", *argv]) == 2  # before any data or backbone is loaded
    assert capsys.readouterr().err.startswith(f"mtserve train: error: {message}")


def test_unparsable_flags_are_argparse_errors(capsys):
    p = _train_parser()
    with pytest.raises(SystemExit):
        p.parse_args(["--k", "1,x"])
    assert "argument --k: comma-separated integers, got '1,x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        p.parse_args(["--pooling", "max"])
    assert "argument --pooling: invalid choice: 'max'" in capsys.readouterr().err


def test_stored_settings_read_back():
    d = TrainConfig(lr_full=1e-3).to_dict()
    assert "extra" not in d
    assert TrainConfig.from_dict({**d, "extra": {}}) == TrainConfig(lr_full=1e-3)  # runs from before it went
    with pytest.raises(UserError, match=r"unknown TrainConfig setting\(s\) \['lr_fulll'\]"):
        TrainConfig.from_dict({**d, "lr_fulll": 1.0})
    with pytest.raises(UserError, match="--temperature must be > 0"):
        TrainConfig.from_dict({**d, "temperature": 0.0})
    assert SearchConfig.from_dict(SearchConfig([2], 1, 0.9).to_dict()) == SearchConfig([2], 1, 0.9)


def test_candidates_keep_the_stored_json_format(tiny_run):
    """search.json and the branch checkpoints store candidates as before the Candidate type (older runs and
    docs/results read the same): its dict, key for key, in the same order."""
    stored = {  # a chosen branch as runs wrote it: the search's fields, then the choice's
        "kind": "distilled",
        "k": 3,
        "l": 1,
        "branch_depth": 3,
        "task_layers": 1,
        "score": 0.897,
        "seconds": 12.5,
        "meets_target": True,
        "served": 0.9,
    }
    c = Candidate.from_dict(stored)
    assert (c.key, c.name) == (("distilled", 3, 1), "k3->l1")
    assert list(c.to_dict().items()) == list(stored.items())
    bare = {k: stored[k] for k in ("kind", "k", "l", "branch_depth", "task_layers", "score")}
    assert list(Candidate.from_dict(bare).to_dict().items()) == list(bare.items())
    # runs since validation splits add each candidate's dev score after its time (`score`: on validation)
    now = [*list(stored)[:7], "dev", *list(stored)[7:]]
    run = Run(tiny_run)
    for task in run.tasks():
        r = run.task_result(task)
        assert list(r["chosen"]) == now
        assert all(list(c) == now[:8] for c in r["candidates"])
        assert run.branch(task)[1]["chosen"] == r["chosen"]


# ---------------------------------------------------------------- the k rule
TINY_LAYERS = 4  # tests/conftest.py's tiny_backbone


@pytest.mark.parametrize("k", range(TINY_LAYERS + 2))
def test_train_and_task_add_accept_the_same_k(k, tiny_run):
    """1 <= k < layers, one rule for both commands: k = layers would fine-tune every layer on a depth-0 trunk
    (the full fine-tuning baseline). `mtserve train` checks SearchConfig.check_against; `mtserve task add` and
    `retrain` check RunContext.config, which calls it on the run's settings with the task's overrides."""
    from types import SimpleNamespace

    from mtserve.lifecycle.run_context import RunContext

    fingerprint = Run(tiny_run).meta["trunk_fingerprint"]
    ctx = RunContext(tiny_run, SimpleNamespace(trunk=SimpleNamespace(fingerprint=fingerprint)))
    checks = {
        "mtserve train": lambda: SearchConfig([1, k]).check_against(TINY_LAYERS),
        "mtserve task add": lambda: ctx.config({"k_values": [1, k]}),
    }
    for check in checks.values():
        if 1 <= k < TINY_LAYERS:
            check()
        else:
            with pytest.raises(
                UserError, match=rf"--k values \[{k}\] outside 1..3 for this 4-layer backbone"
            ):
                check()


@pytest.mark.parametrize("k", [0, TINY_LAYERS])
def test_train_refuses_k_outside_the_rule(k, tiny_backbone, tmp_path, capsys):
    from mtserve.cli import main

    bert, tokenizer = tiny_backbone
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    argv = ["train", "--backbone", str(tmp_path / "bert"), "--tasks", "sentiment", "--k", f"1,{k}"]
    argv += ["--run-dir", str(tmp_path / "run"), "--reports", str(tmp_path / "reports"), "--cache-dir", ""]
    assert main(argv) == 2
    assert f"--k values [{k}] outside 1..3" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing trained, nothing left behind


@pytest.mark.parametrize("k", [0, TINY_LAYERS])
def test_task_add_refuses_k_outside_the_rule(k, tiny_run, tiny_repo, tiny_data, tmp_path, capsys):
    import shutil

    from mtserve.cli import main

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    d = tiny_data["sentiment"]
    rows = [f"{t}\t{d.spec.labels[y]}" for t, y in zip(d.train.texts[:40], d.train.labels[:40], strict=True)]
    (tmp_path / "mood.tsv").write_text("\n".join(["text\tlabel", *rows]) + "\n")
    registry_before = (repo / "registry.json").read_bytes()
    data = ["--train", str(tmp_path / "mood.tsv"), "--dev", str(tmp_path / "mood.tsv")]
    argv = ["task", "add", "mood", *data, "--repo", str(repo), "--run-dir", str(tiny_run), "--k", f"1,{k}"]
    assert main([*argv, "--cache-dir", ""]) == 2
    assert f"--k values [{k}] outside 1..3" in capsys.readouterr().err
    assert (repo / "registry.json").read_bytes() == registry_before and not (repo / "mood").exists()


def test_retention_interval_is_paired_and_narrows_with_more_dev_rows():
    from mtserve.training.evaluate import retention_interval

    spec = TaskSpec("x", ("a", "b"), "accuracy")
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    full = np.eye(2)[np.where(rng.random(400) < 0.9, gold, 1 - gold)]  # right on ~90% of rows
    # the same model twice: every resample agrees exactly, so the interval is the point
    assert retention_interval(spec, full, full, gold, resamples=200) == (1.0, 1.0, 1.0)
    served = full.copy()
    wrong = np.flatnonzero(full.argmax(1) == gold)[:12]  # 12 rows full fine-tuning gets right, served not
    served[wrong] = served[wrong, ::-1]
    point, low, high = retention_interval(spec, served, full, gold, resamples=500)
    assert point == pytest.approx(1 - 12 / (full.argmax(1) == gold).sum())
    assert low < point < high <= 1.0  # the served model is never better on any row: no resample above 1
    # the same disagreement on 4x the rows: the dev set pins the ratio closer
    p4, low4, high4 = retention_interval(
        spec, np.tile(served, (4, 1)), np.tile(full, (4, 1)), np.tile(gold, 4), resamples=500
    )
    assert p4 == pytest.approx(point) and (high4 - low4) < 0.7 * (high - low)
    with pytest.raises(ValueError, match="x: outputs and labels differ in length"):
        retention_interval(spec, served[:-1], full, gold)
