# Regenerates welch_cases.json, the cross-check TestWelchScipy runs against:
# Welch's t-test (scipy.stats.ttest_ind, equal_var=False) with its 95% CI of
# the difference, and Student-t quantiles (scipy.stats.t.ppf).
# Run with numpy 2.4.6, scipy 1.17.1:
#   python3 welch_cases.py > welch_cases.json
import json

import numpy as np
import scipy.stats as st

rng = np.random.default_rng(20261201)
cases = []
for i in range(60):
    n1 = int(rng.integers(2, 13))
    n2 = int(rng.integers(2, 13))
    shift = float(rng.choice([0.0, 0.02, 0.1]))
    s1 = float(rng.choice([0.01, 0.05, 0.2]))
    s2 = float(rng.choice([0.01, 0.05, 0.2]))
    a = np.round(rng.normal(1.0, s1, n1), 6).tolist()
    b = np.round(rng.normal(1.0 + shift, s2, n2), 6).tolist()
    r = st.ttest_ind(b, a, equal_var=False)
    ci = r.confidence_interval(0.95)
    cases.append({"a": a, "b": b, "t": float(r.statistic), "df": float(r.df), "p": float(r.pvalue),
                  "lo": float(ci.low), "hi": float(ci.high)})
quantiles = []
for df in [1, 1.5, 2, 3, 4.7, 9, 30, 200]:
    for q in [0.6, 0.8, 0.975, 0.99375, 0.999]:
        quantiles.append({"q": q, "df": df, "x": float(st.t.ppf(q, df))})
print(json.dumps({"cases": cases, "quantiles": quantiles}))
