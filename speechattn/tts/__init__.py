"""Tacotron-style speech synthesis built from speechattn.nn."""
