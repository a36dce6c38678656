"""A bare Flask app for comparison with the inbound webhook: same route, constant TwiML, no
signature check, no database. Served by ``bench.bench_inbound`` with ``gunicorn -w 2``."""
from flask import Flask, Response

app = Flask(__name__)
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Merci.</Message></Response>'


@app.post("/webhooks/twilio/sms")
def inbound_sms():
    return Response(TWIML, mimetype="application/xml")
