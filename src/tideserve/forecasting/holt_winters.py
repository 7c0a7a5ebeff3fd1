"""statsmodels' Holt-Winters (additive seasonal exponential smoothing) as a ForecastModel.

Why this model and this library: request load on an endpoint is a level plus a daily cycle,
which additive Holt-Winters captures with three smoothing weights; statsmodels fits it in
0.1–0.7 s on 2–14 days of 1-minute bins (measured: 1,440-bin season, L-BFGS-B, heuristic
initialisation), where STL+ETS took 3–20 s and MSTL needs two full cycles of every season.
statsforecast is not on this machine's package index. statsmodels is the `forecast` extra;
without it `model()` answers the seasonal-naive model, so predictive scaling still works.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from tideserve.scaling.forecast import ForecastModel, SeasonalNaive


class HoltWinters:
    """Fits the smoothing weights by L-BFGS-B on every `reoptimize_every`-th call and reuses
    them in between, on the last three days only (a fixed-weight fit is several times faster),
    so hourly forecasts re-optimise once a day by default. Stateful: one instance per policy
    (scaling.forecast.Forecaster copies it)."""

    name = "holt-winters"

    def __init__(self, reoptimize_every: int = 24) -> None:
        self.reoptimize_every = max(1, reoptimize_every)
        self._weights: tuple[float, float] | None = None
        self._calls = 0

    def predict(self, history: Sequence[float], season: int, horizon: int) -> Sequence[float]:
        import numpy as np
        from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

        y = np.asarray(history, dtype=float)
        if season < 2 or len(y) < 2 * season or not np.isfinite(y).all():
            return SeasonalNaive().predict(history, season, horizon)
        if np.ptp(y) == 0:  # a flat load: nothing to fit
            return [float(y[-1])] * horizon
        with warnings.catch_warnings():
            # ConvergenceWarning and friends: a rough fit is still a forecast, and the
            # back-test in scaling.forecast decides whether it is good enough.
            warnings.simplefilter("ignore")
            optimise = self._weights is None or self._calls % self.reoptimize_every == 0
            if not optimise:
                # With known weights the states settle within a few days: the last three
                # seasons give the same forecast at a fraction of the cost.
                y = y[-3 * season:]
            model = ExponentialSmoothing(y, seasonal="add", seasonal_periods=season,
                                         initialization_method="heuristic")
            if optimise or self._weights is None:
                fit = model.fit(method="L-BFGS-B", use_brute=False)
                self._weights = (float(fit.params["smoothing_level"]),
                                 float(fit.params["smoothing_seasonal"]))
            else:
                level, seasonal = self._weights
                fit = model.fit(smoothing_level=level, smoothing_seasonal=seasonal,
                                optimized=False)
            self._calls += 1
            out = fit.forecast(horizon)
        return [float(v) for v in np.nan_to_num(out, nan=0.0)]


def model() -> ForecastModel:
    """Holt-Winters where statsmodels is installed, else seasonal naive."""
    try:
        import statsmodels  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return SeasonalNaive()
    return HoltWinters()
