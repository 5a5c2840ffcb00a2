"""Array type aliases shared by the calibration modules."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]


def float_array(values: npt.ArrayLike) -> FloatArray:
    """``values`` as a float64 array."""
    return np.asarray(values, dtype=np.float64)


def bool_array(values: npt.ArrayLike) -> BoolArray:
    """``values`` as a boolean array."""
    return np.asarray(values, dtype=np.bool_)
