"""The offline corpus: English sentences from a grammar (``sentences``, ``lexicon``) read by
Debian's ``espeak-ng`` and ``flite`` voices (``synth``), laid out as LibriSpeech for ASR and as
LJ Speech for TTS (``corpus``), so that both recipes run with no download. The readers in
:mod:`speechattn.data` read it like any other corpus."""
