"""Fixture corpora in the exact real layouts, with every known quirk.

Each builder returns `(root, expected)` where `expected` maps every data row's
utt_id (as written in the annotation file) to the expected outcome under the
default options: `("kept", emotion)` or `("reject", reason)`.
"""

import os

import pytest

from tfsent.corpus import layouts

DATA = os.path.join(os.path.dirname(__file__), "data")


def aihub_sample_rows():
    """The 11 rows quoted in seed 001 (tests/corpus/data/aihub_sample.tsv)."""
    with open(os.path.join(DATA, "aihub_sample.tsv"), encoding="utf-8") as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return lines[0], lines[1:]


def build_kemdy20(root):
    r = layouts.kemdy20_row
    ann = os.path.join(root, "annotation")
    wav = os.path.join(root, "wav")

    def seg(session, name, sr=16000, ch=1, bits=16, text="c/ 오늘 정말 b/ 좋아 +", enc="cp949",
            truncate=None, wav_file=True):
        folder = os.path.join(wav, f"Session{session:02d}")
        if wav_file:
            layouts.write_wav(os.path.join(folder, name + ".wav"), frames=sr // 10, sample_rate=sr,
                              channels=ch, bits=bits, truncate_to=truncate)
        if text is not None:
            layouts.write_text(os.path.join(folder, name + ".txt"), text, enc)

    seg(1, "Sess01_script01_User001F_001")
    seg(1, "Sess01_script01_User002M_001", sr=48000, ch=2, text="n/ 그만해, 진짜*")
    seg(1, "Sess01_script01_User001F_002")
    seg(1, "Sess01_script01_User002M_002")
    seg(1, "Sess01_script01_User001F_003", wav_file=False)
    seg(1, "Sess01_script01_User002M_003", bits=8, text="")
    layouts.write_kemdy20_eval(os.path.join(ann, "Sess01_eval.csv"), [
        r(1, "Sess01_script01_User001F_001", "happy", 4.2, 3.1),
        r(2, "Sess01_script01_User002M_001", "disqust", 1.5, 3.5),
        r(3, "Sess01_script01_User001F_002", "angry;neutral;disqust", 3, 3),
        r(4, "Sess01_script01_User002M_002", "joy", 3, 3),
        r(5, "Sess01_script01_User001F_003", "sad", 2.0, 2.0),
        r(6, "Sess01_script01_User002M_003", "Neutral ", 3, 3),
    ])
    seg(2, "Sess02_script01_User003F_001", text="u/ 응 그래", enc="utf-8-sig")
    seg(2, "Sess02_script01_User004M_001", text="와 l/ 대박")
    seg(2, "Sess02_script01_User004M_002", truncate=300)
    layouts.write_kemdy20_eval(os.path.join(ann, "Sess02_eval.csv"), [
        r(1, "Sess02_script01_User003F_001", "sad", 2.0, 2.5),
        r(2, "Sess02_script01_User004M_001", "surprise", "", 4.0),
        r(3, "Sess02_script01_User004M_002", "happy", 3, 3),
        r(4, "Sess02_script01_User003F_001", "sad", 2.0, 2.5),
        ["5", "0.0", "1.0", "Sess02_script01_User003F_005"],
    ], encoding="cp949")
    seg(17, "Sess17_script01_User033M_001")
    seg(17, "Sess42_script01_User034F_001", text="N/ 원래 이름")
    layouts.write_kemdy20_eval(os.path.join(ann, "Sess17_eval.csv"), [
        r(1, "Sess42_script01_User033M_001", "happy", 4, 4),
        r(2, "Sess42_script01_User034F_001", "ANGER", 1.2, 4.5),
        r(3, "../../../etc/passwd", "happy", 3, 3),
        r(4, "garbage_id", "happy", 3, 3),
    ])
    seg(33, "Sess33_script01_User065F_001")
    seg(33, "Sess33_script01_User066M_001")
    layouts.write_kemdy20_eval(os.path.join(ann, "Sess33_eval.csv"), [
        r(1, "Sess33_script01_User065F_001", "neutral", 3, 3),
        r(2, "Sess33_script01_User066M_001", "happy;neutral", 3.4, 3),
    ])
    seg(34, "Sess34_script01_User067F_001")
    os.makedirs(os.path.join(wav, "Session34"), exist_ok=True)
    open(os.path.join(wav, "Session34", "Sess34_script01_User068M_001.wav"), "wb").close()
    layouts.write_kemdy20_eval(os.path.join(ann, "Sess34_eval.csv"), [
        r(1, "Sess34_script01_User067F_001", "fear", 2.1, 4),
        r(2, "Sess34_script01_User068M_001", "sad", 2, 2),
    ])
    # The EDA/IBI/TEMP folders exist in the real delivery and are ignored.
    layouts.write_text(os.path.join(root, "EDA", "Session01", "Sess01_User001F.csv"), "1,2\n", "utf-8")
    expected = {
        "Sess01_script01_User001F_001": ("kept", "happy"),
        "Sess01_script01_User002M_001": ("kept", "disgust"),
        "Sess01_script01_User001F_002": ("reject", "label_tie"),
        "Sess01_script01_User002M_002": ("reject", "unknown_emotion"),
        "Sess01_script01_User001F_003": ("reject", "missing_audio"),
        "Sess01_script01_User002M_003": ("kept", "neutral"),
        "Sess02_script01_User003F_001": ("kept", "sad"),
        "Sess02_script01_User004M_001": ("kept", "surprise"),
        "Sess02_script01_User004M_002": ("reject", "truncated_audio"),
        "Sess02_script01_User003F_001#dup": ("reject", "duplicate_utt_id"),
        "Sess02_script01_User003F_005": ("reject", "malformed_row"),
        "Sess17_script01_User033M_001": ("kept", "happy"),
        "Sess17_script01_User034F_001": ("kept", "angry"),
        "../../../etc/passwd": ("reject", "path_outside_data_dir"),
        "garbage_id": ("reject", "bad_segment_id"),
        "Sess33_script01_User065F_001": ("kept", "neutral"),
        "Sess33_script01_User066M_001": ("reject", "label_tie"),
        "Sess34_script01_User067F_001": ("kept", "fear"),
        "Sess34_script01_User068M_001": ("reject", "empty_audio"),
    }
    return root, expected


