import { cookies, headers } from "next/headers";

import { dictionary, pickLocale, LOCALE_COOKIE, type Dictionary, type Locale } from "./index";

export async function currentLocale(): Promise<Locale> {
  const [cookieStore, headerList] = await Promise.all([cookies(), headers()]);
  return pickLocale(cookieStore.get(LOCALE_COOKIE)?.value, headerList.get("accept-language"));
}

export async function currentDictionary(): Promise<{ locale: Locale; t: Dictionary }> {
  const locale = await currentLocale();
  return { locale, t: dictionary(locale) };
}
