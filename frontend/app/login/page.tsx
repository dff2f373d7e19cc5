import { redirect } from "next/navigation";

import { LoginForm } from "@/components/LoginForm";
import { LocaleSwitch } from "@/components/LocaleSwitch";
import { currentDictionary } from "@/lib/i18n/server";
import { safeNext } from "@/lib/supabase/paths";
import { createClient } from "@/lib/supabase/server";

type Props = { searchParams: Promise<Record<string, string | string[] | undefined>> };

export default async function LoginPage({ searchParams }: Props) {
  const params = await searchParams;
  const next = safeNext(typeof params.next === "string" ? params.next : null);
  const supabase = await createClient();
  const { data } = await supabase.auth.getUser();
  if (data.user) redirect(next);
  const { t } = await currentDictionary();
  return (
    <main id="main" className="login">
      <h1>{t.login.title}</h1>
      <p className="muted">{t.app.console}</p>
      {params.expired ? (
        <p role="status" className="notice">
          {t.login.expired}
        </p>
      ) : null}
      <LoginForm next={next} />
      <LocaleSwitch />
    </main>
  );
}
