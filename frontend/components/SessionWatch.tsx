"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";

import { SIGN_IN_PATH } from "@/lib/supabase/paths";
import { useSupabase } from "@/lib/supabase/provider";

/**
 * When the session ends under an open page (the refresh token expired or was revoked, or the person
 * signed out in another tab), go to sign-in and come back here afterwards. What the person was typing
 * survives the trip: composers keep their text in sessionStorage (lib/drafts.ts).
 */
export function SessionWatch() {
  const supabase = useSupabase();
  const router = useRouter();
  useEffect(() => {
    const { data } = supabase.auth.onAuthStateChange((event) => {
      if (event !== "SIGNED_OUT") return;
      const here = window.location.pathname + window.location.search;
      router.replace(`${SIGN_IN_PATH}?expired=1&next=${encodeURIComponent(here)}`);
    });
    return () => data.subscription.unsubscribe();
  }, [supabase, router]);
  return null;
}
