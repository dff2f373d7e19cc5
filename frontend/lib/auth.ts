import type { User } from "@supabase/supabase-js";
import { redirect } from "next/navigation";

import { SIGN_IN_PATH } from "@/lib/supabase/paths";
import { createClient } from "@/lib/supabase/server";

/** Every console page starts with this: the user as Supabase Auth confirms it (getUser() asks the Auth
 * server; the cookie alone proves nothing), or a trip to sign-in that comes back to `next`. */
export async function requireUser(next: string) {
  const supabase = await createClient();
  const { data, error } = await supabase.auth.getUser();
  if (error || !data.user) redirect(`${SIGN_IN_PATH}?next=${encodeURIComponent(next)}`);
  return { supabase, user: data.user as User };
}
