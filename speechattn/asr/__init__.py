"""Listen-Attend-Spell speech recognition built from speechattn.nn."""
