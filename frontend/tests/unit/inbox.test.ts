import { describe, expect, it } from "vitest";

import type { Classification } from "@/lib/classification";
import { compareInbox, filterOptions, matches, parseFilters } from "@/lib/inbox/filters";
import { toInboxItem, type InboxItem } from "@/lib/inbox/model";
import { inTab, TABS } from "@/lib/inbox/tabs";

const classification = (over: Partial<Classification> = {}): Classification => ({
  category: "billing", intent: "refund", sentiment: "negative", urgency: "normal", language: "ru", confidence: 0.9,
  needs_human: false, ...over,
}); // prettier-ignore

function item(id: string, over: Partial<InboxItem> = {}, at = "2026-12-01T10:00:00+00:00"): InboxItem {
  return {
    id, clientId: "c", platform: "test", chatId: id, updatedAt: at,
    lastMessage: { id: `${id}-m`, direction: "inbound", content: "hi", state: "answered", created_at: at },
    lastInbound: { id: `${id}-m`, direction: "inbound", content: "hi", state: "answered", created_at: at, classification: classification() },
    ...over,
  }; // prettier-ignore
}

describe("toInboxItem", () => {
  it("takes the latest message and the latest inbound message's classification", () => {
    const row = toInboxItem({
      id: "conv", client_id: "c", platform: "test", chat_id: "chat", updated_at: "2026-12-01T10:00:02+00:00",
      messages: [
        { id: "in", direction: "inbound", content: "help", state: "answered", created_at: "2026-12-01T10:00:00+00:00", classifications: classification({ urgency: "high" }) },
        { id: "out", direction: "outbound", content: "sure", state: null, created_at: "2026-12-01T10:00:01+00:00", classifications: null },
      ],
    }); // prettier-ignore
    expect(row.lastMessage?.id).toBe("out");
    expect(row.lastInbound?.id).toBe("in");
    expect(row.lastInbound?.classification?.urgency).toBe("high");
  });

  it("copes with a conversation that has no messages yet", () => {
    const row = toInboxItem({ id: "c", client_id: "c", platform: "p", chat_id: "x", updated_at: "2026-12-01T10:00:00Z", messages: [] });
    expect(row.lastMessage).toBeNull();
    expect(row.lastInbound).toBeNull();
  });
});

describe("tabs", () => {
  it("puts a handed-off conversation in Needs a person and nowhere else (of the open tabs)", () => {
    const handed = item("h", { lastInbound: { ...item("h").lastInbound!, state: "handoff" } });
    expect(TABS.filter((tab) => inTab(tab, handed, "me"))).toEqual(["needs_person"]);
  });

  it("puts a conversation the bot answers in Bot", () => {
    expect(TABS.filter((tab) => inTab(tab, item("b"), "me"))).toEqual(["bot"]);
  });

  it("reads the controls' columns once they exist: drafts, bot off, assignment, resolution", () => {
    expect(inTab("needs_person", item("d", { draftsWaiting: 1 }), "me")).toBe(true);
    expect(inTab("needs_person", item("o", { botEnabled: false }), "me")).toBe(true);
    expect(inTab("mine", item("m", { assignedTo: "me" }), "me")).toBe(true);
    expect(inTab("mine", item("m", { assignedTo: "other" }), "me")).toBe(false);
    const resolved = item("r", { resolvedAt: "2026-12-01T11:00:00Z", draftsWaiting: 1 });
    expect(TABS.filter((tab) => inTab(tab, resolved, "me"))).toEqual(["resolved"]);
  });
});

describe("filters and order", () => {
  it("sorts by urgency first, then the latest message first", () => {
    const rows = [
      item("old-critical", { lastInbound: { ...item("x").lastInbound!, classification: classification({ urgency: "critical" }) } }, "2026-12-01T09:00:00Z"),
      item("new-normal", {}, "2026-12-01T12:00:00Z"),
      item("old-normal", {}, "2026-12-01T08:00:00Z"),
      item("unclassified", { lastInbound: null }, "2026-12-01T13:00:00Z"),
    ]; // prettier-ignore
    expect(rows.sort(compareInbox).map((r) => r.id)).toEqual(["old-critical", "new-normal", "old-normal", "unclassified"]);
  });

  it("filters by platform and by the classification's fields", () => {
    const en = item("en", { platform: "telegram", lastInbound: { ...item("x").lastInbound!, classification: classification({ language: "en" }) } });
    expect(matches(en, { platform: "telegram", language: "en" })).toBe(true);
    expect(matches(en, { language: "ru" })).toBe(false);
    expect(matches(item("none", { lastInbound: null }), { category: "billing" })).toBe(false);
    expect(filterOptions([en, item("ru")], "language")).toEqual(["en", "ru"]);
  });

  it("reads filters from the URL, ignoring unknown and repeated keys", () => {
    expect(parseFilters({ platform: "test", urgency: ["a", "b"], other: "x" })).toEqual({ platform: "test" });
  });
});

describe("the controls on an inbox row", () => {
  const base = { id: "c", client_id: "c", platform: "p", chat_id: "x", updated_at: "2026-12-04T10:00:00Z", messages: [] };
  const now = Date.parse("2026-12-04T10:00:00Z");
  it("reads the assignee, resolution, drafts and unread count", () => {
    const row = toInboxItem({ ...base, bot_mode: "auto", bot_paused_at: null, bot_paused_until: null, assignee_id: "me",
      status: "resolved", resolved_at: "2026-12-04T09:00:00Z", unread_count: 3, replies: [{ id: "d1" }, { id: "d2" }] }, now); // prettier-ignore
    expect([row.assignedTo, row.resolvedAt, row.draftsWaiting, row.unread, row.botEnabled]).toEqual(
      ["me", "2026-12-04T09:00:00Z", 2, 3, true]); // prettier-ignore
    expect(toInboxItem({ ...base, status: "open", resolved_at: "2026-12-04T09:00:00Z" }, now).resolvedAt).toBeNull();
  });
  it("counts the bot as off when its mode is off or an operator's reply paused it", () => {
    const enabled = (over: object) => toInboxItem({ ...base, ...over }, now).botEnabled;
    expect(enabled({ bot_mode: "off" })).toBe(false);
    expect(enabled({ bot_mode: "auto", bot_paused_at: "2026-12-04T09:00:00Z", bot_paused_until: null })).toBe(false);
    expect(enabled({ bot_mode: "auto", bot_paused_at: "2026-12-04T09:00:00Z", bot_paused_until: "2026-12-04T09:30:00Z" })).toBe(true);
    expect(enabled({ bot_mode: "draft" })).toBe(true);
  });
  it("puts a taken-over conversation whose customer wrote last in Needs a person, and in Mine", () => {
    const at = "2026-12-04T10:00:00Z";
    const row = toInboxItem({ ...base, bot_mode: "off", assignee_id: "me", status: "open", messages: [
      { id: "m", direction: "inbound", content: "hi", state: "pending", created_at: at, classifications: null }] }, now); // prettier-ignore
    expect(TABS.filter((tab) => inTab(tab, row, "me"))).toEqual(["needs_person", "mine"]);
  });
});
