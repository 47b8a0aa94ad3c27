"""A SYNTHETIC Korean emotional-speech demo corpus, written in real corpus layouts.

**This corpus is synthetic. It exists for demos and tests only; numbers measured
on it say nothing about real emotion recognition. Real numbers need a real
corpus (AI Hub 감정 분류를 위한 대화 음성 데이터셋, ETRI KEMDy19/KEMDy20).**

Korean sentences are spoken by espeak-ng's Korean voice (`-v ko`; the variants
`ko+f1..f4` and `ko+m1..m7` act as speakers) with emotion-dependent prosody:
pitch, pitch range (SSML `<prosody range>`), rate and volume, each with
per-utterance jitter, so the classes overlap a little. The wording is
emotion-bearing too (sentences composed from per-emotion reason/predicate
fragments, plus a pool of neutral-wording sentences).

Both modalities are informative but incomplete. For every class except
neutral, utterances are split (exact counts, rounded half up) into

- `both` (~60%): emotional wording spoken with emotional prosody;
- `audio_only` (~20%): NEUTRAL wording spoken with emotional prosody (only the
  audio tells the class);
- `text_only` (~20%): emotional wording spoken with NEUTRAL prosody (only the
  text tells the class).

Neutral utterances are neutral wording with neutral prosody. A text-only or an
audio-only model therefore caps at roughly 80% accuracy on the emotional
classes, and a fusion model can beat both. Measured with linear probes
(5-fold CV; log-Mel/F0/RMS statistics for audio, character n-gram TF-IDF for
text, product of probabilities for fusion), seed 0: 4 classes, per_class=100:
audio 0.80, text 0.83, fusion 0.89; 7 classes, per_class=60: audio 0.70,
text 0.80, fusion 0.85.

Layouts (so the real readers are exercised):

- `kemdy20`: `annotation/SessNN_eval.csv` (37 columns: Numb, Wav start, Wav end,
  Segment ID, Total Evaluation (Emotion, Valence, Arousal), then raters
  Eval01F..Eval10M x (Emotion, Valence, Arousal); the first data row is the
  sub-header; CRLF line ends) and `wav/SessionNN/SessNN_scriptNN_UserNNN{F|M}_NNN.wav` (16 kHz
  mono PCM16) + a one-line CP949 `.txt` transcript (no line end). Utterances are spread over
  Sess01..Sess40, about 80% of each class in Sess01-32 and 20% in Sess33-40
  (at least one per class on each side when `per_class >= 2`), classes
  interleaved so every session holds a mix of classes; small corpora use
  fewer, evenly spaced sessions (at least 2 for training); only sessions
  holding utterances get files. Session `s` has speakers `User{2s-1:03d}F` and
  `User{2s:03d}M`. 10 simulated raters choose from the generated class set;
  the majority always contains the intended emotion, and when the top count
  is tied the tied labels are written joined by `;` (a few % of rows), the
  intended emotion first.
  Emotion spellings are the real ones, including `disqust` (sic).
- `aihub`: one CP949 CSV `demo.csv` with the exact 15-column header, next to a
  folder `demo/` holding `<wav_id>.wav` (24 hex chars, 48 kHz mono PCM16), the
  way the real releases ship a CSV beside a folder of wavs. 5 raters with
  intensities (0 for neutral, 1-2 otherwise) chosen so that seed 001's rule
  (largest intensity sum, ties to the most votes) gives the intended emotion
  for every row. 나이/성별 come from the voice variant (one (age, gender) per
  variant). Emotion spellings: `happines:`, `sadness`, `angry`, `neutral`,
  `surprise`, `fear`, `disgust`.

Both layouts also get `README.txt` (says it is synthetic, with the flags) and
`demo_truth.jsonl` (one JSON object per utterance: intended emotion, modality
condition, wording/prosody emotions, prosody parameters, speaker, file).
Extra files sit in the corpus root only; the readers never need them.

Deterministic: the same arguments give byte-identical files with the same
espeak-ng version (recorded in README.txt): all randomness comes from one
seeded numpy Generator, drawn in a fixed order before any parallel work, and
espeak-ng itself is deterministic.

Example:

```python
from tfsent.corpus.demo_corpus import make_demo_corpus
summary = make_demo_corpus("/tmp/demo_kemdy20", layout="kemdy20", seed=0,
                           per_class=60)
summary["counts"]  # {"neutral": 60, "happy": 60, "sad": 60, "angry": 60}
```
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as xml_escape

import numpy as np
from scipy import signal

import tfsent
from tfsent.core.errors import UsageError

# === Constants ===

EMOTIONS_4 = ("neutral", "happy", "sad", "angry")
EMOTIONS_7 = ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")
LAYOUTS = ("kemdy20", "aihub")
CONDITIONS = ("both", "audio_only", "text_only")

KEMDY20_SPELLING = {
    "neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
    "surprise": "surprise", "fear": "fear", "disgust": "disqust",
}
AIHUB_SPELLING = {
    "neutral": "neutral", "happy": "happines:", "sad": "sadness", "angry": "angry",
    "surprise": "surprise", "fear": "fear", "disgust": "disgust",
}
AIHUB_HEADER = (
    "wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기",
    "3번 감정", "3번 감정세기", "4번 감정", "4번감정세기", "5번 감정", "5번 감정세기",
    "나이", "성별",
)
KEMDY20_RATERS = tuple(f"Eval{i:02d}{'F' if i % 2 else 'M'}" for i in range(1, 11))
KEMDY20_NUM_SESSIONS = 40
KEMDY20_TRAIN_SESSIONS = 32  # Sess01-32 train, Sess33-40 test (the standard split).
KEMDY20_UTTS_PER_SCRIPT = 6
ESPEAK_RATE = 22050
README_MARKER = "tfsent synthetic demo corpus"

# Voice variants acting as speakers: (variant, gender, age).
VOICES = (
    ("f1", "female", 23), ("f2", "female", 31), ("f3", "female", 45),
    ("f4", "female", 58), ("m1", "male", 27), ("m2", "male", 34),
    ("m3", "male", 41), ("m4", "male", 52), ("m5", "male", 19),
    ("m6", "male", 63), ("m7", "male", 38),
)
FEMALE_VOICES = tuple(v for v in VOICES if v[1] == "female")
MALE_VOICES = tuple(v for v in VOICES if v[1] == "male")

# Prosody per emotion, (mean, std) of espeak-ng's pitch `-p` (0-99), pitch range
# (SSML percent), rate `-s` (words/min) and amplitude `-a` (0-200).
PROSODY = {
    "neutral": dict(pitch=(50, 5), range=(100, 12), rate=(165, 10), amplitude=(100, 10)),
    "happy": dict(pitch=(70, 6), range=(175, 20), rate=(200, 12), amplitude=(125, 12)),
    "sad": dict(pitch=(32, 5), range=(50, 10), rate=(125, 10), amplitude=(65, 10)),
    "angry": dict(pitch=(60, 6), range=(135, 15), rate=(210, 12), amplitude=(175, 12)),
    "surprise": dict(pitch=(88, 5), range=(195, 10), rate=(170, 10), amplitude=(150, 12)),
    "fear": dict(pitch=(68, 6), range=(55, 10), rate=(230, 12), amplitude=(75, 10)),
    "disgust": dict(pitch=(25, 5), range=(125, 12), rate=(135, 10), amplitude=(125, 10)),
}
PROSODY_LIMITS = dict(pitch=(0, 99), range=(10, 200), rate=(90, 320), amplitude=(20, 200))

# Rater valence/arousal means (1-5) for the emotion a rater chose.
VALENCE_AROUSAL = {
    "neutral": (3.0, 3.0), "happy": (4.0, 4.0), "sad": (2.0, 2.0), "angry": (1.5, 4.5),
    "surprise": (3.5, 4.5), "fear": (2.0, 4.0), "disgust": (1.5, 3.0),
}

# Emotional wording: "<reason> <predicate>", or the predicate alone (the short
# form, also used when a long sentence spoken slowly would exceed 4 s).
REASONS = {
    "happy": ("시험에 합격해서", "선물을 받아서", "친구가 놀러 와서", "월급이 올라서",
              "여행을 가게 돼서", "상을 받아서", "칭찬을 들어서", "날씨가 좋아서",
              "고양이가 생겨서", "복권에 당첨돼서"),
    "sad": ("친구가 떠나서", "시험에 떨어져서", "강아지가 아파서", "혼자 남겨져서",
            "할머니가 보고 싶어서", "비가 와서", "일이 안 풀려서", "헤어져서",
            "약속이 취소돼서", "연락이 없어서"),
    "angry": ("또 약속을 어겨서", "새치기를 당해서", "거짓말을 해서", "물건을 망가뜨려서",
              "또 늦게 와서", "무시를 당해서", "돈을 안 갚아서", "소리를 질러서",
              "일을 떠넘겨서", "차가 끼어들어서"),
    "surprise": ("갑자기 문이 열려서", "친구가 나타나서", "소식을 들어서", "전화가 와서",
                 "불이 꺼져서", "선물이 와서", "이름이 불려서", "눈이 내려서"),
    "fear": ("밤길이 어두워서", "이상한 소리가 나서", "누가 따라와서", "천둥이 쳐서",
             "혼자 집에 있어서", "높은 곳이라서", "엘리베이터가 멈춰서", "큰 개가 짖어서"),
    "disgust": ("음식이 상해서", "쓰레기 냄새가 나서", "바퀴벌레가 나와서", "화장실이 더러워서",
                "벌레가 기어 다녀서", "하수구가 막혀서", "곰팡이가 피어서", "침을 뱉어서"),
}
PREDICATES = {
    "happy": ("정말 기뻐요", "너무 행복해", "진짜 신나요", "기분이 너무 좋아",
              "정말 즐거워요", "완전 최고야", "너무 설레요", "날아갈 것 같아"),
    "sad": ("너무 슬퍼", "정말 우울해요", "마음이 아파요", "눈물이 나요",
            "너무 외로워", "가슴이 먹먹해", "너무 속상해요", "힘이 하나도 없어"),
    "angry": ("진짜 화가 나", "너무 짜증 나요", "정말 열받아", "참을 수가 없어",
              "어이가 없어요", "정말 괘씸해", "화가 치밀어요", "더는 못 참아"),
    "surprise": ("깜짝 놀랐어", "정말 놀라워요", "말도 안 돼", "이게 웬일이야",
                 "믿을 수가 없어", "세상에 이럴 수가", "정말 뜻밖이에요", "눈을 의심했어"),
    "fear": ("너무 무서워", "정말 두려워요", "겁이 나요", "소름이 돋아",
             "무서워서 떨려요", "심장이 떨려", "불안해 죽겠어", "오싹해요"),
    "disgust": ("정말 역겨워", "너무 더러워요", "토할 것 같아", "속이 울렁거려",
                "정말 불쾌해요", "보기도 싫어", "냄새가 지독해", "너무 징그러워"),
}
# Neutral wording: "<time> <fact>", short form the fact alone.
NEUTRAL_TIMES = ("내일", "오늘", "모레", "다음 주", "이번 주말", "금요일", "월요일", "오후에")
NEUTRAL_FACTS = (
    "회의는 세 시에 있어요", "버스는 정류장에서 타요", "택배는 문 앞에 두세요",
    "점심은 열두 시에 먹어요", "수업은 강의실에서 해요", "서류는 책상 위에 있어요",
    "기차는 아홉 시에 출발해요", "은행은 네 시에 닫아요", "도서관은 이층에 있어요",
    "약속 장소는 역 앞이에요", "보고서는 메일로 보낼게요", "우산은 현관에 있어요",
    "주차장은 지하에 있어요", "장은 마트에서 볼게요", "청소는 오전에 할게요",
)

MIN_SECONDS = 1.0
MAX_SECONDS = 4.0


# === Planning (all randomness, drawn in a fixed order) ===


@dataclass
class _Utterance:
    index: int
    emotion: str
    condition: str
    wording: str  # emotion the wording expresses ("neutral" for neutral wording)
    prosody_emotion: str
    texts: tuple  # candidate sentences, longest first
    voice: str
    gender: str
    age: int
    pitch: int
    range: int
    rate: int
    amplitude: int
    noise_seed: int
    lead_s: float
    tail_s: float
    speaker: str = ""
    session: str = ""
    utt_id: str = ""
    rel_path: str = ""
    extra: dict = field(default_factory=dict)


def _round_half_up(x):
    return int(math.floor(x + 0.5))


def _class_set(classes):
    if classes == 4:
        return EMOTIONS_4
    if classes == 7:
        return EMOTIONS_7
    raise ValueError(f"classes must be 4 or 7, got {classes!r}")


def _sentence(rng, wording):
    """Returns candidate sentences (full form, short form) for a wording emotion."""
    if wording == "neutral":
        fact = NEUTRAL_FACTS[rng.integers(len(NEUTRAL_FACTS))]
        time_ = NEUTRAL_TIMES[rng.integers(len(NEUTRAL_TIMES))]
        return (f"{time_} {fact}.", f"{fact}.")
    predicate = PREDICATES[wording][rng.integers(len(PREDICATES[wording]))]
    reason = REASONS[wording][rng.integers(len(REASONS[wording]))]
    ending = "!" if wording in ("happy", "angry", "surprise") else "."
    if rng.random() < 0.25:
        return (f"{predicate}{ending}",)
    return (f"{reason} {predicate}{ending}", f"{predicate}{ending}")


def _prosody(rng, emotion, speaker_offset):
    values = {}
    for key, (mean, std) in PROSODY[emotion].items():
        value = rng.normal(mean, std) + speaker_offset.get(key, 0.0)
        low, high = PROSODY_LIMITS[key]
        values[key] = int(np.clip(round(value), low, high))
    return values


def _conditions(rng, emotion, per_class, audio_only_frac, text_only_frac):
    if emotion == "neutral":
        return ["both"] * per_class
    n_audio = _round_half_up(per_class * audio_only_frac)
    n_text = _round_half_up(per_class * text_only_frac)
    if n_audio + n_text > per_class:
        raise ValueError(
            f"audio_only_frac + text_only_frac must be <= 1, got "
            f"{audio_only_frac} + {text_only_frac}")
    conditions = (["audio_only"] * n_audio + ["text_only"] * n_text
                  + ["both"] * (per_class - n_audio - n_text))
    return [conditions[i] for i in rng.permutation(per_class)]


def _plan_utterance(rng, index, emotion, condition, voice, speaker_offset):
    wording = "neutral" if condition == "audio_only" else emotion
    prosody_emotion = "neutral" if condition == "text_only" else emotion
    texts = _sentence(rng, wording)
    prosody = _prosody(rng, prosody_emotion, speaker_offset)
    variant, gender, age = voice
    return _Utterance(
        index=index, emotion=emotion, condition=condition, wording=wording,
        prosody_emotion=prosody_emotion, texts=texts, voice=f"ko+{variant}",
        gender=gender, age=age, noise_seed=int(rng.integers(2**31)),
        lead_s=float(rng.uniform(0.05, 0.2)), tail_s=float(rng.uniform(0.1, 0.3)),
        **prosody)


def _speaker_offset(rng):
    return {"pitch": rng.normal(0, 4), "rate": rng.normal(0, 6)}


def _kemdy20_votes(rng, emotion, class_set):
    """10 rater emotions whose top-count set contains `emotion`."""
    others = [e for e in class_set if e != emotion]
    # Dissenting raters mostly say neutral (or, for neutral rows, anything else).
    weights = np.array([3.0 if e == "neutral" else 1.0 for e in others])
    weights /= weights.sum()
    clarity = rng.uniform(0.45, 0.95)
    for _ in range(1000):
        picks = [emotion if rng.random() < clarity else others[rng.choice(len(others), p=weights)]
                 for _ in range(10)]
        counts = {e: picks.count(e) for e in class_set}
        top = max(counts.values())
        if counts[emotion] == top:
            return picks
    return [emotion] * 10


def _aihub_rule(votes):
    """Seed 001's rule: largest intensity sum, a tie to the most votes."""
    sums, counts = {}, {}
    for e, intensity in votes:
        sums[e] = sums.get(e, 0) + intensity
        counts[e] = counts.get(e, 0) + 1
    best = max(sums.values())
    tied = [e for e in sums if sums[e] == best]
    best_count = max(counts[e] for e in tied)
    winners = [e for e in tied if counts[e] == best_count]
    return winners[0] if len(winners) == 1 else None


