"""The shared neural core: encoder, attention, decoder step."""
