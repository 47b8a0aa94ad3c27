"""Issue 17's sweep: bad and unusual inputs through prepare → train → evaluate → export → predict.

    .venv/bin/python tools/sweep_bad_inputs.py [--work=DIR] [--keep]

Builds a tiny synthetic KEMDy20 corpus, prepares it, trains and exports a tiny fusion model (once;
reused from `--work` when there), then feeds it well over 150 bad inputs:

- `reader`: mutated copies of the corpus through `prepare` (in process): broken CSVs in every
  encoding the corpora use, random bytes, random WAV headers, empty/tiny/NaN audio, orphans, symlinks;
- `serving`: the SavedModel's signatures (in process): random bytes as WAVs, random headers, empty,
  tiny and non-finite audio, odd lengths and batch sizes, odd text;
- `predict`: `bin/predict`'s library (in process) on bad files and folders;
- `cli`: every `bin/` command as a subprocess with mistyped paths, unwritable outputs, locked dirs,
  degenerate manifests.

Each input ends in one outcome; only the first is acceptable:

- `ok`: a one-line error (exit 2) / a reject with a reason / a refusal with InvalidArgument / an answer
  that says what it was based on;
- `traceback`: a traceback, exit 1, or an exception that is not the documented kind;
- `silent_drop`: a corpus file or row neither read, rejected with a reason nor listed as an orphan;
- `confident_nothing`: an empty, too short or non-finite clip answered as if it were speech.

Prints one line per input and the tally; exits 1 unless all three bad counts are 0.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfsent.core.errors import UsageError  # noqa: E402
from tfsent.corpus import layouts  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
TINY = "filters=16,num_layers=1,hidden=16,embedding_dim=16"
TALLY = collections.Counter()
BAD = ("traceback", "silent_drop", "confident_nothing")


def record(section, name, outcome, detail=""):
    TALLY[outcome] += 1
    TALLY[f"{section}:{outcome}"] += 1
    mark = "  " if outcome == "ok" else "!!"
    print(f"{mark} {section:8s} {name:44s} {outcome:18s} {detail[:150]}", flush=True)


# === Set-up: corpus, manifest, run, export ===


def bin_cmd(name, *args, timeout=900):
    return subprocess.run([os.path.join(REPO, "bin", name), *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout)


def setup(work):
    corpus, prepared = os.path.join(work, "corpus"), os.path.join(work, "prepared")
    run, exports = os.path.join(work, "run"), os.path.join(work, "exports")
    steps = [
        (corpus, ["make_demo_corpus", f"--out={corpus}", "--layout=kemdy20", "--seed=3", "--per_class=4"]),
        (os.path.join(prepared, "manifest.json"),
         ["prepare", "--format=kemdy20", f"--data_dir={corpus}", f"--out={prepared}", "--classes=4",
          "--tie_policy=first"]),
        (os.path.join(run, "model.keras"),
         ["train", "--flagfile=configs/demo.flags", f"--manifest={prepared}/manifest.csv", f"--model_dir={run}",
          f"--model_kwargs={TINY}", "--n_mels=32", "--max_seconds=2", "--sequence_length=16", "--batch_size=8",
          "--epochs=1", "--vocab_size=200", "--selection_metric=macro_f1"]),
        (os.path.join(exports, "demo_fusion", "1"),
         ["export", f"--model_dir={run}", f"--export_dir={exports}"]),
    ]
    for done, cmd in steps:
        if not os.path.exists(done):
            print("setup: bin/" + " ".join(cmd), flush=True)
            proc = bin_cmd(*cmd)
            if proc.returncode != 0 and cmd[0] == "train":
                print(f"setup: bin/train failed ({proc.stderr.strip().splitlines()[-1:]}); using an untrained "
                      "run dir instead (the inputs under test do not depend on the weights)", flush=True)
                untrained_run(run, os.path.join(prepared, "manifest.csv"))
            elif proc.returncode != 0:
                sys.exit(f"setup failed: bin/{cmd[0]}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {"corpus": corpus, "prepared": prepared, "manifest": os.path.join(prepared, "manifest.csv"),
            "run": run, "exports": exports, "export": os.path.join(exports, "demo_fusion", "1")}


def untrained_run(run, manifest):
    """A finished-looking run dir with random weights (the export tests' builder), on `manifest`."""
    import importlib.util

    shutil.rmtree(run, ignore_errors=True)
    spec = importlib.util.spec_from_file_location("export_conftest", os.path.join(REPO, "tests", "export",
                                                                                 "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, config, _ = module.make_model_dir(run, "demo_fusion")
    config.manifest = os.path.abspath(manifest)
    config.save(run)


# === WAV and text material ===


def float_wav(samples, rate=16000):
    buf = io.BytesIO()
    import soundfile

    soundfile.write(buf, np.asarray(samples, np.float32), rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def pcm_wav(frames, rate=16000, channels=1, bits=16, truncate_to=None):
    return layouts.wav_bytes(frames, rate, channels, bits, truncate_to)


def random_header(rng):
    """A RIFF/WAVE header with random fmt fields and data size, then a few random bytes."""
    fmt = struct.pack("<HHIIHH", rng.choice([1, 3, 0, 65534, 7]), rng.choice([0, 1, 2, 6, 255]),
                      rng.choice([0, 1, 8000, 16000, 44100, 2**31]), rng.randrange(2**32),
                      rng.choice([0, 1, 2, 4, 3]), rng.choice([0, 8, 16, 24, 32, 7]))
    data_size = rng.choice([0, 1, 2, 100, 2**31, 2**32 - 1])
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 64, 4000])))
    return (b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_size) + body)


