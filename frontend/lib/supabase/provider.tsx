"use client";

import { createContext, useContext, useMemo, type ReactNode } from "react";

import { createClient, type BrowserClient } from "./client";
import type { SupabaseConfig } from "./config";

const SupabaseContext = createContext<BrowserClient | null>(null);

/** Gives client components the page's one browser client, made from the config the server read. */
export function SupabaseProvider({ config, children }: { config: SupabaseConfig; children: ReactNode }) {
  const client = useMemo(() => createClient(config), [config]);
  return <SupabaseContext.Provider value={client}>{children}</SupabaseContext.Provider>;
}

export function useSupabase(): BrowserClient {
  const client = useContext(SupabaseContext);
  if (!client) throw new Error("useSupabase() outside <SupabaseProvider>");
  return client;
}
