import type { SupabaseClient } from "@supabase/supabase-js";

import type { Database } from "@/lib/database.types";

// The analytics views (docs/conversation-controls.md) over the last days, summed into what a person reads
// at a glance. The views are security invoker: an operator reads what RLS lets them read. Percentiles do
// not add up across days, so time to first response is shown per day, as the view computes it.

type Client = SupabaseClient<Database>;
type View<Name extends keyof Database["public"]["Views"]> = Database["public"]["Views"][Name]["Row"];

export const DAYS = 14;

export type Dashboard = {
  since: string;
  messages: View<"analytics_messages_daily">[];
  autoResolve: View<"analytics_auto_resolve_daily">[];
  firstResponse: View<"analytics_first_response">[];
  drafts: View<"analytics_drafts_daily">[];
  delivery: View<"analytics_delivery_daily">[];
  usage: View<"analytics_model_usage_daily">[];
};

export function sinceDay(now: Date, days: number = DAYS): string {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)));
  return start.toISOString().slice(0, 10);
}

export async function fetchDashboard(client: Client, now: Date = new Date()): Promise<Dashboard> {
  const since = sinceDay(now);
  const read = async <Name extends keyof Database["public"]["Views"]>(name: Name) => {
    const { data, error } = await client.from(name).select("*").gte("day", since).order("day");
    if (error) throw new Error(`${name}: ${error.message}`);
    return data as unknown as View<Name>[];
  };
  const [messages, autoResolve, firstResponse, drafts, delivery, usage] = await Promise.all([
    read("analytics_messages_daily"),
    read("analytics_auto_resolve_daily"),
    read("analytics_first_response"),
    read("analytics_drafts_daily"),
    read("analytics_delivery_daily"),
    read("analytics_model_usage_daily"),
  ]);
  return { since, messages, autoResolve, firstResponse, drafts, delivery, usage };
}

export type Bar = { label: string; value: number };
/** The label of rows whose key is null (a message not classified yet). */
export const NO_LABEL = "—";

/** Sum ``value`` by ``key`` over the rows, largest first. */
export function totals<Row>(rows: readonly Row[], key: (row: Row) => string | null, value: (row: Row) => number | null): Bar[] {
  const sums = new Map<string, number>();
  for (const row of rows) {
    const label = key(row) ?? NO_LABEL;
    sums.set(label, (sums.get(label) ?? 0) + (value(row) ?? 0));
  }
  return [...sums].map(([label, v]) => ({ label, value: v })).sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
}

const sum = <Row>(rows: readonly Row[], value: (row: Row) => number | null) =>
  rows.reduce((total, row) => total + (value(row) ?? 0), 0);

/** A share in 0..1, or null when there is nothing to divide by. */
export function rate(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

export function summary(d: Dashboard) {
  const approved = sum(d.drafts, (r) => r.approved);
  const discarded = sum(d.drafts, (r) => r.discarded);
  const delivered = sum(d.delivery, (r) => r.delivered);
  const failed = sum(d.delivery, (r) => r.failed) + sum(d.delivery, (r) => r.stopped);
  return {
    messages: sum(d.messages, (r) => r.messages),
    byCategory: totals(d.messages, (r) => r.category, (r) => r.messages),
    byOutcome: totals(d.messages, (r) => r.outcome, (r) => r.messages),
    autoResolve: rate(sum(d.autoResolve, (r) => r.by_bot), sum(d.autoResolve, (r) => r.finished)),
    approval: rate(approved, approved + discarded),
    edits: rate(sum(d.drafts, (r) => r.edited), approved),
    draftsWaiting: sum(d.drafts, (r) => r.waiting),
    delivery: rate(delivered, delivered + failed),
    retried: sum(d.delivery, (r) => r.retried),
    costByDay: totals(d.usage, (r) => r.day, (r) => r.estimated_cost_usd).sort((a, b) => a.label.localeCompare(b.label)),
    tokensByModel: totals(d.usage, (r) => r.model, (r) => (r.prompt_tokens ?? 0) + (r.completion_tokens ?? 0)),
  };
}