def tone(seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# Audio that must never get a confident label: empty, shorter than the minimum, or non-finite.
NOTHING = {
    "zero_bytes": b"",
    "header_no_data": pcm_wav(0),
    "16_samples": pcm_wav(16),
    "1599_samples": pcm_wav(1599),
    "nan_float": float_wav(np.full(16000, np.nan)),
    "inf_float": float_wav(np.r_[tone(0.5), [np.inf]]),
    "nan_half": float_wav(np.r_[tone(0.5), np.full(8000, np.nan)]),
    "48k_4ms": pcm_wav(200, rate=48000),
}


# === Section 1: readers (prepare, in process) ===


def _kemdy20_annotation(corpus):
    ann = os.path.join(corpus, "annotation")
    return os.path.join(ann, sorted(os.listdir(ann))[0])


def _first_wav(corpus):
    for dirpath, _, names in sorted(os.walk(os.path.join(corpus, "wav"))):
        for name in sorted(names):
            if name.endswith(".wav"):
                return os.path.join(dirpath, name)
    raise RuntimeError("no wav")


def reader_mutations(rng):
    """name → function(corpus_root) mutating a copy of the corpus."""
    def write(path_fn, data):
        def mutate(root):
            path = path_fn(root)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        return mutate

    def transcode(encoding):
        def mutate(root):
            path = _kemdy20_annotation(root)
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
            with open(path, "wb") as f:
                f.write(text.encode(encoding, errors="replace"))
        return mutate

    def edit_cells(fn):
        def mutate(root):
            path = _kemdy20_annotation(root)
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().split("\n")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(fn(lines)))
        return mutate

    m = {}
    ann = _kemdy20_annotation
    new_ann = lambda name: (lambda root: os.path.join(root, "annotation", name))  # noqa: E731
    m["csv_zero_bytes"] = write(ann, b"")
    m["csv_new_zero_bytes"] = write(new_ann("Sess77_eval.csv"), b"")
    m["csv_header_only"] = edit_cells(lambda lines: lines[:1])
    m["csv_copy_name"] = lambda root: shutil.copy(ann(root), ann(root).replace(".csv", " (copy).csv"))
    for enc in ("utf-16-le", "utf-16-be", "utf-16", "utf-8-sig", "cp949", "euc-kr", "latin-1"):
        m[f"csv_{enc}"] = transcode(enc)
    for i in range(8):
        m[f"csv_random_bytes_{i}"] = write(new_ann(f"Sess{80 + i}_eval.csv"),
                                           bytes(rng.randrange(256) for _ in range(rng.choice([1, 50, 3000]))))
    m["csv_nul_bytes"] = write(new_ann("Sess90_eval.csv"), b"\x00" * 500)
    m["csv_cells_shuffled"] = edit_cells(lambda ls: ls[:2] + [",".join(reversed(l.split(","))) for l in ls[2:]])
    m["csv_cells_nan"] = edit_cells(lambda ls: ls[:2] + [",".join("NaN" for _ in l.split(",")) for l in ls[2:]])
    m["csv_one_column"] = edit_cells(lambda ls: ls[:2] + [l.split(",")[0] for l in ls[2:]])
    m["csv_unbalanced_quote"] = edit_cells(lambda ls: ls[:2] + ['"' + ls[2]] + ls[3:])
    m["csv_crlf"] = edit_cells(lambda ls: [l + "\r" for l in ls])
    m["csv_random_cells"] = edit_cells(lambda ls: ls[:2] + [",".join(
        rng.choice(["", "NaN", "inf", "-1", "99", "happy;sad", "😀", "\t", "Sess01_x", "\x00"])
        for _ in l.split(",")) for l in ls[2:]])
    m["csv_ids_climb_out"] = edit_cells(lambda ls: ls[:2] + [l.replace("Sess", "../../Sess", 1) for l in ls[2:]])
    m["csv_duplicate_rows"] = edit_cells(lambda ls: ls + ls[2:])
    for name, data in NOTHING.items():
        m[f"wav_{name}"] = write(_first_wav, data)
    m["wav_random_bytes"] = write(_first_wav, bytes(rng.randrange(256) for _ in range(3000)))
    for i in range(5):
        m[f"wav_random_header_{i}"] = write(_first_wav, random_header(rng))
    m["wav_truncated"] = write(_first_wav, pcm_wav(16000, truncate_to=900))
    m["wav_stereo_48k"] = write(_first_wav, pcm_wav(48000, rate=48000, channels=2))
    m["wav_8bit"] = write(_first_wav, pcm_wav(16000, bits=8))
    m["wav_missing"] = lambda root: os.unlink(_first_wav(root))
    m["wav_is_a_directory"] = lambda root: (os.unlink(_first_wav(root)), os.makedirs(_first_wav_path(root)))
    m["wav_orphan"] = write(lambda root: os.path.join(root, "wav", "Session01", "Sess01_orphan_User999M_001.wav"),
                            pcm_wav(16000))
    m["wav_orphan_new_folder"] = write(lambda root: os.path.join(root, "extra", "x.wav"), pcm_wav(16000))
    m["wav_symlink_outside"] = lambda root: os.symlink(os.path.abspath(__file__),
                                                       os.path.join(root, "wav", "link.wav"))
    m["txt_random_bytes"] = write(lambda root: _first_wav(root)[:-4] + ".txt",
                                  bytes(rng.randrange(128, 256) for _ in range(40)))
    m["txt_utf16_no_bom"] = write(lambda root: _first_wav(root)[:-4] + ".txt", "오늘 기분 좋아".encode("utf-16-le"))
    return m


