"use client";

import { useCallback, useState } from "react";

import { ClassificationBadges } from "@/components/ClassificationBadges";
import { LiveBanner } from "@/components/LiveBanner";
import { act, refusalKind } from "@/lib/conversation/controls";
import { compareThread, fetchThread, type ThreadMessage } from "@/lib/conversation/model";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";
import { useLiveCollection, type LiveSource } from "@/lib/live/useLiveCollection";
import { useSupabase } from "@/lib/supabase/provider";

const str = (value: unknown) => (typeof value === "string" ? value : null);

function sources(conversationId: string): LiveSource[] {
  const filter = `conversation_id=eq.${conversationId}`;
  return [
    { table: "messages", filter, touches: (r) => [str(r.id)] },
    { table: "classifications", filter, touches: (r) => [str(r.message_id)] },
    // A reply row belongs to the outbound message that carries its text.
    { table: "replies", filter, touches: (r) => [str(r.outbound_message_id)] },
  ];
}

export function Thread({ conversationId, initial }: { conversationId: string; initial: ThreadMessage[] }) {
  const supabase = useSupabase();
  const { t } = useI18n();
  const fetchAll = useCallback(() => fetchThread(supabase, conversationId), [supabase, conversationId]);
  const fetchSome = useCallback((ids: string[]) => fetchThread(supabase, conversationId, ids), [supabase, conversationId]);
  const { rows, connection, error } = useLiveCollection({
    name: `thread:${conversationId}`,
    sources: sources(conversationId),
    fetchAll,
    fetchSome,
    compare: compareThread,
    initial,
  });
  return (
    <section aria-labelledby="thread-title">
      <h2 id="thread-title">{t.conversation.thread}</h2>
      <LiveBanner connection={connection} error={error} />
      <ol className="thread" data-testid="thread">
        {rows.map((message) => (
          <ThreadItem key={message.id} message={message} />
        ))}
      </ol>
    </section>
  );
}

function ThreadItem({ message }: { message: ThreadMessage }) {
  const { t, locale } = useI18n();
  const inbound = message.direction === "inbound";
  const delivery = message.delivery;
  const who = inbound
    ? t.conversation.customer
    : delivery?.kind === "operator"
      ? t.controls.operator
      : delivery?.kind === "handoff_notice"
        ? t.controls.handoffNotice
        : delivery?.model
          ? format(t.conversation.bot, { model: delivery.model })
          : t.conversation.reply;
  return (
    <li className={inbound ? "msg in" : "msg out"} data-message={message.id} data-direction={message.direction}>
      <p className="who">
        <strong>{who}</strong>{" "}
        <time dateTime={message.created_at} className="muted">
          {new Date(message.created_at).toLocaleString(locale)}
        </time>
        {inbound && message.state ? (
          <span className={`state state-${message.state}`}>
            {t.values.state[message.state as keyof typeof t.values.state] ?? message.state}
          </span>
        ) : null}
      </p>
      <p className="text">{message.content}</p>
      {inbound ? <ClassificationBadges value={message.classification} /> : null}
      {delivery ? (
        <p className="delivery" data-testid="delivery" data-delivery={delivery.delivery_state}>
          {t.values.delivery[delivery.delivery_state as keyof typeof t.values.delivery] ?? delivery.delivery_state}
          {" · "}
          {format(t.delivery.attempts, { n: delivery.delivery_attempts })}
          {delivery.last_delivery_error ? ` · ${format(t.delivery.error, { error: delivery.last_delivery_error })}` : null}
          {delivery.delivery_state === "failed" ? <RetryDelivery replyId={delivery.id} /> : null}
        </p>
      ) : null}
    </li>
  );
}

/** A reply whose delivery failed for good goes out again (same webhook-id, so receivers deduplicate). */
function RetryDelivery({ replyId }: { replyId: string }) {
  const supabase = useSupabase();
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const retry = async () => {
    setBusy(true);
    setProblem(null);
    const error = await act(supabase, { name: "resend_reply", args: { p_reply_id: replyId } });
    if (error) setProblem(format(t.controls.refused[refusalKind(error)], { reason: error.message }));
    setBusy(false);
  };
  return (
    <>
      {" "}
      <button type="button" disabled={busy} data-action="resend" onClick={retry}>
        {t.controls.retry}
      </button>
      {problem ? <span role="alert" className="error">{problem}</span> : null}
    </>
  );
}
