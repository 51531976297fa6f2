// The label form, in the browser: every field of the schema, chosen by keyboard or mouse.
//
// The chosen state lives here; the server hears one message per item (the submit, or the
// skip) and answers by sending the next item as new `data`. The component stays mounted
// across items (a stable key), so this module's state survives: keys pressed while the
// answer is on its way are queued and replayed on whatever form the answer brings.
// Everything shown is set with textContent, never as HTML. Both files are fetched by the
// browser once (the component's asset directory), not sent with every answer.

import { brokenRules, normalized } from "./labels.js";

const S = {
  inst: null, form: null, item: null, values: {}, focus: null, mode: "nav",
  text: null, flagged: false, note: "", confirmed: [], skipping: false, reason: null,
  details: "", sending: false, sentAt: 0, queue: [], shownAt: 0, seq: -1, sent: 0,
  alert: null,
};
const CHOICE = new Set(["single", "multi"]);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

// Condition language, visibility and rules: labels.js.
const view = () => normalized(S.form, S.values, S.flagged);
const visible = (f) => view().shown.has(f.name);
const fields = () => { const v = view(); return S.form.fields.filter((f) => v.shown.has(f.name)); };
const field = (n) => S.form.fields.find((f) => f.name === n);
const labels = () => view().labels;
const broken = (vals) => brokenRules(S.form, vals);

// -- building the DOM (once per schema) ------------------------------------------------------

function build(parent) {
  // Our own container: the parent also holds the stylesheet Streamlit put there.
  let root = parent.querySelector(":scope > .lf-root");
  if (!root) { root = el("div", "lf-root"); parent.append(root); }
  root.replaceChildren();
  const f = S.form;
  const box = el("div", "lf");
  const hint = el("div", "lf-hint");
  hint.textContent = `Tab / Shift+Tab: next / previous field · 1-9: choose in the marked field · `
    + `${f.keys.text}: write the ${f.rationale || "text"} (Esc leaves it) · Ctrl+Enter: submit · `
    + `${f.keys.skip}: skip · ${f.keys.flag}: flag for the lead`;
  box.append(el("div", "lf-item"), hint);
  for (const spec of f.fields) {
    const sec = el("section", "lf-field");
    sec.dataset.field = spec.name;
    sec.dataset.kind = spec.kind;
    const head = el("div", "lf-head");
    head.append(el("span", "lf-label", spec.label));
    if (spec.kind === "multi") head.append(el("span", "lf-tag", "pick any"));
    if (spec.required) head.append(el("span", "lf-tag", "required"));
    sec.append(head);
    if (spec.help) sec.append(el("div", "lf-help", spec.help));
    if (CHOICE.has(spec.kind)) {
      const row = el("div", "lf-options");
      spec.options.forEach((o, i) => {
        const b = button("lf-opt", () => { setFocus(spec.name); choose(spec.name, o.value); });
        b.dataset.field = spec.name;
        b.dataset.value = o.value;
        b.title = o.guideline;
        b.setAttribute("aria-pressed", "false");
        b.append(el("kbd", "lf-num", i < 9 ? i + 1 : i === 9 ? 0 : ""));
        b.append(el("span", "lf-title", o.title));
        if (o.key) b.append(el("kbd", "lf-key", o.key));
        b.append(el("span", "lf-guide", o.guideline));
        row.append(b);
      });
      sec.append(row);
    } else {
      sec.append(textarea(spec.name, spec.label));
    }
    sec.addEventListener("mousedown", () => { if (S.focus !== spec.name) setFocus(spec.name); });
    box.append(sec);
  }
  const flag = el("section", "lf-field lf-flagnote");
  flag.dataset.field = "_flag_note";
  flag.append(el("div", "lf-head", "Note for the lead (why you flag this item)"),
    textarea("_flag_note", "Note for the lead"));
  box.append(flag);
  box.append(actions("lf-main-actions", [["submit", "Submit", "Ctrl+Enter", submit],
    ["skip", "Skip…", f.keys.skip, startSkip], ["flag", "Flag for lead", f.keys.flag, toggleFlag]]));
  const skip = el("section", "lf-skippanel");
  skip.append(el("div", "lf-head lf-skip-title"));
  const reasons = el("div", "lf-options");
  f.skip_reasons.forEach((r, i) => {
    const b = button("lf-opt lf-reason", () => pickReason(i));
    b.dataset.reason = r;
    b.setAttribute("aria-pressed", "false");
    b.append(el("kbd", "lf-num", i + 1), el("span", "lf-title", r));
    reasons.append(b);
  });
  skip.append(reasons, el("div", "lf-help", "Details (optional, unless Other)"),
    textarea("_skip_details", "Details"),
    actions("", [["skip-confirm", "Skip item", "Ctrl+Enter", confirmSkip], ["skip-back", "Back", "Esc", stopSkip]]));
  box.append(skip);
  S.alert = el("div", "lf-alert");
  S.alert.setAttribute("role", "alert");
  root.append(box);
  S.inst.box = box;
}