_FIRST = {}


def _first_wav_path(root):
    return _FIRST[root]


def accounted(root, result):
    """Corpus files that are in neither the manifest nor the rejects (by path or utterance id)."""
    from tfsent.corpus.common import index_files

    kept = {r["audio_path"] for r in result.records}
    rejected_files = {r.source_file for r in result.rejects}
    rejected_ids = {r.utt_id for r in result.rejects}
    read = set(result.sidecar["annotation_files"])
    lost = []
    for rel in index_files(root):
        stem, ext = os.path.splitext(os.path.basename(rel))
        if ext.lower() in (".wav", ".flac") and not (rel in kept or rel in rejected_files or stem in rejected_ids):
            lost.append(rel)
        beside = os.path.dirname(rel) in {os.path.dirname(f) for f in read} or rel.startswith("annotation/")
        if ext.lower() in (".csv", ".tsv") and beside and rel not in read and rel not in rejected_files:
            lost.append(rel)
    return lost


def bad_audio_kept(root, result):
    """Kept rows whose audio is too short or non-finite (checked by a full decode)."""
    import soundfile

    bad = []
    for rec in result.records:
        data, rate = soundfile.read(os.path.join(root, rec["audio_path"]), dtype="float32", always_2d=True)
        if len(data) < 0.1 * rate or not np.isfinite(data).all():
            bad.append(rec["audio_path"])
    return bad


