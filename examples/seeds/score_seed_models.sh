#!/usr/bin/env bash
# The v2 seed set scored as six "models": gold from the authors' hints (right action, intent,
# epistemic status, harm area, severity), predictions from what each seed response did
# (its hinted observed action, failure categories, answer quality and refusal style), one file
# per model name. It exercises the epistemic axis and invariance groups, which XSTest has not.
# Run from the repository root: bash examples/seeds/score_seed_models.sh [WORKDIR] [score options]
set -euo pipefail
W=${1:-$(mktemp -d)}
mkdir -p "$W"
export ANNOTATE_DATABASE_URL="sqlite:///$W/seeds.db"
annotate init
annotate campaign create seeds-v2 --overlap 1 --schema refusal-v2
for f in seed_prompts/v2/*.jsonl; do
    annotate import "$f" --campaign seeds-v2 --mapping examples/seeds/drop_hints.yaml
done
for field in right_action intent epistemic_status harm_area severity; do
    for f in seed_prompts/v2/*.jsonl; do
        annotate import-labels "$f" --campaign seeds-v2 --wide "expected_$field=seed-authors" \
            --field "$field"
    done
done
annotate release --campaign seeds-v2 --out "$W/exports" --policy min_annotations=1
python - "$W" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]) / "predictions"
out.mkdir(exist_ok=True)
files = {}
for path in sorted(pathlib.Path("seed_prompts/v2").glob("*.jsonl")):
    for line in path.read_text().splitlines():
        row = json.loads(line)
        record = {
            "id": row["id"],
            "action": row["expected_observed_action"],
            "failure_categories": row.get("expected_failure_categories") or [],
            "answer_quality": row.get("expected_answer_quality"),
            "refusal_style": row.get("expected_refusal_style"),
        }
        files.setdefault(row["model"], []).append(json.dumps(record))
for model, lines in sorted(files.items()):
    (out / f"{model}.jsonl").write_text("\n".join(lines) + "\n")
PY
args=()
for p in "$W"/predictions/*.jsonl; do args+=(--predictions "$p"); done
annotate score --gold "$W/exports/seeds-v2/v1" "${args[@]}" --plots "$W/plots" "${@:2}"
