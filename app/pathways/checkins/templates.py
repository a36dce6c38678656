"""Patient texts (SMS and voice), French and English, chosen by the patient's language.

Rules for every text here (checked by tests/test_checkin_texts.py): at most 2 SMS segments once
filled in, no drug name, no diagnosis, nothing that tells a stranger reading the phone what the
follow-up is about. Placeholders: ``{hospital_phone}``, ``{question}``, ``{example}``.
Characters outside GSM-7 (ê â î ô û ç) are avoided where a synonym exists: they halve a segment.
"""
from __future__ import annotations

import logging

import phonenumbers

from app.notifications.segments import fits

from .models import QuestionnaireItem

log = logging.getLogger("oncolink.checkins")
MAX_SEGMENTS = 2

TEMPLATES: dict[str, dict[str, str]] = {
    # -- SMS --------------------------------------------------------------------------------
    "intro": {
        "fr": "Bonjour, voici vos questions de suivi. Merci de répondre à chacune par SMS.",
        "en": "Hello, here are your follow-up questions. Please answer each one by text.",
    },
    "intro_off": {  # the cycle's break days (or an interruption): no dose is expected
        "fr": "Bonjour, voici vos questions de suivi pendant votre période de pause. "
              "Merci de répondre à chacune par SMS.",
        "en": "Hello, here are your follow-up questions for your break period. "
              "Please answer each one by text.",
    },
    "reask": {
        "fr": "Je n'ai pas compris votre réponse. {question} Exemple de réponse : {example}",
        "en": "Sorry, I did not understand your answer. {question} Example answer: {example}",
    },
    "reask_short": {
        "fr": "Je n'ai pas compris votre réponse. Exemple de réponse : {example}",
        "en": "Sorry, I did not understand your answer. Example answer: {example}",
    },
    "thanks": {
        "fr": "Merci, vos réponses sont transmises à votre équipe soignante. "
              "En cas de besoin : {hospital_phone}, ou le 15 en cas d'urgence.",
        "en": "Thank you, your answers have been passed to your care team. "
              "If you need help: {hospital_phone}, or 15 in an emergency.",
    },
    "safety": {
        "fr": "Votre réponse demande un avis rapide. Appelez maintenant votre équipe soignante au "
              "{hospital_phone}, ou le 15 en cas d'urgence.",
        "en": "Your answer needs quick advice. Call your care team now on {hospital_phone}, "
              "or 15 in an emergency.",
    },
    "pause_until_call": {  # grading rule instruction (e.g. grade 2 of a symptom the label says to stop for)
        "fr": "Par prudence, ne prenez plus votre traitement tant que l'infirmière ne vous a pas appelé(e). "
              "Si cela s'aggrave : {hospital_phone}, ou le 15.",
        "en": "To be safe, do not take your treatment until the nurse has called you. "
              "If it gets worse: {hospital_phone}, or 15.",
    },
    "reminder": {
        "fr": "Rappel : nous attendons encore votre réponse. {question}",
        "en": "Reminder: we are still waiting for your answer. {question}",
    },
    "reminder_short": {
        "fr": "Rappel : nous attendons encore votre réponse.",
        "en": "Reminder: we are still waiting for your answer.",
    },
    "stop": {
        "fr": "Vous ne recevrez plus nos messages de suivi. Pour les reprendre, envoyez START. "
              "En cas de besoin : {hospital_phone}.",
        "en": "You will no longer receive our follow-up messages. To resume, send START. "
              "If you need help: {hospital_phone}.",
    },
    "start": {
        "fr": "Les messages de suivi reprennent. Pour les arrêter, envoyez STOP.",
        "en": "Follow-up messages will resume. To stop them, send STOP.",
    },
    "help": {
        "fr": "Messages de suivi de votre équipe soignante, joignable au {hospital_phone}. "
              "Urgence : 15. Pour arrêter les messages, envoyez STOP.",
        "en": "Follow-up messages from your care team, reachable on {hospital_phone}. "
              "Emergency: 15. To stop these messages, send STOP.",
    },
    "received": {  # a message outside any open check-in: kept and shown to the nurse
        "fr": "Message reçu, il sera lu par votre équipe soignante. "
              "En cas d'urgence, appelez le {hospital_phone} ou le 15.",
        "en": "Message received, your care team will read it. "
              "In an emergency, call {hospital_phone} or 15.",
    },
    # -- hints appended to the question, by answer type -------------------------------------
    "sms_hint_yes_no": {"fr": "Répondez OUI ou NON.", "en": "Answer YES or NO."},
    "sms_hint_scale_0_3": {
        "fr": "Répondez 0 (non), 1 (un peu), 2 (moyennement) ou 3 (beaucoup).",
        "en": "Answer 0 (no), 1 (a little), 2 (moderately) or 3 (a lot).",
    },
    "sms_hint_count": {"fr": "Répondez par un nombre.", "en": "Answer with a number."},
    "sms_hint_temperature": {
        "fr": "Répondez votre température (ex : 37,5), ou NON si vous n'avez pas de fièvre.",
        "en": "Answer with your temperature (e.g. 37.5), or NO if you have no fever.",
    },
    "sms_hint_blood_pressure": {
        "fr": "Répondez votre dernière mesure (ex : 135/85), ou NON si vous ne l'avez pas prise.",
        "en": "Answer with your latest reading (e.g. 135/85), or NO if you have not taken it.",
    },
    "sms_hint_choice": {"fr": "Répondez par le chiffre.", "en": "Answer with the number."},
    # -- voice (spoken; keypad answers) -----------------------------------------------------
    "voice_intro": {
        "fr": "Bonjour, ici le suivi de votre équipe soignante. Répondez avec les touches de votre téléphone.",
        "en": "Hello, this is the follow-up call from your care team. Answer with your phone keypad.",
    },
    "voice_hint_yes_no": {"fr": "Tapez 1 pour oui, 2 pour non.", "en": "Press 1 for yes, 2 for no."},
    "voice_hint_scale_0_3": {
        "fr": "Tapez 0 pour non, 1 pour un peu, 2 pour moyennement, 3 pour beaucoup.",
        "en": "Press 0 for no, 1 for a little, 2 for moderately, 3 for a lot.",
    },
    "voice_hint_count": {"fr": "Tapez le nombre, puis dièse.", "en": "Key in the number, then hash."},
    "voice_hint_temperature": {
        "fr": "Tapez votre température en 3 chiffres, par exemple 3 7 5 pour 37,5. "
              "Tapez 0 si vous n'avez pas de fièvre.",
        "en": "Key in your temperature in 3 digits, for example 3 7 5 for 37.5. "
              "Press 0 if you have no fever.",
    },
    "voice_hint_choice": {"fr": "Tapez le chiffre de votre choix.", "en": "Press the number of your choice."},
    "voice_no_input": {"fr": "Je n'ai pas reçu de réponse.", "en": "I did not get an answer."},
    "voice_unclear": {"fr": "Je n'ai pas compris.", "en": "Sorry, I did not understand."},
    "voice_skipped": {"fr": "Passons à la question suivante.", "en": "Let us go to the next question."},
    "voice_safety": {
        "fr": "Votre réponse demande un avis rapide. Après cet appel, appelez votre équipe soignante au "
              "{hospital_phone}, ou le 15 en cas d'urgence.",
        "en": "Your answer needs quick advice. After this call, call your care team on "
              "{hospital_phone}, or 15 in an emergency.",
    },
    "voice_bp_by_sms": {
        "fr": "Pour votre tension, merci d'envoyer votre dernière mesure par SMS à ce numéro, "
              "par exemple 135/85.",
        "en": "For your blood pressure, please text your latest reading to this number, "
              "for example 135/85.",
    },
    "voice_thanks": {
        "fr": "Merci, vos réponses sont transmises à votre équipe soignante. Au revoir.",
        "en": "Thank you, your answers have been passed to your care team. Goodbye.",
    },
    "voice_machine": {  # an answering machine: nothing about health
        "fr": "Bonjour, votre équipe soignante a essayé de vous joindre. "
              "Merci de la rappeler au {hospital_phone}. Au revoir.",
        "en": "Hello, your care team tried to reach you. Please call them back on {hospital_phone}. Goodbye.",
    },
    "voice_closed": {
        "fr": "Ce suivi est terminé. Merci, au revoir.",
        "en": "This follow-up is over. Thank you, goodbye.",
    },
}

