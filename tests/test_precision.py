"""Monte Carlo precision (issue 14 item 4): standard errors and the ``--precision`` stop rule.

- the reported standard errors (RQMC replicates under Sobol', batch means otherwise) agree
  with the spread of independent runs (different seeds);
- a probability's standard error agrees with the binomial ``sqrt(p (1 - p) / n)`` under
  pseudo-random sampling;
- ``--precision`` stops at a whole batch, reproducibly (same seed and target: same scenario
  count, identical ``summary.csv``, equal to a plain run of that many scenarios);
- when ``--scenarios`` is reached first, exit 0, one line saying so, ``precision_reached: false``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import qmc

from conftest import copy_assumptions
from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import SamplingMethod
from fundmodel.cli import main
from fundmodel.market import simulate_market
from fundmodel.pipeline import previous_settings, results_are_current
from fundmodel.political import geopolitical_factor
from fundmodel.precision import PRECISION_BATCH, Replicates
from fundmodel.results import SE_COLUMNS, SUMMARY_COLUMNS
from fundmodel.sampling import BLOCK, SOBOL_REPLICATES, ScenarioStreams
from fundmodel.simulation import RunSettings

SEEDS = range(1000, 1080)  # independent runs for the spread of an estimate


@pytest.fixture(scope="module")
def shipped():
    from conftest import SHIPPED_ASSUMPTIONS

    return load_assumptions(SHIPPED_ASSUMPTIONS)


def _discounted_price(a, seed: int, method: SamplingMethod, n: int) -> np.ndarray:
    """A cheap model quantity per scenario: the first material's price in year 5, discounted (USD/t)."""
    streams = ScenarioStreams(seed, method)
    years = 6
    geo = geopolitical_factor(streams, a.countries.geopolitical_factor, 0, n, years)
    market = simulate_market(a.markets, streams, 0, n, years, a.fund.inflation, geo)
    return market.price_usd_per_t[0, :, 5] / (1 + a.fund.discount_rate_nominal) ** 5


@pytest.mark.slow
@pytest.mark.parametrize("method, n", [(SamplingMethod.SOBOL, 2048), (SamplingMethod.PSEUDO, 2048),
                                       (SamplingMethod.LHS, 10 * BLOCK)], ids=lambda v: getattr(v, "value", v))
def test_reported_se_matches_spread_of_independent_runs(shipped, method, n):
    """The mean's reported SE (averaged over runs) is within 20 % of the sd of the means of 80 seeds."""
    means, ses = [], []
    for seed in SEEDS:
        x = _discounted_price(shipped, seed, method, n)
        means.append(x.mean())
        ses.append(Replicates(n, method).se(x))
    spread = float(np.std(means, ddof=1))
    reported = float(np.sqrt(np.mean(np.square(ses))))
    assert reported == pytest.approx(spread, rel=0.20), (
        f"{method.value}: reported SE {reported:.4g} vs spread of {len(means)} independent runs {spread:.4g}")


def test_sobol_se_reflects_the_qmc_gain(shipped):
    """Under Sobol' the SE is that of the RQMC estimate: below the pseudo-random one of the same n."""
    n = 4096
    def mean_se(method):
        return np.mean([Replicates(n, method).se(_discounted_price(shipped, s, method, n)) for s in SEEDS[:10]])

    sobol, pseudo = mean_se(SamplingMethod.SOBOL), mean_se(SamplingMethod.PSEUDO)
    assert sobol < 0.8 * pseudo, f"Sobol' SE {sobol:.4g} not below pseudo-random {pseudo:.4g}"


def test_each_sobol_replicate_is_a_stratified_sobol_sequence():
    """Replicate r (scenarios r, r + 16, ...) is a scrambled Sobol' sequence: its first 2^m points are
    stratified in every coordinate; chunks of whole blocks give the same rows as one draw."""
    s = ScenarioStreams(5, SamplingMethod.SOBOL)
    n, dim = SOBOL_REPLICATES * 64, 3
    u = s.uniforms("market/shocks", 0, n, dim)
    for r in range(SOBOL_REPLICATES):
        rep = u[r::SOBOL_REPLICATES]
        for j in range(dim):
            counts = np.bincount(np.floor(rep[:, j] * 64).astype(int), minlength=64)
            assert (counts == 1).all(), f"replicate {r}, dimension {j}: not one point per 1/64 stratum"
    # the replicates are different scramblings
    assert qmc.discrepancy(u) < qmc.discrepancy(np.random.default_rng(0).random((n, dim)))
    assert not np.allclose(u[0::SOBOL_REPLICATES], u[1::SOBOL_REPLICATES])
    big = ScenarioStreams(5, SamplingMethod.SOBOL).uniforms("market/shocks", 0, 3 * BLOCK + 100, dim)
    parts = np.vstack([ScenarioStreams(5, SamplingMethod.SOBOL).uniforms("market/shocks", lo, hi, dim)
                       for lo, hi in ((0, BLOCK), (BLOCK, 3 * BLOCK), (3 * BLOCK, 3 * BLOCK + 100))])
    np.testing.assert_array_equal(big, parts)


def test_probability_se_matches_binomial_under_pseudo_random_sampling():
    """Batch-means SE of a share vs sqrt(p (1 - p) / n), averaged over 40 seeds (within 10 %)."""
    n, p = 4096, 0.3
    ratios = []
    for seed in SEEDS[:40]:
        hit = ScenarioStreams(seed, SamplingMethod.PSEUDO).uniforms("event", 0, n, 1)[:, 0] < p
        share = hit.mean()
        ratios.append(Replicates(n, SamplingMethod.PSEUDO).se(hit) / np.sqrt(share * (1 - share) / n))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.10), f"batch-means / binomial SE ratio {np.mean(ratios):.3f}"


