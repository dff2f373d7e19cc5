import Link from "next/link";
import { notFound } from "next/navigation";

import { ConversationControls } from "@/components/ConversationControls";
import { Thread } from "@/components/Thread";
import { requireUser } from "@/lib/auth";
import { fetchControls, fetchDrafts, fetchNotes } from "@/lib/conversation/controls";
import { fetchConversation, fetchThread, isUuid } from "@/lib/conversation/model";
import { format } from "@/lib/i18n";
import { currentDictionary } from "@/lib/i18n/server";

type Props = { params: Promise<{ id: string }> };

export default async function ConversationPage({ params }: Props) {
  const { id } = await params;
  const { supabase, user } = await requireUser(`/conversations/${id}`);
  if (!isUuid(id)) notFound();
  const conversation = await fetchConversation(supabase, id);
  if (!conversation) notFound();
  const [initial, controls, drafts, notes, operators, { t }] = await Promise.all([
    fetchThread(supabase, id),
    fetchControls(supabase, id),
    fetchDrafts(supabase, id),
    fetchNotes(supabase, id),
    supabase.from("operators").select("user_id, display_name").eq("active", true).order("display_name"),
    currentDictionary(),
  ]);
  return (
    <main id="main">
      <p>
        <Link href="/inbox">{t.conversation.back}</Link>
      </p>
      <h1>{format(t.conversation.title, { chat: conversation.chat_id })}</h1>
      <p className="muted">{format(t.conversation.meta, { platform: conversation.platform, client: conversation.client_id })}</p>
      <Thread conversationId={id} initial={initial} />
      <ConversationControls
        conversationId={id}
        me={user.id}
        operators={operators.data ?? []}
        initialControls={controls}
        initialDrafts={drafts}
        initialNotes={notes}
      />
    </main>
  );
}
