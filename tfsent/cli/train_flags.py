"""Every `bin/train` flag, defined in one place and grouped: data, model, optimisation, distribution,
logging. `--flagfile=configs/X.flags` is the normal way to run; flags given on the command line after
it override the file; an unknown flag is an error (absl's behaviour).

`define_train_flags()` defines them (idempotent); `validate()` rejects impossible combinations with a
message naming the flags; `resolved_flags()` returns the fully resolved values as a dict, which the
trainer writes into the model dir.
"""

from __future__ import annotations

from absl import flags

from tfsent.core.errors import UsageError
from tfsent.metrics.definitions import CLASSIFICATION_METRICS, REGRESSION_METRICS

FLAGS = flags.FLAGS

GROUPS: dict[str, list[str]] = {}


def _group(name, define, flag_name, *args, **kwargs):
    define(flag_name, *args, **kwargs)
    GROUPS.setdefault(name, []).append(flag_name)


_defined = False


def define_train_flags():
    """Defines the training flags (once per process)."""
    global _defined
    if _defined:
        return
    _defined = True
    for define in (_define_data_flags, _define_model_flags, _define_optimisation_flags,
                   _define_distribution_flags, _define_logging_flags):
        define()
    _register_validators()


def _define_data_flags():
    g = "data"
    _group(g, flags.DEFINE_string, "manifest", None, "manifest.csv written by bin/prepare.")
    _group(g, flags.DEFINE_enum, "task", "classification", ["classification", "valence", "arousal"],
           "What to predict: the emotion class, or the valence / arousal mean (regression).")
    _group(g, flags.DEFINE_enum, "classes", None, ["4", "5", "7", "binary"],
           "A check, not a setting: the class set the run expects. The classes always come from the "
           "manifest (bin/prepare --classes=...); when set and the manifest's sidecar holds another "
           "class set, bin/train stops naming both.")
    _group(g, flags.DEFINE_string, "train_split", "train", "Manifest split used for training.")
    _group(g, flags.DEFINE_string, "valid_split", "valid",
           "Manifest split used for model selection (early stopping, best checkpoint). The test split "
           "is never read by bin/train.")
    _group(g, flags.DEFINE_enum, "features", "log_mel", ["log_mel", "log_mel_delta", "mfcc", "waveform"],
           "Audio features computed in-graph from the waveform.")
    _group(g, flags.DEFINE_integer, "sample_rate", 16000, "Model sample rate; audio is resampled to it.")
    _group(g, flags.DEFINE_integer, "n_fft", 400, "STFT size.")
    _group(g, flags.DEFINE_integer, "win_length", None, "STFT window length (default n_fft).")
    _group(g, flags.DEFINE_integer, "hop_length", 160, "STFT hop.")
    _group(g, flags.DEFINE_integer, "n_mels", 64, "Mel bands.")
    _group(g, flags.DEFINE_float, "fmin", 0.0, "Lowest Mel frequency (Hz).")
    _group(g, flags.DEFINE_float, "fmax", None, "Highest Mel frequency (Hz; default sample_rate/2).")
    _group(g, flags.DEFINE_enum, "mel_scale", "slaney", ["slaney", "htk"], "Mel scale.")
    _group(g, flags.DEFINE_integer, "n_mfcc", 13, "MFCC coefficients (features=mfcc).")
    _group(g, flags.DEFINE_string, "db_ref", "max",
           "power_to_db reference: 'max' (per clip, real frames only) or a number.")
    _group(g, flags.DEFINE_float, "top_db", 80.0, "power_to_db dynamic-range floor (dB).")
    _group(g, flags.DEFINE_float, "max_seconds", 4.0, "Clips are cropped (random in training, centre "
           "otherwise) or zero-padded to this duration.")
    _group(g, flags.DEFINE_integer, "max_frames", None, "Pad/truncate features to this many frames "
           "(seed 002 uses 512); default: as many as the batch's longest clip has.")
    _group(g, flags.DEFINE_string, "vocabulary", None, "WordPiece vocabulary file (one token per line). "
           "Default: trained on the training split's text and saved as MODEL_DIR/vocab.txt.")
    _group(g, flags.DEFINE_integer, "vocab_size", 2000, "Size of the vocabulary trained when --vocabulary is unset.")
    _group(g, flags.DEFINE_integer, "sequence_length", 32, "Tokens per text, [CLS] and [SEP] included.")
    _group(g, flags.DEFINE_string, "text_encoder", None, "Local Hugging Face checkpoint folder for the text side.")
    _group(g, flags.DEFINE_string, "audio_encoder", None, "Local Hugging Face checkpoint folder for the audio side.")
    _group(g, flags.DEFINE_boolean, "cache_audio", False, "Cache decoded, resampled waveforms in memory "
           "(fast for small corpora; augmentation still runs fresh every epoch).")
    _group(g, flags.DEFINE_string, "snapshot_dir", None, "Folder for decoded, resampled audio on disk (built "
           "once per split, reused by later epochs and runs; memory stays flat in corpus size).")
    _group(g, flags.DEFINE_enum, "class_weights", "none", ["none", "balanced"],
           "Per-example loss weights: 'balanced' weighs class c by N / (C * N_c) on the training split.")
    _group(g, flags.DEFINE_boolean, "balanced_sampling", False,
           "Sample training examples with equal probability per class (epoch size unchanged).")
    _group(g, flags.DEFINE_list, "augment_classes", [], "Augment only examples of these classes "
           "(names; seed 002 augments minority classes). Empty: all classes. A known emotion the "
           "manifest does not have (e.g. surprise on a 4-class manifest) is skipped with a warning; "
           "an unknown name is an error.")
    _group(g, flags.DEFINE_list, "audio_augment", [], "Audio augmentation (waveform and SpecAugment), "
           "key=value pairs of tfsent.audio.augment.AudioAugmentConfig, ranges as lo:hi "
           "(e.g. noise_prob=0.5,noise_snr_db=10:30,freq_mask_prob=0.5). preset=seed001 (noise, "
           "stretch, pitch) or preset=seed002 (frequency masks) starts from a seed recipe; the other "
           "pairs override it (preset=seed002,freq_mask_width=2:4).")
    _group(g, flags.DEFINE_string, "data_service", None, "Run the training input pipeline on tf.data service "
           "workers: the dispatcher's address grpc://HOST:PORT (start them with bin/data_service; BUILD.md). "
           "Each training row once per epoch, same per-example augmentation seeds; WAV only (or --snapshot_dir).")
    _group(g, flags.DEFINE_enum, "augment_domain", "auto", ["auto", "feature", "waveform"],
           "Where --audio_augment's time stretch and pitch shift run: 'feature' on the spectrogram the "
           "feature layer computes (frame-axis resampling, frequency warping: ~2x cheaper per clip), "
           "'waveform' by phase vocoder + resampling; 'auto': feature for log-Mel/MFCC models, waveform "
           "for waveform models. Same draws (which clips, which rate / shift) either way.")
    _group(g, flags.DEFINE_list, "text_augment", [], "Text augmentation settings, key=value pairs of "
           "tfsent.text.augment.TextAugmentConfig (swap_ratio, deletion_rate, apply_prob); "
           "preset=seed002 is random swap + deletion of 30% of the tokens.")
    _group(g, flags.DEFINE_list, "robust_augment", [], "Robust training: corruptions of training examples, "
           "key=value pairs of tfsent.data.corruptions.RobustAugmentConfig, ranges as lo:hi (e.g. "
           "noise_prob=0.3,noise_snr_db=0:20,babble_prob=0.3,telephone_prob=0.2,reverb_prob=0.3,"
           "text_cer_prob=0.3,text_cer=0:0.3). Babble from the training split and room impulse responses "
           "are built once from --seed (configs/demo_robust.flags).")


