"""Input-pipeline benchmark (tracker issue 3): the seed-style librosa loop vs tfsent's tf.data pipeline.

Measures, on the same demo-corpus clips (48 kHz AI Hub layout, so resampling is exercised):

- (a) the seed-001 loop, one process: `librosa.load(sr=16000)` -> amplitude noise ->
  `time_stretch(0.8)` -> `pitch_shift(0.7)` -> `melspectrogram(n_fft=400, hop=160, n_mels=128)`
  (+ `power_to_db`, the log-Mel the pipeline computes);
- (b) `InputPipeline` with the equivalent augmentation and log-Mel, default parallelism (time
  stretch and pitch shift in the feature domain, `--augment_domain=auto`; `waveform` for the phase
  vocoder);
- (c) `InputPipeline` without augmentation (decode + resample + log-Mel: the unavoidable work);
- (d) (b) from the decoded-audio cache (`cache_audio`: int16 16 kHz clips in memory, filled by the
  warm-up epoch): crop + augmentation + features only;
- clips/s of (b) through a local tf.data service (a dispatcher and 1, then 2 workers in this
  process, `tfsent.data.service`);
- training steps/s of `conv1d_mel` fed live by the pipeline vs from the same batches held in memory;
- peak resident memory of the pipeline after a full epoch of 1x and 10x the corpus (a subprocess each;
  10x repeats the manifest rows, same files), live and with the on-disk cache (`snapshot_dir`).

(b), (c) and (d) read their epochs as `bin/train` does on one device: from the pipeline's epoch
stream (one iterator for all epochs, `tfsent.data.epoch_stream`), read from Python. Two more lines
give (d) read through the stream's `tf.data` views (what a multi-replica strategy reads: a view
built and started per epoch) and with a dataset built for each epoch (what the stream saves:
instantiating the pipeline's functions per epoch).

Each figure is the median of `--repeats` runs, interleaved so that they share the machine's load.
CPU seconds per clip (all threads of the process) are printed next to the wall-clock rates: on a
shared machine they are the steadier figure (`cpu_ratio`: librosa's CPU per clip / (b)'s). The last
line is machine-readable:

    pipeline_vs_librosa=<b/a> cpu_ratio=<..> decode_ceiling_ratio=<b/c> cached_vs_librosa=<d/a>
    live_vs_cached=<ratio> clips_per_s=<b>

(one line). Usage: bench/pipeline [--work=DIR] [--per_class=80] [--repeats=3] [--librosa_clips=64]
[--augment_domain=auto|feature|waveform] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

FEATURE = dict(kind="log_mel", sample_rate=16000, n_fft=400, hop_length=160, n_mels=128)
# Seed 001's chain with every step always on (the seed applies all three to every clip).
AUGMENT = dict(amp_noise_prob=1.0, stretch_prob=1.0, stretch_rate=(0.8, 0.8),
               pitch_prob=1.0, pitch_semitones=(0.7, 0.7))
MODEL_INPUTS = ("audio_features", "audio_mask")
BATCH = 32
EPOCHS_PER_RUN = 3  # consecutive epochs per timed pipeline run


def log(*args):
    print(*args, flush=True)


def load_average():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


# === Corpus ===


def ensure_corpus(work, per_class, fresh):
    """Demo corpus (48 kHz AI Hub layout) + prepared manifest under `work`, reused when present."""
    corpus = os.path.join(work, f"aihub_seed1_pc{per_class}")
    prepared = corpus + "_prepared"
    manifest = os.path.join(prepared, "manifest.csv")
    if fresh:
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(prepared, ignore_errors=True)
    if os.path.exists(manifest):
        log(f"corpus: reusing {prepared}")
        return manifest
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    steps = [
        [os.path.join(ROOT, "bin", "make_demo_corpus"), f"--out={corpus}", "--layout=aihub", "--seed=1",
         f"--per_class={per_class}", "--overwrite"],
        [os.path.join(ROOT, "bin", "prepare"), "--format=aihub", f"--data_dir={corpus}",
         f"--out={prepared}", "--classes=4"],
    ]
    for cmd in steps:
        log("corpus: " + " ".join(cmd))
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench/pipeline: {cmd[0]} failed:\n{done.stdout}\n{done.stderr}")
    return manifest


def load_frame(manifest, repeat=1):
    """The manifest, every row put in the `train` split (`repeat` copies of the rows)."""
    import pandas as pd

    from tfsent.corpus.manifest import read_manifest

    frame, sidecar = read_manifest(manifest)
    frame = frame.assign(split="train")
    if repeat > 1:
        copies = [frame.assign(utt_id=frame["utt_id"].astype(str) + f"#{i}") for i in range(repeat)]
        frame = pd.concat(copies, ignore_index=True)
    return frame, sidecar


def clip_seconds(paths):
    import soundfile

    return [soundfile.info(p).duration for p in paths]


# === (a) the seed-style librosa loop ===


def librosa_loop(paths, seed=0):
    """Seed 001's per-clip loop; returns (wall seconds, CPU seconds)."""
    import librosa
    import numpy as np

    rng = np.random.RandomState(seed)
    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        y, sr = librosa.load(path, sr=16000)
        y = y + 0.005 * rng.uniform() * np.amax(y) * rng.normal(size=y.shape[0])
        y = librosa.effects.time_stretch(y, rate=0.8)
        y = librosa.effects.pitch_shift(y, sr=sr, n_steps=0.7)
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=400, hop_length=160, n_mels=128)
        librosa.power_to_db(mel, ref=np.max)
    return time.perf_counter() - start, time.process_time() - cpu


