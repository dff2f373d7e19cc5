import { describe, expect, it } from "vitest";

import { parseCategory, problemOf } from "@/lib/categories";

const form = (over: Partial<Parameters<typeof parseCategory>[0]> = {}) => ({
  name: "warranty", description: "Repairs", examples: "my kettle broke\n\n  it stopped  \n", action: "draft",
  minConfidence: "0.6", handoffUrgency: "high", active: true, position: "3", ...over,
}); // prettier-ignore

describe("a category form", () => {
  it("becomes a row: examples one per line, numbers parsed", () => {
    expect(parseCategory(form())).toEqual({
      ok: true,
      value: { name: "warranty", description: "Repairs", examples: ["my kettle broke", "it stopped"], action: "draft",
               min_confidence: 0.6, handoff_urgency: "high", active: true, position: 3 }, // prettier-ignore
    });
    expect(parseCategory(form({ handoffUrgency: "" })).ok && parseCategory(form({ handoffUrgency: "" }))).toMatchObject({
      value: { handoff_urgency: null },
    });
  });
  it("names what is wrong, as the table's constraints would", () => {
    const problem = (over: Parameters<typeof form>[0]) => {
      const parsed = parseCategory(form(over));
      return parsed.ok ? null : parsed.problem;
    };
    expect(problem({ name: "" })).toBe("name");
    expect(problem({ name: "Warranty" })).toBe("name");
    expect(problem({ name: "a".repeat(49) })).toBe("name");
    expect(problem({ minConfidence: "2" })).toBe("threshold");
    expect(problem({ minConfidence: "abc" })).toBe("threshold");
    expect(problem({ description: "x".repeat(501) })).toBe("description");
    expect(problem({ examples: Array.from({ length: 11 }, (_, i) => `e${i}`).join("\n") })).toBe("examples");
  });
  it("reads the database's refusal by its constraint", () => {
    expect(problemOf({ code: "23505", message: 'duplicate key value violates unique constraint "categories_name_unique"' })).toBe("unique");
    expect(problemOf({ code: "23514", message: 'violates check constraint "categories_min_confidence_between_0_and_1"' })).toBe("threshold");
    expect(problemOf({ code: "42501", message: "permission denied" })).toBe("failed");
  });
});