def _define_model_flags():
    g = "model"
    _group(g, flags.DEFINE_string, "model", None, "Registered model name (bin/train --list_models).")
    _group(g, flags.DEFINE_list, "model_kwargs", [], "Model-specific builder arguments, key=value pairs.")
    _group(g, flags.DEFINE_list, "init_from", [], "NAME=MODEL_DIR pairs: sub-models initialised from "
           "earlier runs (S2 stage 3 finds its regressors this way).")
    _group(g, flags.DEFINE_float, "aux_loss_weight", 0.0, "Multimodal models: add one auxiliary classifier "
           "per modality (audio_logits, text_logits) whose cross-entropy, times this weight, joins the "
           "loss, so the slower branch is trained even when the other fits alone (0: none; "
           "single-modality models ignore it). Recorded in tfsent_config.json.", lower_bound=0.0)
    _group(g, flags.DEFINE_list, "modality_dropout", [], "Multimodal models: audio=RATE,text=RATE: zero one "
           "modality's whole embedding for this fraction of training examples, per modality (overrides the "
           "model's own rate; single-modality models ignore it). Recorded in tfsent_config.json.")
    _group(g, flags.DEFINE_boolean, "speaker_norm", False, "Standardise the spectral features of each "
           "utterance with the statistics of its speaker's other utterances in the same split (the "
           "manifest's speaker column; at evaluation the evaluated split's, as an enrolment set). "
           "Recorded in tfsent_config.json; such a run does not export.")
    _group(g, flags.DEFINE_boolean, "list_models", False, "Print every registered model name and exit.")


