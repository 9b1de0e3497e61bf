"""Inference: the streaming core (one frame at a time) and whole-video helpers."""

from remn.inference.core import InferenceCore, ObjectManager, UnknownObjectError, processing_size, segment_video

__all__ = ["InferenceCore", "ObjectManager", "UnknownObjectError", "processing_size", "segment_video"]