# === (b), (c) the tf.data pipeline ===


def make_pipeline(frame, sidecar, augment, **options):
    """The benchmark's pipeline; `options`: more `PipelineConfig` fields (cache_audio, snapshot_dir,
    augment_domain)."""
    from tfsent.audio.augment import AudioAugmentConfig
    from tfsent.audio.features import FeatureConfig
    from tfsent.data.pipeline import InputPipeline, PipelineConfig

    config = PipelineConfig(
        feature=FeatureConfig(**FEATURE),
        batch_size=BATCH,
        model_inputs=MODEL_INPUTS,
        audio_augment=AudioAugmentConfig(**AUGMENT) if augment else None,
        **options,
    )
    return InputPipeline(frame, sidecar, config)


def run_epoch(pipeline, epoch, read="stream"):
    """Iterates one training epoch as `bin/train` does on one device (`read="stream"`: the pipeline's
    epoch stream, one iterator for all epochs, read from Python), through the stream's tf.data view
    (`"view"`) or from a dataset built for the epoch (`"dataset"`); returns (clips, wall s, CPU s)."""
    start, cpu = time.perf_counter(), time.process_time()
    clips = 0
    if read == "dataset":
        ds = pipeline.dataset("train", training=True, epoch=epoch)
    elif read == "view":
        ds = pipeline.epoch_stream("train").dataset(epoch)
    else:
        ds = pipeline.epoch_stream("train").batches(epoch)
    for inputs, _ in ds:
        clips += int(inputs["audio_mask"].shape[0])
    return clips, time.perf_counter() - start, time.process_time() - cpu


# === live vs cached training ===


def train_comparison(pipeline, epochs):
    """Steps/s of conv1d_mel fed live by `pipeline` vs from the same batches kept in memory.

    Returns a list of (live steps/s, cached steps/s), one per epoch in `epochs`.
    """
    import keras
    import tensorflow as tf

    from tfsent.models import registry

    model = registry.build("conv1d_mel", num_classes=len(pipeline.classes), feature_dim=FEATURE["n_mels"])
    optimizer = keras.optimizers.Adam(1e-3)
    spec = pipeline.dataset("train", training=True, epoch=0).element_spec

    @tf.function(input_signature=spec)
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)["logits"]
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(labels=targets["target"], logits=logits)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    stream = pipeline.epoch_stream("train")
    for inputs, targets in stream.batches(epochs[0] - 1):  # untimed: starts the stream, traces the step
        train_step(inputs, targets)
    live, kept = [], []
    for epoch in epochs:  # consecutive epochs, as in bin/train
        batches = []
        start = time.perf_counter()
        for inputs, targets in stream.batches(epoch):
            loss = train_step(inputs, targets)
            batches.append((inputs, targets))
        float(loss)  # wait for the last step
        live.append(len(batches) / (time.perf_counter() - start))
        kept.append(batches)
    stream.close()  # no pipeline work in the background while the cached steps are timed
    results = []
    for epoch, rate, batches in zip(epochs, live, kept):
        start = time.perf_counter()
        for inputs, targets in batches:
            loss = train_step(inputs, targets)
        float(loss)
        cached = len(batches) / (time.perf_counter() - start)
        results.append((rate, cached))
        log(f"  train epoch {epoch}: {len(batches)} steps, live {rate:.2f} steps/s, cached {cached:.2f} steps/s"
            f"  [load {load_average()}]")
    return results


