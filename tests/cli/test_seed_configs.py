"""Every seed flagfile (`configs/s*.flags`) runs end to end through the real `bin/train` on the tiny
demo corpus, with small overrides for speed only (model sizes, clip length, one epoch, the tiny
Hugging Face checkpoints of tests/encoders/data in place of the real ones, `--classes=4` where the
recipe expects 5 or 7 emotions). The S2 stages run in order, stage 3 finding stages 1–2 by path;
`bin/evaluate` and `bin/export` then work on what the recipes trained. Those runs are marked slow;
the flag checks the flagfiles rely on (--classes, --augment_classes, augmentation presets, the
encoder fine-tuning flags) and the pipeline's batch count for the LR schedule are fast.
"""

import concurrent.futures
import glob
import json
import math
import os
import threading

import numpy as np
import pytest

from tests.conftest import REPO, run_cli

ROBERTA = "tests/encoders/data/roberta_klue"  # klue/roberta-base layout (WordPiece)
KOBERT = "tests/encoders/data/kobert_spm"  # skt/kobert-base-v1 layout (SentencePiece)
WAV2VEC2 = "tests/encoders/data/wav2vec2_layer"  # wav2vec2-large-xlsr layout (layer norm, pre-norm)
COMMON = ["--epochs=1", "--batch_size=8", "--progress=false"]

# Speed overrides per flagfile; everything else comes from the file.
OVERRIDES = {
    "s0_macaron_text": [
        "--classes=4", "--vocabulary=", "--vocab_size=300", "--warmup_steps=2",
        "--model_kwargs=sequence_length=32,hidden_dim=16,num_layers=1,num_heads=2,head_dim=8,"
        "intermediate_dim=16,num_memory_kv=2,output_dim=32,head_filters=4",
    ],
    "s0_mfcc_fusion": [
        "--classes=4", "--vocabulary=", "--vocab_size=300", "--warmup_steps=2", "--max_seconds=2",
        "--model_kwargs=audio_units=8,text_hidden_dim=16,text_num_layers=1,text_num_heads=2,"
        "text_intermediate_dim=16,text_num_memory_kv=2,text_output_dim=32,head_filters=4",
    ],
    "s0_mfcc_random_forest": ["--classes=4", "--model_kwargs=n_estimators=10,n_mfcc=13,sample_rate=22050"],
    "s0_w2v2_classifier": [
        "--classes=4", "--max_seconds=1", f"--audio_encoder={WAV2VEC2}",
        "--model_kwargs=num_layers=1,dropout=0.2,freeze_feature_encoder=True",
    ],
    "s1_conv1d_fusion": [
        "--max_seconds=2", f"--text_encoder={ROBERTA}", "--sequence_length=32",
        "--model_kwargs=filters=8,dense_units=8",
    ],
    "s1_resnet_mel": ["--max_seconds=2", "--n_mels=32", "--model_kwargs=widths=4:8,blocks_per_stage=1:1"],
    "s1_stacking": ["--model_kwargs=base_models=tfidf_svm:mfcc_random_forest,n_splits=2"],
    # Beyond the recipe: the fine-tuning flags of issue 4 reach the trainer.
    "s1_text_finetune": [
        f"--text_encoder={ROBERTA}", "--sequence_length=32", "--warmup_steps=2",
        "--trainable_encoder_layers=1", "--layerwise_lr_decay=0.8",
    ],
}
# The S2 audio side: 16 bands → 4 after the stride-2 convs × 4 channels = 16, the tiny text encoders'
# width, so stage 3 can concatenate the two sequences on time.
S2_AUDIO = ["--classes=4", "--max_seconds=2", "--n_mels=16", "--max_frames=64",
            "--audio_augment=preset=seed002,freq_mask_width=2:4"]
S2_OVERRIDES = {
    "s2_1_arousal_regressor": S2_AUDIO + [
        "--model_kwargs=conv_channels=4:4:4:4,num_layers=1,num_heads=2,intermediate_dim=16,gru_units=8,gru_layers=1",
    ],
    "s2_2_valence_regressor": [
        "--classes=4", f"--text_encoder={KOBERT}", "--sequence_length=32",
        "--model_kwargs=num_layers=1,num_heads=2,intermediate_dim=16,gru_units=8,gru_layers=1",
    ],
    "s2_3_va_fusion_classifier": S2_AUDIO + [
        f"--text_encoder={KOBERT}", "--sequence_length=32",
        "--model_kwargs=num_layers=1,num_heads=2,intermediate_dim=16,lstm_units=8,lstm_layers=1",
    ],
}
SKLEARN = {"s0_mfcc_random_forest", "s1_stacking"}


