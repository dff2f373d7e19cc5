"use client";

import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";

import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";
import { useSupabase } from "@/lib/supabase/provider";

export function LoginForm({ next }: { next: string }) {
  const supabase = useSupabase();
  const router = useRouter();
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const form = new FormData(event.currentTarget);
    const email = String(form.get("email") ?? "").trim();
    const password = String(form.get("password") ?? "");
    if (!email || !password) {
      setError(t.login.missing);
      return;
    }
    setBusy(true);
    setError(null);
    const { error: failure } = await supabase.auth.signInWithPassword({ email, password });
    if (failure) {
      setError(format(t.login.failed, { reason: failure.message }));
      setBusy(false);
      return;
    }
    router.replace(next);
    router.refresh();
  }

  return (
    <form onSubmit={submit} className="stack" noValidate>
      <label htmlFor="email">{t.login.email}</label>
      <input id="email" name="email" type="email" autoComplete="username" required />
      <label htmlFor="password">{t.login.password}</label>
      <input id="password" name="password" type="password" autoComplete="current-password" required />
      <button type="submit" disabled={busy} aria-busy={busy}>
        {busy ? t.login.submitting : t.login.submit}
      </button>
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
    </form>
  );
}
