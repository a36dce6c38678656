"""gunicorn settings for ``gunicorn wsgi:app``: gunicorn reads this file by itself when started
from this folder (elsewhere pass ``-c /path/to/gunicorn.conf.py``). Command-line options win.

One hook: a worker that starts while this host's webhook spool holds items (spooled during a
database outage by a worker that has since died, e.g. killed with kill -9) drains them in a
background thread that ends when the spool is empty. A worker never starts a scheduler.
"""


def post_worker_init(worker):
    from app.notifications.spool_drain import drain_if_pending

    drain_if_pending(worker.wsgi)
