// Labels against the schema, in the browser: the same condition language, visibility and
// consistency rules as the server (annotate/schema.py), for feedback while choosing. The
// server checks everything again on submit; this file only has to agree with it. Pure
// functions of the form spec and the chosen values; labelform.js imports them (an ES module).
//
// A condition maps a field to a list of values (a single choice is one of them, a multi
// choice ticks any of them), to {none_of: [...]} (a value is given and is none of them), or
// to {empty: true|false} (nothing chosen or ticked, or a blank text). An unlabeled multi
// choice (null) is neither empty nor non-empty.

function holds(value, spec, kind) {
  if (!Array.isArray(spec) && spec.empty !== undefined && spec.empty !== null) {
    if (kind === "multi") return value !== null && value !== undefined && (value.length === 0) === spec.empty;
    const blank = value === null || value === undefined || (typeof value === "string" && !value.trim());
    return blank === spec.empty;
  }
  if (value === null || value === undefined) return false;
  const listed = Array.isArray(spec) ? spec : (spec.none_of || []);
  const hit = Array.isArray(value) ? value.some((v) => listed.includes(v)) : listed.includes(value);
  return Array.isArray(spec) ? hit : !hit;
}

function allHold(conds, vals, kinds) {
  return Object.entries(conds || {}).every(([name, spec]) => holds(vals[name], spec, kinds[name]));
}

// The labels as the server will read them, and the fields shown: in schema order, a field
// whose `show_when` does not hold is hidden and null; an untouched "pick any" field is an
// empty list, unless the item is flagged (a partial label, where missing stays missing).
export function normalized(form, values, partial) {
  const kinds = Object.fromEntries(form.fields.map((f) => [f.name, f.kind]));
  const out = {};
  const shown = new Set();
  for (const f of form.fields) {
    if (f.show_when) {
      const undecided = partial && Object.keys(f.show_when).some((k) => out[k] === null || out[k] === undefined);
      if (!undecided && !allHold(f.show_when, out, kinds)) { out[f.name] = null; continue; }
    }
    shown.add(f.name);
    const v = values[f.name];
    if (f.kind === "text") out[f.name] = (v || "").trim() || null;
    else if (f.kind === "multi") {
      out[f.name] = v === undefined || v === null ? (partial ? null : [])
        : f.options.map((o) => o.value).filter((x) => v.includes(x));  // schema order
    }
    else out[f.name] = v || null;
  }
  return { labels: out, shown };
}

export function brokenRules(form, vals) {
  const kinds = Object.fromEntries(form.fields.map((f) => [f.name, f.kind]));
  return form.rules.filter((r) => allHold(r.when, vals, kinds) && !allHold(r.expect, vals, kinds))
    .map((r) => ({ rule: r.id, message: fill(r.message, vals) }));
}

function fill(message, vals) {
  // As the server's str.format: lists joined with ", "; an unknown name leaves it as written.
  let failed = false;
  const text = message.replace(/\{([a-z_][a-z0-9_]*)\}/g, (_, name) => {
    if (!(name in vals)) { failed = true; return ""; }
    const v = vals[name];
    return Array.isArray(v) ? v.join(", ") : (v === null ? "None" : String(v));
  });
  return failed ? message : text;
}
