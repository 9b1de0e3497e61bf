"""The inference fast paths compute what the plain paths compute.

* the gathered top-k read (and its chunked form) equals STCN's dense scatter read;
* the bank's preallocated storage holds exactly what concatenation would, and reads the same;
* channels-last, bf16 autocast, per-object decoding and the dense read agree with the plain
  fp32 core on at least 99% of label pixels over a short clip;
* only the exact fast paths are on by default; compile and CUDA graphs are opt-in, graphs
  warn and change nothing on a CPU, and the compiled stages (traced only, on a CPU) compute
  the plain ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remn.benchmark import make_decisive
from remn.config import InferenceConfig, load_config
from remn.inference import InferenceCore
from remn.memory import FixedInterval, MemoryBank
from remn.model import build_model
from remn.model.memory_read import affinity_logits, read_memory, topk_affinity, topk_readout, topk_softmax

from conftest import REPO

CK, CV = 8, 6


def _memory(seed: int, frames: int, h: int, w: int, objects: int = 2):
    gen = torch.Generator().manual_seed(seed)
    mk = torch.randn(1, CK, frames, h, w, generator=gen)
    mv = torch.randn(1, objects, CV, frames, h, w, generator=gen)
    qk = torch.randn(1, CK, h, w, generator=gen)
    return mk, mv, qk


# ------------------------------------------------------------------ the read
@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(1, 9),
    h=st.integers(1, 4),
    w=st.integers(1, 5),
    k=st.integers(1, 30),
    chunk=st.integers(0, 23),
    seed=st.integers(0, 2**31 - 1),
)
def test_chunked_gathered_read_equals_the_dense_read(frames, h, w, k, chunk, seed):
    # chunk sizes cover: no chunking (0), chunks smaller than k, M not divisible by the chunk
    mk, mv, qk = _memory(seed, frames, h, w)
    dense = read_memory(mk, mv, qk, top_k=k, gather=False)
    gathered = read_memory(mk, mv, qk, top_k=k, gather=True, chunk_size=chunk)
    assert gathered.shape == dense.shape == (1, 2, CV, h, w)
    torch.testing.assert_close(gathered, dense, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("m, chunk, k", [(50, 7, 20), (64, 16, 20), (60, 0, 20), (45, 4, 9), (33, 32, 40)])
def test_running_topk_picks_the_same_entries_as_one_topk(m, chunk, k):
    gen = torch.Generator().manual_seed(m + chunk)
    mk = torch.randn(2, CK, m, generator=gen)
    qk = torch.randn(2, CK, 11, generator=gen)
    weights, indices = topk_affinity(mk, qk, k, chunk_size=chunk)
    kept = min(k, m)
    assert weights.shape == indices.shape == (2, 11, kept)
    # scattered back into M x Q, the gathered weights are the dense top-k softmax
    dense = topk_softmax(affinity_logits(mk, qk), kept)
    scattered = torch.zeros(2, 11, m).scatter_(2, indices, weights).transpose(1, 2)
    torch.testing.assert_close(scattered, dense, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights.sum(2), torch.ones(2, 11))


def test_gathered_readout_is_the_weighted_sum_of_the_picked_values():
    gen = torch.Generator().manual_seed(5)
    values = torch.randn(1, 3, 4, 10, generator=gen)  # (B, K, C^v, M)
    indices = torch.tensor([[[0, 9], [3, 3], [5, 1]]])  # (B, Q=3, k=2)
    weights = torch.tensor([[[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]])
    out = topk_readout(weights, indices, values)
    assert out.shape == (1, 3, 4, 3)
    expected = torch.stack([0.25 * values[..., 0] + 0.75 * values[..., 9], values[..., 3], values[..., 5]], dim=-1)
    torch.testing.assert_close(out, expected)


def test_gathered_read_under_bf16_autocast_keeps_float32_logits():
    mk, mv, qk = _memory(6, 5, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = read_memory(mk.bfloat16(), mv.bfloat16(), qk.bfloat16(), top_k=7, chunk_size=8)
    assert out.dtype == torch.bfloat16
    reference = read_memory(mk.bfloat16().float(), mv.bfloat16().float(), qk.bfloat16().float(), top_k=7)
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2)


# ------------------------------------------------------------------ the bank
def _frame(gen: torch.Generator, objects: int):
    return torch.randn(CK, 2, 3, generator=gen), torch.randn(objects, CV, 2, 3, generator=gen)


def test_preallocated_bank_holds_and_reads_what_concatenation_would():
    gen = torch.Generator().manual_seed(7)
    bank = MemoryBank(FixedInterval(1), reducer=None, top_k=5)
    permanent, working = [], []
    query = torch.randn(CK, 2, 3, generator=gen)
    sizes = []
    for t in range(40):
        frame = _frame(gen, 2)
        is_permanent = t in (0, 23)  # a second annotated frame arrives mid-video (moves the working ones)
        bank.write(t, *frame, permanent=is_permanent)
        (permanent if is_permanent else working).append(frame)
        sizes.append(bank.buffer_frames)
        order = permanent + working
        keys = torch.stack([f[0] for f in order], dim=1)
        values = torch.stack([f[1] for f in order], dim=2)
        assert torch.equal(bank._permanent.keys, keys[:, : len(permanent)])
        assert torch.equal(bank._store.key_view(0, len(bank)), keys)
        assert torch.equal(bank._store.value_view(0, len(bank)), values)
        for gather in (True, False):
            bank.gather = gather
            expected = read_memory(keys[None], values[None], query[None], 5, gather=gather)[0]
            torch.testing.assert_close(bank.read(query), expected, rtol=1e-5, atol=1e-6)  # summation order only
    # buffers grow by doubling: a handful of reallocations for 40 writes, none in between
    assert sorted(set(sizes)) == [8, 16, 32, 64]
    assert bank.num_permanent == 2 and bank.num_working == 38


def test_bank_with_rrm_never_grows_its_buffers():
    from remn.model import RedundancyReduction

    torch.manual_seed(0)
    reducer = RedundancyReduction(key_dim=CK, value_dim=CV, num_policies=3, hidden=8).eval()
    bank = MemoryBank(FixedInterval(1), reducer=reducer, capacity=6)
    gen = torch.Generator().manual_seed(8)
    with torch.inference_mode():
        bank.write(0, *_frame(gen, 1), permanent=True)
        for t in range(1, 200):
            bank.write(t, *_frame(gen, 1))
            assert bank.buffer_frames == 7  # the annotated frame + N working frames, allocated once
    assert len(bank.reductions) > 20


def test_chunked_bank_read_with_a_late_object_equals_the_unchunked_one():
    gen = torch.Generator().manual_seed(9)
    plain = MemoryBank(FixedInterval(1), top_k=4)
    chunked = MemoryBank(FixedInterval(1), top_k=4, chunk_size=5)
    for bank in (plain, chunked):
        g = torch.Generator().manual_seed(10)
        bank.write(0, *_frame(g, 1), permanent=True)
        bank.write(1, *_frame(g, 1))
        bank.write(2, *_frame(g, 2), permanent=True)  # object 2 joins: two validity groups
        for t in range(3, 9):
            bank.write(t, *_frame(g, 2))
    query = torch.randn(CK, 2, 3, generator=gen)
    torch.testing.assert_close(chunked.read(query), plain.read(query), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ the whole core
def _clip(frames: int = 8, height: int = 64, width: int = 96):
    """Two coloured squares gliding over a smooth background, and frame 0's labels."""
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack([120 + 60 * np.sin(xs / 9.0), 100 + 50 * np.cos(ys / 7.0), 90 + 0 * xs], -1)
    images, first = [], None
    for t in range(frames):
        image = background.copy()
        labels = np.zeros((height, width), dtype=np.int64)
        for obj, (top, left, colour) in enumerate(
            [(8 + t, 10 + 2 * t, (230, 40, 40)), (34 - t, 60 - 2 * t, (40, 60, 220))], start=1
        ):
            image[top : top + 18, left : left + 18] = colour
            labels[top : top + 18, left : left + 18] = obj
        images.append(image.clip(0, 255).astype(np.uint8))
        first = labels if first is None else first
    return images, first


