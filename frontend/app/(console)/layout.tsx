import Link from "next/link";
import type { ReactNode } from "react";

import { LocaleSwitch } from "@/components/LocaleSwitch";
import { SessionWatch } from "@/components/SessionWatch";
import { currentDictionary } from "@/lib/i18n/server";
import { createClient } from "@/lib/supabase/server";

// The console's frame. Each page checks the user itself (lib/auth.ts requireUser): layouts do not run
// again on client-side navigation, so a guard here alone would not be enough.
export default async function ConsoleLayout({ children }: { children: ReactNode }) {
  const supabase = await createClient();
  // Only for the navigation: is_admin() reads the caller's token (no session: false); pages check for themselves.
  const [{ t }, { data: admin }] = await Promise.all([currentDictionary(), supabase.rpc("is_admin")]);
  return (
    <>
      <a className="skip" href="#main">
        {t.nav.skip}
      </a>
      <header className="top">
        <strong>{t.app.name}</strong>
        <nav aria-label={t.app.console}>
          <Link href="/inbox">{t.nav.inbox}</Link>
          <Link href="/dashboard">{t.nav.dashboard}</Link>
          {admin === true ? <Link href="/categories">{t.nav.categories}</Link> : null}
          <Link href="/status">{t.nav.status}</Link>
        </nav>
        <LocaleSwitch />
        <form action="/auth/signout" method="post">
          <button type="submit">{t.nav.signOut}</button>
        </form>
      </header>
      <SessionWatch />
      {children}
    </>
  );
}
