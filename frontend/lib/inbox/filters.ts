import { urgencyRank } from "@/lib/classification";
import type { InboxItem } from "./model";

export const FILTER_KEYS = ["platform", "category", "urgency", "language"] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Partial<Record<FilterKey, string>>;

/** The value of one filter for a row (from the conversation, or its last inbound message's classification). */
export function filterValue(item: InboxItem, key: FilterKey): string | null {
  if (key === "platform") return item.platform;
  return item.lastInbound?.classification?.[key] ?? null;
}

export function matches(item: InboxItem, filters: Filters): boolean {
  return FILTER_KEYS.every((key) => !filters[key] || filterValue(item, key) === filters[key]);
}

/** The values seen in the rows, for the filter menus (sorted, no duplicates). */
export function filterOptions(items: readonly InboxItem[], key: FilterKey): string[] {
  const values = new Set<string>();
  for (const item of items) {
    const value = filterValue(item, key);
    if (value) values.add(value);
  }
  return [...values].sort();
}

function lastActivity(item: InboxItem): number {
  return Date.parse(item.lastMessage?.created_at ?? item.updatedAt);
}

/** Most urgent first (by the last inbound message's classification), then the latest message first. */
export function compareInbox(a: InboxItem, b: InboxItem): number {
  const byUrgency = urgencyRank(b.lastInbound?.classification?.urgency) - urgencyRank(a.lastInbound?.classification?.urgency);
  if (byUrgency !== 0) return byUrgency;
  const byTime = lastActivity(b) - lastActivity(a);
  return byTime !== 0 ? byTime : a.id.localeCompare(b.id);
}

export function parseFilters(params: Record<string, string | string[] | undefined>): Filters {
  const filters: Filters = {};
  for (const key of FILTER_KEYS) {
    const value = params[key];
    if (typeof value === "string" && value) filters[key] = value;
  }
  return filters;
}