function button(cls, onClick) {
  // A click leaves no focus behind: Enter and Space must not press the button again.
  const b = el("button", cls);
  b.type = "button";
  b.addEventListener("click", () => { b.blur(); onClick(); });
  return b;
}

function actions(cls, list) {
  const row = el("div", `lf-actions ${cls}`);
  for (const [act, text, key, onClick] of list) {
    const b = button(`lf-act lf-${act}`, onClick);
    b.dataset.act = act;
    b.append(el("span", "lf-act-text", text), el("kbd", "lf-key", key));
    row.append(b);
  }
  return row;
}

function textarea(name, label) {
  const t = el("textarea", "lf-text");
  t.dataset.text = name;
  t.rows = name === "_skip_details" ? 1 : 3;
  t.setAttribute("aria-label", label);
  t.addEventListener("input", () => { setText(name, t.value); });
  t.addEventListener("focus", () => {
    if (S.text !== name) { S.text = name; S.mode = "text"; if (!name.startsWith("_")) S.focus = name; paint(); }
  });
  t.addEventListener("blur", () => { if (S.text === name) { S.text = null; S.mode = "nav"; paint(); } });
  return t;
}

function setText(name, value) {
  if (name === "_flag_note") S.note = value;
  else if (name === "_skip_details") S.details = value;
  else S.values[name] = value;
}

function textOf(name) {
  return name === "_flag_note" ? S.note : name === "_skip_details" ? S.details : (S.values[name] || "");
}

// -- painting state onto the DOM ---------------------------------------------------------------

const q = (sel) => S.inst.box.querySelector(sel), qa = (sel) => S.inst.box.querySelectorAll(sel);

function paint() {
  const box = S.inst.box;
  box.dataset.state = S.sending ? "sending" : "ready";
  box.dataset.mode = S.skipping ? "skip" : S.mode;
  box.dataset.assignment = S.item.assignment;
  box.dataset.item = S.item.name;
  box.dataset.flagged = S.flagged ? "true" : "false";
  q(".lf-item").textContent = `item ${S.item.name}` + (S.sending ? " · sending…" : "");
  for (const sec of qa(".lf-field")) {
    const name = sec.dataset.field;
    const spec = field(name);
    sec.hidden = S.skipping || (name === "_flag_note" ? !S.flagged : !visible(spec));
    sec.classList.toggle("lf-focused", S.focus === name && !S.skipping && !sec.hidden);
    // Hidden fields too: a choice left from the last item must not stay pressed in the DOM.
    if (spec && CHOICE.has(spec.kind)) {
      const v = S.values[name];
      for (const b of sec.querySelectorAll(".lf-opt")) {
        const on = spec.kind === "multi" ? (v || []).includes(b.dataset.value) : v === b.dataset.value;
        if ((b.getAttribute("aria-pressed") === "true") !== on) b.setAttribute("aria-pressed", on ? "true" : "false");
      }
    }
  }
  for (const t of qa("textarea")) if (t.value !== textOf(t.dataset.text)) t.value = textOf(t.dataset.text);
  q(".lf-main-actions").hidden = S.skipping;
  q(".lf-flag .lf-act-text").textContent = S.flagged ? "Unflag" : "Flag for lead";
  q(".lf-skippanel").hidden = !S.skipping;
  q(".lf-skip-title").textContent = `Skip ${S.item.name}? Pick a reason.`;
  for (const b of qa(".lf-reason")) b.setAttribute("aria-pressed", b.dataset.reason === S.reason ? "true" : "false");
  placeAlert();
}