def build_kemdy19(root):
    expected = {}
    for s in range(1, 5):
        for g, other in (("F", "M"), ("M", "F")):
            rows = []
            for i, emotion in enumerate(["happy", "sad;neutral" if s == 4 else "sad"], start=1):
                name = f"Sess{s:02d}_{'impro' if i == 1 else 'script'}01_{g}{i:03d}"
                folder = os.path.join(root, "wav", f"Session{s:02d}", name.rsplit("_", 1)[0])
                layouts.write_wav(os.path.join(folder, name + ".wav"), frames=1600)
                layouts.write_text(os.path.join(folder, name + ".txt"), f"b/ 문장 {s} {g} {i}", "utf-8")
                rows.append(layouts.kemdy19_row(i, name, emotion, 2 + i, 3))
                expected[name] = ("kept", emotion) if ";" not in emotion else ("reject", "label_tie")
            other_name = f"Sess{s:02d}_impro01_{other}001"
            rows.append(layouts.kemdy19_row(3, other_name, "angry", 2, 3))
            expected[f"{other_name}@{g}"] = ("reject", "excluded_other_gender")
            layouts.write_kemdy19_res(os.path.join(root, "annotation", f"Session{s:02d}_{g}_res.csv"), rows)
    return root, expected


AIHUB_SAMPLE_LABELS = [
    "happy", "happy", "happy", "happy", "happy", "happy", "sad", "happy", "sad", "happy", "sad",
]


