"""Patient texts (SMS and voice), French and English, chosen by the patient's language.

Rules for every text here (checked by tests/test_checkin_texts.py): at most 2 SMS segments once
filled in, no drug name, no diagnosis, nothing that tells a stranger reading the phone what the
follow-up is about; the first text of a check-in and every re-ask say what to do in an emergency
(15; 112 from abroad). Each question names itself ("Q3/8") so that an answer lands on the
question it answers, and on a phone shared by two patients each text names whom it is for
(first name only). Placeholders: ``{hospital_phone}``, ``{question}``, ``{example}``, ``{name}``.
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
        "fr": "Bonjour, voici vos questions de suivi, à répondre par SMS. Urgence : appelez le 15.",
        "en": "Hello, here are your follow-up questions, to answer by text. Emergency: call 15.",
    },
    "intro_off": {  # the cycle's break days (or an interruption): no dose is expected
        "fr": "Bonjour, voici vos questions de suivi (période de pause). Urgence : appelez le 15.",
        "en": "Hello, here are your follow-up questions (break period). Emergency: call 15.",
    },
    "intro_short": {"fr": "Urgence : appelez le 15.", "en": "Emergency: call 15."},
    "reask": {
        "fr": "Je n'ai pas compris votre réponse. {question} Exemple : {example}. Urgence : 15.",
        "en": "Sorry, I did not understand your answer. {question} Example: {example}. Emergency: 15.",
    },
    "reask_short": {
        "fr": "Je n'ai pas compris votre réponse. Exemple : {example}. Urgence : 15.",
        "en": "Sorry, I did not understand your answer. Example: {example}. Emergency: 15.",
    },
    "for_name": {"fr": "Pour {name} :", "en": "For {name}:"},
    "thanks": {
        "fr": "Merci, vos réponses sont transmises à votre équipe soignante. "
              "En cas de besoin : {hospital_phone}, ou le 15 en cas d'urgence.",
        "en": "Thank you, your answers have been passed to your care team. "
              "If you need help: {hospital_phone}, or 15 in an emergency.",
    },
    "safety": {
        "fr": "Votre message demande un avis rapide. Appelez maintenant votre équipe soignante au "
              "{hospital_phone}, ou le 15 en cas d'urgence (112 depuis l'étranger).",
        "en": "Your message needs quick advice. Call your care team now on {hospital_phone}, "
              "or 15 in an emergency (112 from abroad).",
    },
    "safety_self_harm": {  # the scan read self-harm: the national suicide prevention line first
        "fr": "Appelez maintenant le 3114 (écoute 24h/24, gratuit) ou le 15 en cas d'urgence "
              "(112 depuis l'étranger). Votre équipe soignante : {hospital_phone}.",
        "en": "Please call 3114 now (listening line, 24/7, free) or 15 in an emergency "
              "(112 from abroad). Your care team: {hospital_phone}.",
    },
    "safety_generic": {  # the webhook could not look the number up (database down): no care team line
        "fr": "Si c'est une urgence, appelez le 15 maintenant (112 depuis l'étranger). "
              "If this is an emergency, call 15 now (112 from abroad).",
        "en": "Si c'est une urgence, appelez le 15 maintenant (112 depuis l'étranger). "
              "If this is an emergency, call 15 now (112 from abroad).",
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
    "sms_hint_stools": {"fr": "Répondez par un nombre (0 si pas de diarrhée).",
                        "en": "Answer with a number (0 if no diarrhoea)."},
    # -- voice (spoken; keypad answers) -----------------------------------------------------
    "voice_intro": {
        "fr": "Bonjour, ici le suivi de votre équipe soignante. Répondez avec les touches de votre téléphone. "
              "En cas d'urgence, raccrochez et appelez le 15.",
        "en": "Hello, this is the follow-up call from your care team. Answer with your phone keypad. "
              "In an emergency, hang up and call 15.",
    },
    "voice_for_name": {"fr": "Cet appel est pour {name}.", "en": "This call is for {name}."},
    "voice_hint_yes_no": {"fr": "Tapez 1 pour oui, 2 pour non.", "en": "Press 1 for yes, 2 for no."},
    "voice_hint_scale_0_3": {
        "fr": "Tapez 0 pour non, 1 pour un peu, 2 pour moyennement, 3 pour beaucoup.",
        "en": "Press 0 for no, 1 for a little, 2 for moderately, 3 for a lot.",
    },
    "voice_hint_count": {"fr": "Tapez le nombre, puis dièse.", "en": "Key in the number, then hash."},
    "voice_hint_stools": {"fr": "Tapez le nombre de selles en plus par jour, puis dièse. Tapez 0 si aucune.",
                          "en": "Key in how many more stools a day, then hash. Press 0 if none."},
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
    "voice_pause_until_call": {  # the grading rule's instruction, spoken
        "fr": "Par prudence, ne prenez plus votre traitement tant que l'infirmière ne vous a pas appelé. "
              "Si cela s'aggrave, appelez le {hospital_phone}, ou le 15.",
        "en": "To be safe, do not take your treatment until the nurse has called you. "
              "If it gets worse, call {hospital_phone}, or 15.",
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
SMS_KEYS = ("intro", "intro_off", "intro_short", "reask_short", "thanks", "safety", "safety_self_harm", "safety_generic",
            "reminder_short", "stop", "start", "help", "received", "pause_until_call")
#: Instructions of the grading rules, and what each is called on a call.
VOICE_INSTRUCTIONS = {"pause_until_call": "voice_pause_until_call"}
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


def label(language: str | None, *, number: int | None = None, total: int | None = None,
          name: str | None = None) -> str:
    """What a question text starts with: whom it is for on a shared phone, and "Q3/8"."""
    parts = []
    if name:
        parts.append(render("for_name", language, name=name))
    if number is not None and total:
        parts.append(f"Q{number}/{total}")
    return " ".join(parts)


def _hint_key(item: QuestionnaireItem) -> str:
    """The hint of the item's answer type; a scale whose question lists its own anchors just asks for the digit."""
    if item.answer_type == "scale_0_3" and item.choices:
        return "sms_hint_choice"
    return "sms_hint_" + item.answer_type