function say(kind, text, where) {
  S.alert.dataset.kind = kind;
  S.alert.textContent = text;
  S.alert.dataset.where = where || "";
  S.alert.hidden = !text;
}

function placeAlert() {
  // Next to the cursor: under the field (or text box, or skip panel) that has the focus.
  const where = S.alert.dataset.where || (S.skipping ? "_skip" : S.mode === "text" ? S.text : S.focus);
  const host = where === "_skip" || where === "_skip_details" ? q(".lf-skippanel")
    : (q(`.lf-field[data-field="${CSS.escape(where || "")}"]:not([hidden])`) || q(".lf-main-actions"));
  if (S.alert.parentNode !== host) host.append(S.alert);
}

function liveWarnings() {
  // Rules are checked on every change; the server checks them again on submit.
  const warn = broken(labels());
  if (!warn.length) { if (S.alert.dataset.kind === "rule") say("rule", "", ""); return; }
  const confirmed = warn.every((w) => S.confirmed.includes(w.rule));
  say("rule", warn.map((w) => `• ${w.message}`).join("\n") + (confirmed
    ? `\nYou are overriding this. Say why in the ${S.form.rationale || "rationale"}, then press Ctrl+Enter again.` : ""),
    confirmed && S.form.rationale ? S.form.rationale : "");
}

// -- actions -------------------------------------------------------------------------------------

function setFocus(name) {
  S.focus = name;
  if (S.mode === "text") leaveText();
  if (S.alert.dataset.kind !== "rule") say("", "", "");
  S.alert.dataset.where = "";
  paint();
}

function moveFocus(step) {
  const names = fields().map((f) => f.name);
  if (S.flagged) names.push("_flag_note");
  const at = names.indexOf(S.focus);
  setFocus(names[(at + step + names.length) % names.length]);
}

function choose(name, value) {
  const spec = field(name);
  if (spec.kind === "multi") {
    const cur = S.values[name] || [];
    const next = cur.includes(value) ? cur.filter((v) => v !== value) : [...cur, value];
    S.values[name] = spec.options.map((o) => o.value).filter((v) => next.includes(v));
  } else {
    S.values[name] = S.values[name] === value ? null : value;
  }
  S.confirmed = [];
  if (S.alert.dataset.kind !== "rule") say("", "", "");
  const current = field(S.focus);
  if (current && !visible(current)) moveFocus(1);
  liveWarnings();
  paint();
}

function enterText(name) {
  S.mode = "text";
  S.text = name;
  if (!name.startsWith("_")) S.focus = name;
  paint();
  const t = q(`textarea[data-text="${name}"]`);
  if (t) { t.focus(); t.setSelectionRange(t.value.length, t.value.length); }
}

function leaveText() {
  const t = S.text && q(`textarea[data-text="${S.text}"]`);
  S.mode = "nav";
  S.text = null;
  if (t) t.blur();
}

function toggleFlag() {
  S.flagged = !S.flagged;
  if (S.flagged) { enterText("_flag_note"); return; }
  if (S.focus === "_flag_note") S.focus = fields()[0].name;
  if (S.text === "_flag_note") leaveText();
  paint();
}

function startSkip() { S.skipping = true; stopText(); }
function stopSkip() { S.skipping = false; S.reason = null; stopText(); }
function stopText() { if (S.mode === "text") leaveText(); say("", "", ""); paint(); }

function pickReason(i) {
  S.reason = S.form.skip_reasons[i];
  if (i === S.form.skip_reasons.length - 1) enterText("_skip_details"); else paint();
}

function send(message) {
  S.sending = true;
  S.sentAt = performance.now();
  S.sent += 1;
  if (S.mode === "text") leaveText();
  paint();
  S.inst.trigger("message", { ...message, assignment: S.item.assignment, n: S.sent });
}

function refuse(text, where, kind) {
  say(kind || "error", text, where);
  const typed = where === "_flag_note" || where === "_skip_details" || field(where)?.kind === "text";
  if (typed) { enterText(where); return; }
  if (where && field(where)) S.focus = where;
  if (S.mode === "text") leaveText();
  paint();
}