def build_aihub(root):
    header, sample = aihub_sample_rows()
    release4 = os.path.join(root, "4차년도")
    release5 = os.path.join(root, "5차년도_2차")
    expected = {}
    for row, label in zip(sample, AIHUB_SAMPLE_LABELS):
        layouts.write_wav(os.path.join(release4, "wav", row[0] + ".wav"), frames=4800, sample_rate=48000)
        expected[row[0]] = ("kept", label)
    extra4 = [
        ["6000000000000000000000a1", "무슨 소리야", "angry", "angry", "2", "angry", "1", "sad", "1",
         "anger", "2", "Angry", "1", "20", "male"],
        ["6000000000000000000000a2", "그래", "neutral", "joy", "1", "neutral", "0", "neutral", "0",
         "neutral", "0", "neutral", "0", "20", "male"],
        ["6000000000000000000000a3", "그래", "neutral", "happy", "5", "neutral", "0", "neutral", "0",
         "neutral", "0", "neutral", "0", "20", "male"],
        ["6000000000000000000000a4", "녹음 없음", "neutral", "neutral", "0", "neutral", "0", "neutral", "0",
         "neutral", "0", "neutral", "0", "30", "female"],
        ["6000000000000000000000a5", "무섭다", "fear", "fear", "2", "fear", "2", "surprise", "2",
         "surprise", "2", "neutral", "0", "30", "female"],
    ]
    for row in extra4[:1]:
        layouts.write_wav(os.path.join(release4, "wav", row[0] + ".wav"), frames=4800, sample_rate=48000,
                          bits=8)
    layouts.write_wav(os.path.join(release4, "wav", extra4[2][0] + ".wav"), frames=480, sample_rate=48000)
    layouts.write_wav(os.path.join(release4, "wav", extra4[4][0] + ".wav"), frames=480, sample_rate=48000)
    expected.update({
        extra4[0][0]: ("kept", "angry"),
        extra4[1][0]: ("reject", "unknown_emotion"),
        extra4[2][0]: ("reject", "bad_intensity"),
        extra4[3][0]: ("reject", "missing_audio"),
        extra4[4][0]: ("reject", "label_tie"),
    })
    layouts.write_aihub_csv(os.path.join(release4, "4차년도.csv"), sample + extra4, encoding="cp949")
    extra5 = [
        ["6000000000000000000000b1", "정말 고마워", "happiness", "happiness", "2", "happiness", "2",
         "neutral", "0", "neutral", "0", "neutral", "0", "60", "male"],
        ["6000000000000000000000b2", "", "sadness", "sadness", "1", "sadness", "1", "sadness", "1",
         "neutral", "0", "neutral", "0", "60", "male"],
        [sample[0][0]] + sample[0][1:],
    ]
    for row in extra5[:2]:
        layouts.write_wav(os.path.join(release5, "wav", row[0] + ".wav"), frames=4800, sample_rate=48000)
    layouts.write_wav(os.path.join(release5, "wav", "6000000000000000000000ff.wav"), frames=480,
                      sample_rate=48000)
    expected.update({
        extra5[0][0]: ("kept", "happy"),
        extra5[1][0]: ("kept", "sad"),
        sample[0][0] + "#dup": ("reject", "duplicate_utt_id"),
    })
    layouts.write_aihub_csv(os.path.join(release5, "5차년도_2차.csv"), extra5, encoding="utf-8-sig",
                            delimiter="\t")
    return root, expected


@pytest.fixture
def kemdy20_corpus(tmp_path):
    return build_kemdy20(str(tmp_path / "KEMDy20_v1_1"))


@pytest.fixture
def kemdy19_corpus(tmp_path):
    return build_kemdy19(str(tmp_path / "KEMDy19"))


@pytest.fixture
def aihub_corpus(tmp_path):
    return build_aihub(str(tmp_path / "aihub"))


@pytest.fixture
def aihub_sample():
    """`(header, rows, labels)` of the 11 seed-001 rows and the labels its rule gives."""
    header, rows = aihub_sample_rows()
    return header, rows, AIHUB_SAMPLE_LABELS
