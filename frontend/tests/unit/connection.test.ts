import { describe, expect, it } from "vitest";

import { combine, transition, type Connection, type ConnectionEvent } from "@/lib/live/connection";

function run(events: ConnectionEvent[], from: Connection = "connecting") {
  let connection = from;
  const refetches: boolean[] = [];
  for (const event of events) {
    const next = transition(connection, event);
    connection = next.connection;
    refetches.push(next.refetch);
  }
  return { connection, refetches };
}

describe("the live connection", () => {
  it("is live after the first SUBSCRIBED, and refetches then (the gap between first screen and join)", () => {
    expect(run([{ type: "status", status: "SUBSCRIBED" }])).toEqual({ connection: "live", refetches: [true] });
  });

  it("goes down on a channel error and refetches on the re-SUBSCRIBED that follows", () => {
    const result = run([
      { type: "status", status: "SUBSCRIBED" },
      { type: "status", status: "CHANNEL_ERROR" },
      { type: "status", status: "SUBSCRIBED" },
    ]);
    expect(result).toEqual({ connection: "live", refetches: [true, false, true] });
  });

  it.each(["CHANNEL_ERROR", "TIMED_OUT", "CLOSED"] as const)("shows the banner on %s without refetching", (status) => {
    expect(transition("live", { type: "status", status })).toEqual({ connection: "down", refetch: false });
  });

  it("refetches when the tab becomes visible, without changing the state", () => {
    expect(transition("down", { type: "visible" })).toEqual({ connection: "down", refetch: true });
    expect(transition("live", { type: "visible" })).toEqual({ connection: "live", refetch: true });
  });

  it("refetches when the server confirms the postgres_changes subscription", () => {
    expect(transition("live", { type: "confirmed" })).toEqual({ connection: "live", refetch: true });
  });

  it("a page is live only when every collection is", () => {
    expect(combine(["live", "live"])).toBe("live");
    expect(combine(["live", "connecting"])).toBe("connecting");
    expect(combine(["connecting", "down"])).toBe("down");
  });
});