def sweep_readers(paths, work, rng):
    from tfsent.corpus.prepare import PrepareOptions, prepare

    for name, mutate in reader_mutations(rng).items():
        for verify in (False, True) if name.startswith("wav_") else (False,):
            root = os.path.join(work, "mutated")
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(paths["corpus"], root, symlinks=True)
            _FIRST[root] = _first_wav(root)
            label = name + (" (verify)" if verify else "")
            try:
                mutate(root)
                result = prepare(PrepareOptions(format="kemdy20", data_dir=root, out=os.path.join(work, "out"),
                                                classes="4", tie_policy="first", verify_audio=verify,
                                                progress=False))
            except UsageError as e:
                record("reader", label, "ok", f"error: {e}")
                continue
            except Exception as e:  # noqa: BLE001  (the sweep's job: any other exception is a finding)
                record("reader", label, "traceback", f"{type(e).__name__}: {e}")
                continue
            lost = accounted(root, result)
            bad = bad_audio_kept(root, result) if verify else []
            reasons = collections.Counter(r.reason for r in result.rejects)
            if lost:
                record("reader", label, "silent_drop", f"unaccounted: {lost[:3]}")
            elif bad:
                record("reader", label, "confident_nothing", f"kept bad audio: {bad[:3]}")
            else:
                record("reader", label, "ok", f"kept {len(result.records)}, rejects {dict(reasons)}")


# === Section 2: the SavedModel's signatures (in process) ===