function submit() {
  if (S.skipping) { confirmSkip(); return; }
  const vals = labels();
  if (!S.flagged) {
    const missing = fields().filter((f) => f.required && f.kind === "single" && !vals[f.name]);
    if (missing.length) {
      const names = missing.map((f) => f.label).join(", ");
      refuse(`Still to choose: ${names}.`, missing[0].name);
      return;
    }
  } else if (!S.note.trim()) {
    refuse("Say why you flag this item for the lead.", "_flag_note");
    return;
  }
  const warn = broken(vals);
  const rationale = S.form.rationale;
  if (warn.length && !warn.every((w) => S.confirmed.includes(w.rule))) {
    S.confirmed = warn.map((w) => w.rule);
    liveWarnings();
    if (rationale) enterText(rationale); else paint();
    return;
  }
  if (warn.length && rationale && !(vals[rationale] || "").trim()) {
    refuse(`Overriding ${warn.map((w) => w.rule).join(", ")} needs a rationale: say why these labels are right.`, rationale);
    return;
  }
  const elapsed = S.item.elapsed_s + (performance.now() - S.shownAt) / 1000;
  send({ kind: "submit", labels: vals, duration_s: Math.round(elapsed * 10) / 10,
    overridden: warn.map((w) => w.rule), flagged: S.flagged, flag_note: S.flagged ? S.note : null });
}

function confirmSkip() {
  if (!S.reason) { refuse("Pick a reason for skipping (1-4).", "_skip"); return; }
  const other = S.reason === S.form.skip_reasons[S.form.skip_reasons.length - 1];
  if (other && !S.details.trim()) { refuse("Say why you skip this item.", "_skip_details"); return; }
  send({ kind: "skip", reason: S.reason, details: S.details });
}

// -- keys ----------------------------------------------------------------------------------------

function digit(key) { return key >= "0" && key <= "9" && key.length === 1 ? (key === "0" ? 9 : Number(key) - 1) : -1; }

function handle(k) {
  // k: {key, shift, ctrl, real}; returns whether the key was ours.
  if (k.key === "Enter" && k.ctrl) { submit(); return true; }
  if (k.ctrl) return false;
  if (S.mode === "text") {
    if (k.key === "Escape") { leaveText(); paint(); return true; }
    if (k.key === "Tab" && S.text !== "_skip_details") { leaveText(); moveFocus(k.shift ? -1 : 1); return true; }
    if (!k.real) {
      // A replayed key lands in the text box it was typed for.
      if (k.key.length === 1) setText(S.text, textOf(S.text) + k.key);
      else if (k.key === "Backspace") setText(S.text, textOf(S.text).slice(0, -1));
      paint();
      return true;
    }
    return false;
  }
  if (S.skipping) {
    const i = digit(k.key);
    if (i >= 0 && i < S.form.skip_reasons.length) { pickReason(i); return true; }
    if (k.key === "Escape") { stopSkip(); return true; }
    if (k.key === "Enter" || k.key === S.form.keys.text) { enterText("_skip_details"); return true; }
    return k.key === "Tab" || k.key.length === 1;
  }
  if (k.key === "Tab") { moveFocus(k.shift ? -1 : 1); return true; }
  const spec = field(S.focus);
  const i = digit(k.key);
  if (i >= 0) {
    if (spec && CHOICE.has(spec.kind) && i < spec.options.length) choose(spec.name, spec.options[i].value);
    return true;
  }
  if (k.key === "Enter" || k.key === " ") {
    if (S.focus === "_flag_note" || spec?.kind === "text") enterText(S.focus);
    return true;
  }
  if (k.key === S.form.keys.text && S.form.rationale) { enterText(S.form.rationale); return true; }
  const lower = k.key.toLowerCase();
  if (lower === S.form.keys.skip) { startSkip(); return true; }
  if (lower === S.form.keys.flag) { toggleFlag(); return true; }
  const hit = S.form.shortcuts[lower];
  if (hit && visible(field(hit[0]))) { S.focus = hit[0]; choose(hit[0], hit[1]); return true; }
  return k.key.length === 1;  // a stray letter must not reach Streamlit's own keys (c, r)
}