#: The SMS templates, filled with the longest realistic values, are checked by the tests.
SMS_KEYS = ("intro", "intro_off", "reask_short", "thanks", "safety", "reminder_short", "stop", "start",
            "help", "received", "pause_until_call")
UNKNOWN_NUMBER_REPLY = (
    "Ce numéro ne peut pas traiter votre message. This number cannot process your message."
)


def lang_of(language: str | None) -> str:
    return "en" if language == "en" else "fr"


def render(key: str, language: str | None, **values: str) -> str:
    return TEMPLATES[key][lang_of(language)].format(**values)


def spoken_phone(e164: str) -> str:
    """How a phone number is read aloud: the national form, digits grouped."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def fit(*candidates: str) -> str:
    """The first candidate that fits in ``MAX_SEGMENTS``; the last one cut down as a last resort."""
    for text in candidates:
        if fits(text, MAX_SEGMENTS):
            return text
    last = candidates[-1]
    log.warning("patient text over %s segments, cut", MAX_SEGMENTS)
    while last and not fits(last, MAX_SEGMENTS):
        last = last[:-1]
    return last


def question_sms(item: QuestionnaireItem, language: str | None) -> str:
    text = item.text(lang_of(language))
    return fit(f"{text} {render('sms_hint_' + item.answer_type, language)}", text)


def first_sms(item: QuestionnaireItem, language: str | None, *, off_week: bool) -> str:
    intro = render("intro_off" if off_week else "intro", language)
    question = question_sms(item, language)
    return fit(f"{intro}\n{question}", question)


def reask_sms(item: QuestionnaireItem, language: str | None) -> str:
    example = item.example(lang_of(language))
    return fit(render("reask", language, question=question_sms(item, language), example=example),
               render("reask_short", language, example=example))


def reminder_sms(item: QuestionnaireItem | None, language: str | None) -> str:
    if item is None:
        return render("reminder_short", language)
    return fit(render("reminder", language, question=question_sms(item, language)),
               render("reminder_short", language))


def voice_prompt(item: QuestionnaireItem, language: str | None) -> str:
    """What the call says for an item; blood pressure is not keyed in but asked for by SMS."""
    if item.answer_type == "blood_pressure":
        return render("voice_bp_by_sms", language)
    key = "voice_hint_" + item.answer_type
    hint = render(key, language) if key in TEMPLATES else ""
    return f"{item.text(lang_of(language))} {hint}".strip()
