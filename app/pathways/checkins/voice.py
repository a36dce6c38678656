"""The check-in by automated call: TwiML views, keypad answers, retries.

The call's URL carries the check-in id and a signed token (itsdangerous), so it cannot be
guessed; every view also requires Twilio's signature. One ``<Gather>`` per item: 1 yes / 2 no,
0-3 for scales, a count then #, the temperature in 3 digits (385 = 38.5). Silence: the question
is asked once more, then the call moves on; a call where no key was ever pressed is taken for an
answering machine (nothing is skipped, the check-in stays open, one more call later). Blood
pressure is not keyed in: the call asks for it by SMS, and the SMS conversation takes it.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from app.care.models import Patient
from app.core.time import utcnow
from app.extensions import csrf, db
from app.notifications.outbox import enqueue_sms
from app.notifications.signals import message_status_changed
from app.notifications.webhooks import require_twilio_signature

from . import templates as t
from .engine import REASK, UNPARSED, current_item, skip_item, take_answer
from .models import (
    LATE_STATUSES,
    OPEN_STATUSES,
    AnswerSource,
    AnswerType,
    CheckIn,
    QuestionnaireItem,
)
from app.triage.parsing import TEMPERATURE_RANGE

from .start import checkin_ref, schedule_call_retry, sharers

bp = Blueprint("checkin_voice", __name__, url_prefix="/webhooks/twilio/voice")
csrf.exempt(bp)

LANGUAGES = {"fr": "fr-FR", "en": "en-GB"}
DIGITS = {AnswerType.COUNT: 2, AnswerType.STOOLS: 2, AnswerType.TEMPERATURE: 3}  # others: one key
UNANSWERED_CALL = frozenset({"no-answer", "busy", "failed", "canceled"})


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="oncolink-checkin-voice")


def voice_token(checkin_id: int) -> str:
    return _serializer().dumps(checkin_id)


def voice_path(checkin_id: int) -> str:
    return f"{bp.url_prefix}/{checkin_id}/{voice_token(checkin_id)}"


def parse_keypad(item: QuestionnaireItem, digits: str) -> tuple[object, bool]:
    """Keys pressed -> (value, ok), with the same values as the SMS parser."""
    digits = (digits or "").strip().rstrip("#")
    if not digits.isdigit() or not digits.isascii():
        return None, False
    kind = item.answer_type
    if kind == AnswerType.YES_NO and digits in ("1", "2", "0"):  # 0 for "no" too, as in a text
        return digits == "1", True
    if kind == AnswerType.SCALE_0_3 and digits in ("0", "1", "2", "3"):
        return int(digits), True
    if kind in (AnswerType.COUNT, AnswerType.STOOLS) and len(digits) <= 2:
        return int(digits), True
    if kind == AnswerType.CHOICE and digits in (item.choices or {}):
        return int(digits), True
    if kind == AnswerType.TEMPERATURE:
        if digits == "0":
            return False, True  # no fever
        value = int(digits) / 10 if len(digits) == 3 else float(digits) if len(digits) == 2 else None
        if value is not None and TEMPERATURE_RANGE[0] <= value <= TEMPERATURE_RANGE[1]:
            return value, True
    return None, False


def _load(checkin_id: int, token: str) -> CheckIn:
    try:
        if _serializer().loads(token) != checkin_id:
            abort(404)
    except BadSignature:
        abort(404)
    checkin = db.session.scalar(select(CheckIn).where(CheckIn.id == checkin_id).with_for_update())
    if checkin is None:
        abort(404)
    return checkin


class Call:
    """The TwiML being built for one request of one check-in's call."""

    def __init__(self, checkin: CheckIn, token: str):
        self.checkin, self.token = checkin, token
        self.patient: Patient = checkin.patient
        self.language = t.lang_of(self.patient.language)
        self.twiml = VoiceResponse()

    def say(self, key: str, **values: str) -> None:
        self.twiml.say(t.render(key, self.language, **values), language=LANGUAGES[self.language])

    def _url(self, endpoint: str, index: int) -> str:
        return url_for(endpoint, checkin_id=self.checkin.id, token=self.token, index=index)

    def ask(self, item: QuestionnaireItem | None) -> None:
        """The current item's question, or the end of the call."""
        if item is None:
            self.say("voice_thanks")
            self.twiml.hangup()
        elif item.answer_type == AnswerType.BLOOD_PRESSURE:
            self.hand_over_to_sms(item)
        else:
            index = self.checkin.current_index
            gather = self.twiml.gather(
                input="dtmf", num_digits=DIGITS.get(item.answer_type, 1), finish_on_key="#",
                timeout=current_app.config.get("CHECKIN_VOICE_TIMEOUT_SECONDS", 8),
                action=self._url("checkin_voice.answer", index), method="POST",
                language=LANGUAGES[self.language],
            )
            gather.say(t.voice_prompt(item, self.language), language=LANGUAGES[self.language])
            self.twiml.redirect(self._url("checkin_voice.silence", index), method="POST")

    def hand_over_to_sms(self, item: QuestionnaireItem) -> None:
        self.say("voice_bp_by_sms")
        self.twiml.hangup()
        enqueue_sms(to=self.patient.phone, body=t.question_sms(item, self.language),
                    idempotency_key=f"{checkin_ref(self.checkin.id)}:sms-item:{self.checkin.current_index}",
                    purpose="checkin", patient_id=self.patient.id, ref=checkin_ref(self.checkin.id))

    def not_reached(self) -> None:
        """An answering machine: no health data, ask to call back, try again later."""
        self.say("voice_machine", hospital_phone=t.spoken_phone(self.patient.site.hospital_phone))
        self.twiml.hangup()
        self.checkin.reask_count = 0
        schedule_call_retry(self.checkin, utcnow())

    def done(self) -> Response:
        db.session.commit()
        return Response(str(self.twiml), mimetype="application/xml")


