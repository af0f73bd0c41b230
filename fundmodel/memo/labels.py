"""Headings, labels and number formats of the memos in English and German.

Every visible word of a memo that is not data comes from :data:`LABELS`, so a German memo
(``--lang de``) has no English headings left. Numbers are formatted here, once, with their
units; the templates never format a number themselves.
"""

from __future__ import annotations

import math

LANGUAGES = ("en", "de")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "project_memo": "Investment memo",
        "portfolio_memo": "Portfolio memo",
        "executive_summary": "Executive summary",
        "recommendation": "Recommendation",
        "recommend_invest": "Invest",
        "recommend_no": "Do not invest on the modelled terms",
        "no_position_reason": ("The optimiser allocates nothing to this project under the fund's limits: "
                               "no instrument adds expected value per unit of capital, contingent exposure "
                               "and tail risk as much as the positions chosen instead."),
        "conditions": "Conditions",
        "key_figures": "Key figures",
        "the_project": "The project",
        "valuation": "Valuation",
        "market_value": "Market value and concession",
        "at_policy_rate": "at the fund's rate",
        "at_market_rate": "at the market rate",
        "market_rate": "Market rate",
        "concession": "Concession",
        "note_market": "Each claim is valued at the rate a counterparty would use (fundmodel.rates): the project at the asset rate (risk-free {rf} + beta x ERP + country risk premium {crp}), the sponsors' equity at the cost of equity (levered beta). The fund's rate of {policy} is its policy rate; value at it minus market value is the concession the fund grants.",
        "entry_terms": "Entry terms",
        "entry_kind": "Entry",
        "entry_secondary": "existing shares bought from the sponsors (cash to the sellers)",
        "entry_primary": "new shares in a primary round (cash into the project, funding capex)",
        "entry_acquisition": "acquisition of a producing mine at its price",
        "entry_discount": "Negotiated discount to the pre-money value",
        "pre_money": "Pre-money equity value (at the cost of equity)",
        "entry_price": "Entry price",
        "entry_unavailable": "Equity stake unavailable",
        "round_size": "Size of the round",
        "eu_available": "Available to European buyers",
        "secured": "Secured",
        "by_equity": "by equity",
        "by_loan_guarantee": "by guarantees",
        "by_price_floor": "by floors",
        "note_supply": "Contained tonnes per year, average over the next {window} years; all instruments on a project together secure at most its output available to European buyers (counted once).",
        "concession_granted": "Concession granted",
        "stakes_available": "Equity stakes buyable at market prices",
        "stakes_available_value": "{k} of {n} (the others have no positive pre-money value at the cost of equity)",
        "position_terms": "Terms of the positions",
        "risk_drivers": "Risk drivers",
        "prices": "Prices of the project's materials",
        "schedule_risk": "Schedule risk",
        "financing": "Financing",
        "portfolio_effect": "Effect on the portfolio",
        "stress_results": "Stress scenarios",
        "key_assumptions": "Key assumptions and sources",
        "run_manifest": "Run manifest",
        "contents": "Contents",
        "allocation": "Allocation",
        "risk_return": "Return and tail risk",
        "frontier": "Efficient frontier",
        "risk_contributions": "Risk contributions",
        "concentration": "Concentration",
        "supply_secured": "Supply secured for European buyers",
        "limits": "Limits and binding constraints",
        "changes": "Changes since the previous run",
        "no_baseline": "No baseline given (use --baseline DIR to compare with an earlier output).",
        "country": "Country",
        "material": "Material",
        "materials": "Materials",
        "stage": "Stage",
        "capex": "Initial capex",
        "capacity": "Ore throughput",
        "mine_life": "Mine life",
        "offtake": "Offtake to European buyers",
        "construction": "Construction",
        "permitting": "Permitting",
        "rampup": "Ramp-up",
        "debt": "Senior debt",
        "first_production": "First production (P5 / P50 / P95)",
        "prob_production": "Probability the mine produces",
        "equity_npv": "Equity NPV",
        "at_policy_rate": "at the fund's policy rate",
        "at_market_rate": "at its market rate, {rate}",
        "project_npv": "Project NPV",
        "equity_irr": "Equity IRR",
        "mean": "Mean",
        "prob_loss": "Probability of loss (NPV < 0)",
        "prob_total_loss": "Probability of total equity loss",
        "prob_default": "Probability of senior-debt default",
        "prob_default_10y": "Senior-debt default within 10 years of financial close (Moody's, unrated "
                            "project-finance bank loans 1983-2015: 6.7 %)",
        "debt_recovery": "Recovery at default, mean (Moody's: about 80 %, 100 % in about two thirds of defaults)",
        "value_above_debt": "project worth more than the debt in {p} of defaults",
        "irr_undefined": "Scenarios without a defined IRR",
        "value_lost": "Value lost to each risk (project NPV, EUR m)",
        "risk": "Risk",
        "price_risk": "Price",
        "political_risk": "Political",
        "schedule_risk_short": "Delay and overrun",
        "std_error": "standard error",
        "driver": "Input",
        "low": "Low",
        "high": "High",
        "swing": "Swing",
        "instrument": "Instrument",
        "size": "Size",
        "capital": "Capital",
        "contingent": "Contingent exposure",
        "expected_pv": "Expected PV to the fund",
        "cvar_contribution": "CVaR contribution",
        "tonnes_secured": "Tonnes secured per year",
        "premium": "Premium (PV)",
        "expected_loss": "Expected loss (PV)",
        "premium_to_el": "Premium / expected loss",
        "oecd_mpr": "OECD minimum premium (PV)",
        "subsidy": "Subsidy visible",
        "per_unit": "per unit",
        "stress": "Stress",
        "pv": "Expected PV",
        "change": "Change",
        "cvar": "CVaR",
        "var": "VaR",
        "item": "Item",
        "value": "Value",
        "source": "Source",
        "limit": "Limit",
        "used": "Used",
        "binding": "Binding",
        "shadow_price": "Shadow price",
        "yes": "yes",
        "no": "no",
        "target": "Target",
        "share": "Share",
        "exposure": "Exposure",
        "project": "Project",
        "position_none": "No position",
        "budget": "Capital budget",
        "contingent_limit": "Contingent-liability limit",
        "cvar_limit": "CVaR limit",
        "scenarios": "scenarios",
        "seed": "seed",
        "version": "version",
        "commit": "commit",
        "code": "code",
        "modified": "modified",
        "assumption_file": "Assumption file",
        "sha256": "SHA-256",
        "page": "Page",
        "of": "of",
        "generated": "Results of",
        "chosen": "chosen portfolio",
        "before": "Before",
        "after": "After",
        "prob_of_npv": "Probability",
        "years": "years",
        "never_produces": "never produces",
        "not_modelled": "not modelled in this run",
        "confidential": "For the investment committee",
        "eu_buyers": "for European buyers",
        "price_floor": "Price floor with offtake",
        "equity": "Equity stake",
        "loan_guarantee": "Loan guarantee",
        "political_risk_cover": "Political-risk cover",
        "mezzanine_loan": "Mezzanine loan",
        "direct_loan": "Direct loan",
        "share_of": "share of",
        "political_events": "Political events (share of scenario-years)",
        "valuation_date": "Valuation date",
        "assumptions_digest": "Assumptions digest",
        "output_mean": "Output (mean, years 1-10 / 11-20)",
        "operating_cost": "Operating cost",
        "royalty_tax": "Royalty, income tax",
        "grade_recovery": "grade, recovery, payability",
        "spot_long_run": "spot / long-run price",
        "vol_reversion": "volatility, mean reversion",
        "overrun": "Capex overrun: mean, P(≥ 100 %)",
        "hazards": "annual hazards (expropriation / fiscal grab / transfer / unrest)",
        "exploration": "Exploration",
        "grace": "grace",
        "size_primary": "{equity} of equity ({round} of the round)",
        "no_bankable_debt": "none: the base case does not cover debt service at DSCR >= {dscr}x (sized by rule)",
        "acquisition": "acquisition",
        "note_se": "\u00b1: Monte Carlo standard error of the figure ({method}), same unit; a 95 % confidence interval is about \u00b1 2 standard errors.",
        "se_rqmc": "spread of {k} independently scrambled Sobol' replicates",
        "se_batch": "batch means over {k} batches of scenarios",
        "note_valuation": "Scenarios without a defined IRR: {irr}. NPVs in EUR at the fund's nominal discount rate, valuation date {date}.",
        "breakeven": "Break-even long-run {material} price",
        "options": "NPV committed / with options (asset rate)",
        "options_value": "{committed} / {options} (option value {value} ± {se})",
        "options_probabilities": "Development / temporary closure / abandonment (with options)",
        "options_probabilities_value": "{develop} / {closure} / {abandon}",
        "breakeven_value": "USD {price}/t (± {se}; assumed USD {shipped}/t)",
        "note_breakeven": ("Break-even: the long-run {material} price (median of the benchmark price, in real USD "
                           "per tonne of the priced product, valuation-date money; product: {product}) at which the mean project NPV at its market "
                           "rate ({rate}) is zero; solved on the run's first {n} scenarios with common random "
                           "numbers (± its Monte Carlo standard error), every other assumption and the loan's "
                           "credit policy as in the run."),
        "breakeven_none": "No break-even: {reason}.",
        "note_parameters_on": ("Parameter uncertainty is on: each scenario draws the long-run price level and mean "
                               "reversion of {drawn} from the price calibration's estimated covariance (mean "
                               "reversion kept positive by truncation), so the NPV ranges include the estimation "
                               "error of these parameters. Hand-set price parameters ({fixed}) have no estimate "
                               "to draw from and stay at their assumed values; the break-even bounds them."),
        "note_parameters_off": ("Parameter uncertainty is off: every scenario uses the price parameters of "
                                "markets.yaml (fund.yaml simulation.parameter_uncertainty)."),
        "note_attribution": ("Each risk switched off on the same {n} scenarios (common random numbers); bars show "
                             "±1.96 standard errors. A negative value means the risk adds value on average "
                             "(convex payoffs: the option to produce more when prices are high)."),
        "note_tornado": "Mean equity NPV with one input moved to its low and high setting, all else equal (common random numbers).",
        "note_unit": ("One unit: 100 % of equity (cover), 100 % of the senior loan (guarantee), 100 % of EU-available "
                      "output (floor). A premium below the modelled expected loss or the OECD minimum premium rate "
                      "is a subsidy and is flagged."),
        "note_size": ("Size: share of project equity (equity; in a primary round, with the share of the round taken), of the senior loan (guarantee), of private equity insured "
                      "(cover) or of EU-available output (floor). Capital is the expected PV of cash deployed; "
                      "contingent exposure the largest amount the fund may have to pay."),
        "note_euler": "Euler contributions add up to the portfolio CVaR; a negative contribution hedges the tail.",
        "note_sample": ("Large run: the CVaR limit and the frontiers use the first {solved} of {evaluated} scenarios "
                        "(CVaR there {cvar_sample}); expected values and the other limits use all scenarios. On all "
                        "scenarios the CVaR of the chosen portfolio is {cvar_all} (gap {gap}); limit met on all "
                        "scenarios: {met}."),
        "note_shadow": "Shadow price: expected PV (EUR m) gained per EUR 1 m more of the limit.",
        "reproduce": "Reproduce: check out commit {commit}, restore the assumption files with these hashes and run",
        "no_change": "No change.",
        "in_portfolio": "In portfolio",
        "supply_frontier": "Efficient frontier (weighted supply)",
        "weighted_supply": "Weighted supply",
        "objective": "objective",
        "pos_equity": "{label}: {size} (capital {capital})",
        "pos_guarantee": "{label}: {size} of the senior loan (contingent exposure {contingent})",
        "pos_cover": "{label}: {size} of private equity (contingent exposure {contingent})",
        "pos_floor": "{label} ({material}): {size} of EU-available output at USD {floor}/t for {tenor} years (contingent exposure {contingent})",
        "cond_equity": "Equity of {share} within the cap of {cap}; the fund is not to be the sole largest shareholder (a co-investor holds at least as much).",
        "cond_offtake": "Offtake rights pro rata to the stake for European buyers: {tonnes} per year (expected, over the supply window).",
        "cond_default": "Senior debt defaults in {p} of scenarios: require a debt-service reserve, sponsor completion support or lower gearing before financial close.",
        "cond_subsidy": "{instrument}: premium {ratio} the modelled expected loss or below the OECD minimum premium: the subsidy must be approved explicitly.",
        "cond_staging": "The mine reaches production in only {p} of scenarios: stage the commitment (tranches tied to permits and a bankable feasibility study).",
    },
    "de": {
        "project_memo": "Investitionsvorlage",
        "portfolio_memo": "Portfoliovorlage",
        "executive_summary": "Zusammenfassung",
        "recommendation": "Empfehlung",
        "recommend_invest": "Investieren",
        "recommend_no": "Zu den modellierten Konditionen nicht investieren",
        "no_position_reason": ("Der Optimierer weist diesem Projekt unter den Limits des Fonds nichts zu: "
                               "kein Instrument bringt je Einheit Kapital, Eventualverbindlichkeit und "
                               "Extremrisiko so viel erwarteten Wert wie die stattdessen gewählten Positionen."),
        "conditions": "Auflagen",
        "key_figures": "Kennzahlen",
        "the_project": "Das Projekt",
        "valuation": "Bewertung",
        "market_value": "Marktwert und Zugeständnis",
        "at_policy_rate": "zum Fondssatz",
        "at_market_rate": "zum Marktsatz",
        "market_rate": "Marktsatz",
        "concession": "Zugeständnis",
        "note_market": "Jeder Anspruch wird mit dem Satz bewertet, den eine Gegenpartei ansetzen würde (fundmodel.rates): das Projekt mit dem Vermögenssatz (risikofrei {rf} + Beta x Marktrisikoprämie + Länderrisikoprämie {crp}), das Eigenkapital der Sponsoren mit den Eigenkapitalkosten (gehebeltes Beta). Der Fondssatz von {policy} ist der Fördersatz; Wert zu ihm minus Marktwert ist das Zugeständnis des Fonds.",
        "entry_terms": "Einstiegsbedingungen",
        "entry_kind": "Einstieg",
        "entry_secondary": "bestehende Anteile von den Sponsoren (Zahlung an die Verkäufer)",
        "entry_primary": "neue Anteile in einer Kapitalerhöhung (Zahlung in das Projekt, finanziert Investitionen)",
        "entry_acquisition": "Kauf eines produzierenden Bergwerks zu seinem Preis",
        "entry_discount": "Verhandelter Abschlag auf den Pre-Money-Wert",
        "pre_money": "Pre-Money-Wert des Eigenkapitals (zu Eigenkapitalkosten)",
        "entry_price": "Einstiegspreis",
        "entry_unavailable": "Beteiligung nicht verfügbar",
        "round_size": "Volumen der Kapitalerhöhung",
        "eu_available": "Für europäische Abnehmer verfügbar",
        "secured": "Gesichert",
        "by_equity": "durch Beteiligung",
        "by_loan_guarantee": "durch Garantien",
        "by_price_floor": "durch Preisuntergrenzen",
        "note_supply": "Enthaltene Tonnen pro Jahr, Mittel der nächsten {window} Jahre; alle Instrumente eines Projekts zusammen sichern höchstens seine für europäische Abnehmer verfügbare Produktion (einmal gezählt).",
        "concession_granted": "Gewährtes Zugeständnis",
        "stakes_available": "Zu Marktpreisen erwerbbare Beteiligungen",
        "stakes_available_value": "{k} von {n} (die übrigen haben zu Eigenkapitalkosten keinen positiven Pre-Money-Wert)",
        "position_terms": "Bedingungen der Positionen",
        "risk_drivers": "Risikotreiber",
        "prices": "Preise der Rohstoffe des Projekts",
        "schedule_risk": "Terminrisiko",
        "financing": "Finanzierung",
        "portfolio_effect": "Wirkung auf das Portfolio",
        "stress_results": "Stressszenarien",
        "key_assumptions": "Wesentliche Annahmen und Quellen",
        "run_manifest": "Laufprotokoll",
        "contents": "Inhalt",
        "allocation": "Allokation",
        "risk_return": "Ertrag und Extremrisiko",
        "frontier": "Effizienzkurve",
        "risk_contributions": "Risikobeiträge",
        "concentration": "Konzentration",
        "supply_secured": "Gesicherte Versorgung europäischer Abnehmer",
        "limits": "Limits und bindende Nebenbedingungen",
        "changes": "Änderungen seit dem vorigen Lauf",
        "no_baseline": "Kein Vergleichslauf angegeben (--baseline DIR vergleicht mit einer früheren Ausgabe).",
        "country": "Land",
        "material": "Rohstoff",
        "materials": "Rohstoffe",
        "stage": "Phase",
        "capex": "Anfangsinvestition",
        "capacity": "Erzdurchsatz",
        "mine_life": "Lebensdauer der Mine",
        "offtake": "Abnahme durch europäische Käufer",
        "construction": "Bau",
        "permitting": "Genehmigung",
        "rampup": "Hochlauf",
        "debt": "Vorrangiges Darlehen",
        "first_production": "Produktionsbeginn (P5 / P50 / P95)",
        "prob_production": "Wahrscheinlichkeit der Produktion",
        "equity_npv": "Kapitalwert Eigenkapital",
        "at_policy_rate": "zum Politikzins des Fonds",
        "at_market_rate": "zum Marktzins, {rate}",
        "project_npv": "Kapitalwert Projekt",
        "equity_irr": "Eigenkapitalrendite (IRR)",
        "mean": "Mittelwert",
        "prob_loss": "Verlustwahrscheinlichkeit (Kapitalwert < 0)",
        "prob_total_loss": "Wahrscheinlichkeit des Totalverlusts",
        "prob_default": "Ausfallwahrscheinlichkeit des Darlehens",
        "prob_default_10y": "Ausfall des Darlehens binnen 10 Jahren nach Financial Close (Moody's, "
                            "Projektfinanzierungskredite ohne Rating 1983-2015: 6,7 %)",
        "debt_recovery": "Erlösquote bei Ausfall, Mittelwert (Moody's: rund 80 %, in etwa zwei Dritteln der "
                         "Ausfälle 100 %)",
        "value_above_debt": "Projektwert über der Schuld in {p} der Ausfälle",
        "irr_undefined": "Szenarien ohne definierten IRR",
        "value_lost": "Wertverlust je Risiko (Projektkapitalwert, Mio. EUR)",
        "risk": "Risiko",
        "price_risk": "Preis",
        "political_risk": "Politisch",
        "schedule_risk_short": "Verzögerung und Kostenüberschreitung",
        "std_error": "Standardfehler",
        "driver": "Eingangsgröße",
        "low": "Niedrig",
        "high": "Hoch",
        "swing": "Spanne",
        "instrument": "Instrument",
        "size": "Umfang",
        "capital": "Kapital",
        "contingent": "Eventualverbindlichkeit",
        "expected_pv": "Erwarteter Barwert für den Fonds",
        "cvar_contribution": "CVaR-Beitrag",
        "tonnes_secured": "Gesicherte Tonnen pro Jahr",
        "premium": "Prämie (Barwert)",
        "expected_loss": "Erwarteter Verlust (Barwert)",
        "premium_to_el": "Prämie / erwarteter Verlust",
        "oecd_mpr": "OECD-Mindestprämie (Barwert)",
        "subsidy": "Subvention sichtbar",
        "per_unit": "je Einheit",
        "stress": "Stress",
        "pv": "Erwarteter Barwert",
        "change": "Veränderung",
        "cvar": "CVaR",
        "var": "VaR",
        "item": "Position",
        "value": "Wert",
        "source": "Quelle",
        "limit": "Limit",
        "used": "Genutzt",
        "binding": "Bindend",
        "shadow_price": "Schattenpreis",
        "yes": "ja",
        "no": "nein",
        "target": "Ziel",
        "share": "Anteil",
        "exposure": "Engagement",
        "project": "Projekt",
        "position_none": "Keine Position",
        "budget": "Kapitalbudget",
        "contingent_limit": "Limit für Eventualverbindlichkeiten",
        "cvar_limit": "CVaR-Limit",
        "scenarios": "Szenarien",
        "seed": "Startwert",
        "version": "Version",
        "commit": "Commit",
        "code": "Code",
        "modified": "geändert",
        "assumption_file": "Annahmendatei",
        "sha256": "SHA-256",
        "page": "Seite",
        "of": "von",
        "generated": "Ergebnisse vom",
        "chosen": "gewähltes Portfolio",
        "before": "Vorher",
        "after": "Nachher",
        "prob_of_npv": "Wahrscheinlichkeit",
        "years": "Jahre",
        "never_produces": "produziert nie",
        "not_modelled": "in diesem Lauf nicht modelliert",
        "confidential": "Für den Investitionsausschuss",
        "eu_buyers": "für europäische Abnehmer",
        "price_floor": "Preisuntergrenze mit Abnahme",
        "equity": "Eigenkapitalbeteiligung",
        "loan_guarantee": "Kreditgarantie",
        "political_risk_cover": "Deckung politischer Risiken",
        "mezzanine_loan": "Mezzanine-Darlehen",
        "direct_loan": "Direktdarlehen",
        "share_of": "Anteil an",
        "political_events": "Politische Ereignisse (Anteil der Szenario-Jahre)",
        "valuation_date": "Bewertungsstichtag",
        "assumptions_digest": "Prüfsumme der Annahmen",
        "output_mean": "Produktion (Mittel, Jahre 1-10 / 11-20)",
        "operating_cost": "Betriebskosten",
        "royalty_tax": "Förderabgabe, Ertragsteuer",
        "grade_recovery": "Gehalt, Ausbringen, Vergütung",
        "spot_long_run": "Kassa- / langfristiger Preis",
        "vol_reversion": "Volatilität, Mean Reversion",
        "overrun": "Kostenüberschreitung: Mittel, P(≥ 100 %)",
        "hazards": "jährliche Eintrittswahrscheinlichkeiten (Enteignung / Steuererhöhung / Transfer / Unruhen)",
        "exploration": "Exploration",
        "grace": "tilgungsfrei",
        "size_primary": "{equity} des Eigenkapitals ({round} der Runde)",
        "no_bankable_debt": "keiner: der Basisfall deckt keinen Schuldendienst bei DSCR >= {dscr}x (Bemessung nach Regel)",
        "acquisition": "Kaufpreis",
        "note_se": "\u00b1: Monte-Carlo-Standardfehler der Zahl ({method}), gleiche Einheit; ein 95-%-Konfidenzintervall ist etwa \u00b1 2 Standardfehler.",
        "se_rqmc": "Streuung über {k} unabhängig verwürfelte Sobol-Replikate",
        "se_batch": "Batch-Mittel über {k} Szenariogruppen",
        "note_valuation": "Szenarien ohne definierten IRR: {irr}. Kapitalwerte in EUR zum nominalen Diskontsatz des Fonds, Stichtag {date}.",
        "breakeven": "Break-even-Preis {material} (langfristig)",
        "options": "Kapitalwert fest / mit Optionen (Kapitalkostensatz)",
        "options_value": "{committed} / {options} (Optionswert {value} ± {se})",
        "options_probabilities": "Erschließung / vorübergehende Stilllegung / Aufgabe (mit Optionen)",
        "options_probabilities_value": "{develop} / {closure} / {abandon}",
        "breakeven_value": "{price} USD/t (± {se}; angenommen {shipped} USD/t)",
        "note_breakeven": ("Break-even: der langfristige Preis von {material} (Median des Referenzpreises, in realen "
                           "USD je Tonne des bepreisten Produkts, Geld des Stichtags; Produkt: {product}), bei dem der mittlere Projektkapitalwert zum "
                           "Marktzins ({rate}) null ist; gelöst auf den ersten {n} Szenarien des Laufs mit "
                           "gemeinsamen Zufallszahlen (± Monte-Carlo-Standardfehler), alle übrigen Annahmen und "
                           "die Kreditpolitik des Darlehens wie im Lauf."),
        "breakeven_none": "Kein Break-even: {reason}.",
        "note_parameters_on": ("Parameterunsicherheit ist eingeschaltet: jedes Szenario zieht das langfristige "
                               "Preisniveau und die Mean Reversion von {drawn} aus der geschätzten Kovarianz der "
                               "Preiskalibrierung (Mean Reversion durch Trunkierung positiv), die Bandbreiten der "
                               "Kapitalwerte enthalten also den Schätzfehler dieser Parameter. Gesetzte "
                               "Preisparameter ({fixed}) haben keine Schätzung und bleiben bei ihren Annahmen; "
                               "der Break-even grenzt sie ein."),
        "note_parameters_off": ("Parameterunsicherheit ist ausgeschaltet: jedes Szenario nutzt die Preisparameter "
                                "aus markets.yaml (fund.yaml simulation.parameter_uncertainty)."),
        "note_attribution": ("Jedes Risiko auf denselben {n} Szenarien abgeschaltet (gemeinsame Zufallszahlen); Balken "
                             "zeigen ±1,96 Standardfehler. Ein negativer Wert bedeutet, dass das Risiko im Mittel Wert "
                             "schafft (konvexe Auszahlungen)."),
        "note_tornado": "Mittlerer Eigenkapital-Kapitalwert, wenn eine Eingangsgröße auf ihren niedrigen bzw. hohen Wert gesetzt wird, alles andere gleich (gemeinsame Zufallszahlen).",
        "note_unit": ("Eine Einheit: 100 % des Eigenkapitals (Deckung), 100 % des vorrangigen Darlehens (Garantie), "
                      "100 % der für die EU verfügbaren Produktion (Preisuntergrenze). Eine Prämie unter dem "
                      "modellierten erwarteten Verlust oder der OECD-Mindestprämie ist eine Subvention und wird markiert."),
        "note_size": ("Umfang: Anteil am Eigenkapital (Beteiligung; bei einer Kapitalerhöhung mit dem Anteil an der Runde), am vorrangigen Darlehen (Garantie), am versicherten "
                      "privaten Eigenkapital (Deckung) oder an der für die EU verfügbaren Produktion (Preisuntergrenze). "
                      "Kapital ist der erwartete Barwert der eingesetzten Mittel; die Eventualverbindlichkeit der "
                      "höchste Betrag, den der Fonds zahlen muss."),
        "note_euler": "Die Euler-Beiträge summieren sich zum CVaR des Portfolios; ein negativer Beitrag sichert das Extremrisiko ab.",
        "note_sample": ("Großer Lauf: CVaR-Limit und Effizienzkurven beruhen auf den ersten {solved} von {evaluated} "
                        "Szenarien (CVaR dort {cvar_sample}); Erwartungswerte und die übrigen Limits auf allen Szenarien. "
                        "Über alle Szenarien beträgt der CVaR des gewählten Portfolios {cvar_all} (Abweichung {gap}); "
                        "Limit über alle Szenarien eingehalten: {met}."),
        "note_shadow": "Schattenpreis: zusätzlicher erwarteter Barwert (Mio. EUR) je 1 Mio. EUR mehr Limit.",
        "reproduce": "Reproduzieren: Commit {commit} auschecken, die Annahmendateien mit diesen Prüfsummen wiederherstellen und ausführen",
        "no_change": "Keine Änderung.",
        "in_portfolio": "Im Portfolio",
        "supply_frontier": "Effizienzkurve (gewichtete Versorgung)",
        "weighted_supply": "Gewichtete Versorgung",
        "objective": "Ziel",
        "pos_equity": "{label}: {size} (Kapital {capital})",
        "pos_guarantee": "{label}: {size} des vorrangigen Darlehens (Eventualverbindlichkeit {contingent})",
        "pos_cover": "{label}: {size} des privaten Eigenkapitals (Eventualverbindlichkeit {contingent})",
        "pos_floor": "{label} ({material}): {size} der für die EU verfügbaren Produktion zu USD {floor}/t für {tenor} Jahre (Eventualverbindlichkeit {contingent})",
        "cond_equity": "Beteiligung von {share} innerhalb der Obergrenze von {cap}; der Fonds darf nicht alleiniger größter Anteilseigner sein (ein Mitinvestor hält mindestens ebenso viel).",
        "cond_offtake": "Abnahmerechte anteilig zur Beteiligung für europäische Käufer: {tonnes} pro Jahr (erwartet, über das Versorgungsfenster).",
        "cond_default": "Das vorrangige Darlehen fällt in {p} der Szenarien aus: Schuldendienstreserve, Fertigstellungsgarantie der Sponsoren oder geringere Verschuldung vor dem Financial Close verlangen.",
        "cond_subsidy": "{instrument}: Prämie {ratio} des modellierten erwarteten Verlusts oder unter der OECD-Mindestprämie: die Subvention ist ausdrücklich zu genehmigen.",
        "cond_staging": "Die Mine erreicht nur in {p} der Szenarien die Produktion: Zusage stufen (Tranchen gebunden an Genehmigungen und eine bankfähige Machbarkeitsstudie).",
    },
}

