"""Corpora, manifests, downloads and batching."""
