"""Marshmallow schemas of the API: what clients send (input) and what they get back (output).

Input schemas only check JSON types and sizes; the services check the rules
(formats, uniqueness, consent, dates) so the pages and the API agree. Output
schemas list their fields explicitly: nothing else (password hashes, token
digests) can leak.
"""
from __future__ import annotations

from marshmallow import fields as ma

from app.care.models import Channel, PatientStatus
from app.pathways.models import LeadTeam, Pathway, PrescriptionEventKind, Sequence

from .fields import Bool, Choice, Date, Id, Int, StrictSchema, Text

# ---------------------------------------------------------------- input


class PatientUpdateSchema(StrictSchema):
    """Identity, contact, check-in preferences and consent; every field optional (PATCH)."""

    mrn = Text(40, metadata={"description": "Hospital number, unique per site."})
    ins = Text(22, allow_none=True, metadata={"description": "French INS (NIR), 15 characters."})
    first_name = Text(100)
    last_name = Text(100)
    birth_date = Date()
    phone = Text(30, metadata={"description": "Any usual form; stored as E.164. Mobile for SMS."})
    shared_phone_confirmed = Bool(metadata={"description": "True to confirm a phone shared with another patient."})
    language = Text(2, metadata={"description": "fr or en."})
    channel = Text(10, metadata={"description": "sms or voice."})
    checkin_weekday = Int(minimum=0, maximum=6, metadata={"description": "0 = Monday ... 6 = Sunday."})
    checkin_hour = Int(minimum=0, maximum=23, metadata={"description": "Hour in the patient's time zone."})
    timezone = Text(64, metadata={"description": "IANA time zone, e.g. Europe/Paris."})
    consent_given = Bool()
    consent_date = Date(allow_none=True)
    status = Text(20, metadata={"description": "active, paused, hospitalised or ended."})


class PrescriptionInputSchema(StrictSchema):
    """A prescription of a catalogue drug; cycle values default to the drug's."""

    drug_id = Id(required=True)
    dose = Text(80, required=True, metadata={"description": "As prescribed, e.g. 1000 mg."})
    frequency_per_day = Int(minimum=1, maximum=6, allow_none=True)
    days_on = Int(minimum=1, maximum=366, allow_none=True)
    days_off = Int(minimum=0, maximum=366, allow_none=True)
    start_date = Date(required=True)
    end_date = Date(allow_none=True)
    prescriber_id = Id(required=True, metadata={"description": "An oncologist of the patient's site."})


class EnrolSchema(PrescriptionInputSchema):
    """Inclusion: identity and consent, pathway, and the first prescription in one request."""

    mrn = Text(40, required=True)
    ins = Text(22, allow_none=True)
    first_name = Text(100, required=True)
    last_name = Text(100, required=True)
    birth_date = Date(required=True)
    phone = Text(30, required=True)
    shared_phone_confirmed = Bool(metadata={"description": "True to confirm a phone shared with another patient."})
    language = Text(2)
    channel = Text(10)
    checkin_weekday = Int(minimum=0, maximum=6)
    checkin_hour = Int(minimum=0, maximum=23)
    timezone = Text(64)
    consent_given = Bool(required=True)
    consent_date = Date(allow_none=True)
    pathway = Text(1, required=True, metadata={"description": "A (community pharmacy) or B (hospital)."})
    sequence = Text(2, required=True, metadata={"description": "S1, S2 or S3."})
    lead_team = Text(12, required=True, metadata={"description": "hospital or community."})


class CareTeamAddSchema(StrictSchema):
    professional_id = Id(required=True)
    is_lead = Bool(load_default=False)
    start_date = Date(required=True)


class PrescriptionEventInputSchema(StrictSchema):
    kind = Choice(list(PrescriptionEventKind), required=True)
    effective_date = Date(required=True)
    reason = Text(500, required=True, multiline=True)
    new_dose = Text(80, allow_none=True, metadata={"description": "Required for a dose change."})


class EnrolmentChangeSchema(StrictSchema):
    """Change pathway, sequence or lead team; always say why."""

    reason = Text(500, required=True, multiline=True)
    pathway = Choice(list(Pathway))
    sequence = Choice(list(Sequence))
    lead_team = Choice(list(LeadTeam))
    effective_date = Date(allow_none=True, metadata={"description": "Start of a new sequence (today)."})


class PatientQuerySchema(StrictSchema):
    q = Text(100, metadata={"description": "Start of a name, or an exact MRN."})
    sequence = Choice(list(Sequence))
    status = Choice(list(PatientStatus))
    lead_team = Choice(list(LeadTeam))
    drug_id = Id(metadata={"description": "Patients currently prescribed this drug."})
    page = Int(minimum=1, maximum=100_000, load_default=1)
    per_page = Int(minimum=1, maximum=100)


# --------------------------------------------------------------- output


class SiteSchema(StrictSchema):
    id = ma.Integer()
    code = ma.String()
    name = ma.String()


class ProfessionalSummarySchema(StrictSchema):
    id = ma.Integer()
    first_name = ma.String()
    last_name = ma.String()
    role = ma.String()