def _train(name, manifest, model_dir, *extra):
    return run_cli("train", f"--flagfile=configs/{name}.flags", f"--manifest={manifest}",
                   f"--model_dir={model_dir}", *COMMON, *extra, check=False)


def _check(proc):
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(proc.args[3:])} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def runs(tiny_corpus, tmp_path_factory):
    """Every seed flagfile trained once, two runs at a time (each is mostly single-threaded start-up
    and tracing). S2 stage 3 starts when stages 1 and 2 are done and finds them by path."""
    root = tmp_path_factory.mktemp("seed_runs")
    manifest = tiny_corpus["manifest"]
    dirs = {name: str(root / name) for name in [*S2_OVERRIDES, *OVERRIDES]}

    def job(name, *extra):
        return _train(name, manifest, dirs[name], *(OVERRIDES.get(name) or S2_OVERRIDES[name]), *extra)

    stage1_2 = threading.Semaphore(0)
    def stage(name):
        try:
            return job(name)
        finally:
            stage1_2.release()

    def stage3():
        stage1_2.acquire()
        stage1_2.acquire()
        return job("s2_3_va_fusion_classifier",
                   f"--init_from=arousal_regressor={dirs['s2_1_arousal_regressor']},"
                   f"valence_regressor={dirs['s2_2_valence_regressor']}")

    # Three threads, two busy processes: stage 3 waits (idle) until stages 1-2 are done.
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {"s2_1_arousal_regressor": pool.submit(stage, "s2_1_arousal_regressor"),
                   "s2_2_valence_regressor": pool.submit(stage, "s2_2_valence_regressor"),
                   "s2_3_va_fusion_classifier": pool.submit(stage3)}
        futures.update({name: pool.submit(job, name) for name in OVERRIDES})
        procs = {name: f.result() for name, f in futures.items()}
    return {"dirs": dirs, "procs": procs, **tiny_corpus}


def _summary(model_dir):
    assert os.path.isfile(os.path.join(model_dir, "model.keras"))
    with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["epochs_run"] == 1
    assert math.isfinite(summary["best_value"])
    assert summary["valid_metrics"][summary["selection_metric"]] == pytest.approx(summary["best_value"])
    return summary


def _load(model_dir):
    import keras

    from tfsent.models import registry

    registry.names()
    return keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)


def _same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


SHARED = {"s2_shared"}  # included by the S2 stage flagfiles; not a run by itself


def test_every_seed_flagfile_is_covered():
    files = {os.path.basename(p)[: -len(".flags")] for p in glob.glob(os.path.join(REPO, "configs", "s*.flags"))}
    assert files == set(OVERRIDES) | set(S2_OVERRIDES) | SHARED


