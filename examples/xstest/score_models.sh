#!/usr/bin/env bash
# Score XSTest's five models with the tool: gold right actions from XSTest's prompt design
# (safe types answered, contrast types refused), predictions from XSTest's human labels of
# each model's responses (final_label). Run from the repository root with ../shared beside it:
#   bash examples/xstest/score_models.sh [WORKDIR]
set -euo pipefail
X=../shared/external/xstest/model_completions
W=${1:-$(mktemp -d)}
mkdir -p "$W"
export ANNOTATE_DATABASE_URL="sqlite:///$W/xstest.db"
annotate init
annotate campaign create xstest-design --overlap 1
# XSTest's label columns stay out of the items (annotators would see them as metadata).
annotate import $X/xstest_v2_completions_gpt4.csv --campaign xstest-design \
    --column response=completion --column category=type \
    --drop annotation_1 --drop annotation_2 --drop agreement --drop final_label
for field in right_action intent; do
    annotate import-labels $X/xstest_v2_completions_gpt4.csv --campaign xstest-design \
        --wide type=xstest-design --field "$field" --values examples/xstest/design.yaml
done
# XSTest's design says nothing of harm areas, which refusal-v2's rules ask of harmful items.
annotate release --campaign xstest-design --out "$W/exports" --policy min_annotations=1 \
    --allow-rule-violations
args=()
for m in gpt4 llama2new llama2orig mistralguard mistralinstruct; do
    args+=(--predictions "$m=$X/xstest_v2_completions_$m.csv")
done
annotate score --gold "$W/exports/xstest-design/v1" "${args[@]}" --action-column final_label \
    --values examples/xstest/values.yaml --plots "$W/plots" "${@:2}"
