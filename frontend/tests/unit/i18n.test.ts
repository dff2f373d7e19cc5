import { describe, expect, it } from "vitest";

import { en } from "@/lib/i18n/en";
import { format, pickLocale } from "@/lib/i18n";
import { ru } from "@/lib/i18n/ru";

function keys(value: unknown, prefix = ""): string[] {
  if (typeof value !== "object" || value === null) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}

describe("dictionaries", () => {
  it("have the same keys and the same placeholders in every language", () => {
    expect(keys(ru).sort()).toEqual(keys(en).sort());
    const placeholders = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort();
    const get = (dict: unknown, path: string) => path.split(".").reduce((o: any, k) => o[k], dict) as string; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const key of keys(en)) expect(placeholders(get(ru, key)), key).toEqual(placeholders(get(en, key)));
  });
});

describe("pickLocale", () => {
  it("prefers the person's choice", () => {
    expect(pickLocale("en", "ru-RU,ru;q=0.9")).toBe("en");
  });
  it("follows Accept-Language by weight", () => {
    expect(pickLocale(undefined, "de-DE,en;q=0.8,ru;q=0.5")).toBe("en");
    expect(pickLocale(undefined, "en;q=0.3,ru-RU;q=0.9")).toBe("ru");
  });
  it("falls back to Russian (the seed's language)", () => {
    expect(pickLocale("xx", "de,fr;q=0.5")).toBe("ru");
    expect(pickLocale(null, null)).toBe("ru");
  });
});

describe("format", () => {
  it("fills placeholders and leaves unknown ones visible", () => {
    expect(format("{n} of {m}", { n: 2 })).toBe("2 of {m}");
  });
});
