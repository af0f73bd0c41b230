"""Words for the model's keys (tornado drivers, the stresses' base row) in both memo languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.memo.wording import driver_label, driver_setting, stress_base_description
from fundmodel.sensitivity import DRIVERS

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = re.compile(r"\b(price|prices|spot|long-run|capex|budget|Operating|cost|ore|fixed|hazards|Development|time|"
                     r"exploration|permitting|construction|producing|Discount|rate|per|no stress|scenarios)\b")


@pytest.fixture(scope="module")
def a():
    return load_assumptions(ROOT / "assumptions")


def test_german_driver_words_have_no_english_left(a):
    for pid in a.projects:
        for key, d in DRIVERS.items():
            label = driver_label(a, pid, key, "de")
            assert not ENGLISH.search(label.replace(a.countries.countries[a.projects[pid].country].name, "")), label
            for value in (d.low, d.high):
                assert not ENGLISH.search(driver_setting(a, key, value, "de"))


def test_each_label_carries_the_base_value_in_its_locale(a):
    p = a.projects["gh_lithium"]
    budget = f"{p.capex.initial_musd:,.0f}"
    assert budget in driver_label(a, "gh_lithium", "capex", "en")
    assert budget.replace(",", ".") in driver_label(a, "gh_lithium", "capex", "de")
    rate = a.fund.discount_rate_nominal
    assert f"{100 * rate:.1f} %" in driver_label(a, "gh_lithium", "discount_rate", "en")
    assert f"{100 * rate:.1f} %".replace(".", ",") in driver_label(a, "gh_lithium", "discount_rate", "de")
    assert driver_label(a, "mn_ree", "political", "en").endswith(a.countries.countries["MN"].name)


@pytest.mark.parametrize("lang, low, high", [("en", "-20 %", "+20 %"), ("de", "\u221220 %", "+20 %")])
def test_settings_in_words(a, lang, low, high):
    assert (driver_setting(a, "capex", 0.8, lang), driver_setting(a, "capex", 1.2, lang)) == (low, high)
    shifted = a.fund.discount_rate_nominal + 0.02
    want = f"{100 * shifted:.1f} %"
    assert driver_setting(a, "discount_rate", 0.02, lang) == (want if lang == "en" else want.replace(".", ","))


def test_stress_base_row_in_both_languages():
    assert "4,096" in stress_base_description(4096, "en")
    german = stress_base_description(4096, "de")
    assert "4.096" in german and not ENGLISH.search(german)
