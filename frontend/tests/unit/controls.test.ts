import { describe, expect, it } from "vitest";

import { botOwns, MAX_TEXT_CHARS, refusalKind, textProblem, type Controls } from "@/lib/conversation/controls";

const controls = (over: Partial<Controls> = {}): Controls => ({
  id: "c", bot_mode: "auto", resume_mode: null, status: "open", assignee_id: null,
  bot_paused_at: null, bot_paused_until: null, handed_off_at: null, ...over,
}); // prettier-ignore

describe("who answers", () => {
  it("the bot owns an active conversation that no operator paused", () => {
    expect(botOwns(controls())).toBe(true);
    expect(botOwns(controls({ bot_mode: "draft" }))).toBe(true);
    expect(botOwns(controls({ bot_mode: "off" }))).toBe(false);
    expect(botOwns(undefined)).toBe(false);
  });
  it("a pause until handed back holds; a timed pause ends by the clock", () => {
    const now = Date.parse("2026-12-04T10:00:00Z");
    expect(botOwns(controls({ bot_paused_at: "2026-12-04T09:00:00Z" }), now)).toBe(false);
    const until = (at: string) => controls({ bot_paused_at: "2026-12-04T09:00:00Z", bot_paused_until: at });
    expect(botOwns(until("2026-12-04T10:30:00Z"), now)).toBe(false);
    expect(botOwns(until("2026-12-04T09:30:00Z"), now)).toBe(true);
  });
});

describe("a reply before it is sent", () => {
  it("refuses empty and oversize text as the RPC does, counting characters not UTF-16 units", () => {
    expect(textProblem("   \n")).toBe("empty");
    expect(textProblem("ok")).toBeNull();
    expect(textProblem("я".repeat(MAX_TEXT_CHARS))).toBeNull();
    expect(textProblem("x".repeat(MAX_TEXT_CHARS + 1))).toBe("tooLong");
    expect(textProblem("😀".repeat(MAX_TEXT_CHARS))).toBeNull(); // 8000 UTF-16 units, 4000 characters
  });
  it("names a refusal by its status", () => {
    const kind = (status: number) => refusalKind({ status, code: "", message: "" });
    expect([409, 400, 403, 401, 404, 500].map(kind)).toEqual(["conflict", "invalid", "forbidden", "forbidden", "missing", "failed"]);
  });
});
