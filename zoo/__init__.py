"""The models: generators, decoders and shared mesh layers."""
