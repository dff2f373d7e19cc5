import { TestMessageForm } from "@/components/TestMessageForm";
import { requireUser } from "@/lib/auth";
import { backendHealth } from "@/lib/backend";
import { format } from "@/lib/i18n";
import { currentDictionary } from "@/lib/i18n/server";

export const dynamic = "force-dynamic";

/** The Python API's health as the console's server sees it (BACKEND_API_URL, read at run time). */
export default async function StatusPage() {
  await requireUser("/status");
  const [{ t }, health] = await Promise.all([currentDictionary(), backendHealth()]);
  return (
    <main id="main">
      <h1>{t.status.title}</h1>
      <h2>{t.status.api}</h2>
      {health.state === "not_configured" ? (
        <p role="alert">{t.status.notConfigured}</p>
      ) : (
        <>
          <p className="muted">{format(t.status.apiUrl, { url: health.url })}</p>
          <p data-testid="backend-health" data-state={health.state}>
            {health.state === "ok" ? t.status.ok : format(t.status.unreachable, { reason: health.reason })}
          </p>
          {health.state === "ok" ? (
            <details>
              <summary>{t.status.details}</summary>
              <pre>{JSON.stringify(health.body, null, 2)}</pre>
            </details>
          ) : null}
        </>
      )}
      <TestMessageForm />
    </main>
  );
}