def _aihub_votes(rng, emotion, class_set):
    """5 (emotion, intensity) pairs for which `_aihub_rule` returns `emotion`."""
    others = [e for e in class_set if e != emotion]
    weights = np.array([3.0 if e == "neutral" else 1.0 for e in others])
    weights /= weights.sum()
    # Any dissent on a neutral row wins the intensity sum, so it must be rare.
    clarity = rng.uniform(0.9, 1.0) if emotion == "neutral" else rng.uniform(0.6, 0.95)

    def intensity(e):
        return 0 if e == "neutral" else (2 if rng.random() < 0.6 else 1)

    for _ in range(1000):
        votes = []
        for _ in range(5):
            e = emotion if rng.random() < clarity else others[rng.choice(len(others), p=weights)]
            votes.append((e, intensity(e)))
        if _aihub_rule(votes) == emotion:
            return votes
    return [(emotion, 0 if emotion == "neutral" else 2)] * 5


# === Synthesis ===


def _espeak(text, utt):
    ssml = (f'<speak><prosody range="{utt.range}%">{xml_escape(text)}</prosody></speak>')
    cmd = ["espeak-ng", "-m", "-v", utt.voice, "-p", str(utt.pitch), "-s", str(utt.rate),
           "-a", str(utt.amplitude), "--stdout", ssml]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except FileNotFoundError as e:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng); "
                           "the demo corpus needs it") from e
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"espeak-ng failed on {text!r}: {e.stderr.decode(errors='replace')}") from e
    return _parse_stream_wav(proc.stdout, text)


