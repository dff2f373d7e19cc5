import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database, Tables } from "@/lib/database.types";

// The business's categories (the `categories` table): what the model may choose, and what the bot may do
// with each. Admins edit them straight through PostgREST under RLS; the listeners pick a change up within
// a second (docs/conversation-controls.md). The table's constraints are the rules; the form checks the
// same ones first so a person learns what is wrong before anything is sent.

type Client = SupabaseClient<Database>;

export type Category = Pick<
  Tables<"categories">,
  "id" | "name" | "description" | "examples" | "action" | "min_confidence" | "handoff_urgency" | "active" | "position"
>;
export type CategoryInput = Omit<Category, "id">;

export const ACTIONS = ["auto", "draft", "handoff"] as const;
export const URGENCIES = ["low", "normal", "high", "critical"] as const;
export const MAX_DESCRIPTION = 500;
export const MAX_EXAMPLES = 10;
const NAME = /^[a-z][a-z0-9_]{0,47}$/;

const COLUMNS = "id, name, description, examples, action, min_confidence, handoff_urgency, active, position";

export async function fetchCategories(client: Client): Promise<Category[]> {
  const { data, error } = await client.from("categories").select(COLUMNS).order("position").order("name");
  if (error) throw new Error(error.message);
  return data;
}

export type Problem = "name" | "description" | "examples" | "threshold" | "unique" | "failed";

/** The form's fields as typed (text), checked and turned into a row; or the first problem, by field. */
export function parseCategory(form: {
  name: string;
  description: string;
  examples: string;
  action: string;
  minConfidence: string;
  handoffUrgency: string;
  active: boolean;
  position: string;
}): { ok: true; value: CategoryInput } | { ok: false; problem: Problem } {
  const name = form.name.trim();
  if (!NAME.test(name)) return { ok: false, problem: "name" };
  if ([...form.description].length > MAX_DESCRIPTION) return { ok: false, problem: "description" };
  const examples = form.examples.split("\n").map((line) => line.trim()).filter(Boolean);
  if (examples.length > MAX_EXAMPLES) return { ok: false, problem: "examples" };
  const threshold = Number(form.minConfidence.trim() || "0");
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) return { ok: false, problem: "threshold" };
  const action = (ACTIONS as readonly string[]).includes(form.action) ? form.action : "auto";
  const urgency = (URGENCIES as readonly string[]).includes(form.handoffUrgency) ? form.handoffUrgency : null;
  const position = Number.parseInt(form.position || "0", 10);
  return {
    ok: true,
    value: {
      name, description: form.description.trim(), examples, action, min_confidence: threshold,
      handoff_urgency: urgency, active: form.active, position: Number.isFinite(position) ? position : 0,
    }, // prettier-ignore
  };
}

/** The database's refusal, by the constraint it names (the form's checks should have caught most). */
export function problemOf(error: { code?: string; message?: string }): Problem {
  const message = error.message ?? "";
  if (error.code === "23505" || message.includes("categories_name_unique")) return "unique";
  if (message.includes("categories_name_is_a_snake_case_label")) return "name";
  if (message.includes("categories_min_confidence_between_0_and_1")) return "threshold";
  if (message.includes("categories_description_length")) return "description";
  if (message.includes("categories_examples_at_most_10")) return "examples";
  return "failed";
}