# === memory (subprocess per corpus size) ===


def rss_now_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_child(manifest, repeat, augment, snapshot_dir=None):
    """One full epoch of `repeat` x the corpus; prints a JSON line with the peak RSS. With
    `snapshot_dir`, the split is decoded into an on-disk snapshot first (part of the peak)."""
    frame, sidecar = load_frame(manifest, repeat)
    pipeline = make_pipeline(frame, sidecar, augment, snapshot_dir=snapshot_dir)
    ds = pipeline.dataset("train", training=True, epoch=0)  # graphs are traced here
    before_kb = rss_now_kb()
    clips, wall = 0, time.perf_counter()
    for inputs, _ in ds:
        clips += int(inputs["audio_mask"].shape[0])
    wall = time.perf_counter() - wall
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"repeat": repeat, "rows": len(frame), "clips": clips, "wall_s": wall,
                      "rss_before_epoch_mb": before_kb / 1024, "peak_rss_mb": peak_kb / 1024,
                      "rss_after_epoch_mb": rss_now_kb() / 1024,
                      "cache_audio": pipeline.config.cache_audio,
                      "snapshot_dir": pipeline.config.snapshot_dir}), flush=True)


def measure_memory(manifest, repeat, augment, snapshot_dir=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory_child", manifest, f"--_repeat={repeat}"]
    if augment:
        cmd.append("--_augment")
    if snapshot_dir:
        cmd.append(f"--_snapshot_dir={snapshot_dir}")
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench/pipeline: memory run ({repeat}x) failed:\n{done.stdout}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


# === main ===


def median(values):
    return statistics.median(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), f"tfsent-bench-pipeline-{os.getuid()}"),
                        help="where the demo corpus is built (reused by later runs)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo corpus")
    parser.add_argument("--per_class", type=int, default=80, help="demo clips per class (4 classes)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median reported)")
    parser.add_argument("--librosa_clips", type=int, default=64,
                        help="clips for the (slow) librosa loop, evenly spaced over the corpus")
    parser.add_argument("--augment_domain", default="auto", choices=["auto", "feature", "waveform"],
                        help="where (b) and (d) stretch and pitch-shift (PipelineConfig.augment_domain)")
    parser.add_argument("--skip_service", action="store_true", help="skip the tf.data service figures")
    parser.add_argument("--memory_augment", action="store_true",
                        help="measure memory with augmentation on (slower; default: pipeline (c))")
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument("--skip_train", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 8 clips per class, 1 repeat, 16 librosa clips")
    parser.add_argument("--_memory_child", help=argparse.SUPPRESS)
    parser.add_argument("--_repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_augment", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_snapshot_dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._memory_child:
        memory_child(args._memory_child, args._repeat, args._augment, args._snapshot_dir)
        return
    if args.quick:
        args.per_class, args.repeats, args.librosa_clips = 8, 1, 16
    if args.repeats < 1 or args.librosa_clips < 1 or args.per_class < 1:
        parser.error("--repeats, --librosa_clips and --per_class must be >= 1")

    t0 = time.perf_counter()
    log(f"machine: {machine()}")
    log(f"load average at start: {load_average()}")
    manifest = ensure_corpus(args.work, args.per_class, args.fresh)

    import numpy as np
    import tensorflow as tf

    frame, sidecar = load_frame(manifest)
    paths = [os.path.join(sidecar["data_dir"], p) for p in frame["audio_path"].astype(str)]
    seconds = clip_seconds(paths)
    pick = np.unique(np.linspace(0, len(paths) - 1, min(args.librosa_clips, len(paths))).round().astype(int))
    paths_a = [paths[i] for i in pick]
    seconds_a = [seconds[i] for i in pick]
    log(f"clips: {len(paths)} (mean {np.mean(seconds):.2f} s, {min(seconds):.2f}-{max(seconds):.2f} s, 48 kHz); "
        f"librosa loop on {len(paths_a)} of them (mean {np.mean(seconds_a):.2f} s)")
    log(f"tf: {tf.__version__}, inter-op {tf.config.threading.get_inter_op_parallelism_threads()}, "
        f"intra-op {tf.config.threading.get_intra_op_parallelism_threads()} (0 = all cores)")

    domain = dict(augment_domain=args.augment_domain)
    pipes = {"b": make_pipeline(frame, sidecar, augment=True, **domain),
             "c": make_pipeline(frame, sidecar, augment=False),
             "d": make_pipeline(frame, sidecar, augment=True, cache_audio=True, **domain)}
    pipe_b = pipes["b"]
    log(f"pipeline caches decoded audio by default: {pipe_b.config.cache_audio or bool(pipe_b.config.snapshot_dir)}; "
        f"(b) stretches and pitch-shifts in the "
        f"{'feature' if pipe_b.config.feature_domain_augment else 'waveform'} domain")

    # Warm-up: the first epoch traces and builds the graphs (and fills (d)'s cache); librosa warms up.
    librosa_loop(paths_a[:2])
    for name, pipe in pipes.items():
        clips, wall, _ = run_epoch(pipe, epoch=0)
        pipe.epoch_stream("train").close()
        log(f"warm-up ({name}): {clips} clips in {wall:.1f} s")

    rates, cpu = timed_runs(paths_a, pipes, args.repeats)
    a, b, c, d = (median(rates[k]) for k in "abcd")
    cpu_ratio = median(cpu["a"]) / median(cpu["b"])
    labels = {"a": "(a) seed-style librosa loop", "b": "(b) tfsent pipeline + augmentation",
              "c": "(c) tfsent pipeline, no augmentation", "d": "(d) (b) from the decoded-audio cache"}
    for k in "abcd":
        log(f"{labels[k]:40s} {median(rates[k]):8.1f} clips/s   {1000 * median(cpu[k]):7.1f} CPU ms/clip")
    run_epoch(pipes["d"], epoch=91)  # untimed: restarts the stream
    views = [run_epoch(pipes["d"], epoch=92 + k, read="view") for k in range(EPOCHS_PER_RUN * args.repeats)]
    pipes["d"].epoch_stream("train").close()
    log(f"(d) read through tf.data views of the stream (multi-replica strategies): "
        f"{sum(n for n, _, _ in views) / sum(w for _, w, _ in views):.1f} clips/s, "
        f"{1000 * sum(c for _, _, c in views) / sum(n for n, _, _ in views):.1f} CPU ms/clip")
    per_epoch = [run_epoch(pipes["d"], epoch=100 + r, read="dataset") for r in range(args.repeats)]
    log(f"(d) with a dataset built per epoch (before the epoch stream): "
        f"{median([n / w for n, w, _ in per_epoch]):.1f} clips/s, "
        f"{1000 * median([c / n for n, _, c in per_epoch]):.1f} CPU ms/clip")
    log(f"b/a = {b / a:.2f} (target >= 10)   CPU-time b/a = {cpu_ratio:.2f} (target >= 10)   "
        f"b/c = {b / c:.2f} (target >= 0.6)   d/a = {d / a:.2f} (target >= 30)")

    if not args.skip_service:  # workers run no Python: (b) with pure-TF (WAV) decoding
        service_figures(make_pipeline(frame, sidecar, augment=True, wav_only=True, **domain), args.repeats)

    live_vs_cached = float("nan")
    if not args.skip_train:
        results = train_comparison(pipe_b, epochs=list(range(1000, 1000 + args.repeats)))
        live = median([x for x, _ in results])
        cached = median([y for _, y in results])
        live_vs_cached = live / cached
        log(f"conv1d_mel training: live {live:.2f} steps/s, cached {cached:.2f} steps/s, "
            f"ratio {live_vs_cached:.2f} (target >= 0.9)")

    if not args.skip_memory:
        memory_figures(manifest, args)

    log(f"load average at end: {load_average()}; total {time.perf_counter() - t0:.0f} s")
    log(f"pipeline_vs_librosa={b / a:.2f} cpu_ratio={cpu_ratio:.2f} decode_ceiling_ratio={b / c:.2f} "
        f"cached_vs_librosa={d / a:.2f} live_vs_cached={live_vs_cached:.2f} clips_per_s={b:.1f}")


def timed_runs(paths_a, pipes, repeats, epochs_per_run=EPOCHS_PER_RUN):
    """`repeats` interleaved runs of the librosa loop and each pipeline: {name: [clips/s]}, {name: [CPU s/clip]}.

    A pipeline's run is `epochs_per_run` consecutive training epochs from its epoch stream, after one
    untimed epoch that starts the stream (once per training run in `bin/train`); the stream is
    closed after the run, so it does not work ahead while the next figure is timed.
    """
    rates = {k: [] for k in ["a", *pipes]}
    cpu = {k: [] for k in ["a", *pipes]}
    for r in range(repeats):
        wall, cpu_s = librosa_loop(paths_a, seed=r)
        rates["a"].append(len(paths_a) / wall)
        cpu["a"].append(cpu_s / len(paths_a))
        for name, pipe in pipes.items():
            first = 1 + r * (1 + epochs_per_run)
            run_epoch(pipe, epoch=first)
            runs = [run_epoch(pipe, epoch=first + 1 + k) for k in range(epochs_per_run)]
            pipe.epoch_stream("train").close()
            clips = sum(n for n, _, _ in runs)
            rates[name].append(clips / sum(w for _, w, _ in runs))
            cpu[name].append(sum(c for _, _, c in runs) / clips)
        log(f"  run {r + 1}: " + "  ".join(f"{k} {rates[k][-1]:.1f}" for k in rates) +
            f" clips/s  [load {load_average()}]")
    return rates, cpu


def service_figures(pipeline, repeats):
    """Clips/s of `pipeline`'s training epochs through a local tf.data service, 1 and 2 workers."""
    from tfsent.data import service

    for workers in (1, 2):
        with service.LocalCluster(workers=workers) as cluster:
            got = []
            for r in range(repeats + 1):  # the first epoch warms the workers up
                ds = service.distribute(pipeline.dataset("train", training=True, epoch=1 + r), cluster.target,
                                        job_name=f"bench-{workers}-{r}")
                start, clips = time.perf_counter(), 0
                for inputs, _ in ds:
                    clips += int(inputs["audio_mask"].shape[0])
                if r:
                    got.append(clips / (time.perf_counter() - start))
            log(f"(b) through a local tf.data service, {workers} worker(s): {median(got):.1f} clips/s "
                f"[load {load_average()}]")


def memory_figures(manifest, args):
    which = "(b), with augmentation" if args.memory_augment else "(c), no augmentation"
    snapshots = os.path.join(args.work, "snapshots")
    for store in ("live", "on-disk cache"):
        for repeat in (1, 10):
            snap = os.path.join(snapshots, f"x{repeat}") if store != "live" else None
            if snap:
                shutil.rmtree(snap, ignore_errors=True)  # the build is part of what is measured
            m = measure_memory(manifest, repeat, args.memory_augment, snap)
            log(f"memory {repeat:2d}x corpus, {store} ({m['clips']} clips, pipeline {which}): peak RSS "
                f"{m['peak_rss_mb']:.0f} MB (RSS before the epoch {m['rss_before_epoch_mb']:.0f} MB, "
                f"after {m['rss_after_epoch_mb']:.0f} MB; {m['clips'] / m['wall_s']:.1f} clips/s)")
    shutil.rmtree(snapshots, ignore_errors=True)

if __name__ == "__main__":
    main()
