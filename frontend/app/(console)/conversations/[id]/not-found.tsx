import Link from "next/link";

import { currentDictionary } from "@/lib/i18n/server";

export default async function ConversationNotFound() {
  const { t } = await currentDictionary();
  return (
    <main id="main">
      <p role="alert">{t.conversation.notFound}</p>
      <Link href="/inbox">{t.conversation.back}</Link>
    </main>
  );
}
