"""Tests of the synthetic demo corpus (tfsent.corpus.demo_corpus, bin/make_demo_corpus)."""

import collections
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import wave

import numpy as np
import pandas as pd
import pytest

from tfsent.corpus import demo_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PER_CLASS = 5  # 3 both + 1 audio_only + 1 text_only per emotional class.


@pytest.fixture(scope="module")
def kemdy20(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "kemdy20"
    return demo_corpus.make_demo_corpus(out, "kemdy20", seed=0, per_class=PER_CLASS)


@pytest.fixture(scope="module")
def aihub(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "aihub"
    return demo_corpus.make_demo_corpus(out, "aihub", seed=0, per_class=PER_CLASS)


def _read_wav(path):
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2, path
        pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2")
        return f.getframerate(), f.getnchannels(), pcm


def _tree_digest(root):
    digest = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return digest


def _kemdy20_tables(root):
    tables = {}
    for name in sorted(os.listdir(os.path.join(root, "annotation"))):
        with open(os.path.join(root, "annotation", name), encoding="utf-8", newline="") as f:
            tables[name] = list(csv.reader(f))
    return tables


# === KEMDy20 layout ===


def test_kemdy20_annotation_tables(kemdy20):
    root = kemdy20["out_dir"]
    truth = {r["utt_id"]: r for r in kemdy20["utterances"]}
    tables = _kemdy20_tables(root)
    assert tables and all(re.fullmatch(r"Sess\d\d_eval\.csv", n) for n in tables)
    seen = set()
    for name, rows in tables.items():
        header, sub_header, data = rows[0], rows[1], rows[2:]
        assert all(len(r) == 37 for r in rows), name
        assert header[:7] == ["Numb", "Wav", "", "Segment ID", "Total Evaluation", "", ""]
        assert header[7::3] == [f"Eval{i:02d}{'F' if i % 2 else 'M'}" for i in range(1, 11)]
        assert sub_header[1:3] == ["start", "end"]
        assert sub_header[4:] == ["Emotion", "Valence", "Arousal"] * 11
        assert data, f"{name} has no data rows"
        for numb, row in enumerate(data, start=1):
            assert row[0] == str(numb)
            utt_id = row[3]
            m = re.fullmatch(r"(Sess\d\d)_script\d\d_User(\d{3})([FM])_\d{3}", utt_id)
            assert m and f"{m.group(1)}_eval.csv" == name, utt_id
            session = int(m.group(1)[4:])
            assert int(m.group(2)) in (2 * session - 1, 2 * session)
            assert m.group(3) == ("F" if int(m.group(2)) % 2 else "M")
            assert float(row[1]) < float(row[2])
            votes = collections.Counter(row[7::3])
            top = max(votes.values())
            assert set(row[4].split(";")) == {e for e, n in votes.items() if n == top}
            expected = demo_corpus.KEMDY20_SPELLING[truth[utt_id]["emotion"]]
            assert row[4].split(";")[0] == expected, utt_id
            assert truth[utt_id]["tie"] == (";" in row[4])
            raters_v = [int(v) for v in row[8::3]]
            raters_a = [int(a) for a in row[9::3]]
            assert all(1 <= v <= 5 for v in raters_v + raters_a)
            assert float(row[5]) == pytest.approx(np.mean(raters_v), abs=0.05)
            assert float(row[6]) == pytest.approx(np.mean(raters_a), abs=0.05)
            seen.add(utt_id)
    assert seen == set(truth)


def test_kemdy20_wavs_and_transcripts(kemdy20):
    root = kemdy20["out_dir"]
    for rec in kemdy20["utterances"]:
        wav_path = os.path.join(root, rec["audio_path"])
        assert re.fullmatch(r"wav/Session\d\d/Sess\d\d_script\d\d_User\d{3}[FM]_\d{3}\.wav",
                            rec["audio_path"])
        assert rec["audio_path"][4 + 7:4 + 9] == rec["session"][4:]
        rate, channels, pcm = _read_wav(wav_path)
        assert (rate, channels) == (16000, 1)
        assert 1.0 <= len(pcm) / rate <= 4.0
        with open(wav_path[:-4] + ".txt", "rb") as f:
            raw = f.read()
        text = raw.decode("cp949")
        assert text == rec["text"] and "\n" not in text
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # really CP949, not UTF-8
    sessions = {int(r["session"][4:]) for r in kemdy20["utterances"]}
    for emotion in demo_corpus.EMOTIONS_4:
        s = [int(r["session"][4:]) for r in kemdy20["utterances"] if r["emotion"] == emotion]
        assert any(n <= 32 for n in s) and any(n >= 33 for n in s), emotion
    assert max(sessions) <= 40


def test_kemdy20_ties_happen_at_a_few_percent():
    # Planning only (no audio), so a large sample is cheap.
    ties = n = 0
    for seed in range(3):
        utts, _ = demo_corpus._plan_kemdy20(
            np.random.default_rng(seed), demo_corpus.EMOTIONS_4, 100, (0.2, 0.2))
        for u in utts:
            label, tie, _, _ = demo_corpus._kemdy20_total(u.emotion, u.extra["votes"], u.extra["va"])
            assert label.split(";")[0] == demo_corpus.KEMDY20_SPELLING[u.emotion]
            ties += tie
            n += 1
    assert 0.01 <= ties / n <= 0.10


# === AI Hub layout ===


def test_aihub_csv_and_wavs(aihub):
    root = aihub["out_dir"]
    assert sorted(os.listdir(root)) == ["README.txt", "demo", "demo.csv", "demo_truth.jsonl"]
    with open(os.path.join(root, "demo.csv"), "rb") as f:
        raw = f.read()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw.decode("cp949"), newline="")))
    assert raw.decode("cp949").splitlines()[0] == (
        "wav_id,발화문,상황,1번 감정,1번 감정세기,2번 감정,2번 감정세기,3번 감정,3번 감정세기,"
        "4번 감정,4번감정세기,5번 감정,5번 감정세기,나이,성별")
    assert all(len(r) == 15 for r in rows)
    truth = {r["utt_id"]: r for r in aihub["utterances"]}
    spellings = set(demo_corpus.AIHUB_SPELLING.values())
    voices = {}
    for row in rows[1:]:
        wav_id = row[0]
        assert re.fullmatch(r"[0-9a-f]{24}", wav_id)
        rec = truth[wav_id]
        assert row[1] == rec["text"]
        assert row[2] == demo_corpus.AIHUB_SPELLING[rec["emotion"]]
        votes = []
        for e, i in zip(row[3:13:2], row[4:13:2]):
            assert e in spellings and i in ("0", "1", "2")
            assert (i == "0") == (e == "neutral")
            votes.append((e, int(i)))
        assert demo_corpus._aihub_rule(votes) == row[2]
        assert row[14] in ("male", "female") and 10 < int(row[13]) < 90
        voices.setdefault(rec["voice"], set()).add((row[13], row[14]))
        rate, channels, pcm = _read_wav(os.path.join(root, "demo", wav_id + ".wav"))
        assert (rate, channels) == (48000, 1)
        assert 1.0 <= len(pcm) / rate <= 4.0
    assert all(len(v) == 1 for v in voices.values())  # a voice is one (age, gender)
    assert sorted(truth) == sorted(r[0] for r in rows[1:])
    assert len(os.listdir(os.path.join(root, "demo"))) == len(truth)


