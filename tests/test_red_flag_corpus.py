"""Patients' texts as they really write them, through the signed webhook and the process-inbound job.

Every red text must give a red alert and the safety reply; every orange text at least an orange
alert or a nurse call task; the false-red rate on the "none" texts is reported (and bounded, so a
change that makes the scan cry wolf is seen). The corpus is data: tests/corpus/*.csv (format in
tests/corpus/README.md). Another corpus in the same format runs the same way:

    ONCOLINK_CORPUS=/path/to/texts.csv make test PYTEST_ARGS="tests/test_red_flag_corpus.py -s"
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import corpus_runner as runner
from tests import factories

CORPUS_DIR = Path(__file__).with_name("corpus")
MAX_FALSE_RED = 0.10  # of the "none" texts; the measured rate is in docs/clinical-safety.md


def _corpora() -> list[Path]:
    paths = sorted(CORPUS_DIR.glob("*.csv"))
    extra = os.environ.get("ONCOLINK_CORPUS")
    if extra:
        paths += [Path(p) for p in extra.split(os.pathsep) if p]
    return paths


@pytest.fixture()
def corpus_app(app, use_settings_for_corpus):
    return app


@pytest.fixture()
def use_settings_for_corpus(app):
    saved = {key: app.config.get(key) for key in runner.SETTINGS}
    app.config.update(runner.SETTINGS)
    yield
    app.config.update(saved)


@pytest.mark.slow
@pytest.mark.parametrize("path", _corpora(), ids=lambda p: p.name)
def test_every_red_text_reaches_the_on_call_team_and_gets_the_safety_reply(corpus_app, db, client, path):
    cases = runner.load([path])
    assert len(cases) >= 200 or path.parent != CORPUS_DIR, "the corpus must keep at least 200 texts"
    site = factories.create_site(code="CRP", hospital_phone="+33478000000")
    db.session.commit()
    report = runner.Report([runner.run_case(client, site, case) for case in cases])
    print("\n" + report.summary())
    assert [r.case.id for r in report.of("red") if not r.passed] == [], report.summary()
    assert [r.case.id for r in report.of("orange") if not r.passed] == [], report.summary()
    assert report.false_red_rate <= MAX_FALSE_RED, report.summary()
