"use client";

import { useState, type FormEvent } from "react";

import { sendTestMessage, type TestMessageResult } from "@/lib/api";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";

/** The checklist's test message, sent from the browser through NEXT_PUBLIC_API_URL; shows the API's answer. */
export function TestMessageForm() {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<TestMessageResult | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    const form = new FormData(event.currentTarget);
    const field = (name: string) => String(form.get(name) ?? "").trim();
    setBusy(true);
    setResult(null);
    setResult(
      await sendTestMessage({
        clientId: field("client_id"),
        chatId: field("chat_id"),
        webhookUrl: field("webhook_url"),
        content: field("content"),
      }),
    );
    setBusy(false);
  }

  return (
    <form onSubmit={submit} className="stack" aria-labelledby="test-message-title">
      <h2 id="test-message-title">{t.testMessage.title}</h2>
      <label htmlFor="tm-client">{t.testMessage.clientId}</label>
      <input id="tm-client" name="client_id" defaultValue="test_client_001" required />
      <label htmlFor="tm-chat">{t.testMessage.chatId}</label>
      <input id="tm-chat" name="chat_id" defaultValue="test-123" required />
      <label htmlFor="tm-hook">{t.testMessage.webhookUrl}</label>
      <input id="tm-hook" name="webhook_url" type="url" defaultValue="https://test-webhook.com/test" required />
      <label htmlFor="tm-content">{t.testMessage.content}</label>
      <textarea id="tm-content" name="content" rows={2} defaultValue={t.testMessage.sample} required />
      <button type="submit" disabled={busy} aria-busy={busy}>
        {busy ? t.testMessage.sending : t.testMessage.send}
      </button>
      <div aria-live="polite">
        {result?.ok ? (
          <pre data-testid="test-message-result">{JSON.stringify(result.body, null, 2)}</pre>
        ) : result ? (
          <p role="alert" className="error">
            {format(t.testMessage.failed, { status: result.status, error: result.error })}
          </p>
        ) : null}
      </div>
    </form>
  );
}
