"""Transport: SMS and voice providers, outbox, dispatcher, webhooks.

Public entry points: ``outbox.enqueue_sms`` / ``outbox.enqueue_call`` (in the caller's
transaction), ``inbound.register_sms_handler`` / ``inbound.receive_sms``,
``signals.message_status_changed``, ``tasks.dispatch_outbox`` (the job),
``segments.count_segments`` / ``segments.fits``. ``webhooks.bp`` and ``cli.outbox_cli``
are registered by ``create_app``.
"""
