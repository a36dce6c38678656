"""Universal red-flag questions, PRO-CTCAE anchored scales, late answers, webhook replies, one page
per check-in.

- questionnaire_item.universal (bleeding, breathlessness, vomiting, temperature, wants_call are asked
  of every patient), answer type "stools" (diarrhoea as stools a day above usual);
- checkin.asked_at (a text that arrived before the current question answers an earlier one);
- message.webhook_reply (the safety reply given in the webhook's TwiML, never sent twice);
- alert.paged_with_id (a second red alert of a check-in rides on the first one's page);
- data: the default questions become the anchored ones, the vomiting question is added, and the
  diarrhoea grading rules get a new version on stools a day (the old versions are superseded,
  never changed, so alerts keep pointing at the rule that fired).

Revision ID: 0013
Revises: 0012
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_TYPES = "'yes_no', 'scale_0_3', 'count', 'temperature', 'blood_pressure', 'choice'"
NEW_TYPES = OLD_TYPES + ", 'stools'"
NO = ["non", "no", "pas du tout", "not at all", "aucun", "none"]

# The default questions as this revision ships them (a snapshot: later code may change its own).
ITEMS = {
    "bleeding": dict(
        universal=True, symptom=None,
        text_fr="Avez-vous eu le moindre saignement (nez, gencives, urines, selles noires ou avec du sang) ?",
        text_en="Have you had any bleeding, even slight (nose, gums, urine, black or bloody stools)?"),
    "breathlessness": dict(
        universal=True, symptom=None,
        text_fr="Avez-vous été essoufflé(e), eu du mal à respirer ou une douleur dans la poitrine ?",
        text_en="Have you been short of breath, had trouble breathing, or chest pain?"),
    "temperature": dict(universal=True),
    "wants_call": dict(universal=True, choices={
        "0": ["non", "no", "non merci", "no thanks", "pas besoin", "no need", "ca va", "pas la peine", "nope", "nan"],
        "1": ["cette semaine", "this week", "semaine", "oui", "yes", "rappelez moi", "appelez moi", "rappeler",
              "appeler", "call me", "call back", "quand vous pouvez", "when you can", "demain", "tomorrow",
              "bientot", "soon", "ouais", "yep", "yeah", "svp", "please"],
        "2": ["maintenant", "now", "tout de suite", "right now", "urgent", "vite", "asap", "ce matin", "this morning",
              "avant midi", "ce soir", "tonight", "this minute", "sans tarder", "immediatement",
              "immediately", "des que possible", "au plus vite", "right away", "rapidement", "quickly",
              "aujourd hui", "today"]}),
    "diarrhoea": dict(
        answer_type="stools", example_fr="2", example_en="2",
        text_fr="Combien de selles par jour avez-vous de plus que d'habitude ?",
        text_en="How many more stools a day than usual do you have?",
        red_flag={"any": [{"gte": 7}, {"key": "scale", "gte": 3}]}),
    "nausea": dict(
        text_fr="Avez-vous des nausées ? 0 non, 1 un peu, 2 vous mangez moins, 3 vous ne mangez presque plus.",
        text_en="Do you feel sick (nausea)? 0 no, 1 a little, 2 you eat less, 3 you can hardly eat.",
        choices={"0": NO, "2": ["mange moins", "mangez moins", "eat less", "eating less", "moitie", "half", "picore",
                        "petites portions", "small portions", "finis pas mon assiette", "finis jamais mon assiette",
                        "appetit", "appetite"],
                 "3": ["mange presque plus", "mange plus", "mange rien", "peux pas manger", "peux rien manger",
                       "hardly eat", "can hardly eat", "cannot eat", "can t eat", "barely eat", "avale rien"]}),
    "mouth_sores": dict(
        text_fr="Avez-vous des aphtes ou mal dans la bouche ? 0 non, 1 je mange normalement, "
                "2 je ne mange que du mou, 3 je ne peux pas manger.",
        text_en="Do you have mouth sores or a painful mouth? 0 no, 1 I eat normally, 2 I eat only soft food, "
                "3 I cannot eat.",
        choices={"0": NO, "1": ["mange normalement", "eat normally", "eating normally"],
                 "2": ["que du mou", "mou", "mouliné", "mixé", "soupe", "soupes", "compote", "soft food", "soft",
                       "purée", "liquide"],
                 "3": ["peux pas manger", "peux plus manger", "peux rien manger", "ne mange plus", "mange rien",
                       "cannot eat", "can t eat", "can not eat", "unable to eat", "avaler"]}),
    "hand_foot": dict(
        text_fr="Avez-vous des rougeurs ou douleurs aux mains ou aux pieds ? 0 non, 1 sans douleur, "
                "2 douloureuses ou limitent la marche ou la cuisine, 3 je ne peux plus me laver ou m'habiller.",
        text_en="Do you have redness or pain on your hands or feet? 0 no, 1 no pain, 2 painful or limits "
                "walking or cooking, 3 I cannot wash or dress myself.",
        choices={"0": NO, "1": ["sans douleur", "pas de douleur", "no pain", "without pain", "painless"],
                 "2": ["font mal", "douloureux", "douloureuses", "douleur", "limitent", "marcher", "marche", "cuisiner",
                       "painful", "hurt", "hurts", "walking", "cooking", "brule", "brulent"],
                 "3": ["laver", "habiller", "wash", "dress", "dressed", "washing", "a vif", "cloques"]}),
    "rash": dict(
        text_fr="Avez-vous des boutons ou rougeurs sur la peau ? 0 non, 1 quelques-uns, 2 sur une partie du "
                "corps, 3 sur une grande partie du corps.",
        text_en="Do you have a skin rash or spots? 0 no, 1 a few, 2 on part of the body, 3 on most of the body.",
        choices={"0": NO, "1": ["quelques uns", "quelques", "a few"],
                 "2": ["partie du corps", "part of the body", "visage", "dos", "bras", "face", "back", "arms", "quart",
                        "quarter"],
                 "3": ["grande partie", "tout le corps", "partout", "most of the body", "all over", "everywhere",
                       "whole body", "moitie du corps", "half my body", "head to toe",
                       "de la tete aux pieds"]}),
    "fatigue": dict(
        text_fr="Vous sentez-vous fatigué(e) ? 0 non, 1 un peu, 2 cela limite vos activités, "
                "3 vous restez au lit la plupart du temps.",
        text_en="Do you feel tired? 0 no, 1 a little, 2 it limits your activities, 3 you stay in bed most "
                "of the time.",
        choices={"0": NO, "2": ["limite", "limitent", "limits", "limited", "ralentie", "ralenti"],
                 "3": ["au lit", "in bed", "couchee", "couche", "alite", "alitee", "bedridden", "laver",
                       "habiller", "toilette"]}),
}
VOMITING = dict(
    code="vomiting", position=55, answer_type="yes_no", phase="any", active=True, universal=True,
    text_fr="Avez-vous vomi au point de ne pas pouvoir prendre ou garder votre traitement ?",
    text_en="Have you vomited so much that you could not take or keep down your treatment?",
    example_fr="non", example_en="no", red_flag={"eq": True})


def _stools_bands(instruction=None):
    bands = [
        {"when": {"any": [{"gte": 7}, {"key": "scale", "gte": 3}]}, "grade": 3, "severity": "red", "reason": "grade_3"},
        {"when": {"any": [{"gte": 4}, {"key": "scale", "gte": 2}]}, "grade": 2, "severity": "orange",
         "reason": "grade_2"},
        {"when": {"any": [{"gte": 1}, {"key": "scale", "gte": 1}]}, "grade": 1, "severity": "yellow",
         "reason": "grade_1"},
    ]
    if instruction:
        bands[1]["instruction"] = instruction
        bands[1]["reason"] = "grade_2_interrupt"
    return bands


def _tables():
    meta = sa.MetaData()
    item = sa.Table("questionnaire_item", meta, sa.Column("id", sa.Integer), sa.Column("code", sa.String),
                    sa.Column("position", sa.Integer), sa.Column("text_fr", sa.String), sa.Column("text_en", sa.String),
                    sa.Column("example_fr", sa.String), sa.Column("example_en", sa.String),
                    sa.Column("answer_type", sa.String), sa.Column("choices", sa.JSON), sa.Column("drugs", sa.JSON),
                    sa.Column("symptom", sa.String), sa.Column("phase", sa.String), sa.Column("red_flag", sa.JSON),
                    sa.Column("finding", sa.JSON), sa.Column("active", sa.Boolean), sa.Column("universal", sa.Boolean),
                    sa.Column("created_at", sa.DateTime), sa.Column("updated_at", sa.DateTime))
    rule = sa.Table("grading_rule", meta, sa.Column("id", sa.Integer), sa.Column("item_code", sa.String),
                    sa.Column("drug_inn", sa.String), sa.Column("site_id", sa.Integer),
                    sa.Column("version", sa.Integer), sa.Column("bands", sa.JSON),
                    sa.Column("worsening_severity", sa.String), sa.Column("note", sa.String),
                    sa.Column("created_at", sa.DateTime), sa.Column("superseded_at", sa.DateTime))
    return item, rule


def upgrade():
    with op.batch_alter_table("questionnaire_item") as batch:
        batch.add_column(sa.Column("universal", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.drop_constraint(op.f("ck_questionnaire_item_answer_type"), type_="check")
        batch.create_check_constraint("answer_type", f"answer_type IN ({NEW_TYPES})")
    with op.batch_alter_table("checkin") as batch:
        batch.add_column(sa.Column("asked_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("webhook_reply", sa.Text()))
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("paged_with_id", sa.Integer()))
        batch.create_foreign_key(op.f("fk_alert_paged_with_id_alert"), "alert", ["paged_with_id"], ["id"])
    _upgrade_data()


def _upgrade_data():
    conn = op.get_bind()
    item, rule = _tables()
    now = datetime.now(timezone.utc)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as the application's UTC columns store it there
    present = {row.code for row in conn.execute(sa.select(item.c.code))}
    if not present:
        return  # an empty database: the catalogue seed writes the current defaults
    for code, values in ITEMS.items():
        if code in present:
            conn.execute(item.update().where(item.c.code == code).values(**values, updated_at=now))
    if "vomiting" not in present:
        conn.execute(item.insert().values(**VOMITING, created_at=now, updated_at=now))
    rules = conn.execute(sa.select(rule.c.item_code, rule.c.drug_inn, rule.c.site_id, rule.c.version,
                                   rule.c.superseded_at)).all()
    if not rules:
        return
    latest: dict = {}
    for row in rules:
        key = (row.item_code, row.drug_inn, row.site_id)
        latest[key] = max(latest.get(key, 0), row.version)
    for drug, instruction, note in (
            (None, None, "CTCAE v5 diarrhoea, stools a day above usual: >= 7 red, 4-6 orange, 1-3 yellow "
                         "(migration 0013: the question now asks for stools a day)."),
            ("capecitabine", "pause_until_call", "Capecitabine label: interrupt at grade 2 (4-6 stools a day above "
                                                 "usual) until grade 0-1 (migration 0013).")):
        key = ("diarrhoea", drug, None)
        if key not in latest:
            continue
        scope = [rule.c.item_code == "diarrhoea", rule.c.site_id.is_(None),
                 rule.c.drug_inn.is_(None) if drug is None else rule.c.drug_inn == drug]
        conn.execute(rule.update().where(*scope, rule.c.superseded_at.is_(None)).values(superseded_at=now))
        conn.execute(rule.insert().values(item_code="diarrhoea", drug_inn=drug, site_id=None, version=latest[key] + 1,
                                          bands=_stools_bands(instruction), worsening_severity="yellow",
                                          note=note, created_at=now))
    if ("vomiting", None, None) not in latest:
        conn.execute(rule.insert().values(
            item_code="vomiting", drug_inn=None, site_id=None, version=1, worsening_severity=None,
            bands=[{"when": {"eq": True}, "grade": None, "severity": "red", "reason": "vomiting_prevents_drug"}],
            note="Vomiting that prevents taking the drug: red.", created_at=now))


def downgrade():
    conn = op.get_bind()
    item, _rule = _tables()
    # The older code knows no "stools" answer and no vomiting question: give diarrhoea back its
    # 0-3 scale (answers already recorded keep their values) and switch the new question off.
    conn.execute(item.update().where(item.c.answer_type == "stools").values(answer_type="scale_0_3"))
    conn.execute(item.update().where(item.c.code == "vomiting").values(active=False))
    with op.batch_alter_table("alert") as batch:
        batch.drop_constraint(op.f("fk_alert_paged_with_id_alert"), type_="foreignkey")
        batch.drop_column("paged_with_id")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("webhook_reply")
    with op.batch_alter_table("checkin") as batch:
        batch.drop_column("asked_at")
    with op.batch_alter_table("questionnaire_item") as batch:
        batch.drop_constraint(op.f("ck_questionnaire_item_answer_type"), type_="check")
        batch.create_check_constraint("answer_type", f"answer_type IN ({OLD_TYPES})")
        batch.drop_column("universal")
