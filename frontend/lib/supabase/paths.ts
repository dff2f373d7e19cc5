export const SIGN_IN_PATH = "/login";
/** Pages a person reaches without a session (the proxy lets them through; proxy.ts's matcher skips
 * /health and the /api pass-through altogether). */
export const PUBLIC_PATHS = [SIGN_IN_PATH];

/** Where to go after signing in: only a path on this site, never another origin. */
export function safeNext(next: string | null | undefined, fallback = "/inbox"): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return fallback;
  if (next === SIGN_IN_PATH || next.startsWith(`${SIGN_IN_PATH}?`)) return fallback;
  return next;
}
