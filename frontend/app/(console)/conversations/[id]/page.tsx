import Link from "next/link";
import { notFound } from "next/navigation";

import { Composer } from "@/components/Composer";
import { Thread } from "@/components/Thread";
import { requireUser } from "@/lib/auth";
import { fetchConversation, fetchThread, isUuid } from "@/lib/conversation/model";
import { format } from "@/lib/i18n";
import { currentDictionary } from "@/lib/i18n/server";

type Props = { params: Promise<{ id: string }> };

export default async function ConversationPage({ params }: Props) {
  const { id } = await params;
  const { supabase } = await requireUser(`/conversations/${id}`);
  if (!isUuid(id)) notFound();
  const conversation = await fetchConversation(supabase, id);
  if (!conversation) notFound();
  const [initial, { t }] = await Promise.all([fetchThread(supabase, id), currentDictionary()]);
  return (
    <main id="main">
      <p>
        <Link href="/inbox">{t.conversation.back}</Link>
      </p>
      <h1>{format(t.conversation.title, { chat: conversation.chat_id })}</h1>
      <p className="muted">{format(t.conversation.meta, { platform: conversation.platform, client: conversation.client_id })}</p>
      <Thread conversationId={id} initial={initial} />
      <Composer conversationId={id} />
    </main>
  );
}