def _segment(model, *overrides: str, fixed_memory: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``(T, H, W)`` and probabilities ``(T, K+1, H, W)`` of the clip; ``fixed_memory``:
    only the annotated frame is ever memorised, so a difference in one frame cannot spread to
    the next through the memory."""
    schedule = ["memory.asm=false", "memory.mem_every=1000"] if fixed_memory else ["memory.asm_min_interval=1"]
    # fp32 unless an override says otherwise: runtime.precision=auto would be bf16 on some CPUs
    cfg = load_config(
        REPO / "configs" / "remn.yaml", ["inference.size=-1", "runtime.precision=fp32", *schedule, *overrides]
    )
    core = InferenceCore(model, cfg)
    images, first = _clip()
    labels, probs = [], []
    for t, image in enumerate(images):
        prob = core.step(image, first if t == 0 else None, last=t == len(images) - 1)
        labels.append(core.labels(prob))
        probs.append(prob.float().numpy())
    return np.stack(labels), np.stack(probs)


def _labels(model, *overrides: str, fixed_memory: bool = False) -> np.ndarray:
    return _segment(model, *overrides, fixed_memory=fixed_memory)[0]


PLAIN = ("inference.topk_gather=false", "inference.batch_objects=false")


@pytest.fixture(scope="module")
def decisive_model():
    """A REMN network of its own (random weights, seed 0), made decisive (see
    ``make_decisive``: predictions confident enough that label agreement means something;
    about 42% background, 38% and 19% the two objects on this clip).

    A network of its own (not the session's shared one, which other tests load weights into)
    keeps the labels independent of test order, and keeps channels-last, which converts a
    model in place, away from the other tests.
    """
    torch.manual_seed(0)
    model = build_model(load_config(REPO / "configs" / "remn.yaml")).eval()
    make_decisive(model)  # the network `remn benchmark --fast-paths` measures agreement with
    return model


@pytest.fixture(scope="module")
def plain_labels(decisive_model):
    return _labels(decisive_model, *PLAIN)


FLOAT32_FAST_PATHS = pytest.mark.parametrize(
    "overrides",
    [
        ("inference.topk_gather=true", "inference.batch_objects=false"),
        ("inference.topk_gather=true", "inference.chunk_size={chunk}", "inference.batch_objects=false"),
        ("inference.topk_gather=false", "inference.batch_objects=true"),
        (),  # the defaults
    ],
    ids=["gather", "gather-chunked", "batch-objects", "defaults"],
)


@pytest.mark.parametrize(
    "overrides",
    [
        ("inference.topk_gather=true", "inference.batch_objects=false"),
        ("inference.topk_gather=true", "inference.chunk_size={chunk}", "inference.batch_objects=false"),
    ],
    ids=["gather", "gather-chunked"],
)
def test_float32_memory_reads_agree_with_the_plain_core(decisive_model, plain_labels, overrides):
    # through the memory loop: the memory grows to about 190 positions, read in chunks of 64.
    # Only the read paths are compared this way. batch_objects (and the defaults, which include
    # it) change the batch size of every decoder convolution, and with it which kernel rounds
    # them, in every frame: a random network's feedback through its own memory amplifies that
    # like channels-last's (98.5% after 8 frames on an Intel Xeon, 99%+ on an AMD EPYC), so
    # they are compared against the same memory in the next test.
    labels = _labels(decisive_model, *(o.format(chunk=64) for o in overrides))
    shares = np.bincount(plain_labels[1:].ravel(), minlength=3) / plain_labels[1:].size
    assert shares.min() > 0.05  # every label is predicted: the comparison is not trivial
    assert (labels == plain_labels).mean() >= 0.99


@FLOAT32_FAST_PATHS
def test_float32_fast_paths_compute_the_plain_probabilities(decisive_model, overrides):
    # against the same (annotated) memory of 24 positions, read in chunks of 8 with top-20:
    # the fast paths differ from the plain one only in the order of float32 sums
    ref_labels, reference = _segment(decisive_model, *PLAIN, fixed_memory=True)
    labels, probs = _segment(decisive_model, *(o.format(chunk=8) for o in overrides), fixed_memory=True)
    # (the decisive network amplifies: a few pixels near a boundary move by up to 1e-3)
    np.testing.assert_allclose(probs, reference, atol=2e-3)
    assert np.abs(probs - reference).mean() < 1e-5
    assert (labels == ref_labels).mean() >= 0.99


def test_channels_last_agrees_with_the_plain_core(decisive_model):
    # other convolution kernels round differently; through the memory loop a random network
    # amplifies that (98% after 8 frames), so each frame is compared against the same memory
    reference = _labels(decisive_model, *PLAIN, fixed_memory=True)
    labels = _labels(decisive_model, *PLAIN, "inference.channels_last=true", fixed_memory=True)
    try:
        assert decisive_model.key_encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert (labels == reference).mean() >= 0.99
    finally:
        for module in decisive_model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.contiguous_format)


@pytest.mark.parametrize(
    "overrides",
    [
        ("runtime.precision=bf16",),
        ("runtime.precision=bf16", "inference.topk_gather=true", "inference.batch_objects=true"),
    ],
    ids=["bf16", "bf16-defaults"],
)
def test_bf16_agrees_with_the_plain_fp32_core(decisive_model, overrides):
    # bf16 rounds every layer; through a memory that feeds on its own predictions a random
    # network turns that into chaos, so each frame is compared against the same annotated memory
    reference = _labels(decisive_model, *PLAIN, fixed_memory=True)
    labels = _labels(decisive_model, *PLAIN, *overrides, fixed_memory=True)
    assert (labels == reference).mean() >= 0.99


def test_bf16_memory_keeps_keys_and_values_in_bf16(remn_model):
    cfg = load_config(REPO / "configs" / "remn.yaml", ["inference.size=-1", "runtime.precision=bf16"])
    core = InferenceCore(remn_model, cfg)
    images, first = _clip(frames=3)
    for t, image in enumerate(images):
        core.step(image, first if t == 0 else None)
    assert core.bank._store.keys.dtype == torch.bfloat16 and core.bank._store.values.dtype == torch.bfloat16


def test_fast_paths_on_by_default_are_the_exact_ones():
    # the defaults change only the order of float32 sums; channels-last and bf16 round
    # differently and are asked for (inference.channels_last, runtime.precision)
    defaults = InferenceConfig()
    assert (defaults.topk_gather, defaults.batch_objects, defaults.chunk_size, defaults.channels_last) == (
        True,
        True,
        0,
        False,
    )


def test_compile_and_cuda_graphs_are_off_by_default_and_graphs_need_cuda(remn_model):
    defaults = InferenceConfig()
    assert (defaults.compile, defaults.cuda_graphs, defaults.compile_backend) == (False, False, "inductor")
    cfg = load_config(REPO / "configs" / "remn.yaml", ["inference.size=-1"])
    core = InferenceCore(remn_model, cfg)
    # plain bound methods: nothing compiled, nothing captured
    assert all(getattr(fn, "__self__", None) is core.stages for fn in core.stages.stages.values())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed = InferenceCore(
            remn_model, load_config(REPO / "configs" / "remn.yaml", ["inference.size=-1", "inference.cuda_graphs=true"])
        )
    assert any("cuda_graphs needs a CUDA device" in str(w.message) for w in caught)
    assert all(getattr(fn, "__self__", None) is graphed.stages for fn in graphed.stages.stages.values())
    images, first = _clip(frames=3)
    for t, image in enumerate(images):
        mask = first if t == 0 else None
        torch.testing.assert_close(graphed.step(image, mask), core.step(image, mask))


@pytest.mark.slow
def test_compiled_stages_compute_the_plain_probabilities(decisive_model):
    # the eager backend traces the stages with dynamo (graph breaks, guards, recompiles)
    # without generating code, which takes minutes on a CPU; the GPU check runs inductor
    torch._dynamo.reset()
    try:
        reference = _segment(decisive_model, fixed_memory=True)[1]
        compiled = _segment(
            decisive_model, "inference.compile=true", "inference.compile_backend=eager", fixed_memory=True
        )[1]
    finally:
        torch._dynamo.reset()
    np.testing.assert_allclose(compiled, reference, atol=1e-5)
