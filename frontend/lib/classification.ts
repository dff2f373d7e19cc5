import type { Tables } from "@/lib/database.types";

export type Classification = Pick<
  Tables<"classifications">,
  "category" | "intent" | "sentiment" | "urgency" | "language" | "confidence" | "needs_human"
>;

/** The columns the console shows, for select strings. */
export const CLASSIFICATION_COLUMNS = "category, intent, sentiment, urgency, language, confidence, needs_human";

export const URGENCIES = ["critical", "high", "normal", "low"] as const;
export type Urgency = (typeof URGENCIES)[number];

/** Higher is more urgent; no classification (yet) sorts below low. */
export function urgencyRank(urgency: string | null | undefined): number {
  const index = URGENCIES.indexOf(urgency as Urgency);
  return index === -1 ? 0 : URGENCIES.length - index;
}

/** An embedded to-one resource comes back as an object (or null); tolerate an array too. */
export function one<T>(value: T | T[] | null | undefined): T | null {
  if (Array.isArray(value)) return value[0] ?? null;
  return value ?? null;
}