def serving_cases(rng):
    """(name, signature, kwargs, is_nothing): is_nothing marks inputs with no usable audio."""
    ok_wav = pcm_wav(16000)
    cases = []
    for name, data in NOTHING.items():
        cases.append((f"wav_{name}+text", "predict_wav", {"wav": [data], "text": ["오늘 정말 좋아"]}, "audio"))
        cases.append((f"wav_{name}+no_text", "predict_wav", {"wav": [data], "text": [""]}, "all"))
    for i in range(12):
        blob = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 44, 100, 5000])))
        cases.append((f"wav_random_bytes_{i}", "predict_wav", {"wav": [blob], "text": ["네"]}, "audio"))
    for i in range(16):
        cases.append((f"wav_random_header_{i}", "predict_wav", {"wav": [random_header(rng)], "text": ["네"]}, "audio"))
    for name, wav in (("stereo_48k", pcm_wav(48000, rate=48000, channels=2)), ("8bit", pcm_wav(16000, bits=8)),
                      ("8k", pcm_wav(8000, rate=8000)), ("loud_float", float_wav(np.full(16000, 1e6))),
                      ("truncated", pcm_wav(16000, truncate_to=900)), ("ok", ok_wav)):
        cases.append((f"wav_{name}", "predict_wav", {"wav": [ok_wav, wav], "text": ["네", "네"]}, None))
    texts = {"control_chars": "\x00\x01\x1b[31m", "emoji": "😀" * 50, "long": "화가 " * 5000,
             "invalid_utf8": b"\xff\xfe\xbf", "whitespace": " \t\n", "latin": "café naïve", "rtl": "مرحبا"}
    for name, text in texts.items():
        cases.append((f"text_{name}", "predict_wav", {"wav": [ok_wav], "text": [text]}, None))
    audio = tone(1.0)
    two = np.stack([audio, audio])
    for name, kwargs, nothing in (
            ("len_0_text_empty", dict(audio=two, audio_length=[16000, 0], text=["네", ""]), "all"),
            ("len_0_with_text", dict(audio=two, audio_length=[16000, 0], text=["네", "네"]), "audio"),
            ("len_16", dict(audio=two, audio_length=[16000, 16], text=["네", "네"]), "audio"),
            ("len_negative", dict(audio=two, audio_length=[16000, -5], text=["네", "네"]), "audio"),
            ("len_too_long", dict(audio=two, audio_length=[16000, 99999], text=["네", "네"]), None),
            ("len_batch_mismatch", dict(audio=two, audio_length=[16000], text=["네", "네"]), None),
            ("text_batch_mismatch", dict(audio=two, audio_length=[16000, 16000], text=["네"]), None),
            ("nan_row", dict(audio=np.stack([audio, np.full(16000, np.nan, np.float32)]),
                             audio_length=[16000, 16000], text=["네", "네"]), "audio"),
            ("inf_in_padding", dict(audio=np.stack([audio, np.r_[audio[:8000], np.full(8000, np.inf)]]),
                                    audio_length=[16000, 8000], text=["네", "네"]), "audio"),
            ("empty_batch", dict(audio=np.zeros([0, 100], np.float32), audio_length=np.zeros([0], np.int32),
                                 text=np.zeros([0], object)), None),
            ("zero_samples_wide", dict(audio=np.zeros([2, 0], np.float32), audio_length=[0, 0], text=["네", "네"]),
             "audio"),
            ("silence", dict(audio=np.zeros([1, 16000], np.float32), audio_length=[16000], text=[""]), None),
            ("long_60s", dict(audio=np.tile(audio, 60)[None], audio_length=[960000], text=["네"]), None),
    ):
        cases.append((f"default_{name}", "serving_default", kwargs, nothing))
    return cases


def _tensor(key, value):
    import tensorflow as tf

    if key == "audio":
        return tf.constant(np.asarray(value, np.float32))
    if key == "audio_length":
        return tf.constant(np.asarray(value, np.int32))
    return tf.constant([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in value], tf.string) \
        if len(value) else tf.constant([], tf.string)


def sweep_serving(paths, rng):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    loaded = tf.saved_model.load(paths["export"])
    for name, signature, kwargs, nothing in serving_cases(rng):
        fn = loaded.signatures[signature]
        try:
            out = fn(**{k: _tensor(k, v) for k, v in kwargs.items()})
        except tf.errors.InvalidArgumentError as e:
            from tfsent.export.predict import _graph_message

            record("serving", name, "ok", f"InvalidArgument: {_graph_message(e.message)}")
            continue
        except Exception as e:  # noqa: BLE001
            record("serving", name, "traceback", f"{type(e).__name__}: {str(e)[:200]}")
            continue
        probs = out["probabilities"].numpy()
        modalities = [m.decode() for m in out["modalities"].numpy()] if "modalities" in out else []
        if not np.isfinite(probs).all():
            record("serving", name, "traceback", "non-finite probabilities")
        elif nothing == "all" or (nothing == "audio" and "audio" in modalities[-1]):  # the row under test is last
            record("serving", name, "confident_nothing", f"answered {modalities}")
        else:
            record("serving", name, "ok", f"answered, modalities {modalities}")


# === Section 3: bin/predict's library (in process) ===


