"""Which adherence findings a patient's measures give (pure), with the thresholds as settings.

Thresholds are site data in spirit (CLINICAL.md): they come from the configuration
(``ADHERENCE_*``), never from constants here.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PDC_LOW = "adherence_pdc_low"
PDC_WATCH = "adherence_pdc_watch"
SOURCES_DISAGREE = "adherence_sources_disagree"
ABOVE_PRESCRIPTION = "adherence_above_prescription"
REASON_CODES = (PDC_LOW, PDC_WATCH, SOURCES_DISAGREE, ABOVE_PRESCRIPTION)
# Doses taken during the break are raised by the check-in engine (``dose_during_off_week``) at
# the answer: counted and shown here, never raised twice.


@dataclass(frozen=True)
class Settings:
    pdc_alert: float = 0.80
    pdc_watch: Mapping[str, float] = field(default_factory=lambda: {"imatinib": 0.90})
    alert_window: str = "90"
    min_needed_days: int = 14
    self_report_agree: float = 0.95
    early_refill_fraction: float = 0.20
    late_refill_grace_days: int = 3
    oversupply_factor: float = 2.0
    first_answer_lookback_days: int = 7
    alert_cooldown_days: int = 14

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            pdc_alert=config.get("ADHERENCE_PDC_ALERT", 0.80),
            pdc_watch=dict(config.get("ADHERENCE_PDC_WATCH", {"imatinib": 0.90})),
            alert_window=str(config.get("ADHERENCE_ALERT_WINDOW", "90")),
            min_needed_days=config.get("ADHERENCE_MIN_NEEDED_DAYS", 14),
            self_report_agree=config.get("ADHERENCE_SELF_REPORT_AGREE", 0.95),
            early_refill_fraction=config.get("ADHERENCE_EARLY_REFILL_FRACTION", 0.20),
            late_refill_grace_days=config.get("ADHERENCE_LATE_REFILL_GRACE_DAYS", 3),
            oversupply_factor=config.get("ADHERENCE_OVERSUPPLY_FACTOR", 2.0),
            first_answer_lookback_days=config.get("ADHERENCE_FIRST_ANSWER_LOOKBACK_DAYS", 7),
            alert_cooldown_days=config.get("ADHERENCE_ALERT_COOLDOWN_DAYS", 14),
        )


@dataclass(frozen=True)
class DrugMeasure:
    """One drug's dispensing measures on the alert window."""

    inn: str
    pdc: float | None
    needed_days: int
    stock_days: float = 0.0
    last_supply_days: float = 0.0
    ongoing: bool = True


@dataclass(frozen=True)
class Finding:
    reason_code: str
    severity: str
    summary: str  # English, for the alert queue (no patient identity in it)
    detail: dict = field(default_factory=dict)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def findings(drugs: list[DrugMeasure], self_report: float | None, settings: Settings) -> list[Finding]:
    """Findings, at most one per reason code (the worst drug names it)."""
    out: dict[str, Finding] = {}
    measured = [d for d in drugs if d.pdc is not None and d.needed_days >= settings.min_needed_days]
    for d in sorted(measured, key=lambda d: d.pdc):
        detail = {"drug": d.inn, "pdc": round(d.pdc, 4), "needed_days": d.needed_days,
                  "window": settings.alert_window}
        if d.pdc < settings.pdc_alert and PDC_LOW not in out:
            out[PDC_LOW] = Finding(PDC_LOW, "orange", (
                f"Adherence: {d.inn} PDC {_pct(d.pdc)} over {settings.alert_window} days, "
                f"below {_pct(settings.pdc_alert)}"), detail)
        watch = settings.pdc_watch.get(d.inn)
        if watch is not None and settings.pdc_alert <= d.pdc < watch and PDC_WATCH not in out:
            out[PDC_WATCH] = Finding(PDC_WATCH, "yellow", (
                f"Adherence to watch: {d.inn} PDC {_pct(d.pdc)} over {settings.alert_window} days, "
                f"below {_pct(watch)}"), detail)
    worst = min(measured, key=lambda d: d.pdc, default=None)
    if (worst is not None and self_report is not None and self_report >= settings.self_report_agree
            and worst.pdc < settings.pdc_alert):
        out[SOURCES_DISAGREE] = Finding(SOURCES_DISAGREE, "yellow", (
            f"Adherence sources disagree: self-report {_pct(self_report)} but {worst.inn} "
            f"PDC {_pct(worst.pdc)}"),
            {"drug": worst.inn, "pdc": round(worst.pdc, 4), "self_report": round(self_report, 4),
             "window": settings.alert_window})
    for d in drugs:
        if (d.ongoing and d.last_supply_days > 0
                and d.stock_days > settings.oversupply_factor * d.last_supply_days):
            out[ABOVE_PRESCRIPTION] = Finding(ABOVE_PRESCRIPTION, "orange", (
                f"Dispensed above the prescription: {d.inn}, {d.stock_days:.0f} days of supply should "
                f"be left (intake above the prescribed dose, or stockpiling)"),
                {"drug": d.inn, "stock_days": round(d.stock_days, 1), "last_supply_days": d.last_supply_days})
            break
    return list(out.values())
