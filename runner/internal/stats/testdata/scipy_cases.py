# Regenerates scipy_cases.json, the cross-check TestScipyCases runs against.
# Run with numpy 2.4.6, scipy 1.17.1, statsmodels 0.15.0:
#   python3 scipy_cases.py > scipy_cases.json
import json

import numpy as np
import scipy.stats as st
from statsmodels.stats.multitest import multipletests

rng = np.random.default_rng(20261127)
cases = []
for i in range(100):
    n1 = int(rng.integers(1, 41))
    n2 = int(rng.integers(1, 41))
    if i % 3 == 0:  # small samples, mostly exact
        n1, n2 = int(rng.integers(1, 9)), int(rng.integers(1, 25))
    shift = float(rng.choice([0.0, 0.3, 1.0]))
    a = np.round(rng.lognormal(0.0, 0.5, n1), 5)
    b = np.round(rng.lognormal(shift, 0.5, n2), 5)
    if i % 4 == 1:  # ties: quantise to a coarse grid
        a, b = np.round(a * 4) / 4, np.round(b * 4) / 4
    a, b = a.tolist(), b.tolist()
    mwu = st.mannwhitneyu(b, a, alternative="two-sided", method="auto")
    x = np.asarray(a)
    ci = st.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(0.95) if n1 >= 6 else None
    cases.append({
        "a": a, "b": b,
        "u_b": float(mwu.statistic), "p": float(mwu.pvalue),
        "cliffs_delta": float(np.sign(np.subtract.outer(np.asarray(b), x)).mean()),
        "percentiles_a": [float(v) for v in np.percentile(x, [25, 50, 75, 90, 99])],
        "mean_a": float(x.mean()),
        "stddev_a": float(x.std(ddof=1)) if n1 > 1 else 0.0,
        "median_ci_a": [float(ci.low), float(ci.high)] if ci is not None else None,
    })
ps = [c["p"] for c in cases]
out = {"cases": cases, "holm": [float(v) for v in multipletests(ps, method="holm")[1]]}
print(json.dumps(out))