def test_s2_stages_share_one_flagfile():
    for name in S2_OVERRIDES:
        with open(os.path.join(REPO, "configs", f"{name}.flags"), encoding="utf-8") as f:
            flags = [line for line in f.read().splitlines() if line.startswith("--")]
        assert flags[0] == "--flagfile=configs/s2_shared.flags", name
        assert not any(line.startswith(("--n_mels=", "--features=", "--sequence_length=")) for line in flags), name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_seed_flagfile_trains_end_to_end(name, runs):
    model_dir = runs["dirs"][name]
    proc = _check(runs["procs"][name])
    if name in SKLEARN:
        with open(os.path.join(model_dir, "train_summary.json"), encoding="utf-8") as f:
            metrics = json.load(f)["valid_metrics"]
        assert os.path.isfile(os.path.join(model_dir, "model.pkl"))
        assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["split"] == "valid"
        assert np.asarray(metrics["confusion_matrix"]).shape == (4, 4)
        # A scikit-learn run is a run like any other: bin/evaluate scores it on the test split.
        run_cli("evaluate", f"--model_dir={model_dir}")
        with open(os.path.join(model_dir, "eval", "metrics.json"), encoding="utf-8") as f:
            test = json.load(f)
        assert test["split"] == "test" and test["num_examples"] == test["num_examples_in_split"] > 0
        assert np.asarray(test["confusion_matrix"]).sum() == test["num_examples"]
        assert os.path.isfile(os.path.join(model_dir, "eval", "predictions.csv"))
        return
    summary = _summary(model_dir)
    with open(os.path.join(model_dir, "tfsent_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["classes"] == ["neutral", "happy", "sad", "angry"]
    if name == "s0_w2v2_classifier":
        # The checkpoint reached the model, and its feature encoder stayed frozen while training.
        from tfsent.encoders import load_audio_encoder

        assert config["audio_encoder"] == os.path.join(REPO, WAV2VEC2)
        trained = _load(model_dir)
        reference = load_audio_encoder(os.path.join(REPO, WAV2VEC2), num_layers=1).model
        assert _same_weights(trained.get_layer("wav2vec2_encoder").get_layer("feature_extractor"),
                             reference.get_layer("feature_extractor"))
    if name == "s1_text_finetune":
        # --trainable_encoder_layers=1: the lower layer and embeddings are frozen (and unchanged);
        # --layerwise_lr_decay scales the top layer's learning rate.
        from tfsent.encoders import load_text_encoder

        assert "frozen encoder layers: transformer_layer_0, token_embedding" in proc.stdout
        assert "layer-wise lr decay 0.8" in proc.stdout
        trained = _load(model_dir)
        reference = load_text_encoder(os.path.join(REPO, ROBERTA), sequence_length=32).backbone
        backbone = next(l for l in trained.layers if l.name == reference.name)
        assert _same_weights(backbone.get_layer("transformer_layer_0"), reference.get_layer("transformer_layer_0"))
        assert not _same_weights(backbone.get_layer("transformer_layer_1"), reference.get_layer("transformer_layer_1"))
    assert summary["history"][0]["train_loss"] > 0
    if config["model"] in ("conv1d_fusion", "mfcc_fusion"):
        _check_modality_ablation(model_dir)


def _check_modality_ablation(model_dir):
    """bin/evaluate scores a fusion model without audio and without text too (and says so)."""
    proc = run_cli("evaluate", f"--model_dir={model_dir}")
    assert "audio removed:" in proc.stdout and "text removed:" in proc.stdout
    with open(os.path.join(model_dir, "eval", "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    ablation = metrics["modality_ablation"]
    assert ablation["full"]["macro_f1"] == metrics["macro_f1"]
    for name in ("audio_removed", "text_removed"):
        removed = ablation[name]
        assert removed["num_examples"] == metrics["num_examples"] > 0
        assert 0.0 <= removed["macro_f1"] <= 1.0 and 0.0 <= removed["agreement_with_full"] <= 1.0
    assert "per_condition" in metrics  # the tiny corpus is a demo corpus
    return metrics


@pytest.mark.slow
def test_s2_regressors_train(runs):
    for name, target in (("s2_1_arousal_regressor", "arousal"), ("s2_2_valence_regressor", "valence")):
        proc = _check(runs["procs"][name])
        assert "augmenting ['happy', 'angry', 'sad'] only" in proc.stderr  # surprise: not in 4 classes
        summary = _summary(runs["dirs"][name])
        assert summary["selection_metric"] == "rmse"
        assert set(_load(runs["dirs"][name]).output) == {target}


@pytest.mark.slow
def test_s2_fusion_reuses_the_trained_regressor_backbones(runs):
    from tfsent.models.stages import AUDIO_BACKBONE, TEXT_BACKBONE

    dirs = runs["dirs"]
    _check(runs["procs"]["s2_3_va_fusion_classifier"])
    summary = _summary(dirs["s2_3_va_fusion_classifier"])
    assert summary["selection_metric"] == "weighted_f1"
    fusion = _load(dirs["s2_3_va_fusion_classifier"])
    # Frozen in stage 3: the backbones are exactly the stage 1-2 ones.
    assert _same_weights(fusion.get_layer(AUDIO_BACKBONE), _load(dirs["s2_1_arousal_regressor"]).get_layer(AUDIO_BACKBONE))
    assert _same_weights(fusion.get_layer(TEXT_BACKBONE), _load(dirs["s2_2_valence_regressor"]).get_layer(TEXT_BACKBONE))
    metrics = _check_modality_ablation(dirs["s2_3_va_fusion_classifier"])
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["num_examples"] == 4


@pytest.mark.slow
def test_s2_fusion_refuses_stages_trained_with_other_settings(runs, tmp_path):
    """Stage 3 with other audio features than stage 1 fails before training, naming the difference."""
    dirs = runs["dirs"]
    run = tmp_path / "mismatch"
    err = _fails("--flagfile=configs/s2_3_va_fusion_classifier.flags", f"--manifest={runs['manifest']}",
                 f"--model_dir={run}", *COMMON, *S2_OVERRIDES["s2_3_va_fusion_classifier"], "--n_mels=24",
                 f"--init_from=arousal_regressor={dirs['s2_1_arousal_regressor']},"
                 f"valence_regressor={dirs['s2_2_valence_regressor']}")
    assert "arousal_regressor" in err and "different settings: feature" in err, err[-2000:]
    assert "'n_mels': 24" in err and "'n_mels': 16" in err
    assert not os.path.exists(os.path.join(run, "model.keras"))


@pytest.mark.slow
def test_model_trained_with_text_encoder_exports_and_reloads(runs, tmp_path):
    """The valence regressor (KoBERT SentencePiece tokenizer in the graph) through bin/export's path."""
    import tensorflow as tf

    from tfsent.encoders import load_text_encoder

    from tfsent.export.saved_model import export_model_dir

    model_dir = runs["dirs"]["s2_2_valence_regressor"]
    path = export_model_dir(model_dir, str(tmp_path))  # what bin/export runs
    assert path == str(tmp_path / "valence_regressor" / "1")
    loaded = tf.saved_model.load(path)
    texts = ["정말 기뻐요!", "가슴이 먹먹해."]
    served = loaded.signatures["serving_default"](text=tf.constant(texts))["valence"].numpy()
    model = _load(model_dir)
    tokens = load_text_encoder(os.path.join(REPO, KOBERT), sequence_length=32).preprocessor(tf.constant(texts))
    expected = model({k: tokens[k] for k in ("token_ids", "padding_mask")}, training=False)["valence"].numpy()
    np.testing.assert_allclose(served, expected.reshape(-1), rtol=1e-4, atol=1e-5)


# --- fast checks of what the flagfiles rely on -----------------------------------------------------


def _fails(*args):
    proc = run_cli("train", *args, check=False, timeout=300)
    assert proc.returncode in (1, 2), proc.stderr[-3000:]  # 1: absl flag validators, 2: bin/train checks
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr


def test_classes_flag_checks_the_manifest_naming_both(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    err = _fails("--flagfile=configs/s0_macaron_text.flags", f"--manifest={tiny_corpus['manifest']}",
                 f"--model_dir={run}")
    assert "--classes=7" in err and "'surprise', 'fear', 'disgust'" in err
    assert "['neutral', 'happy', 'sad', 'angry']" in err and "manifest.json" in err
    assert not run.exists()


@pytest.mark.parametrize("args, named", [
    (["--augment_classes=happy,joy", "--audio_augment=freq_mask_prob=1"], ["--augment_classes", "'joy'"]),
    (["--augment_classes=surprise,fear", "--audio_augment=freq_mask_prob=1"], ["none of these", "surprise,fear"]),
    (["--freeze_encoder"], ["--freeze_encoder", "--text_encoder or --audio_encoder"]),
    (["--text_encoder=x", "--layerwise_lr_decay=0.9", "--optimizer=sgd"], ["--layerwise_lr_decay", "adam"]),
    (["--audio_augment=freq_mask"], ["--audio_augment", "key=value", "'freq_mask'"]),
    (["--audio_augment=preset=seed009"], ["--audio_augment", "unknown preset 'seed009'", "seed001, seed002"]),
    (["--text_augment=swap=0.3"], ["--text_augment", "unknown setting(s) swap", "swap_ratio"]),
])
def test_bad_augmentation_and_encoder_flags_fail_before_writing_anything(args, named, tiny_corpus, tmp_path):
    run = tmp_path / "run"
    err = _fails("--flagfile=configs/demo.flags", f"--manifest={tiny_corpus['manifest']}", f"--model_dir={run}",
                 *args)
    for name in named:
        assert name in err, err[-3000:]
    assert not run.exists()


def test_pipeline_max_batches_bounds_every_epoch(tiny_corpus):
    """The LR schedule is planned with `max_batches`: bucketed training epochs never exceed it."""
    from tfsent.audio.features import FeatureConfig
    from tfsent.corpus.manifest import read_manifest
    from tfsent.data.pipeline import InputPipeline, PipelineConfig

    frame, sidecar = read_manifest(tiny_corpus["manifest"])
    config = PipelineConfig(feature=FeatureConfig(kind="log_mel", n_mels=16), batch_size=3, max_seconds=2.0,
                            model_inputs=("audio_features", "audio_mask"))
    pipeline = InputPipeline(frame, sidecar, config)
    n = pipeline.num_examples("train")
    assert pipeline.max_batches("train") == math.ceil(n / 3) + 3  # 4 length buckets
    assert pipeline.max_batches("train", training=False) == math.ceil(n / 3)
    for epoch in range(2):
        batches = sum(1 for _ in pipeline.dataset("train", training=True, epoch=epoch))
        assert math.ceil(n / 3) <= batches <= pipeline.max_batches("train")
    no_bucket = InputPipeline(frame, sidecar, PipelineConfig(**{**config.__dict__, "bucket": False}))
    assert no_bucket.max_batches("train") == math.ceil(n / 3)