def _define_optimisation_flags():
    g = "optimisation"
    _group(g, flags.DEFINE_integer, "epochs", 10, "Maximum epochs.")
    _group(g, flags.DEFINE_integer, "batch_size", 32, "Global batch size (split across replicas).")
    _group(g, flags.DEFINE_integer, "steps_per_epoch", None, "Cap on steps per epoch (default: one pass).")
    _group(g, flags.DEFINE_float, "learning_rate", 1e-3, "Peak learning rate.")
    _group(g, flags.DEFINE_enum, "optimizer", "adam", ["adam", "adamw", "sgd"], "Optimiser.")
    _group(g, flags.DEFINE_float, "weight_decay", 0.0, "Decoupled weight decay (adamw).")
    _group(g, flags.DEFINE_enum, "lr_schedule", "constant", ["constant", "cosine", "linear"],
           "Learning-rate schedule after warm-up.")
    _group(g, flags.DEFINE_integer, "warmup_steps", 0, "Linear warm-up steps.")
    _group(g, flags.DEFINE_float, "clipnorm", None, "Clip gradients to this global norm.")
    _group(g, flags.DEFINE_integer, "early_stopping_patience", 0,
           "Stop after this many epochs without improvement of --selection_metric (0: off).")
    _group(g, flags.DEFINE_string, "selection_metric", None, "Validation metric for early stopping and the "
           "best checkpoint (default macro_f1 for classification, ccc for regression; 'loss' allowed).")
    _group(g, flags.DEFINE_boolean, "freeze_encoder", False,
           "Freeze the pretrained encoder (--text_encoder / --audio_encoder) inside the model: "
           "embeddings, every transformer layer and wav2vec2's feature encoder; the head trains.")
    _group(g, flags.DEFINE_integer, "trainable_encoder_layers", None,
           "Fine-tune only the top N transformer layers of the pretrained encoder (embeddings and the "
           "lower layers frozen). 0 is --freeze_encoder. Default: every layer trains (unless the model "
           "freezes its encoder itself, e.g. valence_regressor, conv1d_fusion).")
    _group(g, flags.DEFINE_boolean, "freeze_feature_encoder", False,
           "Freeze wav2vec2 / HuBERT's convolutional feature encoder (seed 000), the rest trains.")
    _group(g, flags.DEFINE_float, "layerwise_lr_decay", None,
           "Layer-wise learning-rate decay for fine-tuning (e.g. 0.9): transformer layer i of N "
           "learns at lr * decay^(N-i), the embeddings at lr * decay^(N+1), the head at lr. Needs "
           "--optimizer=adam or adamw and a pretrained encoder in the model.")
    _group(g, flags.DEFINE_integer, "seed", 42, "Seed for initialisation, shuffling and augmentation.")
    _group(g, flags.DEFINE_boolean, "deterministic", False, "TF op determinism + fixed seeds (slower).")


def _define_distribution_flags():
    g = "distribution"
    _group(g, flags.DEFINE_enum, "strategy", "default", ["default", "mirrored", "multi_worker"],
           "tf.distribute strategy: one device, every local GPU (MirroredStrategy), or several machines "
           "(MultiWorkerMirroredStrategy, configured by TF_CONFIG).")
    _group(g, flags.DEFINE_integer, "cpu_devices", 0, "Split the CPU into N logical devices (to try "
           "--strategy=mirrored without GPUs).")
    _group(g, flags.DEFINE_enum, "mixed_precision", "off", ["off", "mixed_float16", "mixed_bfloat16"],
           "Keras mixed-precision policy (loss scaling with float16).")
    _group(g, flags.DEFINE_boolean, "jit_compile", False, "Compile the train step with XLA.")


