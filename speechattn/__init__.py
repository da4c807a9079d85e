"""speechattn: attention-based speech recognition (LAS) and synthesis (Tacotron).

>>> from speechattn import ASR, TTS   # loaded lazily: importing speechattn stays cheap
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["ASR", "TTS", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("ASR", "TTS"):
        from speechattn import api

        return getattr(api, name)
    raise AttributeError(f"module 'speechattn' has no attribute {name!r}")
