"""Procedural videos for tests, the demo and benchmarks.

Each video is a textured background with several textured objects moving over it. The
hard cases of video object segmentation are built in and recorded, so that tests can check
them and a model can be scored on them:

* motion with acceleration (smooth paths through random key points), rotation and scale change;
* non-rigid deformation: the contour wobbles a little from frame to frame;
* occlusion: a depth order; an object's mask holds only its visible pixels;
* objects that leave the frame and come back (``SyntheticVideo.gone`` says when they are out);
* objects that enter mid-video (``SyntheticVideo.first_frame``);
* look-alike distractors: unlabelled objects with the texture family and nearly the colour
  of a labelled one.

Everything comes from one seed, bit for bit. An object keeps its texture and colour for the
whole video and moves a few pixels per frame at 256x256, so that a small model trained for
minutes on CPU can learn to track it.

In memory::

    video = generate_video(0, frames=30, height=256, width=256, objects=(2, 3))
    video.frames[t]   # (H, W, 3) uint8
    video.masks[t]    # (H, W) uint8 object ids, 0 = background

One frame at a time, for videos of any length (no late entries or exits)::

    stream = SyntheticStream(0, frames=6000, height=480, width=854, objects=(3, 3))
    frame, labels = stream.render(t)

On disk, in the layout of DAVIS 2017, YouTube-VOS 2019 or a generic folder::

    remn generate OUT --videos 50 --frames 30 --size 256 256 --layout davis

``write_dataset`` describes the three layouts. The modules, by job:

============== ================================================================================
spec.py        :class:`SyntheticSpec`, :func:`layout_spec`, :class:`SyntheticVideo`, :func:`video_rng`, constants
appearance.py  textures and colours
shapes.py      contours, wobble, layers (a sprite's looks; with its planned motion)
motion.py      paths through key points, bounces, exits; :class:`~.motion.Wander` made as it goes
compose.py     drawing and compositing a frame, :func:`generate_video`, :class:`GenerationError`
layouts.py     :func:`write_dataset`: the DAVIS, YouTube-VOS and generic layouts, the process pool
stream.py      :class:`SyntheticStream`: frames and labels one at a time, any length
============== ================================================================================
"""

from .compose import GenerationError, generate_video
from .layouts import frame_name, write_dataset
from .spec import (
    COMMAND,
    ID_STYLES,
    JPEG_QUALITY,
    LAYOUTS,
    MANIFEST_NAME,
    MAX_ATTEMPTS,
    SHAPES,
    TEXTURES,
    YOUTUBE_STRIDE,
    SyntheticSpec,
    SyntheticVideo,
    layout_spec,
    video_rng,
)
from .stream import STREAM_SPEC, SyntheticStream

__all__ = [
    "LAYOUTS",
    "SHAPES",
    "TEXTURES",
    "SyntheticSpec",
    "GenerationError",
    "SyntheticVideo",
    "generate_video",
    "video_rng",
    "layout_spec",
    "write_dataset",
    "frame_name",
    "SyntheticStream",
    "STREAM_SPEC",
    "ID_STYLES",
    "YOUTUBE_STRIDE",
    "JPEG_QUALITY",
    "MANIFEST_NAME",
    "COMMAND",
    "MAX_ATTEMPTS",
]
