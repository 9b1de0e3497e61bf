"""The streaming inference core: object manager, given masks, sizes, memory schedule, bounded state."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from remn.config import load_config
from remn.data.masks import save_image, save_mask
from remn.data.synthetic import SyntheticStream
from remn.data.video import Frame
from remn.data.vos import GenericDataset
from remn.inference import InferenceCore, ObjectManager, UnknownObjectError, processing_size, segment_video
from remn.runtime import process_memory

from conftest import REPO


def _cfg(name: str, *overrides: str):
    return load_config(REPO / "configs" / f"{name}.yaml", ["inference.size=-1", *overrides])


def _clip(frames: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=t, axis=1) for t in range(frames)]


def _square(height: int, width: int, top: int, left: int, size: int, value: int, out=None) -> np.ndarray:
    out = np.zeros((height, width), dtype=np.int64) if out is None else out
    out[top : top + size, left : left + size] = value
    return out


# ------------------------------------------------------------------ objects
def test_object_manager_maps_ids_to_slots_and_back():
    manager = ObjectManager()
    assert manager.add([200, 3, 7, 3]) == [200, 3, 7]
    assert manager.ids == [200, 3, 7] and manager.slot(7) == 2
    assert manager.channel_to_id().tolist() == [0, 200, 3, 7]
    assert manager.remove([3]) == [1]
    assert manager.ids == [200, 7] and manager.slot(7) == 1
    with pytest.raises(UnknownObjectError, match="unknown object id 5"):
        manager.slot(5)
    with pytest.raises(ValueError, match="positive"):
        manager.add([0])


def test_processing_size_keeps_the_aspect_ratio():
    assert processing_size(480, 854, 480) == (480, 854)
    assert processing_size(720, 1280, 480) == (480, 853)
    assert processing_size(1080, 607, 240) == (427, 240)
    assert processing_size(37, 53, -1) == (37, 53)


# ------------------------------------------------------------------ stepping
def test_non_contiguous_ids_come_back_unchanged_at_odd_sizes(remn_model):
    height, width = 37, 53  # neither is a multiple of 16
    frames = _clip(4, height, width)
    mask = _square(height, width, 2, 3, 12, 3)
    _square(height, width, 20, 30, 10, 7, mask)
    _square(height, width, 5, 35, 8, 200, mask)
    core = InferenceCore(remn_model, _cfg("remn"))
    prob = core.step(frames[0], mask)
    assert prob.shape == (4, height, width)
    assert torch.allclose(prob.sum(0), torch.ones(height, width), atol=1e-4)
    labels = core.labels(prob)
    assert labels.shape == (height, width)
    # the annotated frame returns the given mask (merged, near-hard probabilities)
    assert (labels == mask).mean() > 0.99
    assert set(np.unique(labels)) <= {0, 3, 7, 200}
    for frame in frames[1:]:
        labels = core.labels(core.step(frame))
        assert labels.shape == (height, width) and set(np.unique(labels)) <= {0, 3, 7, 200}
    assert core.objects.ids == [3, 7, 200]


def test_processing_size_changes_the_network_input_not_the_output(remn_model):
    frames = _clip(2, 60, 90)
    mask = _square(60, 90, 10, 10, 20, 1)
    core = InferenceCore(remn_model, _cfg("remn", "inference.size=32"))
    seen = []
    handle = remn_model.key_encoder.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    try:
        out = [core.step(f, mask if t == 0 else None) for t, f in enumerate(frames)]
    finally:
        handle.remove()
    assert seen[0] == (32, 48)  # 32x48 is already a multiple of 16
    assert all(o.shape == (2, 60, 90) for o in out)


def test_an_object_entering_later_is_absent_before_and_tracked_from_its_frame(remn_model):
    height, width = 48, 64
    frames = _clip(14, height, width, seed=1)
    first = _square(height, width, 4, 4, 14, 5)
    late = _square(height, width, 26, 36, 14, 9)
    core = InferenceCore(remn_model, _cfg("remn"))
    for t, frame in enumerate(frames):
        mask = first if t == 0 else (late if t == 10 else None)
        labels = core.labels(core.step(frame, mask))
        if t < 10:
            assert 9 not in labels and core.objects.ids == [5]
        else:
            assert core.objects.ids == [5, 9]
        if t == 10:
            assert (labels[late == 9] == 9).mean() > 0.99
    assert core.bank.num_permanent == 2  # frames 0 and 10 are annotated


def test_streaming_equals_the_whole_video_wrapper(remn_model, tmp_path):
    root = tmp_path / "generic"
    frames = _clip(8, 40, 56, seed=2)
    names = [f"f{t}" for t in range(1, 9)]  # natural order f1..f8
    for name, frame in zip(names, frames):
        save_image(root / "JPEGImages" / "clip" / f"{name}.jpg", frame)
    save_mask(root / "Annotations" / "clip" / "f1.png", _square(40, 56, 5, 5, 15, 4))
    save_mask(root / "Annotations" / "clip" / "f4.png", _square(40, 56, 22, 30, 12, 11))
    video = GenericDataset(root).video("clip")
    cfg = _cfg("remn")
    wrapped = [
        (done.index, done.ids, done.labels)
        for done in segment_video(InferenceCore(remn_model, cfg), video, video.num_steps)
    ]
    core = InferenceCore(remn_model, cfg)
    streamed = []
    for frame in video:
        prob = core.step(frame.image, frame.mask, last=frame.position == len(video) - 1)
        streamed.append((frame.index, core.objects.ids, core.labels(prob)))
    assert [w[0] for w in wrapped] == list(range(8))
    for (i, ids, labels), (j, ids2, labels2) in zip(wrapped, streamed):
        assert i == j and ids == ids2 and np.array_equal(labels, labels2)
    assert wrapped[2][1] == [4] and wrapped[3][1] == [4, 11]


def test_removing_an_object_drops_its_channel_and_memory(remn_model):
    frames = _clip(5, 32, 48)
    mask = _square(32, 48, 2, 2, 10, 1)
    _square(32, 48, 18, 30, 10, 2, mask)
    core = InferenceCore(remn_model, _cfg("remn"))
    core.step(frames[0], mask)
    core.step(frames[1])
    core.remove([1])
    assert core.objects.ids == [2] and core.bank.num_objects == 1
    prob = core.step(frames[2])
    assert prob.shape[0] == 2 and set(np.unique(core.labels(prob))) <= {0, 2}
    with pytest.raises(UnknownObjectError):
        core.remove([1])


def test_given_mask_of_the_wrong_size_is_refused(remn_model):
    core = InferenceCore(remn_model, _cfg("remn"))
    with pytest.raises(ValueError, match="mask is 10x10 but the frame is 48x32"):
        core.step(_clip(1, 32, 48)[0], np.ones((10, 10), dtype=np.int64))


# ------------------------------------------------------------- memory schedule
@pytest.mark.parametrize(
    "mode, annotate_at, expected",
    [
        # DAVIS: absolute frame indices that are multiples of 5, never the last frame
        ("absolute", (), [0, 5, 10]),
        # YouTube-VOS: 5 frames after the last write, the count restarting at an annotated frame
        ("relative", (7,), [0, 5, 7, 12]),
    ],
)
@pytest.mark.slow
def test_stcn_mode_reproduces_stcn_memory_schedule(stcn_model, stcn_random_state, mode, annotate_at, expected):
    import copy

    from remn.model.checkpoint import load_network_weights

    model = copy.deepcopy(stcn_model)  # the session fixture stays as other tests expect it
    load_network_weights(model, stcn_random_state)
    cfg = _cfg("stcn", f"memory.interval_mode={mode}")
    core = InferenceCore(model, cfg)
    frames = _clip(15, 32, 32, seed=3)
    written = []
    original = core.bank.write

    def spy(frame_index, *args, **kwargs):
        written.append(frame_index)
        return original(frame_index, *args, **kwargs)

    core.bank.write = spy
    for t, frame in enumerate(frames):
        mask = _square(32, 32, 4, 4, 10, 1) if t == 0 else None
        if t in annotate_at:
            mask = _square(32, 32, 20, 20, 8, 2)
        core.step(frame, mask, last=t == len(frames) - 1)
    assert written == expected
    assert len(core.bank) == len(expected)


@pytest.mark.slow
def test_remn_and_stcn_modes_on_a_small_generated_clip(remn_model, stcn_model):
    # both modes over one generated clip of 20 frames at 72x100 with 2 objects, memory.capacity=4
    stream = SyntheticStream(0, frames=20, height=72, width=100, objects=(2, 2))
    first = stream.labels(0)
    assert set(np.unique(first).tolist()) == {0, 1, 2}
    for name, model in (("remn", remn_model), ("stcn", stcn_model)):
        cfg = _cfg(name, "memory.capacity=4", "memory.asm_max_interval=2")
        core = InferenceCore(model, cfg)
        assert (cfg.model.frm, cfg.memory.asm, cfg.memory.rrm) == ((True,) * 3 if name == "remn" else (False,) * 3)
        inputs, written, working = [], [], []
        original = core.bank.write

        def spy(frame_index, *args, **kwargs):
            written.append(frame_index)
            return original(frame_index, *args, **kwargs)

        core.bank.write = spy
        handle = model.key_encoder.register_forward_hook(lambda m, i, o: inputs.append(tuple(i[0].shape[1:])))
        try:
            for t, (frame, _) in enumerate(stream):
                prob = core.step(frame, first if t == 0 else None, last=t == len(stream) - 1)
                labels = core.labels(prob)
                working.append(core.bank.num_working)
        finally:
            handle.remove()
        assert inputs[0] == (3, 80, 112)  # 72x100 padded to multiples of 16
        assert prob.shape == (3, 72, 100) and labels.shape == (72, 100)
        if name == "stcn":
            assert written == [0, 5, 10, 15]  # every 5th frame, never the last
            assert working[-1] == 3 and not core.bank.reductions
        else:
            assert len(written) > 1 + 4 and core.bank.reductions  # ASM wrote more than N frames; RRM reduced
            assert max(working) <= 4  # and kept the working memory within N = 4


def _rss_bytes() -> int:
    return process_memory()[0]


@pytest.mark.slow
@pytest.mark.skipif(process_memory() is None, reason="needs Linux /proc for the process size")
def test_rrm_keeps_the_bank_and_process_memory_bounded_over_2000_frames(remn_model):
    capacity = 6
    cfg = _cfg("remn", f"memory.capacity={capacity}", "memory.asm=false", "memory.mem_every=2")
    core = InferenceCore(remn_model, cfg)
    frames = _clip(8, 32, 32, seed=4)
    mask = _square(32, 32, 6, 6, 12, 1)
    sizes, rss = [], {}
    for t in range(2000):
        core.step(frames[t % 8], mask if t == 0 else None)
        sizes.append(core.bank.num_working)
        if t in (200, 1999):
            gc.collect()
            rss[t] = _rss_bytes()
    assert max(sizes) <= capacity
    assert len(core.bank.reductions) > 100
    assert core.bank.num_permanent == 1
    growth = (rss[1999] - rss[200]) / rss[200]
    print(
        f"process memory: {rss[200] / 2**20:.1f} MiB at frame 200, {rss[1999] / 2**20:.1f} MiB at 2000 "
        f"({100 * growth:+.2f}%)"
    )
    assert growth < 0.05


def test_segment_video_times_every_frame_and_labels_with_the_given_ids(remn_model, toy_clip):
    frames, masks = toy_clip
    core = InferenceCore(remn_model, _cfg("remn"))
    played = (Frame(t, t, str(t), image, masks[0] if t == 0 else None) for t, image in enumerate(frames))
    done = list(segment_video(core, played, len(frames), labels="all"))
    assert [d.index for d in done] == list(range(len(frames)))
    assert all(d.seconds > 0 and d.labels.shape == masks[0].shape for d in done)
    given = set(np.unique(masks[0]).tolist())
    assert all(set(np.unique(d.labels).tolist()) <= given for d in done)
    assert done[0].ids == sorted(given - {0})
    assert np.array_equal(done[0].labels, masks[0])  # the given mask is the output of its frame


# --------------------------------------------------------- flip augmentation
def test_flip_on_a_symmetric_video_is_the_plain_run_symmetrised(remn_model):
    # a symmetric frame is its own mirror, so both memories stay equal and the output is the plain
    # prediction averaged with its mirror image: the plain one itself where the network is
    # mirror-equivariant (random weights are not, so that is what is checked)
    height, width = 48, 64
    frames = [np.concatenate([f[:, :32], f[:, :32][:, ::-1]], axis=1) for f in _clip(12, height, width, seed=4)]
    first = _square(height, width, 14, 22, 20, 3)  # one object across the axis, symmetric itself
    assert (first == first[:, ::-1]).all() and all((f == f[:, ::-1]).all() for f in frames)
    plain = InferenceCore(remn_model, _cfg("remn"))
    flip = InferenceCore(remn_model, _cfg("remn", "inference.flip=true"))
    for t, frame in enumerate(frames):
        mask = first if t == 0 else None
        a, b = plain.step(frame, mask, last=t == 11), flip.step(frame, mask, last=t == 11)
        torch.testing.assert_close(b, b.flip(-1), atol=1e-4, rtol=0)
        if t <= 1:  # frame 1 reads only frame 0's given mask in both runs
            torch.testing.assert_close(b, (a + a.flip(-1)) / 2, atol=1e-4, rtol=0)
        if t == 0:
            torch.testing.assert_close(b, a)
    assert len(flip.mirror.bank) == len(flip.bank) > 1


def test_flip_output_is_the_mean_of_the_frame_and_its_mirror(remn_model):
    from remn.inference.core import average_flipped

    height, width = 48, 64  # multiples of 16 at inference.size=-1: no padding, so mirroring commutes with it
    frames = _clip(2, height, width, seed=5)
    first = _square(height, width, 6, 6, 16, 1)
    _square(height, width, 24, 40, 12, 2, out=first)
    plain, mirror = InferenceCore(remn_model, _cfg("remn")), InferenceCore(remn_model, _cfg("remn"))
    flip = InferenceCore(remn_model, _cfg("remn", "inference.flip=true"))
    outputs = []
    for t, frame in enumerate(frames):
        mask = first if t == 0 else None
        a = plain.step(frame, mask)
        b = mirror.step(np.ascontiguousarray(frame[:, ::-1]), None if mask is None else mask[:, ::-1].copy())
        outputs.append((a, b, flip.step(frame, mask)))
    a, b, c = outputs[1]  # frame 1 reads memories that hold frame 0's given mask, as the plain runs' do
    torch.testing.assert_close(c, average_flipped(a, b), atol=1e-5, rtol=0)
    assert (c - a).abs().max() > 1e-3  # the mirror's prediction changed the output
    torch.testing.assert_close(c.sum(0), torch.ones(height, width), atol=1e-5, rtol=0)
    x = torch.softmax(torch.randn(3, 4, 5), 0)
    y = torch.softmax(torch.randn(3, 4, 5), 0)
    torch.testing.assert_close(average_flipped(x, y), (x + y.flip(-1)) / 2)
    torch.testing.assert_close(average_flipped(x, x.flip(-1)), x)