def _parse_stream_wav(data, what):
    # espeak-ng --stdout writes a streaming header whose sizes are placeholders.
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"espeak-ng returned no WAV data for {what!r}")
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"data":
            pcm = data[pos + 8:]
            return np.frombuffer(pcm[:len(pcm) // 2 * 2], dtype="<i2")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            if rate != ESPEAK_RATE:
                raise RuntimeError(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_RATE}")
        pos += 8 + size
    raise RuntimeError(f"espeak-ng output for {what!r} has no data chunk")


def _trim(pcm, threshold=64):
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    if loud.size == 0:
        raise RuntimeError("espeak-ng produced silence")
    return pcm[loud[0]:loud[-1] + 1]


def _synthesize(utt, sample_rate):
    """Speaks `utt` and returns (int16 samples at sample_rate, text)."""
    margin_s = utt.lead_s + utt.tail_s + 0.01  # + room for rounding when resampling
    for text in utt.texts:
        speech = _trim(_espeak(text, utt))
        if len(speech) / ESPEAK_RATE + margin_s <= MAX_SECONDS:
            break
    else:  # Even the short form is too long: cut it (never seen with the pools above).
        speech = speech[:int((MAX_SECONDS - margin_s) * ESPEAK_RATE)]
    g = math.gcd(sample_rate, ESPEAK_RATE)
    x = signal.resample_poly(speech.astype(np.float64), sample_rate // g, ESPEAK_RATE // g)
    lead = int(round(utt.lead_s * sample_rate))
    total = max(lead + len(x) + int(round(utt.tail_s * sample_rate)),
                int(math.ceil(MIN_SECONDS * sample_rate)))
    y = np.zeros(total, np.float64)
    y[lead:lead + len(x)] = x
    noise_rng = np.random.default_rng(utt.noise_seed)
    noise_db = noise_rng.uniform(-66.0, -56.0)
    y += noise_rng.standard_normal(total) * 32768.0 * 10 ** (noise_db / 20)
    return np.clip(np.round(y), -32768, 32767).astype("<i2"), text


def _write_wav(path, pcm, sample_rate):
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def _render_all(utterances, root, sample_rate, workers):
    def job(utt):
        pcm, text = _synthesize(utt, sample_rate)
        path = os.path.join(root, utt.rel_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_wav(path, pcm, sample_rate)
        return text, len(pcm) / sample_rate

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for utt, (text, seconds) in zip(utterances, pool.map(job, utterances)):
            utt.extra["text"] = text
            utt.extra["duration_s"] = round(seconds, 4)


# === Layouts ===


def _plan_kemdy20(rng, class_set, per_class, fracs):
    speakers = {}  # session -> [(user, voice, offset)] for F and M
    for s in range(1, KEMDY20_NUM_SESSIONS + 1):
        f_voice = FEMALE_VOICES[(s - 1) % len(FEMALE_VOICES)]
        m_voice = MALE_VOICES[(s - 1) % len(MALE_VOICES)]
        speakers[s] = [(f"User{2 * s - 1:03d}F", f_voice, _speaker_offset(rng)),
                       (f"User{2 * s:03d}M", m_voice, _speaker_offset(rng))]
    by_session = {s: [] for s in speakers}
    n_test = 0 if per_class < 2 else max(1, _round_half_up(per_class * 8 / 40))
    n_train = per_class - n_test
    conditions = {e: _conditions(rng, e, per_class, *fracs) for e in class_set}
    # Class-interleaved order, so consecutive utterances (which share a session
    # when sessions are few) are of different classes: then every session, and
    # so every validation split drawn from sessions, holds a mix of classes.
    train = [(e, j) for j in range(n_train) for e in class_set]
    test = [(e, n_train + j) for j in range(n_test) for e in class_set]
    utterances = []
    for items, first, count in ((train, 1, KEMDY20_TRAIN_SESSIONS),
                                (test, KEMDY20_TRAIN_SESSIONS + 1,
                                 KEMDY20_NUM_SESSIONS - KEMDY20_TRAIN_SESSIONS)):
        if not items:
            continue
        # About one utterance per class in each session until all are used;
        # at least the training sessions the session split needs (2 train +
        # valid, or 3 when there is no test part to split off).
        minimum = 1 if first > 1 else (2 if test else 3)
        n_sessions = min(count, max(minimum, math.ceil(len(items) / len(class_set))))
        n_sessions = min(n_sessions, len(items))
        picks = [first + i * count // n_sessions for i in range(n_sessions)]
        for k, (emotion, j) in enumerate(items):
            s = picks[k * n_sessions // len(items)]
            user, voice, offset = speakers[s][int(rng.integers(2))]
            utt = _plan_utterance(rng, len(utterances), emotion, conditions[emotion][j],
                                  voice, offset)
            utt.speaker, utt.session = user, f"Sess{s:02d}"
            votes = _kemdy20_votes(rng, emotion, class_set)
            va = [(int(np.clip(round(rng.normal(VALENCE_AROUSAL[v][0], 0.6)), 1, 5)),
                   int(np.clip(round(rng.normal(VALENCE_AROUSAL[v][1], 0.6)), 1, 5)))
                  for v in votes]
            utt.extra.update(votes=votes, va=va, gap_s=float(rng.uniform(0.3, 2.0)))
            utterances.append(utt)
            by_session[s].append(utt)
    for s, utts in by_session.items():
        order = rng.permutation(len(utts))
        by_session[s] = [utts[i] for i in order]
        for k, utt in enumerate(by_session[s]):
            script, seg = divmod(k, KEMDY20_UTTS_PER_SCRIPT)
            utt.utt_id = f"Sess{s:02d}_script{script + 1:02d}_{utt.speaker}_{seg + 1:03d}"
            utt.rel_path = f"wav/Session{s:02d}/{utt.utt_id}.wav"
    return utterances, by_session


def _kemdy20_total(emotion, votes, va):
    counts = {}
    for v in votes:
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    # A tie is written like "happy;neutral": the intended emotion first (so
    # `--tie_policy=first` recovers it), then the others in first-vote order.
    tied = [e for e in dict.fromkeys([emotion] + votes) if counts.get(e, 0) == top]
    label = ";".join(KEMDY20_SPELLING[e] for e in tied)
    valence = sum(v for v, _ in va) / len(va)
    arousal = sum(a for _, a in va) / len(va)
    return label, len(tied) > 1, valence, arousal


def _write_kemdy20(root, by_session):
    os.makedirs(os.path.join(root, "annotation"))
    header = ["Numb", "Wav", "", "Segment ID", "Total Evaluation", "", ""]
    sub_header = ["", "start", "end", "", "Emotion", "Valence", "Arousal"]
    for rater in KEMDY20_RATERS:
        header += [rater, "", ""]
        sub_header += ["Emotion", "Valence", "Arousal"]
    assert len(header) == 37
    for s, utts in by_session.items():
        if not utts:
            continue
        rows, clock = [header, sub_header], 0.0
        for numb, utt in enumerate(utts, start=1):
            votes, va = utt.extra["votes"], utt.extra["va"]
            label, tie, valence, arousal = _kemdy20_total(utt.emotion, votes, va)
            utt.extra.update(label_written=label, tie=tie, valence=valence, arousal=arousal)
            clock += utt.extra["gap_s"]
            start, clock = clock, clock + utt.extra["duration_s"]
            row = [str(numb), f"{start:.3f}", f"{clock:.3f}", utt.utt_id, label,
                   f"{valence:.1f}", f"{arousal:.1f}"]
            for v, (rv, ra) in zip(votes, va):
                row += [KEMDY20_SPELLING[v], str(rv), str(ra)]
            rows.append(row)
            txt = os.path.join(root, utt.rel_path[:-4] + ".txt")
            with open(txt, "wb") as f:
                f.write(utt.extra["text"].encode("cp949"))
        _write_csv(os.path.join(root, "annotation", f"Sess{s:02d}_eval.csv"), rows, "utf-8")


def _plan_aihub(rng, class_set, per_class, fracs):
    offsets = {v[0]: _speaker_offset(rng) for v in VOICES}
    # ObjectId-like ids: 4-byte time, 5-byte machine/process, 3-byte counter.
    clock = int(rng.integers(0x5F300000, 0x5F500000))
    machine = int(rng.integers(1 << 40))
    counter = int(rng.integers(1 << 23))
    utterances = []
    for emotion in class_set:
        for condition in _conditions(rng, emotion, per_class, *fracs):
            voice = VOICES[int(rng.integers(len(VOICES)))]
            utt = _plan_utterance(rng, len(utterances), emotion, condition, voice,
                                  offsets[voice[0]])
            utt.speaker = f"{voice[1]}_{voice[2]}"
            utt.extra["votes"] = _aihub_votes(rng, emotion, class_set)
            utterances.append(utt)
    order = rng.permutation(len(utterances))
    utterances = [utterances[i] for i in order]
    for utt in utterances:
        clock += int(rng.integers(1, 40))
        counter = (counter + 1) % (1 << 24)
        utt.utt_id = f"{clock:08x}{machine:010x}{counter:06x}"
        utt.rel_path = f"demo/{utt.utt_id}.wav"
    return utterances


def _write_aihub(root, utterances):
    rows = [list(AIHUB_HEADER)]
    for utt in utterances:
        row = [utt.utt_id, utt.extra["text"], AIHUB_SPELLING[utt.emotion]]
        for e, intensity in utt.extra["votes"]:
            row += [AIHUB_SPELLING[e], str(intensity)]
        row += [str(utt.age), utt.gender]
        rows.append(row)
        utt.extra.update(label_written=AIHUB_SPELLING[utt.emotion], tie=False)
    _write_csv(os.path.join(root, "demo.csv"), rows, "cp949")


def _write_csv(path, rows, encoding):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    with open(path, "wb") as f:
        f.write(buf.getvalue().encode(encoding))


def _write_truth(root, utterances):
    keys = ("emotion", "condition", "wording", "prosody_emotion", "voice", "gender", "age",
            "speaker", "session", "pitch", "range", "rate", "amplitude")
    with open(os.path.join(root, "demo_truth.jsonl"), "w", encoding="utf-8") as f:
        for utt in sorted(utterances, key=lambda u: u.index):
            record = {"utt_id": utt.utt_id, "audio_path": utt.rel_path}
            record.update({k: getattr(utt, k) for k in keys})
            record.update({k: utt.extra[k] for k in
                           ("text", "duration_s", "label_written", "tie")})
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")


def _espeak_version():
    # Byte-identical output is only promised for the same espeak-ng version.
    proc = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    return " ".join(proc.stdout.split()[:4]) or "espeak-ng (version unknown)"


def _readme(layout, seed, per_class, class_set, fracs, counts):
    where = ("annotation/SessNN_eval.csv + wav/SessionNN/*.wav (16 kHz) + CP949 .txt"
             if layout == "kemdy20" else "demo.csv (CP949) + demo/<wav_id>.wav (48 kHz)")
    return (
        f"{README_MARKER}\n\n"
        "THIS CORPUS IS SYNTHETIC. Korean sentences spoken by espeak-ng with\n"
        "emotion-dependent prosody, for demos and tests of tfsent only.\n"
        "Numbers measured on it say nothing about real emotion recognition;\n"
        "real numbers need a real corpus (AI Hub, KEMDy19/KEMDy20).\n\n"
        f"made by: bin/make_demo_corpus --layout={layout} --seed={seed} "
        f"--per_class={per_class} --classes={len(class_set)} "
        f"--audio_only_frac={fracs[0]} --text_only_frac={fracs[1]}\n"
        f"tfsent version: {tfsent.__version__}; {_espeak_version()}\n"
        f"layout: {layout}: {where}\n"
        f"classes: {', '.join(class_set)}\n"
        f"counts: {json.dumps(counts)}\n"
        "demo_truth.jsonl: per utterance the intended emotion and the modality\n"
        "condition (both / audio_only = neutral wording + emotional prosody /\n"
        "text_only = emotional wording + neutral prosody).\n"
    )


# === Output directory handling ===


class OutDirError(UsageError, FileExistsError):
    """`--out` cannot take a demo corpus (a file, or a non-empty folder that is not one)."""


def check_out_dir(out_dir, overwrite):
    """Raises `OutDirError` unless `out_dir` is missing, empty, or (with `overwrite`) a demo corpus."""
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise OutDirError(f"--out={out_dir} exists and is not a directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise OutDirError(
                f"--out={out_dir} is not empty; pass --overwrite to replace it")
        readme = os.path.join(out_dir, "README.txt")
        marker = ""
        if os.path.isfile(readme):
            with open(readme, encoding="utf-8", errors="replace") as f:
                marker = f.readline().strip()
        if marker != README_MARKER:
            raise OutDirError(
                f"--out={out_dir} is not empty and is not a tfsent demo corpus "
                f"(no {readme} starting with {README_MARKER!r}); refusing to overwrite it")


def _move_into_place(tmp_dir, out_dir):
    if not os.path.isdir(out_dir):
        os.rename(tmp_dir, out_dir)
        return
    if not os.listdir(out_dir):
        os.rmdir(out_dir)
        os.rename(tmp_dir, out_dir)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old-",
                           dir=os.path.dirname(out_dir))
    os.rename(out_dir, os.path.join(old, "corpus"))
    os.rename(tmp_dir, out_dir)
    shutil.rmtree(old, ignore_errors=True)


# === Public API ===


def make_demo_corpus(out_dir, layout, seed, per_class, classes=4, *, overwrite=False,
                     audio_only_frac=0.2, text_only_frac=0.2, workers=None):
    """Writes the SYNTHETIC demo corpus (for demos and tests only) to `out_dir`.

    Args:
        out_dir: corpus root to create. It may exist only if empty, or with
            `overwrite=True` if it holds an earlier demo corpus.
        layout: `"kemdy20"` or `"aihub"`.
        seed: integer; the same arguments give byte-identical files.
        per_class: utterances per emotion class (>= 1).
        classes: 4 (neutral, happy, sad, angry) or 7 (+ surprise, fear, disgust).
        overwrite: replace an existing demo corpus at `out_dir`.
        audio_only_frac: fraction of each emotional class spoken with neutral
            wording and emotional prosody.
        text_only_frac: fraction of each emotional class with emotional wording
            and neutral prosody.
        workers: espeak-ng processes run at once (default min(4, CPUs)).

    Returns:
        dict with `out_dir` (absolute), `layout`, `seed`, `per_class`,
        `classes` (list), `num_utterances`, `counts` {emotion: n}, `mix`
        {emotion: {condition: n}}, `ties` (KEMDy20 rows with `;` labels),
        `sample_rate`, `total_seconds` (audio), `min_seconds`, `max_seconds`,
        `elapsed_s`, `truth_path`, `utterances` (list of per-utterance dicts,
        the rows of `demo_truth.jsonl`).

    Example:

    >>> s = make_demo_corpus("/tmp/d", "aihub", seed=1, per_class=2)  # doctest: +SKIP
    >>> s["num_utterances"]  # doctest: +SKIP
    8
    """
    started = time.monotonic()
    class_set, fracs = _check_arguments(layout, seed, per_class, classes, audio_only_frac, text_only_frac)
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_out_dir(out_dir, overwrite)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)

    rng = np.random.default_rng(seed)
    sample_rate = 16000 if layout == "kemdy20" else 48000
    if layout == "kemdy20":
        utterances, by_session = _plan_kemdy20(rng, class_set, per_class, fracs)
    else:
        utterances = _plan_aihub(rng, class_set, per_class, fracs)

    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
    try:
        _render_all(utterances, tmp_dir, sample_rate, workers)
        if layout == "kemdy20":
            _write_kemdy20(tmp_dir, by_session)
        else:
            _write_aihub(tmp_dir, utterances)
        counts = {e: sum(u.emotion == e for u in utterances) for e in class_set}
        _write_truth(tmp_dir, utterances)
        with open(os.path.join(tmp_dir, "README.txt"), "w", encoding="utf-8") as f:
            f.write(_readme(layout, seed, per_class, class_set, fracs, counts))
        os.chmod(tmp_dir, 0o755)
        _move_into_place(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise

    return _summary(out_dir, layout, seed, per_class, class_set, counts, sample_rate, started)


def _check_arguments(layout, seed, per_class, classes, audio_only_frac, text_only_frac):
    """`(class_set, (audio_only_frac, text_only_frac))` after checking every argument."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    class_set = _class_set(int(classes))
    if not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, frac in (("audio_only_frac", audio_only_frac), ("text_only_frac", text_only_frac)):
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {frac!r}")
    if audio_only_frac + text_only_frac > 1.0:
        raise ValueError(f"audio_only_frac + text_only_frac must be <= 1, got "
                         f"{audio_only_frac} + {text_only_frac}")
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng); "
                           "the demo corpus needs it")
    return class_set, (float(audio_only_frac), float(text_only_frac))


def _summary(out_dir, layout, seed, per_class, class_set, counts, sample_rate, started):
    """`make_demo_corpus`'s return value, read back from the written `demo_truth.jsonl`."""
    truth_path = os.path.join(out_dir, "demo_truth.jsonl")
    with open(truth_path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    durations = [r["duration_s"] for r in records]
    return {
        "out_dir": out_dir,
        "layout": layout,
        "seed": int(seed),
        "per_class": int(per_class),
        "classes": list(class_set),
        "num_utterances": len(records),
        "counts": counts,
        "mix": {e: {c: sum(r["emotion"] == e and r["condition"] == c for r in records)
                    for c in CONDITIONS} for e in class_set},
        "ties": sum(r["tie"] for r in records),
        "sample_rate": sample_rate,
        "total_seconds": round(sum(durations), 3),
        "min_seconds": min(durations),
        "max_seconds": max(durations),
        "elapsed_s": round(time.monotonic() - started, 3),
        "truth_path": truth_path,
        "utterances": records,
    }


def read_truth(corpus_dir):
    """Reads `demo_truth.jsonl` of a demo corpus as a list of dicts."""
    path = os.path.join(os.fspath(corpus_dir), "demo_truth.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: {corpus_dir} is not a tfsent demo corpus")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]