def sweep_predict_library(paths, work):
    from tfsent.export.predict import LocalRunner, collect_inputs, predict

    import tensorflow as tf

    runner = LocalRunner(paths["export"])
    folder = os.path.join(work, "predict_files")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    cases = []
    for name, data in NOTHING.items():
        path = os.path.join(folder, f"{name}.wav")
        with open(path, "wb") as f:
            f.write(data)
        cases.append((f"file_{name}", dict(wav=path, text="오늘 정말 좋아"), True))
        cases.append((f"file_{name}_no_text", dict(wav=path), True))
    session = os.path.join(folder, "Session01")
    layouts.write_wav(os.path.join(session, "a.wav"), frames=16000)
    layouts.write_text(os.path.join(session, "a.txt"), "오늘 정말 좋아", "cp949")
    cases += [("session_folder_cp949", dict(wav=session), False),
              ("folder_without_wavs", dict(wav=os.path.join(folder, "..")), False),
              ("missing_file", dict(wav=os.path.join(folder, "nope.wav")), False),
              ("manifest_missing", dict(manifest=os.path.join(folder, "nope.csv")), False),
              ("manifest_not_a_manifest", dict(manifest=os.path.join(session, "a.txt")), False),
              ("nothing_given", dict(), False),
              ("text_only", dict(text="오늘 정말 좋아"), False)]
    for name, kwargs, nothing in cases:
        try:
            rows = predict(runner, collect_inputs(**kwargs), out=io.StringIO())
        except UsageError as e:
            record("predict", name, "ok", f"error: {e}")
            continue
        except tf.errors.InvalidArgumentError as e:  # the model refused it; bin/predict says so in one line
            from tfsent.export.predict import _graph_message

            record("predict", name, "ok", f"refused by the model: {_graph_message(e.message)}")
            continue
        except Exception as e:  # noqa: BLE001
            record("predict", name, "traceback", f"{type(e).__name__}: {str(e)[:200]}")
            continue
        said = [r.get("modalities") for r in rows]
        if nothing and any("audio" in (m or "audio") for m in said):
            record("predict", name, "confident_nothing", f"answered {rows[0].get('label')} on {said}")
        else:
            record("predict", name, "ok", f"answered, modalities {said}")


# === Section 4: the commands (subprocesses) ===


def _manifest_variant(paths, work, name, edit):
    from tfsent.corpus.manifest import read_manifest, write_manifest

    frame, sidecar = read_manifest(paths["manifest"])
    frame = edit(frame.copy())
    out = os.path.join(work, "manifests", name)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return write_manifest(out, records, sidecar)


