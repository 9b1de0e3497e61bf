"""Inference: the streaming core (one frame at a time), its object manager, the one factory
that builds it and the one whole-video loop.

* :mod:`.core`: :class:`InferenceCore`, one frame in, probabilities out, bounded state;
* :mod:`.objects`: :class:`ObjectManager`, user object ids <-> the core's slots;
* :mod:`.build`: :func:`build_core`, configuration + weights + device -> a core;
* :mod:`.video_loop`: :func:`segment_video`, a whole video through a core, timed;
* :mod:`.own_video`: segmenting a user's video file or frame folder (``remn segment``).
"""

from remn.inference.build import build_core
from remn.inference.core import InferenceCore, processing_size
from remn.inference.objects import ObjectManager, UnknownObjectError
from remn.inference.video_loop import Segmented, segment_video, warm_up

__all__ = [
    "InferenceCore",
    "ObjectManager",
    "UnknownObjectError",
    "processing_size",
    "build_core",
    "segment_video",
    "Segmented",
    "warm_up",
]