def _define_logging_flags():
    g = "logging"
    _group(g, flags.DEFINE_string, "model_dir", None, "Where checkpoints, TensorBoard logs and the "
           "trained model go. Re-running with the same dir resumes.")
    _group(g, flags.DEFINE_integer, "log_every_steps", 10, "Console / TensorBoard step logging interval.")
    _group(g, flags.DEFINE_integer, "checkpoint_every_steps", 100, "Checkpoint interval (also at epoch end).")
    _group(g, flags.DEFINE_integer, "keep_checkpoints", 3, "Recent checkpoints kept (plus the best).")
    _group(g, flags.DEFINE_integer, "tensorboard_audio_examples", 0,
           "Write this many augmented training clips (audio + log-Mel image) to TensorBoard.")
    _group(g, flags.DEFINE_boolean, "modality_ablation", True,
           "At each validation of a model taking audio and text, also score it with the audio removed and "
           "with the text removed (TensorBoard modality_ablation/...; one extra pass per modality).")
    _group(g, flags.DEFINE_boolean, "progress", True, "Console progress line during training.")


def _register_validators():
    positive = lambda v: v is None or v > 0  # noqa: E731
    for name in ("batch_size", "learning_rate", "log_every_steps", "checkpoint_every_steps",
                 "keep_checkpoints", "steps_per_epoch", "max_seconds", "sequence_length", "vocab_size"):
        flags.register_validator(name, positive, f"--{name} must be positive")
    for name in ("warmup_steps", "early_stopping_patience", "weight_decay", "tensorboard_audio_examples"):
        flags.register_validator(name, lambda v: v is None or v >= 0, f"--{name} must be >= 0")
    flags.register_validator("epochs", lambda v: v >= 1, "--epochs must be at least 1")
    flags.register_validator("trainable_encoder_layers", lambda v: v is None or v >= 0,
                             "--trainable_encoder_layers must be >= 0")
    flags.register_validator("layerwise_lr_decay", lambda v: v is None or 0 < v <= 1,
                             "--layerwise_lr_decay must be in (0, 1]")
    flags.register_multi_flags_validator(
        ["freeze_encoder", "trainable_encoder_layers"],
        lambda f: not (f["freeze_encoder"] and f["trainable_encoder_layers"]),
        "--freeze_encoder and --trainable_encoder_layers=N (N > 0) contradict each other: choose one",
    )
    flags.register_multi_flags_validator(
        ["freeze_encoder", "trainable_encoder_layers", "freeze_feature_encoder", "layerwise_lr_decay",
         "text_encoder", "audio_encoder"],
        lambda f: f["text_encoder"] or f["audio_encoder"] or not (
            f["freeze_encoder"] or f["trainable_encoder_layers"] is not None
            or f["freeze_feature_encoder"] or f["layerwise_lr_decay"] is not None),
        "--freeze_encoder, --trainable_encoder_layers, --freeze_feature_encoder and --layerwise_lr_decay "
        "act on a pretrained encoder: set --text_encoder or --audio_encoder",
    )
    flags.register_multi_flags_validator(
        ["layerwise_lr_decay", "optimizer"],
        lambda f: f["layerwise_lr_decay"] is None or f["optimizer"] in ("adam", "adamw"),
        "--layerwise_lr_decay needs --optimizer=adam or adamw",
    )
    flags.register_multi_flags_validator(
        ["layerwise_lr_decay", "freeze_encoder"],
        lambda f: f["layerwise_lr_decay"] is None or not f["freeze_encoder"],
        "--layerwise_lr_decay with --freeze_encoder: a frozen encoder has no learning rate to decay",
    )
    flags.register_validator("cpu_devices", lambda v: v >= 0, "--cpu_devices must be >= 0")
    flags.register_validator("clipnorm", positive, "--clipnorm must be positive (or unset)")
    flags.register_multi_flags_validator(
        ["strategy", "cpu_devices"],
        lambda f: f["cpu_devices"] <= 1 or f["strategy"] == "mirrored",
        "--cpu_devices only applies to --strategy=mirrored (default uses one device; multi_worker "
        "takes its devices from TF_CONFIG)",
    )
    flags.register_multi_flags_validator(
        ["mixed_precision", "deterministic"],
        lambda f: not (f["mixed_precision"] != "off" and f["deterministic"]),
        "--deterministic cannot be combined with --mixed_precision (loss scaling is not bit-reproducible)",
    )
    flags.register_multi_flags_validator(
        ["vocabulary", "text_encoder"],
        lambda f: not (f["vocabulary"] and f["text_encoder"]),
        "--vocabulary and --text_encoder both set: a text encoder brings its own tokenizer",
    )
    flags.register_multi_flags_validator(
        ["weight_decay", "optimizer"],
        lambda f: not f["weight_decay"] or f["optimizer"] == "adamw",
        "--weight_decay needs --optimizer=adamw (adam and sgd have no decoupled weight decay)",
    )
    flags.register_multi_flags_validator(
        ["class_weights", "balanced_sampling"],
        lambda f: not (f["class_weights"] == "balanced" and f["balanced_sampling"]),
        "--class_weights=balanced and --balanced_sampling both correct the class imbalance; "
        "choose one (together they over-weight the rare classes)",
    )
    flags.register_multi_flags_validator(
        ["class_weights", "task"],
        lambda f: f["class_weights"] == "none" or f["task"] == "classification",
        "--class_weights=balanced needs --task=classification (regression targets have no classes)",
    )
    flags.register_multi_flags_validator(
        ["train_split", "valid_split"],
        lambda f: f["train_split"] != f["valid_split"],
        "--train_split and --valid_split are the same split: model selection must use held-out data",
    )
    flags.register_multi_flags_validator(
        ["train_split", "valid_split"],
        lambda f: "test" not in (f["train_split"], f["valid_split"]),
        "--train_split / --valid_split must not be 'test': the test split is read only by bin/evaluate",
    )
    flags.register_multi_flags_validator(
        ["selection_metric", "task"],
        lambda f: f["selection_metric"] is None
        or f["selection_metric"] == "loss"
        or f["selection_metric"] in (
            CLASSIFICATION_METRICS if f["task"] == "classification" else REGRESSION_METRICS),
        "--selection_metric does not fit --task: classification selects on one of "
        "loss, accuracy, unweighted_accuracy, macro_f1, weighted_f1; regression (valence, arousal) on "
        "loss, ccc, rmse, mae, pearson_r",
    )