def question_sms(item: QuestionnaireItem, language: str | None, prefix: str = "") -> str:
    text = item.text(lang_of(language))
    head = f"{prefix} " if prefix else ""
    return fit(f"{head}{text} {render(_hint_key(item), language)}", f"{head}{text}", text)


def first_sms(item: QuestionnaireItem, language: str | None, *, off_week: bool, prefix: str = "") -> str:
    intro = render("intro_off" if off_week else "intro", language)
    question = question_sms(item, language, prefix)
    text = item.text(lang_of(language))
    head = f"{prefix} " if prefix else ""
    # Every candidate keeps what to do in an emergency: the first text must say it.
    return fit(f"{intro}\n{question}", f"{render('intro', language)}\n{question}",
               f"{render('intro_short', language)}\n{question}", f"{render('intro_short', language)}\n{head}{text}")


def reask_sms(item: QuestionnaireItem, language: str | None, prefix: str = "") -> str:
    example = item.example(lang_of(language))
    return fit(render("reask", language, question=question_sms(item, language, prefix), example=example),
               render("reask_short", language, example=example))


def reminder_sms(item: QuestionnaireItem | None, language: str | None, prefix: str = "") -> str:
    if item is None:
        return render("reminder_short", language)
    return fit(render("reminder", language, question=question_sms(item, language, prefix)),
               render("reminder_short", language))


def voice_prompt(item: QuestionnaireItem, language: str | None) -> str:
    """What the call says for an item; blood pressure is not keyed in but asked for by SMS."""
    if item.answer_type == "blood_pressure":
        return render("voice_bp_by_sms", language)
    key = "voice_hint_choice" if item.answer_type == "scale_0_3" and item.choices else "voice_hint_" + item.answer_type
    hint = render(key, language) if key in TEMPLATES else ""
    return f"{item.text(lang_of(language))} {hint}".strip()
