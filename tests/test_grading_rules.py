"""Each default grading rule of CLINICAL.md, in both directions, as data."""
from __future__ import annotations

import pytest

from app.core.errors import ValidationFailed
from app.triage import grading
from app.triage.grading import DEFAULT_RULES, GradingRule, evaluate, pick_rule


def _rules():
    return [GradingRule(id=i, version=1, item_code=r["item_code"], drug_inn=r.get("drug_inn"), site_id=None,
                        bands=r["bands"], worsening_severity=r.get("worsening_severity")) for i, r in
            enumerate(DEFAULT_RULES, 1)]


def outcome(item, value, drugs=("imatinib",), previous=None, site_id=1, rules=None):
    rule = pick_rule(rules or _rules(), item, drugs, site_id)
    return evaluate(rule, item, value, previous)


@pytest.mark.parametrize("value,severity", [(38.0, "red"), (39.2, "red"), (True, "red"), (37.9, None),
                                            (36.8, None), (False, None)])
def test_fever_from_38_is_red_on_any_drug(value, severity):
    for drug in ("imatinib", "capecitabine", "palbociclib"):
        assert outcome("temperature", value, (drug,)).severity == severity


@pytest.mark.parametrize("item", ["bleeding", "breathlessness", "vomiting"])
def test_bleeding_chest_pain_and_vomiting_the_drug_are_red_and_no_is_nothing(item):
    assert outcome(item, True).severity == "red"
    assert outcome(item, False).severity is None


def test_wanting_to_speak_now_is_red_and_this_week_is_a_call_task_not_an_alert():
    assert outcome("wants_call", 2).severity == "red"
    assert outcome("wants_call", 1).severity is None
    assert outcome("wants_call", 0).severity is None


@pytest.mark.parametrize("item", ["nausea", "mouth_sores", "hand_foot", "rash", "fatigue"])
def test_symptom_scales_grade_3_red_2_orange_1_yellow_0_nothing(item):
    assert [outcome(item, v).severity for v in (3, 2, 1, 0)] == ["red", "orange", "yellow", None]
    assert [outcome(item, v).grade for v in (3, 2, 1, 0)] == [3, 2, 1, 0]


@pytest.mark.parametrize("stools, grade, severity", [
    (0, 0, None), (1, 1, "yellow"), (3, 1, "yellow"), (4, 2, "orange"), (6, 2, "orange"), (7, 3, "red"),
    (12, 3, "red"), ({"scale": 1}, 1, "yellow"), ({"scale": 2}, 2, "orange"), ({"scale": 3}, 3, "red"),
])
def test_diarrhoea_is_graded_on_stools_a_day_above_usual_as_ctcae_does(stools, grade, severity):
    """PRO-CTCAE anchoring: < 4 a day above usual grade 1, 4-6 grade 2, >= 7 grade 3; the fallback
    words ("un peu", "moyennement", "beaucoup") are read as that grade."""
    result = outcome("diarrhoea", stools, ("capecitabine",))
    assert (result.grade, result.severity) == (grade, severity)


@pytest.mark.parametrize("item, grade_2", [("diarrhoea", 5), ("hand_foot", 2), ("mouth_sores", 2)])
def test_capecitabine_grade_2_means_pause_until_the_nurse_calls(item, grade_2):
    capecitabine = outcome(item, grade_2, ("capecitabine",))
    assert capecitabine.severity == "orange" and capecitabine.instruction == "pause_until_call"
    assert outcome(item, grade_2, ("imatinib",)).instruction is None
    assert outcome(item, 1, ("capecitabine",)).instruction is None


def test_capecitabine_fatigue_grade_2_has_no_pause_instruction():
    assert outcome("fatigue", 2, ("capecitabine",)).instruction is None


@pytest.mark.parametrize("bp,severity", [({"systolic": 165, "diastolic": 85}, "red"),
                                         ({"systolic": 130, "diastolic": 102}, "red"),
                                         ({"systolic": 150, "diastolic": 85}, "orange"),
                                         ({"systolic": 125, "diastolic": 92}, "orange"),
                                         ({"systolic": 135, "diastolic": 85}, None)])
def test_blood_pressure_grades(bp, severity):
    assert outcome("blood_pressure", bp, ("abiraterone",)).severity == severity


def test_dose_during_the_break_is_an_orange_finding():
    assert outcome("dose_in_break", True, ("capecitabine",)).severity == "orange"
    assert outcome("dose_in_break", False, ("capecitabine",)).severity is None


