import { Inbox } from "@/components/Inbox";
import { requireUser } from "@/lib/auth";
import { parseFilters } from "@/lib/inbox/filters";
import { fetchInbox } from "@/lib/inbox/model";
import { isTab } from "@/lib/inbox/tabs";

type Props = { searchParams: Promise<Record<string, string | string[] | undefined>> };

export default async function InboxPage({ searchParams }: Props) {
  const { supabase, user } = await requireUser("/inbox");
  const params = await searchParams;
  const initial = await fetchInbox(supabase);
  const tab = isTab(params.tab) ? params.tab : "needs_person";
  return (
    <main id="main">
      <Inbox initial={initial} me={user.id} tab={tab} filters={parseFilters(params)} />
    </main>
  );
}