function onKey(e) {
  if (e.isComposing || e.altKey || e.metaKey) return;
  if (["Shift", "Control", "Alt", "Meta", "CapsLock"].includes(e.key)) return;
  const k = { key: e.key, shift: e.shiftKey, ctrl: e.ctrlKey, real: true };
  if (!S.inst) {
    if (S.sending && !isForeignInput(e)) { S.queue.push({ ...k, real: false }); e.preventDefault(); e.stopImmediatePropagation(); }
    return;
  }
  if (isForeignInput(e)) return;
  if (k.key === "Tab" && !(inside(e) || e.target === document.body || e.target === document.documentElement)) return;
  if (S.sending) {
    if (performance.now() - S.sentAt > 15000) { S.sending = false; say("error", "No answer from the server yet: press Ctrl+Enter to send again.", ""); paint(); }
    else { S.queue.push({ ...k, real: false }); e.preventDefault(); e.stopImmediatePropagation(); return; }
  }
  if (handle(k)) { e.preventDefault(); e.stopImmediatePropagation(); }
}

function leftOutside(el) {
  if (!el || el === document.body || el === document.documentElement) return false;
  if (S.inst && (el === S.inst.host || S.inst.host.contains(el))) return false;
  return !(el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
}
function inside(e) { return S.inst && e.composedPath().includes(S.inst.host); }
function isForeignInput(e) {  // another widget's text box: its keys are not ours
  const t = e.composedPath()[0];
  return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) && !inside(e);
}

function replay() {
  const keys = S.queue.splice(0);
  let done = 0;
  for (const k of keys) {
    if (S.sending) { S.queue.push(k); continue; }
    handle(k);
    done += 1;
  }
  if (keys.length) S.inst.box.dataset.replayed = String(done);
}

window.addEventListener("keydown", onKey, true);

// -- new data from the server --------------------------------------------------------------------

function newItem(item) {
  S.item = item;
  S.values = {};
  S.flagged = false; S.note = ""; S.confirmed = []; S.skipping = false; S.reason = null; S.details = "";
  if (S.mode === "text") leaveText();
  S.mode = "nav"; S.text = null;
  const first = fields()[0];
  S.focus = first ? first.name : null;
  S.shownAt = performance.now();
  S.sending = false;
  say("", "", "");
}

function feedback(fb) {
  S.seq = fb.seq;
  if (!fb.text) return;
  if (fb.kind === "override") {
    S.confirmed = fb.rules;
    say("rule", fb.text, S.form.rationale || "");
    if (S.form.rationale) enterText(S.form.rationale);
    return;
  }
  refuse(fb.text, fb.focus || "", fb.kind);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const host = parentElement.host || parentElement;
  // The schema's description comes once per session; later answers name it by its id only.
  if (!data.form.fields && S.form?.id !== data.form.id) {
    setTriggerValue("message", { kind: "form" }); // not the one we have: ask for it again
    return undefined;
  }
  const rebuild = !S.inst || S.inst.root !== parentElement || S.form?.id !== data.form.id;
  S.inst = { root: parentElement, host, trigger: setTriggerValue, box: S.inst?.box };
  if (rebuild) { if (data.form.fields) S.form = data.form; build(parentElement); }
  // Mounted anew (first load, or back from another page): a link or button just clicked keeps
  // the focus, and Tab would go through the page's links instead of the fields. Take the keys
  // back, unless the annotator is typing in another widget's text box.
  if (rebuild && leftOutside(document.activeElement)) document.activeElement.blur();
  const fresh = !S.item || S.item.assignment !== data.item.assignment;
  const seq = data.feedback ? data.feedback.seq : -1;
  if (fresh) {
    newItem(data.item);
    S.seq = seq;
  } else if (seq !== S.seq) {
    // The server answered without moving on: say why, where the cursor is.
    S.sending = false;
    feedback(data.feedback);
  }
  paint();
  replay();
  paint();
  return () => {
    if (!S.inst || S.inst.root !== parentElement) return;
    S.inst = null;
    // Keys typed while no form is mounted wait for one only briefly ("Nothing left" has none).
    setTimeout(() => { if (!S.inst) { S.sending = false; S.queue = []; } }, 3000);
  };
}