class EnrolmentEventSchema(StrictSchema):
    id = ma.Integer()
    kind = ma.String()
    from_value = ma.String(allow_none=True)
    to_value = ma.String(allow_none=True)
    reason = ma.String()
    actor_id = ma.Integer(allow_none=True)
    at = ma.DateTime()


class EnrolmentSchema(StrictSchema):
    id = ma.Integer()
    pathway = ma.String(metadata={"enum": [p.value for p in Pathway]})
    sequence = ma.String(metadata={"enum": [s.value for s in Sequence]})
    lead_team = ma.String(metadata={"enum": [t.value for t in LeadTeam]})
    status = ma.String()
    started_on = ma.Date()
    sequence_started_on = ma.Date()
    ended_on = ma.Date(allow_none=True)
    end_reason = ma.String(allow_none=True)
    events = ma.List(ma.Nested(EnrolmentEventSchema))


class PatientSchema(StrictSchema):
    id = ma.Integer()
    site = ma.Nested(SiteSchema)
    mrn = ma.String()
    ins = ma.String(allow_none=True)
    first_name = ma.String()
    last_name = ma.String()
    birth_date = ma.Date()
    phone = ma.String(metadata={"description": "E.164."})
    language = ma.String()
    channel = ma.String(metadata={"enum": [c.value for c in Channel]})
    checkin_weekday = ma.Integer()
    checkin_hour = ma.Integer()
    timezone = ma.String()
    consent_given = ma.Boolean()
    consent_date = ma.Date(allow_none=True)
    status = ma.String(metadata={"enum": [s.value for s in PatientStatus]})
    opted_out_at = ma.DateTime(allow_none=True)
    created_at = ma.DateTime()
    updated_at = ma.DateTime()


class PatientDetailSchema(PatientSchema):
    enrolment = ma.Nested(EnrolmentSchema, allow_none=True,
                              metadata={"description": "The active enrolment, if any."})


class PatientRowSchema(StrictSchema):
    id = ma.Integer(attribute="patient.id")
    mrn = ma.String(attribute="patient.mrn")
    first_name = ma.String(attribute="patient.first_name")
    last_name = ma.String(attribute="patient.last_name")
    birth_date = ma.Date(attribute="patient.birth_date")
    status = ma.String(attribute="patient.status")
    pathway = ma.String(allow_none=True)
    sequence = ma.String(allow_none=True)
    lead_team = ma.String(allow_none=True)
    drug = ma.String(allow_none=True, metadata={"description": "INN of the current drug."})


class PatientPageSchema(StrictSchema):
    items = ma.List(ma.Nested(PatientRowSchema), attribute="rows")
    total = ma.Integer()
    page = ma.Integer()
    per_page = ma.Integer()
    pages = ma.Integer()


class CareTeamMemberSchema(StrictSchema):
    id = ma.Integer()
    professional = ma.Nested(ProfessionalSummarySchema)
    role = ma.String()
    is_lead = ma.Boolean()
    start_date = ma.Date()
    end_date = ma.Date(allow_none=True)


class CareTeamSchema(StrictSchema):
    items = ma.List(ma.Nested(CareTeamMemberSchema))


class PrescriptionEventSchema(StrictSchema):
    id = ma.Integer()
    kind = ma.String(metadata={"enum": [k.value for k in PrescriptionEventKind]})
    effective_date = ma.Date()
    new_dose = ma.String(allow_none=True)
    reason = ma.String()
    recorded_by_id = ma.Integer()
    recorded_at = ma.DateTime()


class DrugSummarySchema(StrictSchema):
    id = ma.Integer()
    inn = ma.String(metadata={"description": "International non-proprietary name."})
    drug_class = ma.String()


class DrugSchema(DrugSummarySchema):
    default_dose = ma.String()
    default_frequency_per_day = ma.Integer()
    default_days_on = ma.Integer()
    default_days_off = ma.Integer()
    monitored_symptoms = ma.List(ma.String())
    hospital_only = ma.Boolean()
    notes = ma.String(allow_none=True)


class DrugListSchema(StrictSchema):
    items = ma.List(ma.Nested(DrugSchema))


class PrescriptionSchema(StrictSchema):
    id = ma.Integer()
    drug = ma.Nested(DrugSummarySchema)
    dose = ma.String()
    frequency_per_day = ma.Integer()
    days_on = ma.Integer()
    days_off = ma.Integer()
    start_date = ma.Date()
    end_date = ma.Date(allow_none=True)
    prescriber = ma.Nested(ProfessionalSummarySchema)
    recorded_by_id = ma.Integer(allow_none=True)
    events = ma.List(ma.Nested(PrescriptionEventSchema))


class PrescriptionListSchema(StrictSchema):
    items = ma.List(ma.Nested(PrescriptionSchema))


class ErrorBodySchema(StrictSchema):
    code = ma.Integer()
    message = ma.String()
    fields = ma.Dict(keys=ma.String(), values=ma.List(ma.String()),
                         metadata={"description": "Messages per field of the request, when it names them."})


class ErrorSchema(StrictSchema):
    error = ma.Nested(ErrorBodySchema)