def cli_cases(paths, work):
    p, w = paths, work
    blocker = os.path.join(w, "a_file")
    with open(blocker, "w") as f:
        f.write("x")
    locked = os.path.join(w, "locked_run")
    os.makedirs(locked, exist_ok=True)
    with open(os.path.join(locked, ".tfsent.lock"), "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": "now", "command": "sweep"}, f)
    locked_exports = os.path.join(w, "locked_exports")
    os.makedirs(os.path.join(locked_exports, "demo_fusion"), exist_ok=True)
    shutil.copy(os.path.join(locked, ".tfsent.lock"), os.path.join(locked_exports, "demo_fusion", ".tfsent.lock"))
    binary = os.path.join(w, "prepared_binary")
    if not os.path.exists(os.path.join(binary, "manifest.json")):
        bin_cmd("prepare", "--format=kemdy20", f"--data_dir={p['corpus']}", f"--out={binary}", "--classes=binary")
    train = ["train", "--flagfile=configs/demo.flags", f"--model_kwargs={TINY}", "--epochs=1", "--vocab_size=200"]
    m = lambda name, edit: _manifest_variant(p, w, name, edit)  # noqa: E731
    one_class = lambda f: f[(f["split"] != "train") | (f["emotion"] == f["emotion"].iloc[0])]  # noqa: E731
    cases = [
        ("prepare_no_flags", ["prepare"]),
        ("prepare_bad_format", ["prepare", "--format=timit", f"--data_dir={p['corpus']}", f"--out={w}/o1"]),
        ("prepare_data_dir_missing", ["prepare", "--format=kemdy20", f"--data_dir={w}/nope", f"--out={w}/o2"]),
        ("prepare_data_dir_file", ["prepare", "--format=kemdy20", f"--data_dir={blocker}", f"--out={w}/o3"]),
        ("prepare_out_is_file", ["prepare", "--format=kemdy20", f"--data_dir={p['corpus']}", f"--out={blocker}"]),
        ("prepare_out_under_file", ["prepare", "--format=kemdy20", f"--data_dir={p['corpus']}",
                                    f"--out={blocker}/sub"]),
        ("prepare_out_read_only", ["prepare", "--format=kemdy20", f"--data_dir={p['corpus']}", "--out=/proc/tfsent"]),
        ("prepare_out_in_corpus", ["prepare", "--format=kemdy20", f"--data_dir={p['corpus']}",
                                   f"--out={p['corpus']}/out"]),
        ("prepare_wrong_format", ["prepare", "--format=aihub", f"--data_dir={p['corpus']}", f"--out={w}/o4"]),
        ("prepare_bad_fractions", ["prepare", "--format=kemdy20", f"--data_dir={p['corpus']}", f"--out={w}/o5",
                                   "--valid_fraction=0.9", "--test_fraction=0.5"]),
        ("prepare_help", ["prepare", "--help"]),
        ("train_help", ["train", "--help"]),
        ("train_unknown_flag", train + ["--epochz=3"]),
        ("train_no_manifest", train + [f"--model_dir={w}/r1"]),
        ("train_manifest_missing", train + [f"--manifest={w}/nope.csv", f"--model_dir={w}/r2"]),
        ("train_manifest_is_corpus_csv", train + [f"--manifest={blocker}", f"--model_dir={w}/r3"]),
        ("train_unknown_model", train + [f"--manifest={p['manifest']}", "--model=nope", f"--model_dir={w}/r4"]),
        ("train_model_dir_is_file", train + [f"--manifest={p['manifest']}", f"--model_dir={blocker}"]),
        ("train_model_dir_under_file", train + [f"--manifest={p['manifest']}", f"--model_dir={blocker}/r"]),
        ("train_model_dir_read_only", train + [f"--manifest={p['manifest']}", "--model_dir=/proc/tfsent_run"]),
        ("train_model_dir_locked", train + [f"--manifest={p['manifest']}", f"--model_dir={locked}"]),
        ("train_classes_mismatch", train + [f"--manifest={p['manifest']}", "--classes=7", f"--model_dir={w}/r5"]),
        ("train_one_class", train + [f"--manifest={m('one_class', one_class)}", f"--model_dir={w}/r6"]),
        ("train_renamed_split", train + [f"--manifest={m('renamed', lambda f: f.assign(split=f['split'].replace('train', 'tr')))}",
                                         f"--model_dir={w}/r7"]),
        ("train_nan_text", train + [f"--manifest={m('nan_text', lambda f: f.assign(text='NaN'))}", f"--model_dir={w}/r8"]),
        ("train_path_outside", train + [f"--manifest={m('outside', lambda f: f.assign(audio_path='../outside/x.wav'))}",
                                        f"--model_dir={w}/r9"]),
        ("train_bad_targets", train + [f"--manifest={m('targets', lambda f: f.assign(target_happy=2.0))}",
                                       f"--model_dir={w}/r10"]),
        ("train_same_splits", train + [f"--manifest={p['manifest']}", "--valid_split=train", f"--model_dir={w}/r11"]),
        ("train_positional_arg", train + [f"--manifest={p['manifest']}", f"--model_dir={w}/r12", "extra"]),
        ("evaluate_no_model_dir", ["evaluate"]),
        ("evaluate_missing_dir", ["evaluate", f"--model_dir={w}/nope"]),
        ("evaluate_not_a_run", ["evaluate", f"--model_dir={p['corpus']}"]),
        ("evaluate_bad_split", ["evaluate", f"--model_dir={p['run']}", "--split=nope"]),
        ("evaluate_out_dir_file", ["evaluate", f"--model_dir={p['run']}", f"--out_dir={blocker}"]),
        ("evaluate_out_dir_read_only", ["evaluate", f"--model_dir={p['run']}", "--out_dir=/proc/tfsent_eval"]),
        ("evaluate_manifest_missing", ["evaluate", f"--model_dir={p['run']}", f"--manifest={w}/nope.csv"]),
        ("evaluate_manifest_no_sidecar", ["evaluate", f"--model_dir={p['run']}", f"--manifest={blocker}"]),
        ("evaluate_other_class_set", ["evaluate", f"--model_dir={p['run']}", f"--manifest={binary}/manifest.csv",
                                      f"--out_dir={w}/eval_binary"]),
        ("export_no_flags", ["export"]),
        ("export_name_locked", ["export", f"--model_dir={p['run']}", f"--export_dir={locked_exports}"]),
        ("export_dir_is_file", ["export", f"--model_dir={p['run']}", f"--export_dir={blocker}"]),
        ("export_dir_read_only", ["export", f"--model_dir={p['run']}", "--export_dir=/proc/tfsent_exports"]),
        ("export_version_exists", ["export", f"--model_dir={p['run']}", f"--export_dir={p['exports']}", "--version=1"]),
        ("export_bad_name", ["export", f"--model_dir={p['run']}", f"--export_dir={w}/e", "--model_name=../x"]),
        ("export_bad_version", ["export", f"--model_dir={p['run']}", f"--export_dir={w}/e", "--version=0"]),
        ("predict_no_model", ["predict", "--wav=x.wav"]),
        ("predict_model_not_savedmodel", ["predict", f"--model={p['run']}", "--text=네"]),
        ("predict_empty_wav", ["predict", f"--model={p['export']}", f"--wav={w}/predict_files/zero_bytes.wav",
                               "--text=hi"]),
        ("predict_tiny_wav", ["predict", f"--model={p['export']}", f"--wav={w}/predict_files/16_samples.wav"]),
        ("predict_nan_wav", ["predict", f"--model={p['export']}", f"--wav={w}/predict_files/nan_float.wav"]),
        ("predict_session_folder", ["predict", f"--model={p['export']}", f"--wav={w}/predict_files/Session01"]),
        ("predict_server_no_name", ["predict", "--server=localhost:1", "--text=네"]),
        ("predict_server_unreachable", ["predict", "--server=localhost:1", "--model_name=x", "--text=네",
                                        "--timeout=2"]),
    ]
    return cases


