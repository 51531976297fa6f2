"""The browser form's label logic (assets/labels.js) agrees with the server's schema: the same
normalised labels, the same fields shown, the same broken rules with the same messages, over
many label sets, run in Chromium beside annotate.schema."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from annotate.app import labelform
from annotate.schema import LabelSchema, load_schema
from tests.browser.conftest import ROOT

pytestmark = pytest.mark.browser
SCHEMAS = sorted((ROOT / "schemas").glob("refusal-v*.yaml"))


def random_labels(schema: LabelSchema, rng: random.Random, flagged: bool) -> dict[str, Any]:
    """Values as the form may hold them: chosen, unchosen (None), or untouched lists."""
    values: dict[str, Any] = {}
    for f in schema.fields:
        if f.kind == "text":
            values[f.name] = rng.choice([None, "", "  ", "Because it refused"])
        elif f.kind == "single":
            must = f.required and not flagged
            values[f.name] = rng.choice(f.values if must else [*f.values, None])
        else:
            values[f.name] = rng.choice(
                [None, [], rng.sample(f.values, rng.randint(1, min(3, len(f.values))))]
            )
    return values


def python_view(schema: LabelSchema, values: dict[str, Any], flagged: bool) -> dict[str, Any]:
    labels = schema.normalize_labels(values, partial=flagged)
    rules = [w.model_dump() for w in schema.check_consistency(labels)]
    return {"labels": labels, "rules": rules}


# labels.js is an ES module (labelform.js imports it): its exports made globals for JS_VIEW.
IMPORT = """async (source) => {
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  Object.assign(globalThis, await import(url));
}"""
JS_VIEW = """([spec, cases]) => cases.map(([values, flagged]) => {
  const v = normalized(spec, values, flagged);
  return {labels: v.labels, rules: brokenRules(spec, v.labels)
    .map((w) => ({rule: w.rule, message: w.message}))};
})"""


@pytest.mark.parametrize("path", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_the_browser_reads_labels_as_the_server_does(browser: Any, path: Any) -> None:
    schema = load_schema(path)
    spec = labelform.form_spec(schema)
    rng = random.Random(7)
    cases = []
    for n in range(400):
        flagged = n % 4 == 0
        cases.append((random_labels(schema, rng, flagged), flagged))
    page = browser.new_page()
    try:
        page.evaluate(IMPORT, (ROOT / "annotate/app/assets/labels.js").read_text())
        got = page.evaluate(JS_VIEW, [spec, cases])
    finally:
        page.close()
    broke = 0
    for (values, flagged), js in zip(cases, got, strict=True):
        expected = python_view(schema, values, flagged)
        assert js == json.loads(json.dumps(expected)), (values, flagged)
        broke += bool(expected["rules"])
    assert broke > 20, "too few label sets break a rule to compare the rules"
