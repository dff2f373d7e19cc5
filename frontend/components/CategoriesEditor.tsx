"use client";

import { useState } from "react";

import {
  ACTIONS,
  fetchCategories,
  MAX_DESCRIPTION,
  MAX_EXAMPLES,
  parseCategory,
  problemOf,
  URGENCIES,
  type Category,
  type Problem,
} from "@/lib/categories";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";
import { useSupabase } from "@/lib/supabase/provider";

/** Every category as a form of its own, and one more to add a category. Saved straight to the table. */
export function CategoriesEditor({ initial }: { initial: Category[] }) {
  const supabase = useSupabase();
  const [categories, setCategories] = useState(initial);
  const reload = async () => setCategories(await fetchCategories(supabase));
  return (
    <>
      <ol className="categories">
        {categories.map((category) => (
          <li key={category.id} data-category={category.name}>
            <CategoryForm category={category} onSaved={reload} />
          </li>
        ))}
      </ol>
      <h2>{useI18n().t.categories.add}</h2>
      <CategoryForm category={null} onSaved={reload} />
    </>
  );
}

function CategoryForm({ category, onSaved }: { category: Category | null; onSaved: () => Promise<void> }) {
  const supabase = useSupabase();
  const { t } = useI18n();
  const key = category ? String(category.id) : "new";
  const [form, setForm] = useState(() => ({
    name: category?.name ?? "",
    description: category?.description ?? "",
    examples: (category?.examples ?? []).join("\n"),
    action: category?.action ?? "auto",
    minConfidence: String(category?.min_confidence ?? 0),
    handoffUrgency: category?.handoff_urgency ?? "",
    active: category?.active ?? true,
    position: String(category?.position ?? 0),
  }));
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ kind: Problem; reason: string } | null>(null);
  const [saved, setSaved] = useState(false);
  const set = (field: keyof typeof form) => (value: string | boolean) => {
    setSaved(false);
    setForm((current) => ({ ...current, [field]: value }));
  };
  const save = async () => {
    const parsed = parseCategory(form);
    if (!parsed.ok) return setProblem({ kind: parsed.problem, reason: "" });
    setBusy(true);
    setProblem(null);
    const query = category
      ? supabase.from("categories").update(parsed.value).eq("id", category.id)
      : supabase.from("categories").insert(parsed.value);
    const { error } = await query;
    setBusy(false);
    if (error) return setProblem({ kind: problemOf(error), reason: error.message });
    setSaved(true);
    if (!category) setForm((current) => ({ ...current, name: "", description: "", examples: "" }));
    await onSaved();
  };
  const id = (field: string) => `category-${key}-${field}`;
  return (
    <form className="category" data-form={key} onSubmit={(e) => { e.preventDefault(); void save(); }}>
      <label htmlFor={id("name")}>{t.categories.name}</label>
      <input id={id("name")} value={form.name} onChange={(e) => set("name")(e.target.value)} aria-describedby={id("name-hint")} />
      <p id={id("name-hint")} className="muted">{t.categories.nameHint}</p>
      <label htmlFor={id("description")}>{t.categories.description}</label>
      <textarea id={id("description")} rows={2} value={form.description} maxLength={MAX_DESCRIPTION * 2}
                onChange={(e) => set("description")(e.target.value)} />
      <label htmlFor={id("examples")}>{format(t.categories.examples, { max: MAX_EXAMPLES })}</label>
      <textarea id={id("examples")} rows={3} value={form.examples} onChange={(e) => set("examples")(e.target.value)} />
      <div className="actions">
        <label>
          {t.categories.action}{" "}
          <select value={form.action} onChange={(e) => set("action")(e.target.value)} data-field="action">
            {ACTIONS.map((action) => (
              <option key={action} value={action}>{t.categories.actions[action]}</option>
            ))}
          </select>
        </label>
        <label>
          {t.categories.threshold}{" "}
          <input type="text" inputMode="decimal" size={5} value={form.minConfidence} data-field="threshold"
                 onChange={(e) => set("minConfidence")(e.target.value)} />
        </label>
        <label>
          {t.categories.urgency}{" "}
          <select value={form.handoffUrgency} onChange={(e) => set("handoffUrgency")(e.target.value)}>
            <option value="">{t.categories.never}</option>
            {URGENCIES.map((urgency) => (
              <option key={urgency} value={urgency}>{t.values.urgency[urgency]}</option>
            ))}
          </select>
        </label>
        <label>
          {t.categories.position}{" "}
          <input type="number" size={4} value={form.position} onChange={(e) => set("position")(e.target.value)} />
        </label>
        <label>
          <input type="checkbox" checked={form.active} onChange={(e) => set("active")(e.target.checked)} />{" "}
          {t.categories.active}
        </label>
        <button type="submit" disabled={busy} data-action="save">
          {category ? t.categories.save : t.categories.create}
        </button>
      </div>
      {problem ? (
        <p role="alert" className="error" data-testid="category-error">
          {format(t.categories.problems[problem.kind], { reason: problem.reason, max: MAX_EXAMPLES })}
        </p>
      ) : null}
      {saved ? <p role="status" className="muted" data-testid="category-saved">{t.categories.saved}</p> : null}
    </form>
  );
}