STAGES = {
    "en": {"exploration": "exploration", "feasibility": "feasibility", "construction": "construction",
           "production": "production"},
    "de": {"exploration": "Exploration", "feasibility": "Machbarkeitsstudie", "construction": "Bau",
           "production": "Produktion"},
}


class Formatter:
    """Number formats with units for one language.

    Parameters
    ----------
    lang : {"en", "de"}
        English uses ``1,234.5``; German ``1.234,5``.

    Examples
    --------
    >>> Formatter("en").meur(1234.56)
    'EUR 1,234.6 m'
    >>> Formatter("de").meur(1234.56)
    '1.234,6 Mio. EUR'
    >>> Formatter("en").pct(0.2346)
    '23.5 %'
    >>> Formatter("en").num(None)
    'n/a'
    """

    def __init__(self, lang: str = "en"):
        if lang not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
        self.lang = lang

    def num(self, value, decimals: int = 1) -> str:
        """A number with thousands separators; ``n/a`` for None or NaN."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        text = f"{value:,.{decimals}f}"
        if text.startswith("-") and float(text.replace(",", "")) == 0.0:
            text = text[1:]  # no "-0.0"
        if self.lang == "de":
            text = text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
        return text.replace("-", "\u2212")  # a real minus sign

    def meur(self, value, decimals: int = 1) -> str:
        """EUR millions, e.g. ``EUR 1,234.6 m``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"EUR {self.num(value, decimals)} m" if self.lang == "en" else f"{self.num(value, decimals)} Mio. EUR"

    def musd(self, value, decimals: int = 0) -> str:
        """USD millions."""
        if value is None:
            return "n/a"
        return f"USD {self.num(value, decimals)} m" if self.lang == "en" else f"{self.num(value, decimals)} Mio. USD"

    def pct(self, value, decimals: int = 1) -> str:
        """A fraction as per cent, e.g. ``23.5 %``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"{self.num(100.0 * value, decimals)} %"

    def tonnes(self, value, decimals: int = 0) -> str:
        """Tonnes, e.g. ``1,234 t``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"{self.num(value, decimals)} t"

    def year(self, value) -> str:
        """A calendar year without separators."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"{int(round(value))}"

    def ratio(self, value, decimals: int = 2) -> str:
        """A multiple, e.g. ``1.25×``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"{self.num(value, decimals)}\u00d7"