# === Design: balance, modality mix, audible prosody ===


@pytest.mark.parametrize("layout", ["kemdy20", "aihub"])
def test_class_balance_and_modality_mix(layout, kemdy20, aihub):
    summary = {"kemdy20": kemdy20, "aihub": aihub}[layout]
    records = demo_corpus.read_truth(summary["out_dir"])
    assert records == summary["utterances"]
    assert collections.Counter(r["emotion"] for r in records) == {
        e: PER_CLASS for e in demo_corpus.EMOTIONS_4}
    mix = collections.Counter((r["emotion"], r["condition"]) for r in records)
    assert mix[("neutral", "both")] == PER_CLASS
    for e in ("happy", "sad", "angry"):
        assert (mix[(e, "both")], mix[(e, "audio_only")], mix[(e, "text_only")]) == (3, 1, 1)
        assert summary["mix"][e] == {"both": 3, "audio_only": 1, "text_only": 1}
    neutral_facts = tuple(f"{fact}." for fact in demo_corpus.NEUTRAL_FACTS)
    for r in records:
        neutral_wording = r["condition"] == "audio_only" or r["emotion"] == "neutral"
        neutral_prosody = r["condition"] == "text_only" or r["emotion"] == "neutral"
        assert (r["wording"] == "neutral") == neutral_wording
        assert (r["prosody_emotion"] == "neutral") == neutral_prosody
        assert r["text"].endswith(neutral_facts) == neutral_wording, r["text"]


def test_prosody_is_audible(kemdy20):
    by_prosody = collections.defaultdict(list)
    for r in kemdy20["utterances"]:
        _, _, pcm = _read_wav(os.path.join(kemdy20["out_dir"], r["audio_path"]))
        x = pcm.astype(np.float64)
        by_prosody[r["prosody_emotion"]].append(np.sqrt(np.mean(x[np.abs(x) > 100] ** 2)))
    loudness = {e: np.mean(v) for e, v in by_prosody.items()}
    assert loudness["angry"] > loudness["neutral"] > loudness["sad"]


# === Determinism, output directory handling, CLI ===


