"""Tacotron-style speech synthesis built from speechattn.nn.

The Python API in two calls (see :mod:`speechattn.tts.synthesize` for what comes back)::

    from speechattn.tts import load_tts, synthesize
    tts = load_tts("exp/tts_offline")
    (wave, sample_rate, alignment, info), = synthesize(tts, ["Hello there."])
"""

from speechattn.tts.pretrained import load_tts
from speechattn.tts.synthesize import SynthesisConfig, SynthesisResult, synthesize
from speechattn.tts.text_input import TextInputError

__all__ = ["load_tts", "synthesize", "SynthesisConfig", "SynthesisResult", "TextInputError"]
