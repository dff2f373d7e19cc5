import type { InboxItem } from "./model";

// The inbox's tabs, as predicates over one row: the one place that says which conversation is where.
// Today's schema knows handoffs (an inbound message in state handoff); the conversation controls add
// assignment, resolution, the bot mode and drafts, which these predicates already read when present.

export const TABS = ["needs_person", "bot", "mine", "resolved"] as const;
export type Tab = (typeof TABS)[number];

export function isTab(value: unknown): value is Tab {
  return typeof value === "string" && (TABS as readonly string[]).includes(value);
}

export function isResolved(item: InboxItem): boolean {
  return Boolean(item.resolvedAt);
}

/** Handed to a person, drafts waiting for approval, or the bot is off and the customer is unanswered. */
export function needsPerson(item: InboxItem): boolean {
  if (isResolved(item)) return false;
  if (item.lastInbound?.state === "handoff") return true;
  if ((item.draftsWaiting ?? 0) > 0) return true;
  const unanswered = item.lastMessage?.direction === "inbound";
  return item.botEnabled === false && unanswered;
}

export const TAB_PREDICATES: Record<Tab, (item: InboxItem, me: string) => boolean> = {
  needs_person: (item) => needsPerson(item),
  bot: (item) => !isResolved(item) && !needsPerson(item),
  mine: (item, me) => !isResolved(item) && item.assignedTo === me,
  resolved: (item) => isResolved(item),
};

export function inTab(tab: Tab, item: InboxItem, me: string): boolean {
  return TAB_PREDICATES[tab](item, me);
}
