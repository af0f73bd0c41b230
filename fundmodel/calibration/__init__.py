"""Calibration of the price and country-risk assumptions from public data.

- :mod:`.data`: readers of the shipped World Bank, USGS and Transparency International files;
- :mod:`.prices`: log-OU / GBM fits with standard errors, diagnostics and residual correlation;
- :mod:`.countries`: the monotone map from governance indicators to political-event hazards;
- :mod:`.report`: CSV/JSON/HTML reports in ``OUT/calibration/``;
- :mod:`.yamlio`: comment-preserving updates of ``assumptions/*.yaml`` (ruamel.yaml).
"""

from .countries import CountryCalibration, calibrate_countries, write_countries
from .data import CalibrationDataError
from .prices import PriceCalibration, calibrate_prices, fit_gbm, fit_ou, write_markets

__all__ = ["CalibrationDataError", "CountryCalibration", "PriceCalibration", "calibrate_countries",
           "calibrate_prices", "fit_gbm", "fit_ou", "write_countries", "write_markets"]