# --------------------------------------------------------------------------- whole runs (one project)
@pytest.fixture(scope="module")
def one_project(tmp_path_factory):
    return copy_assumptions(tmp_path_factory.mktemp("prec") / "assumptions", projects=["kz_gallium"])


def _simulate(assumptions, out, *extra) -> int:
    return main(["simulate", "--assumptions", str(assumptions), "--quiet", "--no-attribution", "--workers", "1",
                 "--out", str(out), *extra])


@pytest.mark.slow
def test_summary_carries_standard_errors_of_a_pseudo_run(one_project, tmp_path):
    """Every SE column is there, and a probability's SE is close to binomial on a real run."""
    assert _simulate(one_project, tmp_path, "--scenarios", "4096", "--sampling", "pseudo") == 0
    summary = pd.read_csv(tmp_path / "simulation" / "summary.csv")
    assert list(summary.columns) == [c for c in SUMMARY_COLUMNS if c in summary.columns]
    assert set(SE_COLUMNS) <= set(summary.columns)
    row = summary.iloc[0]
    for key in ("npv_mean_se_meur", "equity_npv_mean_se_meur", "npv_p5_se_meur", "npv_cvar5_se_meur"):
        assert row[key] > 0, key
    p = row["prob_npv_negative"]
    binomial = np.sqrt(p * (1 - p) / 4096)
    # one run, 16 batches: the SE estimate itself is uncertain by ~18 %
    assert row["prob_npv_negative_se"] == pytest.approx(binomial, rel=0.5)
    m = json.loads((tmp_path / "simulation" / "metrics.json").read_text())
    assert m["standard_errors"]["method"] == "batch_means" and m["standard_errors"]["groups"] == 16
    assert "precision_reached" not in m


@pytest.mark.slow
def test_precision_stop_is_reached_and_reproducible(one_project, tmp_path, capsys):
    """Same seed and target: same number of scenarios (whole batches, below the maximum), identical
    summary.csv, and the same numbers as a plain run of that many scenarios."""
    target = "0.3"
    maximum = 4 * PRECISION_BATCH
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        assert _simulate(one_project, out, "--scenarios", str(maximum), "--precision", target) == 0
        runs.append(out / "simulation")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("precision:")]
    assert len(lines) == 2 and "NOT" not in lines[0]
    m = [json.loads((r / "metrics.json").read_text()) for r in runs]
    used = m[0]["scenarios"]
    assert m[0]["precision_reached"] is True and m[0]["precision_target_meur"] == 0.3
    assert used < maximum and used % PRECISION_BATCH == 0 and m[1]["scenarios"] == used
    assert m[0]["projects"]["kz_gallium"]["npv_mean_se_meur"] <= 0.3
    assert (runs[0] / "summary.csv").read_bytes() == (runs[1] / "summary.csv").read_bytes()
    assert np.load(runs[0] / "scenarios" / "kz_gallium" / "equity_cf_meur.npy").shape[0] == used
    # the same request finds these results current (reused by run/memo); another target does not
    a = load_assumptions(one_project)
    same = RunSettings.from_assumptions(a, scenarios=maximum, precision_meur=0.3, risk_attribution=False)
    assert results_are_current(a, same, runs[0].parent)
    # ... but not for a run that wants the risk attribution (tornado, break-evens) it did not make
    assert not results_are_current(a, dataclasses.replace(same, risk_attribution=True), runs[0].parent)
    assert not results_are_current(a, RunSettings.from_assumptions(a, scenarios=maximum, precision_meur=0.2),
                                   runs[0].parent)
    # `fundmodel memo` on a folder holding only this simulation repeats its settings (target and
    # maximum), so it reuses the simulation rather than re-simulating at the fund.yaml defaults
    recorded = previous_settings(a, runs[0].parent)
    assert recorded.precision_meur == 0.3 and recorded.scenarios == maximum
    assert results_are_current(a, recorded, runs[0].parent)
    plain = tmp_path / "plain"
    assert _simulate(one_project, plain, "--scenarios", str(used)) == 0
    pd.testing.assert_frame_equal(pd.read_csv(runs[0] / "summary.csv"),
                                  pd.read_csv(plain / "simulation" / "summary.csv"))
    np.testing.assert_array_equal(np.load(runs[0] / "scenarios" / "market" / "price_usd_per_t.npy"),
                                  np.load(plain / "simulation" / "scenarios" / "market" / "price_usd_per_t.npy"))


@pytest.mark.slow
def test_precision_maximum_reached_exits_0_with_one_line(one_project, tmp_path, capsys):
    assert _simulate(one_project, tmp_path, "--scenarios", "3000", "--precision-rel", "1e-6") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "precision" in line.split(" -> ")[0]]
    assert len(lines) == 1 and "NOT reached" in lines[0] and "3,000" in lines[0], lines
    m = json.loads((tmp_path / "simulation" / "metrics.json").read_text())
    assert m["precision_reached"] is False and m["scenarios"] == 3000 and m["precision_target_rel"] == 1e-6


def test_memo_prints_the_standard_error_beside_the_figure():
    from fundmodel.memo import Formatter
    from fundmodel.memo.context import _pm, _se_text

    en, de = Formatter("en"), Formatter("de")
    assert _pm(en.meur(20.68), 0.81, en) == "EUR 20.7 m \u00b1 0.8"
    assert _pm(de.pct(0.4457), 0.0026, de, percent=True) == "44,6 % \u00b1 0,3"
    assert _pm(en.meur(1.0), None, en) == "EUR 1.0 m" and _pm(en.pct(0.0), 0.0, en, percent=True) == "0.0 %"
    assert _se_text(4.44, en) == "\u00b1 4.4" and _se_text(None, en) == ""
