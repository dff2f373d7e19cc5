import { NextResponse, type NextRequest } from "next/server";

import { SIGN_IN_PATH } from "@/lib/supabase/paths";
import { createClient } from "@/lib/supabase/server";

export async function POST(request: NextRequest) {
  const supabase = await createClient();
  await supabase.auth.signOut();
  return NextResponse.redirect(new URL(SIGN_IN_PATH, request.url), { status: 303 });
}
