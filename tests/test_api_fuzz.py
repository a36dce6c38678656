"""Property tests: whatever is posted to POST /api/v1/patients, never a 500, and nothing is
written when the answer is an error."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.api.schemas import EnrolSchema
from tests.api_helpers import bearer, enrol_body, row_counts

FIELDS = sorted(EnrolSchema().fields)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
# Values that get past the type checks, so the services' rules and the database are exercised too.
hostile = st.sampled_from(["", " ", "\x00", "a\ud800", "\u202e", "x" * 101, "%", "' OR 1=1 --", "Europe",
                           "../../etc/passwd", "NaN", "1e309", "-0", "\n"])
plausible = st.one_of(
    hostile,
    st.dates().map(lambda d: d.isoformat()),
    st.integers(min_value=-2, max_value=400),
    st.sampled_from(["A", "B", "S1", "S2", "S3", "hospital", "community", "sms", "voice", "fr", "en",
                     "Europe/Paris", "0612345678", "+33 1 23 45 67 89", "1000 mg", "185077511600123"]),
)
mutations = st.fixed_dictionaries({
    "start_valid": st.sampled_from([True, True, True, False]),
    "drop": st.sets(st.sampled_from(FIELDS), max_size=3),
    "set": st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), plausible | json_values, max_size=3),
})

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture()
def nurse_headers(circuit, db):
    return bearer(db, circuit.nurse)


def _check(client, db, **request):
    before = row_counts(db)
    resp = client.post("/api/v1/patients", **request)
    assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
    body = resp.get_json()
    assert isinstance(body, dict)
    if resp.status_code >= 400:
        assert body["error"]["code"] == resp.status_code
        assert row_counts(db) == before
    else:
        assert resp.status_code == 201


@FUZZ
@given(mutation=mutations)
@example(mutation={"start_valid": True, "drop": set(), "set": {"mrn": "a\ud800"}})
@example(mutation={"start_valid": True, "drop": set(), "set": {"last_name": "a\x00"}})
@example(mutation={"start_valid": True, "drop": {"birth_date"}, "set": {}})  # dry run hits NOT NULL
def test_any_json_body_is_answered_without_500(circuit, client, db, nurse_headers, mutation):
    body = enrol_body(circuit) if mutation["start_valid"] else {}
    for key in mutation["drop"]:
        body.pop(key, None)
    body.update(mutation["set"])
    raw = json.dumps(body)  # lone surrogates are escaped as \\ud800, as a client may send them
    _check(client, db, data=raw, content_type="application/json", headers=nurse_headers)


@FUZZ
@given(raw=st.binary(max_size=600) | st.text(max_size=300).map(str.encode),
       content_type=st.sampled_from([None, "application/json", "application/json; charset=utf-8",
                                     "application/merge-patch+json", "text/plain",
                                     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]))
def test_any_bytes_are_answered_without_500(circuit, client, db, nurse_headers, raw, content_type):
    _check(client, db, data=raw, content_type=content_type, headers=nurse_headers)
