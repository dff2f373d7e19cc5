"use client";

import { createContext, useContext, type ReactNode } from "react";

import { dictionary, type Dictionary, type Locale } from "./index";

const I18nContext = createContext<{ locale: Locale; t: Dictionary } | null>(null);

export function I18nProvider({ locale, children }: { locale: Locale; children: ReactNode }) {
  return <I18nContext.Provider value={{ locale, t: dictionary(locale) }}>{children}</I18nContext.Provider>;
}

export function useI18n(): { locale: Locale; t: Dictionary } {
  const value = useContext(I18nContext);
  if (!value) throw new Error("useI18n() outside <I18nProvider>");
  return value;
}
