"use client";

import { useEffect, useState } from "react";

import { loadDraft, saveDraft } from "@/lib/drafts";
import { useI18n } from "@/lib/i18n/context";

/**
 * The reply box. Sending arrives with the conversation controls (issue 11: a reply RPC under RLS); until
 * then it keeps what the operator types in sessionStorage under the conversation, so nothing typed is
 * lost, even across an expired session's trip through sign-in.
 */
export function Composer({ conversationId }: { conversationId: string }) {
  const { t } = useI18n();
  const [text, setText] = useState("");
  useEffect(() => {
    // Read after mount: sessionStorage exists only in the browser, and the server rendered an empty box.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setText(loadDraft(window.sessionStorage, conversationId));
  }, [conversationId]);
  return (
    <form className="composer" onSubmit={(e) => e.preventDefault()}>
      <label htmlFor="composer">{t.conversation.composer}</label>
      <textarea
        id="composer"
        name="reply"
        rows={4}
        value={text}
        aria-describedby="composer-hint"
        onChange={(e) => {
          setText(e.target.value);
          saveDraft(window.sessionStorage, conversationId, e.target.value);
        }}
      />
      <p id="composer-hint" className="muted">
        {t.conversation.composerHint}
      </p>
    </form>
  );
}
