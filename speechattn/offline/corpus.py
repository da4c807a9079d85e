"""Offline speech corpus: real synthesized English speech for both recipes, with zero downloads.

Usage:
    speechattn corpus --size mini --out data/corpus_mini            # seconds; tests and smoke runs
    speechattn corpus --size small --out data/corpus_small --jobs 8  # demo and benchmark default
    python -m speechattn.offline.corpus --size medium --out data/corpus_medium --seed 1

Sentences come from two sources: the grammar of :mod:`speechattn.offline.sentences`, and real
English prose, WordNet's usage examples (:mod:`speechattn.offline.prose`, Debian's
``wordnet-base``). Speech comes from ``espeak-ng`` (several accents and voice variants, rate and
pitch varied) and ``flite`` (its built-in voices), see :mod:`speechattn.offline.synth`; which utterance says what is decided first, by
:func:`speechattn.offline.plan.plan_corpus`. Same
``--size`` and ``--seed`` (and the same WordNet), same corpus, byte for byte.

Layout of ``DIR``::

    corpus.json                      written last: request, voices, counts and durations per split
    asr/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac      16 kHz mono 16-bit FLAC
    asr/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt       "<id> <TRANSCRIPT>" lines
    asr/lm-text.txt                  text-only sentences for language models, one transcript a line
    tts/wavs/<id>.wav                22.05 kHz mono 16-bit, one espeak-ng voice (TTS_VOICE)
    tts/metadata.csv                 "<id>|<raw text>|<normalized text>" (LJSpeech style, no header)
    tts/test_sentences.txt           "<id>|<raw text>" of the metadata rows held out for testing

The ASR part follows LibriSpeech, so one reader serves both: splits ``train``, ``dev``, ``test``,
``test-unseen-voice``, ``test-prose`` and ``test-prose-unseen-voice``; speaker ids ``100+k`` (training voices, also heard in dev and test) and
``200+j`` (voices never heard in training), chapter ids ``1000+j``, utterance ids ``103-1012-0000``;
transcripts uppercase ``A-Z``, apostrophe and space, numbers spelled out exactly as spoken (the
synthesizer reads the spelled-out text). ``train`` and ``dev`` mix grammar and prose sentences
(``CorpusSize.prose_share`` of them prose); ``test`` is grammar only, ``test-prose`` prose only,
both read by the training voices. Dev, test, test-prose and train sentences are disjoint;
``test-unseen-voice`` and ``test-prose-unseen-voice`` speak the ``test`` and ``test-prose``
sentences with the unseen voices, so comparing a pair of splits isolates the effect of the voice.
The ``test-prose`` sentences are the first prose sentences of the seed's order, so every size
with the same seed tests on the same prose sentences. TTS sentences (grammar only) are disjoint
from all ASR sentences; the held-out rows are spread evenly over ``metadata.csv``.

``asr/lm-text.txt`` plays the part of LibriSpeech's LM corpus (``librispeech-lm-norm.txt``): more
sentences of both kinds, with no audio, for training language models: ``lm_sentences`` of the
grammar, then ``lm_prose`` of the prose. They are disjoint from every ASR and TTS sentence, so no
dev or test sentence is in it (the grammar's words are: it covers that vocabulary, as
LibriSpeech's does; the prose test sentences' words may or may not occur in other prose).

A build is idempotent (a finished ``DIR`` with a matching ``corpus.json`` is left untouched) and
resumable (kill it, run it again: finished files are kept, the rest is made; files are written
under temporary names and renamed, so none is ever truncated).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib.metadata import version
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from speechattn.data.librispeech import LM_TEXT_NAME
from speechattn.errors import run_command
from speechattn.fileio import ensure_folder, write_text_atomic
from speechattn.offline.plan import (
    SIZES,
    SPLITS,
    TRAIN_VOICES,
    TTS_VOICE,
    UNSEEN_VOICES,
    AsrUtterance,
    CorpusError,
    CorpusPlan,
    CorpusSize,
    TtsUtterance,
    plan_corpus,
    resolve_size,
)
from speechattn.offline.prose import ProseNotFoundError, load_prose
from speechattn.offline.synth import (
    RenderJob,
    SynthesisError,
    SynthesizerNotFoundError,
    check_flite_voices,
    engine_versions,
    init_worker,
    remove_partial_files,
    render,
    require_engines,
)

__all__ = [
    "ASR_SAMPLE_RATE",
    "FORMAT_VERSION",
    "LM_TEXT",
    "SIZES",
    "SPLITS",
    "TRAIN_VOICES",
    "TTS_SAMPLE_RATE",
    "TTS_VOICE",
    "UNSEEN_VOICES",
    "AsrUtterance",
    "CorpusError",
    "CorpusPlan",
    "CorpusSize",
    "TtsUtterance",
    "build_corpus",
    "build_parser",
    "main",
    "plan_corpus",
]

FORMAT_VERSION = 2  # 2: prose sentences in train, dev and the LM text; the test-prose splits
ASR_SAMPLE_RATE = 16000
TTS_SAMPLE_RATE = 22050
LM_TEXT = f"asr/{LM_TEXT_NAME}"  # relative to the corpus root; prepare finds it there
_REQUEST_FILE = ".request.json"  # written first: a resumed build must ask for the same corpus


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; returns whether it wrote."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True


def _text_files(plan: CorpusPlan) -> dict[str, str]:
    """Relative path -> content of every transcript and metadata file."""
    chapters: dict[str, list[str]] = {}
    for utt in plan.asr:
        key = f"asr/{utt.split}/{utt.speaker}/{utt.chapter}/{utt.speaker}-{utt.chapter}.trans.txt"
        chapters.setdefault(key, []).append(f"{utt.id} {utt.sentence.transcript}\n")
    files = {key: "".join(lines) for key, lines in chapters.items()}
    metadata = [f"{u.id}|{u.sentence.raw}|{u.sentence.normalized}\n" for u in plan.tts]
    files["tts/metadata.csv"] = "".join(metadata)
    held_out = [f"{u.id}|{u.sentence.raw}\n" for u in plan.tts if u.test]
    files["tts/test_sentences.txt"] = "".join(held_out)
    files[LM_TEXT] = "".join(f"{line}\n" for line in plan.lm_text)
    return files


def _render_jobs(plan: CorpusPlan, root: Path) -> list[RenderJob]:
    """The synthesizer reads the normalized text, so the audio says exactly the transcript."""
    asr = [
        RenderJob(str(root / u.path), u.sentence.normalized, u.voice, u.speed, ASR_SAMPLE_RATE)
        for u in plan.asr
    ]
    voice, rate = TTS_VOICE, TTS_SAMPLE_RATE
    tts = [
        RenderJob(str(root / u.path), u.sentence.normalized, voice, voice.speed, rate)
        for u in plan.tts
    ]
    return asr + tts


def _run_jobs(jobs: list[RenderJob], workers: int, progress: bool) -> dict[str, int]:
    """Render ``jobs`` on ``workers`` processes; returns output path -> length in samples."""
    frames: dict[str, int] = {}
    with tqdm(total=len(jobs), desc="synthesizing", unit="utt", disable=not progress) as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                frames[job.out_path] = render(job)
                bar.update()
            return frames
        # forkserver, not fork: the caller may hold torch/OpenMP threads that a fork would break;
        # the server imports torch once and forks workers from a clean, single-threaded process.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["speechattn.offline.synth", "torchaudio.functional"])
        workers = min(workers, len(jobs))
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker)
        try:
            futures = {pool.submit(render, job): job.out_path for job in jobs}
            for future in as_completed(futures):
                frames[futures[future]] = future.result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return frames


def _summary(plan: CorpusPlan, frames: dict[str, int], tools: dict[str, str]) -> dict:
    splits = {}
    for split in SPLITS:
        utts = [u for u in plan.asr if u.split == split]
        seconds = sum(frames[u.path] for u in utts) / ASR_SAMPLE_RATE
        splits[split] = {
            "speakers": [{"speaker": spk, **v.describe()} for spk, v in plan.speakers[split]],
            "utterances": len(utts),
            "duration_s": round(seconds, 3),
            "hours": round(seconds / 3600, 4),
        }
    tts_seconds = sum(frames[u.path] for u in plan.tts) / TTS_SAMPLE_RATE
    return {
        "format_version": FORMAT_VERSION,
        "size": plan.size.name,
        "seed": plan.seed,
        "asr": {
            "sample_rate": ASR_SAMPLE_RATE, "format": "flac", "splits": splits,
            "lm_text": {"path": LM_TEXT, "sentences": len(plan.lm_text)},
        },  # fmt: skip
        "tts": {
            "sample_rate": TTS_SAMPLE_RATE,
            "voice": TTS_VOICE.describe(),
            "utterances": len(plan.tts),
            "test_utterances": sum(u.test for u in plan.tts),
            "duration_s": round(tts_seconds, 3),
            "hours": round(tts_seconds / 3600, 4),
        },
        "tools": tools,
    }


def _request(size: str, seed: int) -> dict:
    return {"format_version": FORMAT_VERSION, "size": size, "seed": seed}


def _check_request(path: Path, request: dict) -> bool:
    """True when ``path`` exists and records ``request``; error when it records another one."""
    if not path.is_file():
        return False
    try:
        found = {key: json.loads(path.read_text(encoding="utf-8")).get(key) for key in request}
    except (json.JSONDecodeError, AttributeError) as err:
        raise CorpusError(
            f"{path}: unreadable ({err}); delete {path.parent} and build again"
        ) from err
    if found.get("format_version") != request["format_version"]:
        raise CorpusError(
            f"{path} records a corpus of format {found.get('format_version')}, made by an older "
            f"speechattn (this one makes format {request['format_version']}: prose sentences and "
            f"the test-prose splits); pass another --out, or delete {path.parent} to rebuild it"
        )
    if found != request:
        raise CorpusError(
            f"{path} records a corpus with {found}, but {request} was asked for; "
            f"pass another --out or delete {path.parent}"
        )
    return True


def _is_complete(plan: CorpusPlan, root: Path) -> bool:
    texts_match = all(
        (root / rel).is_file() and (root / rel).read_text(encoding="utf-8") == text
        for rel, text in _text_files(plan).items()
    )
    return texts_match and all((root / u.path).is_file() for u in plan.asr + plan.tts)


def _check_tools(spec: CorpusSize) -> dict[str, str]:
    """Fail early on a missing program or voice; returns the tool versions for corpus.json."""
    voices = [*TRAIN_VOICES[: spec.train_voices], *UNSEEN_VOICES[: spec.unseen_voices], TTS_VOICE]
    engines = {v.engine for v in voices}
    require_engines(engines)
    if "flite" in engines:
        check_flite_voices({v.name for v in voices if v.engine == "flite"})
    wordnet = load_prose(0).digest  # raises ProseNotFoundError early, naming the package
    return {**engine_versions(engines), "wordfreq": version("wordfreq"), "wordnet_examples": wordnet}


def build_corpus(
    out_dir: str | Path,
    size: str = "mini",
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = True,
) -> dict:
    """Build (or finish, or just check) the offline corpus in ``out_dir``.

    Args:
        out_dir: corpus root; created if needed.
        size: a key of :data:`SIZES`.
        seed: sentence and speed seed; same seed, same bytes.
        jobs: worker processes (default ``os.cpu_count()``; 1 runs in this process).
        progress: show a tqdm bar.
    Returns:
        The content of ``out_dir/corpus.json``.

    Raises:
        SynthesizerNotFoundError: ``espeak-ng`` or ``flite`` is missing (names the package).
        ProseNotFoundError: WordNet's files are missing (names the package, ``wordnet-base``).
        CorpusError: ``out_dir`` holds a different corpus, or the arguments are invalid.
        SynthesisError: a synthesizer failed or produced unusable audio.
    """
    workers = (os.cpu_count() or 1) if jobs is None else jobs
    if workers < 1:
        raise CorpusError(f"jobs={jobs}: need at least one worker")
    root, request = Path(out_dir), _request(size, seed)
    tools = _check_tools(resolve_size(size))
    plan = plan_corpus(size, seed)
    corpus_json = root / "corpus.json"
    if _check_request(corpus_json, request) and _is_complete(plan, root):
        return json.loads(corpus_json.read_text(encoding="utf-8"))
    ensure_folder(root)
    if not _check_request(root / _REQUEST_FILE, request):
        _write_text(root / _REQUEST_FILE, json.dumps(request) + "\n")
    remove_partial_files(root)
    for rel, text in _text_files(plan).items():
        _write_text(root / rel, text)
    jobs_left, frames = [], {}
    for job in _render_jobs(plan, root):
        if Path(job.out_path).is_file():
            frames[job.out_path] = sf.info(job.out_path).frames
        else:
            jobs_left.append(job)
    frames.update(_run_jobs(jobs_left, workers, progress))
    frames = {Path(path).relative_to(root).as_posix(): n for path, n in frames.items()}
    summary = _summary(plan, frames, tools)
    _write_text(corpus_json, json.dumps(summary, indent=2) + "\n")
    return summary


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechattn corpus",
        description="Synthesize the offline corpus: ASR in the LibriSpeech layout, TTS in the "
        "LJSpeech layout.",
    )
    parser.add_argument(
        "--size", choices=list(SIZES), default="mini", help="corpus size (default: mini)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="sentence and speed seed (default: 0)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: all cores)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("speechattn corpus", lambda: _build(args),
                       (SynthesizerNotFoundError, SynthesisError, ProseNotFoundError))


def _build(args: argparse.Namespace) -> int:
    summary = build_corpus(args.out, args.size, args.seed, args.jobs, progress=not args.quiet)
    for split, info in summary["asr"]["splits"].items():
        voices = len(info["speakers"])
        hours = info["hours"]
        print(f"asr/{split}: {info['utterances']} utterances, {hours:.3f} h, {voices} voices")
    tts = summary["tts"]
    held_out = tts["test_utterances"]
    print(f"tts: {tts['utterances']} utterances ({held_out} held out), {tts['hours']:.3f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
