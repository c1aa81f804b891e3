"""The MUSE CCD readout layout: four quadrants with pre- and overscan, and electrons → raw ADU.

Follows the pipeline's own description (``muse/muse_quadrants.c``, ``muse/muse_instrument.h``):
each 4096×4112 CCD is read through four ports, each quadrant 2048×2056 data pixels with a 32-pixel
prescan on the outer edge and a 32-pixel overscan towards the centre, giving a 4224×4240 raw frame.

    x: [prescan 32][Q1/Q4 2048][overscan 32][overscan 32][Q2/Q3 2048][prescan 32]
    y: the same with 2056; OUT1 at (1,1), OUT2 at (4096,1), OUT3 at (4096,4112), OUT4 at (1,4112).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUAD_NX, QUAD_NY = 2048, 2056
PRESCAN = OVERSCAN = 32
TRIMMED_SHAPE = (2 * QUAD_NY, 2 * QUAD_NX)  # (4112, 4096), numpy order (y, x)
RAW_SHAPE = (2 * (PRESCAN + QUAD_NY + OVERSCAN), 2 * (PRESCAN + QUAD_NX + OVERSCAN))  # (4240, 4224)
PORT_POSITIONS = {1: (1, 1), 2: (4096, 1), 3: (4096, 4112), 4: (1, 4112)}


@dataclass(frozen=True)
class ReadoutModel:
    """Per-port electronic properties of one CCD (ADU levels, read noise, gain)."""

    bias_adu: tuple[float, float, float, float] = (1000.0, 1010.0, 995.0, 1005.0)
    ron_adu: tuple[float, float, float, float] = (2.6, 2.5, 2.7, 2.55)
    gain: tuple[float, float, float, float] = (1.10, 1.12, 1.09, 1.11)  # electrons per ADU


def quadrant_regions(port: int) -> tuple[tuple[slice, slice], tuple[slice, slice], tuple[slice, slice]]:
    """(raw region with pre/overscan, raw data region, trimmed data region) of one port, as (y, x)."""
    px, py = PORT_POSITIONS[port]
    raw_ny, raw_nx = RAW_SHAPE
    if px == 1:
        xr, xd, xt = slice(0, PRESCAN + QUAD_NX + OVERSCAN), slice(PRESCAN, PRESCAN + QUAD_NX), slice(0, QUAD_NX)
    else:
        xr = slice(PRESCAN + QUAD_NX + OVERSCAN, raw_nx)
        xd, xt = slice(raw_nx - PRESCAN - QUAD_NX, raw_nx - PRESCAN), slice(QUAD_NX, 2 * QUAD_NX)
    if py == 1:
        yr, yd, yt = slice(0, PRESCAN + QUAD_NY + OVERSCAN), slice(PRESCAN, PRESCAN + QUAD_NY), slice(0, QUAD_NY)
    else:
        yr = slice(PRESCAN + QUAD_NY + OVERSCAN, raw_ny)
        yd, yt = slice(raw_ny - PRESCAN - QUAD_NY, raw_ny - PRESCAN), slice(QUAD_NY, 2 * QUAD_NY)
    return (yr, xr), (yd, xd), (yt, xt)


def trim(raw: np.ndarray) -> np.ndarray:
    """The 4112×4096 data area of a raw frame (what the pipeline's trimming keeps)."""
    out = np.empty(TRIMMED_SHAPE, dtype=np.float64)
    for port in PORT_POSITIONS:
        _, data, trimmed = quadrant_regions(port)
        out[trimmed] = raw[data]
    return out


def overscan_levels(raw: np.ndarray) -> dict[int, float]:
    """Median of each port's overscan columns (the level muse_bias subtracts)."""
    levels = {}
    for port in PORT_POSITIONS:
        (yr, _), (yd, xd), _ = quadrant_regions(port)
        px, _ = PORT_POSITIONS[port]
        xo = slice(xd.stop, xd.stop + OVERSCAN) if px == 1 else slice(xd.start - OVERSCAN, xd.start)
        levels[port] = float(np.median(raw[yd, xo]))
    return levels


def read_out(
    electrons: np.ndarray | None,
    rng: np.random.Generator,
    model: ReadoutModel = ReadoutModel(),
    bias_structure: np.ndarray | None = None,
) -> np.ndarray:
    """Turn a trimmed image in electrons (None for a bias) into a uint16 raw frame.

    ``bias_structure`` (ADU, trimmed shape) is a fixed pattern added to every frame's data area, as a
    real CCD's bias has; a master bias must reproduce it.
    """
    raw = np.empty(RAW_SHAPE, dtype=np.float32)
    for port in PORT_POSITIONS:
        region, data, trimmed = quadrant_regions(port)
        shape = (region[0].stop - region[0].start, region[1].stop - region[1].start)
        raw[region] = model.bias_adu[port - 1] + rng.normal(0.0, model.ron_adu[port - 1], shape)
        if bias_structure is not None:
            raw[data] += bias_structure[trimmed].astype(np.float32)
        if electrons is not None:
            signal = rng.poisson(np.maximum(electrons[trimmed], 0.0)).astype(np.float32)
            signal *= np.float32(1.0 / model.gain[port - 1])
            raw[data] += signal
    np.rint(raw, out=raw)  # in place: a frame is 18 M pixels, and temporaries cost more than the arithmetic
    np.clip(raw, 0, 65535, out=raw)
    return raw.astype(np.uint16)
