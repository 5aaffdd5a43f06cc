"""Public names that 0.2 moved out of the package keep working until 0.3, with a DeprecationWarning naming the new way.

(The callback's flat analysis arguments are covered in test_callback_config.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_repgap.calibration import fit_gap_law, naive_gap_dimension, slope_to_dimension
from lightning_repgap.capture import Capture


def test_naive_gap_dimension_warns_and_still_fits_the_slope():
    n = 2.0 ** np.arange(4, 12)
    gaps = 0.3 * n ** (-2 / 5)
    with pytest.warns(DeprecationWarning, match="fit_gap_law"):
        dim = naive_gap_dimension(n, gaps)
    assert dim == pytest.approx(5.0, rel=1e-9)
    assert dim == slope_to_dimension(fit_gap_law(n, np.log(gaps))[1])
    with (
        pytest.warns(DeprecationWarning, match="removed in 0.3"),
        pytest.raises(ValueError, match="finite and positive"),
    ):
        naive_gap_dimension(n, -gaps)


def test_capture_rows_warns_and_still_counts_rows():
    cap = Capture(["a"], "mean")
    cap.record("a", torch.ones(2, 3, 4))
    cap.record("a", torch.ones(5, 3, 4))
    with pytest.warns(DeprecationWarning, match=r"Capture\.rows\(\) is deprecated"):
        assert cap.rows() == {"a": 7}