def sweep_cli(paths, work):
    for name, cmd in cli_cases(paths, work):
        proc = bin_cmd(*cmd, timeout=600)
        err = proc.stderr.strip()
        if "Traceback" in err or proc.returncode not in (0, 2):
            record("cli", name, "traceback", f"exit {proc.returncode}: {err.splitlines()[-1] if err else ''}")
            continue
        last = err.splitlines()[-1] if err else proc.stdout.strip().splitlines()[-1:] or [""]
        last = last if isinstance(last, str) else last[0]
        if name.startswith("predict_") and proc.returncode == 0 and any(k in name for k in ("empty", "tiny", "nan")):
            record("cli", name, "confident_nothing", proc.stdout.strip()[:150])
        else:
            record("cli", name, "ok", f"exit {proc.returncode}: {last}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="Working folder (kept; reused set-up). Default: a temp dir.")
    parser.add_argument("--sections", default="reader,serving,predict,cli")
    args = parser.parse_args()
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="tfsent_sweep_"))
    os.makedirs(work, exist_ok=True)
    rng = random.Random(17)
    paths = setup(work)
    sections = args.sections.split(",")
    if "reader" in sections:
        sweep_readers(paths, work, rng)
    if "serving" in sections:
        sweep_serving(paths, rng)
    if "predict" in sections:
        sweep_predict_library(paths, work)
    if "cli" in sections:
        sweep_cli(paths, work)
    total = sum(v for k, v in TALLY.items() if ":" not in k)
    print(f"\n{total} inputs: " + ", ".join(f"{k} {TALLY.get(k, 0)}" for k in ("ok",) + BAD))
    for section in ("reader", "serving", "predict", "cli"):
        counts = {k.split(":")[1]: v for k, v in TALLY.items() if k.startswith(section + ":")}
        if counts:
            print(f"  {section:8s} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 1 if any(TALLY.get(k) for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