@pytest.mark.parametrize("layout", ["kemdy20", "aihub"])
def test_same_seed_same_bytes_other_seed_differs(layout, tmp_path):
    a = demo_corpus.make_demo_corpus(tmp_path / "a", layout, seed=7, per_class=2)
    # Thread count must not matter: all randomness is drawn before synthesis.
    b = demo_corpus.make_demo_corpus(tmp_path / "b", layout, seed=7, per_class=2, workers=1)
    c = demo_corpus.make_demo_corpus(tmp_path / "c", layout, seed=8, per_class=2)
    da, db, dc = (_tree_digest(s["out_dir"]) for s in (a, b, c))
    assert da == db
    assert a["num_utterances"] == 8
    table = "demo.csv" if layout == "aihub" else "demo_truth.jsonl"
    assert da[table] != dc[table]
    wavs_a = sorted(v for k, v in da.items() if k.endswith(".wav"))
    wavs_c = sorted(v for k, v in dc.items() if k.endswith(".wav"))
    assert wavs_a != wavs_c


def test_out_dir_rules(tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()  # an existing empty folder is fine
    demo_corpus.make_demo_corpus(out, "aihub", seed=0, per_class=1)
    before = _tree_digest(out)
    with pytest.raises(FileExistsError, match="--overwrite"):
        demo_corpus.make_demo_corpus(out, "aihub", seed=1, per_class=1)
    assert _tree_digest(out) == before
    demo_corpus.make_demo_corpus(out, "kemdy20", seed=1, per_class=1, overwrite=True)
    assert (out / "annotation").is_dir() and not (out / "demo.csv").exists()
    other = tmp_path / "user_data"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a tfsent demo corpus"):
        demo_corpus.make_demo_corpus(other, "aihub", seed=0, per_class=1, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "user_data"]  # no temp left


@pytest.mark.parametrize("kwargs, match", [
    (dict(layout="kemdy19"), "layout"),
    (dict(classes=5), "classes"),
    (dict(per_class=0), "per_class"),
    (dict(seed=-1), "seed"),
    (dict(audio_only_frac=0.7, text_only_frac=0.6), "audio_only_frac"),
])
def test_bad_arguments(kwargs, match, tmp_path):
    args = dict(layout="aihub", seed=0, per_class=2) | kwargs
    with pytest.raises(ValueError, match=match):
        demo_corpus.make_demo_corpus(tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()


def _run_bin(name, *args):
    return subprocess.run([os.path.join(ROOT, "bin", name), *args], capture_output=True,
                          text=True, timeout=300)


def test_cli(tmp_path):
    out = str(tmp_path / "k")
    proc = _run_bin("make_demo_corpus", f"--out={out}", "--layout=kemdy20", "--seed=3",
                    "--per_class=1", "--classes=7")
    assert proc.returncode == 0, proc.stderr
    assert "SYNTHETIC" in proc.stdout
    assert json.loads(proc.stdout.split("\n", 1)[1])["num_utterances"] == 7
    with open(os.path.join(out, "README.txt"), encoding="utf-8") as f:
        readme = f.read()
    assert "SYNTHETIC" in readme and "--seed=3" in readme and "--classes=7" in readme
    proc = _run_bin("make_demo_corpus", f"--out={out}", "--layout=kemdy20", "--per_class=1")
    assert proc.returncode != 0 and "--overwrite" in proc.stderr
    proc = _run_bin("make_demo_corpus", "--help")
    assert "SYNTHETIC" in proc.stdout and "real corpus" in proc.stdout


# === Parse back through the real readers (bin/prepare) ===


@pytest.mark.parametrize("layout, extra", [
    ("kemdy20", ["--tie_policy=first"]),
    ("aihub", []),
])
def test_parses_back_through_prepare(layout, extra, kemdy20, aihub, tmp_path):
    summary = {"kemdy20": kemdy20, "aihub": aihub}[layout]
    out = tmp_path / "prepared"
    proc = _run_bin("prepare", f"--format={layout}", f"--data_dir={summary['out_dir']}",
                    f"--out={out}", "--classes=4", "--noprogress", *extra)
    assert proc.returncode == 0, proc.stderr
    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    rejects = pd.read_csv(out / "rejects.csv", dtype=str)
    assert len(rejects) == 0, rejects.to_string()
    truth = {r["utt_id"]: r for r in summary["utterances"]}
    assert sorted(manifest["utt_id"]) == sorted(truth)
    for _, row in manifest.iterrows():
        rec = truth[row["utt_id"]]
        assert row["emotion"] == rec["emotion"], row["utt_id"]
        assert row["text"] == rec["text"]
        assert row["audio_path"] == rec["audio_path"]
    assert set(manifest["split"]) >= {"train", "test"}
    if layout == "kemdy20":
        test_sessions = {int(s[4:]) for s in manifest.loc[manifest.split == "test", "session"]}
        assert min(test_sessions) >= 33
        # Sessions mix classes, so the session-drawn validation split has them all.
        for split in ("train", "valid", "test"):
            got = set(manifest.loc[manifest.split == split, "emotion"])
            assert got == set(demo_corpus.EMOTIONS_4), split