def test_worsening_by_one_grade_counts_even_below_the_bands():
    worse = outcome("fatigue", 1, previous=0)
    assert worse.severity == "yellow" and worse.worsened
    same = outcome("fatigue", 1, previous=1)
    assert same.severity == "yellow" and not same.worsened
    better = outcome("fatigue", 0, previous=1)
    assert better.severity is None and not better.worsened
    # Worsening never lowers a more severe band.
    assert outcome("diarrhoea", 8, previous=2).severity == "red"


def test_worsening_raises_a_silent_item_to_yellow():
    rules = _rules()
    quiet = GradingRule(id=99, version=2, item_code="fatigue", drug_inn=None, site_id=1,
                        bands=[{"when": {"gte": 3}, "grade": 3, "severity": "red"},
                               {"when": {"gte": 0}, "grade": None, "severity": "info"}],
                        worsening_severity="yellow")
    result = evaluate(quiet, "fatigue", 2, previous_grade=None)
    assert result.severity == "info"
    assert outcome("fatigue", 2, rules=rules + [quiet]).rule_id == 99  # the site's own rule wins


def test_most_specific_rule_wins():
    rules = _rules()
    site_rule = GradingRule(id=100, version=1, item_code="diarrhoea", drug_inn="capecitabine", site_id=7,
                            bands=[{"when": {"gte": 1}, "grade": 1, "severity": "orange"}])
    rules.append(site_rule)
    assert outcome("diarrhoea", 1, ("capecitabine",), site_id=7, rules=rules).rule_id == 100
    assert outcome("diarrhoea", 1, ("capecitabine",), site_id=8, rules=rules).severity == "yellow"


def test_bands_are_validated():
    with pytest.raises(ValidationFailed) as exc:
        grading.validate_bands([{"when": {"gte": 1}, "severity": "purple"}, {"grade": 2}], None)
    assert len(exc.value.errors["bands"]) == 2
    with pytest.raises(ValidationFailed):
        grading.validate_bands("not a list", None)


def test_saving_a_rule_writes_a_new_version_and_keeps_the_old(circuit, db):
    grading.seed_grading_rules()
    db.session.commit()
    new = grading.save_new_version(item_code="fatigue", drug_inn=None, site_id=None,
                                   bands=[{"when": {"gte": 2}, "grade": 2, "severity": "orange"}],
                                   worsening_severity="yellow", note="site review", actor_id=circuit.admin.id)
    db.session.commit()
    versions = db.session.query(GradingRule).filter_by(item_code="fatigue", drug_inn=None).order_by("version").all()
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].superseded_at is not None and versions[1].superseded_at is None
    result = grading.evaluate_answer(item_code="fatigue", value=2, drug_inns=["imatinib"], site_id=circuit.site.id,
                                     previous_grade=None)
    assert (result.rule_id, result.rule_version) == (new.id, 2)


def test_admin_tries_a_rule_on_samples_before_saving(circuit, login, csrf_of, db):
    grading.seed_grading_rules()
    db.session.commit()
    client = login(circuit.admin)
    base = db.session.query(GradingRule).filter_by(item_code="fatigue", drug_inn=None).one()
    page = client.get(f"/admin/rules/edit?from={base.id}").get_data(as_text=True)
    assert "grade_3" in page
    form = {"csrf_token": csrf_of(page), "item_code": "fatigue", "drug_inn": "", "site_id": str(circuit.site.id),
            "bands": '[{"when": {"gte": 2}, "grade": 2, "severity": "orange"}]', "worsening_severity": "yellow",
            "samples": "2\n1 ; 0\n0", "note": "", "action": "try"}
    html = client.post("/admin/rules/edit", data=form).get_data(as_text=True)
    assert 'id="try-results"' in html and "orange" in html and "worse" in html
    assert db.session.query(GradingRule).count() == len(DEFAULT_RULES)  # trying saves nothing
    form.update(action="save", bands="[not json", note="local review")
    resp = client.post("/admin/rules/edit", data=form)
    assert resp.status_code == 422 and 'data-field="bands"' in resp.get_data(as_text=True)
    form.update(bands='[{"when": {"gte": 2}, "grade": 2, "severity": "orange"}]', note="")
    assert 'data-field="note"' in client.post("/admin/rules/edit", data=form).get_data(as_text=True)
    form.update(note="local review")
    assert client.post("/admin/rules/edit", data=form).status_code == 302
    site_rule = db.session.query(GradingRule).filter_by(item_code="fatigue", site_id=circuit.site.id).one()
    assert site_rule.version == 1 and site_rule.created_by_id == circuit.admin.id
    assert login(circuit.nurse).get("/admin/rules/").status_code == 403
