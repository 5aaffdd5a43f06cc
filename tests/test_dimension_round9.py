"""Known answers for the ninth round of the trusted ``dim`` (issue #14), one per failure mode it fixed.

* The noise diagnosis's "strong noise" clause (TwoNN at least :data:`NOISE_STRONG_RATIO` times GRIDE over neighbours
  10-20) started at 1.5. At n = 20,000 an unequal 5-d Gaussian mixture with 5 % noise read 1.45 (the far neighbours
  see part of the noise too), so the noise was not diagnosed and ``dim`` was the local estimators' reading of the
  noise, 9.54. The clean clouds that reach this clause read at most 1.35.
* Where noise is diagnosed but GRIDE over neighbours 10-20 reads below the floor-corrected gap law, ``dim`` is the far
  scale (``"local_far"``): noise only raises that reading. Its interval reaches the floor-corrected law; it must not
  take the fine scales' spread, which under a diagnosed floor reads the noise (an early version's interval for a
  noisy Lissajous curve was [0.12, 9.0]).
"""

from __future__ import annotations

from test_dimension_round8 import _suite_estimate

import lightning_repgap._trusted_parts as parts


def test_strong_noise_that_reaches_the_far_neighbours_is_diagnosed_at_large_n():
    est, d = _suite_estimate("unequal Gaussian mixture d=5, 8 comp. + 5 %", 20000)
    assert est.method == "noise_floor", est
    assert abs(est.dim - d) / d < 0.2, est  # the previous rule read 9.54 ("local")
    assert est.dim_low <= d <= est.dim_high


def test_the_strong_noise_clause_keeps_the_clean_clouds_out():
    # TwoNN / GRIDE far of the noisy mixture above (10.18 / 7.04 = 1.45) passes; its floor-corrected 4.93 is read.
    assert parts._noise_borne_out(4.93, 7.04, 10.18, 0.53)
    # A clean anisotropic 12-d Gaussian mixture (10.31 / 7.65 = 1.35, floor-corrected 4.01) stays out ...
    assert not parts._noise_borne_out(4.01, 7.65, 10.31, 0.62)
    # ... with a margin: the clause needs more than the largest clean ratio of the opened splits.
    assert parts.NOISE_STRONG_RATIO > 1.35 * 1.03


def test_a_noisy_curve_whose_far_scale_reads_below_the_floor_corrected_law_takes_the_far_scale():
    # 1 % noise on a Lissajous curve at n = 2,500: the floor-corrected gap law, fitted over the few small banks where
    # the manifold still shows above the floor, sees the curve winding through space (1.20); GRIDE over neighbours
    # 10-20 reads below it (noise can only raise that reading) and is right.
    est, d = _suite_estimate("Lissajous 3:4:5 + 1 %", 2500)
    assert est.method == "local_far", est
    assert abs(est.dim - d) / d < 0.1, est  # the previous rule read 1.20 ("noise_floor")
    assert est.dim_low <= d <= est.dim_high
    # informative: the fine scales' spread (TwoNN reads the noise, 4.4) once made it [0.12, 9.0]
    assert est.dim_high / est.dim_low < 3.0, est
    assert est.dim_high >= 1.20 * 0.999  # it reaches the floor-corrected law's reading
