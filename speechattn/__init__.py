"""speechattn: attention-based speech recognition (LAS) and synthesis (Tacotron)."""

__version__ = "0.1.0"