def _is_open(checkin: CheckIn) -> bool:
    return checkin.status in (*OPEN_STATUSES, *LATE_STATUSES) and checkin.current_code is not None


@bp.post("/<int:checkin_id>/<token>")
@require_twilio_signature
def start(checkin_id: int, token: str):
    call = Call(_load(checkin_id, token), token)
    if not _is_open(call.checkin):
        call.say("voice_closed")
        call.twiml.hangup()
    elif request.form.get("AnsweredBy", "").startswith(("machine", "fax")):
        call.not_reached()
    else:
        call.checkin.call_answered_at, call.checkin.reask_count = None, 0
        call.say("voice_intro")
        if sharers(call.patient) > 1:
            call.say("voice_for_name", name=call.patient.first_name)
        call.checkin.asked_at = utcnow()
        call.ask(current_item(call.checkin))
    return call.done()


@bp.post("/<int:checkin_id>/<token>/answer/<int:index>")
@require_twilio_signature
def answer(checkin_id: int, token: str, index: int):
    call = Call(_load(checkin_id, token), token)
    checkin = call.checkin
    if not _is_open(checkin):
        call.say("voice_closed")
        call.twiml.hangup()
        return call.done()
    if index != checkin.current_index:  # a repeated request: carry on from where we are
        call.ask(current_item(checkin))
        return call.done()
    now = utcnow()
    checkin.call_answered_at = checkin.call_answered_at or now
    digits = request.form.get("Digits", "")[:10]
    step = take_answer(checkin, digits, source=AnswerSource.VOICE,
                       parsed=parse_keypad(current_item(checkin), digits), now=now)
    line = t.spoken_phone(call.patient.site.hospital_phone)
    if step.outcome == REASK:
        call.say("voice_unclear")
        call.ask(step.item)
        return call.done()
    if step.red_flag:
        call.say("voice_safety", hospital_phone=line)  # the page left with this answer's transaction
    for key in step.instructions:  # e.g. "pause the drug until the nurse calls"
        if key in t.VOICE_INSTRUCTIONS:
            call.say(t.VOICE_INSTRUCTIONS[key], hospital_phone=line)
    if step.outcome == UNPARSED:
        call.say("voice_skipped")
    call.ask(step.next_item)
    return call.done()


@bp.post("/<int:checkin_id>/<token>/silence/<int:index>")
@require_twilio_signature
def silence(checkin_id: int, token: str, index: int):
    call = Call(_load(checkin_id, token), token)
    checkin = call.checkin
    if not _is_open(checkin):
        call.say("voice_closed")
        call.twiml.hangup()
    elif index != checkin.current_index:
        call.ask(current_item(checkin))
    elif checkin.reask_count == 0:
        checkin.reask_count = 1
        call.say("voice_no_input")
        call.ask(current_item(checkin))
    elif checkin.call_answered_at is None:
        call.not_reached()  # not one key in this call: nobody is listening
    else:
        step = skip_item(checkin, source=AnswerSource.VOICE)
        call.say("voice_skipped")
        call.ask(step.next_item if step else None)
    return call.done()


@message_status_changed.connect
def _unanswered_call(message, **_extra) -> None:
    """A call that was not picked up (status callback): one more try later."""
    ref = message.ref or ""
    if message.channel != "voice" or not ref.startswith("checkin:") or message.status not in UNANSWERED_CALL:
        return
    try:
        checkin = db.session.get(CheckIn, int(ref.split(":")[1]))
    except (ValueError, IndexError):
        return
    if checkin is not None:
        schedule_call_retry(checkin, utcnow())
