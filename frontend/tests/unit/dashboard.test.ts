import { describe, expect, it } from "vitest";

import { rate, sinceDay, summary, totals, type Dashboard } from "@/lib/dashboard";

const empty: Dashboard = { since: "2026-11-21", messages: [], autoResolve: [], firstResponse: [], drafts: [], delivery: [], usage: [] };

describe("the dashboard's sums", () => {
  it("starts the period thirteen days before today (UTC), fourteen days in all", () => {
    expect(sinceDay(new Date("2026-12-04T23:30:00Z"))).toBe("2026-11-21");
  });
  it("sums by key, largest first, and divides only by something", () => {
    const rows = [{ k: "a", v: 2 }, { k: "b", v: 5 }, { k: "a", v: 4 }, { k: null, v: 1 }];
    expect(totals(rows, (r) => r.k, (r) => r.v)).toEqual([{ label: "a", value: 6 }, { label: "b", value: 5 }, { label: "—", value: 1 }]);
    expect(rate(1, 4)).toBe(0.25);
    expect(rate(0, 0)).toBeNull();
  });
  it("computes the rates a person reads at a glance from the views' rows", () => {
    const d: Dashboard = {
      ...empty,
      messages: [
        { day: "2026-12-03", category: "pricing", platform: "test", outcome: "bot", messages: 6 },
        { day: "2026-12-04", category: "pricing", platform: "test", outcome: "handoff", messages: 1 },
        { day: "2026-12-04", category: "refund", platform: "test", outcome: "approved_draft", messages: 3 },
      ],
      autoResolve: [{ day: "2026-12-03", platform: "test", by_bot: 6, finished: 8, auto_resolve_rate: 0.75 }],
      drafts: [{ day: "2026-12-04", platform: "test", drafts: 5, approved: 3, edited: 1, discarded: 1, waiting: 1, approval_rate: null, edit_rate: null }],
      delivery: [{ day: "2026-12-04", platform: "test", replies: 10, delivered: 9, failed: 1, stopped: 0, retried: 2, attempts: 12, in_flight: 0, resends: 0, success_rate: null }],
      usage: [
        { day: "2026-12-04", model: "gpt-4o-mini", calls: 2, prompt_tokens: 100, completion_tokens: 20, estimated_cost_usd: 0.5 },
        { day: "2026-12-03", model: "gpt-4o-mini", calls: 1, prompt_tokens: 50, completion_tokens: 10, estimated_cost_usd: 0.25 },
      ],
    }; // prettier-ignore
    const s = summary(d);
    expect(s.messages).toBe(10);
    expect(s.byCategory).toEqual([{ label: "pricing", value: 7 }, { label: "refund", value: 3 }]);
    expect(s.byOutcome[0]).toEqual({ label: "bot", value: 6 });
    expect([s.autoResolve, s.approval, s.delivery, s.draftsWaiting, s.retried]).toEqual([0.75, 0.75, 0.9, 1, 2]);
    expect(s.edits).toBeCloseTo(1 / 3);
    expect(s.costByDay.map((b) => b.label)).toEqual(["2026-12-03", "2026-12-04"]); // by day, not by size
    expect(s.tokensByModel).toEqual([{ label: "gpt-4o-mini", value: 180 }]);
  });
  it("says nothing it cannot know on an empty history", () => {
    const s = summary(empty);
    expect([s.messages, s.autoResolve, s.approval, s.edits, s.delivery]).toEqual([0, null, null, null, null]);
  });
});
