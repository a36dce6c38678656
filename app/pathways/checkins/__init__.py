"""The weekly check-in: questionnaire items, planning, the SMS and voice conversation, chasing.

Jobs (plain functions, see ``tasks.py``): ``plan_checkins``, ``start_due_checkins``,
``chase_non_responders``. The inbound SMS handler is ``conversation.handle_inbound_sms``;
the voice TwiML views are the ``voice`` blueprint.
"""
