"""Build tests/data/annotate-v0001.db: a database at migration 0001 with a row in every table.

Run once when 0001 was the newest migration; the file is committed and never rebuilt, so the
upgrade test always starts from what the first release wrote. Raw SQL on purpose: the models
move on, this file must not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import text

from annotate.schema import load_schema
from annotate.storage import db

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    out.unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{out}")
    db.migrate(engine, "0001")
    schema = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
    ts = "2026-11-22 10:00:00.000000"
    with engine.begin() as conn:

        def run(sql: str, **params: object) -> None:
            conn.execute(text(sql), params)

        run(
            "INSERT INTO user (id, name, role, password_hash, is_machine, active, created_at) "
            "VALUES (1, 'alice', 'annotator', '$argon2id$v=19$m=65536,t=3,p=4$x$y', 0, 1, :ts),"
            " (2, 'lena', 'lead', NULL, 0, 1, :ts), (3, 'judge', 'annotator', NULL, 1, 1, :ts)",
            ts=ts,
        )
        run(
            "INSERT INTO label_schema (id, name, version, sha256, content, created_at) "
            "VALUES (1, :n, :v, :h, :c, :ts)",
            n=schema.name,
            v=schema.version,
            h=schema.fingerprint(),
            c=schema.canonical_json(),
            ts=ts,
        )
        run(
            "INSERT INTO campaign (id, name, schema_id, overlap, guidelines, restricted, seed, "
            "created_at) VALUES (1, 'old', 1, 2, '# Guidelines', 1, 42, :ts)",
            ts=ts,
        )
        run("INSERT INTO campaign_member (campaign_id, user_id) VALUES (1, 1)")
        for i in (1, 2, 3):
            run(
                "INSERT INTO item (id, campaign_id, external_id, prompt, conversation, response, "
                "model, source, category, group_id, meta, content_hash, created_at) VALUES "
                "(:i, 1, :e, :p, NULL, 'Use kill.', 'm', 'seed', 'trigger_words', 'g1', "
                '\'{"focus": "kill"}\', :h, :ts)',
                i=i,
                e=f"old-{i}",
                p=f"How do I kill process {i}?",
                h=f"{i:064d}",
                ts=ts,
            )
        run(
            "INSERT INTO assignment (id, campaign_id, item_id, user_id, status, reason, "
            "claimed_at, expires_at, finished_at) VALUES "
            "(1, 1, 1, 1, 'done', NULL, :ts, :ts, :ts)",
            ts=ts,
        )
        labels = (
            '{"intent": "benign", "epistemic_status": "answerable", "right_action": '
            '"answer", "observed_action": "answer", "failure_categories": [], '
            '"confidence": "high", "rationale": null}'
        )
        run(
            "INSERT INTO annotation (id, campaign_id, item_id, user_id, labels, flagged, "
            "flag_note, overridden_rules, duration_s, origin, created_at, updated_at) VALUES "
            "(1, 1, 1, 1, :l, 0, NULL, '[]', 12.5, 'app', :ts, :ts)",
            l=labels,
            ts=ts,
        )
        run(
            "INSERT INTO annotation_history (id, annotation_id, item_id, user_id, labels, "
            "action, duration_s, changed_at) VALUES (1, 1, 1, 1, :l, 'create', 12.5, :ts)",
            l=labels,
            ts=ts,
        )
        run(
            "INSERT INTO adjudication (id, campaign_id, item_id, lead_id, labels, band, note, "
            "guideline_gap, overrides_majority, method, previous_id, is_current, created_at) "
            'VALUES (1, 1, 1, 2, :l, \'{"answer": 1.0, "answer_with_caveat": 0.75}\', '
            "'clear', 0, 0, 'manual', NULL, 1, :ts)",
            l=labels,
            ts=ts,
        )
        run(
            "INSERT INTO release (id, campaign_id, version, path, manifest_sha256, summary, "
            "created_by, created_at) VALUES (1, 1, 1, 'exports/old/v1', :h, '{\"gold\": 1}', 2, "
            ":ts)",
            h="0" * 64,
            ts=ts,
        )
        run(
            "INSERT INTO login_attempt (id, user_name, success, at) VALUES (1, 'alice', 1, :ts)",
            ts=ts,
        )
        run("INSERT INTO app_secret (key, value) VALUES ('cookie_key', 'k')")
    engine.dispose()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("annotate-v0001.db"))