def modality_dropout(items) -> dict:
    """`--modality_dropout` → `{"audio": rate, "text": rate}` (either may be absent)."""
    rates = parse_key_values(items, "modality_dropout")
    for key, rate in rates.items():
        if key not in ("audio", "text"):
            raise UsageError(f"--modality_dropout: unknown modality {key!r} (audio, text)")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise UsageError(f"--modality_dropout: {key}={rate!r} must be a rate in [0, 1)")
    return {key: float(rate) for key, rate in rates.items()}


def parse_key_values(items, flag_name):
    """Parses ['k=v', ...] into a dict with int/float/bool/str values; errors name the flag."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--{flag_name}: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        value = value.strip()
        out[key] = _parse_scalar(value)
    return out


def _parse_scalar(value: str):
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if ":" in value:  # a tuple of numbers, e.g. speeds=0.9:1.0:1.1
        parts = value.split(":")
        try:
            return tuple(_parse_scalar(p) for p in parts)
        except ValueError:
            pass
    return value


def resolved_flags() -> dict:
    """All training flags and their final values, grouped."""
    return {
        group: {name: FLAGS[name].value for name in names}
        for group, names in GROUPS.items()
    }


def help_groups() -> dict:
    """The flags as `bin/train --help` shows them: the `data` group's feature flags (`--features`
    through `--max_frames`) under their own heading."""
    data = GROUPS["data"]
    first, last = data.index("features"), data.index("max_frames")
    shown = {"data": data[:first] + data[last + 1:], "features": data[first:last + 1]}
    shown.update((group, names) for group, names in GROUPS.items() if group != "data")
    return shown


def flagfile_text(changed_only=False) -> str:
    """The resolved flags as a flagfile (re-runnable with --flagfile); `changed_only` keeps the flags
    whose value is not the default (a recipe that a new flag with a default does not change)."""
    lines = []
    for group, names in GROUPS.items():
        lines.append(f"# --- {group}")
        for name in names:
            value = FLAGS[name].value
            if value is None or name == "list_models" or (changed_only and value == FLAGS[name].default):
                continue
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"
