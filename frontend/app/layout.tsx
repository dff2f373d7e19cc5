import type { Metadata } from "next";
import type { ReactNode } from "react";

import { I18nProvider } from "@/lib/i18n/context";
import { currentDictionary } from "@/lib/i18n/server";
import { supabaseConfig } from "@/lib/supabase/config";
import { SupabaseProvider } from "@/lib/supabase/provider";
import "./globals.css";

export async function generateMetadata(): Promise<Metadata> {
  const { t } = await currentDictionary();
  return { title: `${t.app.name} · ${t.app.console}` };
}

export default async function RootLayout({ children }: { children: ReactNode }) {
  const { locale } = await currentDictionary();
  const config = supabaseConfig();
  return (
    <html lang={locale}>
      <body>
        <I18nProvider locale={locale}>
          <SupabaseProvider config={config}>{children}</SupabaseProvider>
        </I18nProvider>
      </body>
    </html>
  );
}
