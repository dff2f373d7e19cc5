import { setLocale } from "@/app/actions";
import { LOCALES } from "@/lib/i18n";
import { currentDictionary } from "@/lib/i18n/server";

/** One button per language; the choice is a cookie, so it holds across pages and sign-ins. */
export async function LocaleSwitch() {
  const { locale, t } = await currentDictionary();
  return (
    <form action={setLocale} className="locale" aria-label={t.nav.language}>
      {LOCALES.map((code) => (
        <button key={code} type="submit" name="locale" value={code} aria-pressed={code === locale} lang={code}>
          {t.locale[code]}
        </button>
      ))}
    </form>
  );
}
