import { describe, expect, it } from "vitest";

import { compareThread, isUuid, toThreadMessage } from "@/lib/conversation/model";
import { draftKey, loadDraft, saveDraft, type DraftStore } from "@/lib/drafts";
import { supabaseConfig, MissingSettingError } from "@/lib/supabase/config";
import { safeNext } from "@/lib/supabase/paths";

class MemoryStore implements DraftStore {
  data = new Map<string, string>();
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.data.set(key, value);
  }
  removeItem(key: string) {
    this.data.delete(key);
  }
}

describe("composer drafts", () => {
  it("are kept per conversation and cleared when emptied", () => {
    const store = new MemoryStore();
    saveDraft(store, "c1", "half a reply");
    saveDraft(store, "c2", "another");
    expect(loadDraft(store, "c1")).toBe("half a reply");
    saveDraft(store, "c1", "");
    expect(store.data.has(draftKey("c1"))).toBe(false);
    expect(loadDraft(store, "c2")).toBe("another");
  });

  it("survive storage that throws", () => {
    const broken: DraftStore = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("quota");
      },
      removeItem: () => undefined,
    };
    expect(() => saveDraft(broken, "c", "x")).not.toThrow();
    expect(loadDraft(broken, "c")).toBe("");
  });
});

describe("safeNext", () => {
  it("keeps paths on this site and refuses other origins", () => {
    expect(safeNext("/conversations/abc?x=1")).toBe("/conversations/abc?x=1");
    expect(safeNext("//evil.example/")).toBe("/inbox");
    expect(safeNext("/\\evil.example")).toBe("/inbox");
    expect(safeNext("https://evil.example/")).toBe("/inbox");
    expect(safeNext("/login?next=/inbox")).toBe("/inbox");
    expect(safeNext(null)).toBe("/inbox");
  });
});

describe("supabaseConfig", () => {
  it("names the missing setting", () => {
    expect(() => supabaseConfig({ SUPABASE_URL: "http://x" } as unknown as NodeJS.ProcessEnv)).toThrow(MissingSettingError);
    expect(() => supabaseConfig({ SUPABASE_URL: "http://x" } as unknown as NodeJS.ProcessEnv)).toThrow(/SUPABASE_ANON_KEY/);
  });
  it("trims the URL's trailing slash", () => {
    expect(supabaseConfig({ SUPABASE_URL: "http://x/", SUPABASE_ANON_KEY: "k" } as unknown as NodeJS.ProcessEnv).url).toBe("http://x");
  });
});

describe("thread", () => {
  it("takes the embedded classification and reply, and orders by time then id", () => {
    const base = { content: "x", state: null, updated_at: "", reply_to: null, last_error: null };
    const a = toThreadMessage({ ...base, id: "b", direction: "outbound", created_at: "2026-12-01T10:00:00Z", classifications: null, replies: [{ id: "r", model: "m", kind: "bot", author_id: null, delivery_state: "delivered", delivery_attempts: 1, last_delivery_error: null, delivered_at: null }] }); // prettier-ignore
    const b = toThreadMessage({ ...base, id: "a", direction: "inbound", created_at: "2026-12-01T10:00:00Z", classifications: [], replies: null }); // prettier-ignore
    expect(a.delivery?.model).toBe("m");
    expect(b.classification).toBeNull();
    expect([a, b].sort(compareThread).map((m) => m.id)).toEqual(["a", "b"]);
  });
  it("recognises conversation ids", () => {
    expect(isUuid("0b0e3f3a-8f1e-4c55-9a1d-2f7c2c1b9d10")).toBe(true);
    expect(isUuid("../etc")).toBe(false);
  });
});

describe("sendTestMessage", () => {
  it("posts the checklist's request under NEXT_PUBLIC_API_URL's default and returns the answer", async () => {
    const { API_BASE, sendTestMessage } = await import("@/lib/api");
    expect(API_BASE).toBe("/api");
    const calls: Array<[string, RequestInit | undefined]> = [];
    const fetcher = (async (url: string, init?: RequestInit) => {
      calls.push([url, init]);
      return new Response(JSON.stringify({ state: "answered" }), { status: 200 });
    }) as unknown as typeof fetch;
    const result = await sendTestMessage({ clientId: "c", chatId: "x", webhookUrl: "https://h/", content: "hi" }, fetcher);
    expect(result).toEqual({ ok: true, status: 200, body: { state: "answered" } });
    expect(calls[0]?.[0]).toBe("/api/messages/");
    expect((calls[0]?.[1]?.headers as Record<string, string>)["X-Platform"]).toBe("test");
  });

  it("says what the API refused, in its words", async () => {
    const { sendTestMessage } = await import("@/lib/api");
    const fetcher = (async () =>
      new Response(JSON.stringify({ error: { code: "invalid_request", message: "the X-Chat-ID header is required", field: "X-Chat-ID" } }), { status: 422 })) as unknown as typeof fetch;
    const result = await sendTestMessage({ clientId: "c", chatId: "", webhookUrl: "https://h/", content: "hi" }, fetcher);
    expect(result).toEqual({ ok: false, status: 422, error: "the X-Chat-ID header is required" });
  });
});

describe("ReadError", () => {
  it("says the session ended only on 401", async () => {
    const { ReadError } = await import("@/lib/live/errors");
    expect(new ReadError("JWT expired", 401).sessionEnded).toBe(true);
    expect(new ReadError("permission denied", 403).sessionEnded).toBe(false);
    expect(new ReadError("Failed to fetch", 0).sessionEnded).toBe(false);
  });
});
