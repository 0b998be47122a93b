"""Shared mesh machinery: hierarchy (down/up-sampling), spiral indices, spiral convolution."""
