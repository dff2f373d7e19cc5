"use client";

import Link from "next/link";
import { useCallback, useMemo, useState } from "react";

import { ClassificationBadges } from "@/components/ClassificationBadges";
import { LiveBanner } from "@/components/LiveBanner";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";
import { compareInbox, FILTER_KEYS, filterOptions, matches, type FilterKey, type Filters } from "@/lib/inbox/filters";
import { fetchInbox, type InboxItem } from "@/lib/inbox/model";
import { inTab, TABS, type Tab } from "@/lib/inbox/tabs";
import { useLiveCollection, type LiveSource } from "@/lib/live/useLiveCollection";
import { useSupabase } from "@/lib/supabase/provider";

const str = (value: unknown) => (typeof value === "string" ? value : null);

// A change to a conversation, any of its messages or their classifications touches its inbox row.
const SOURCES: LiveSource[] = [
  { table: "conversations", touches: (r) => [str(r.id)] },
  { table: "messages", touches: (r) => [str(r.conversation_id)] },
  { table: "classifications", touches: (r) => [str(r.conversation_id)] },
  { table: "replies", touches: (r) => [str(r.conversation_id)] },
];

type Props = { initial: InboxItem[]; me: string; tab: Tab; filters: Filters };

export function Inbox({ initial, me, tab: initialTab, filters: initialFilters }: Props) {
  const supabase = useSupabase();
  const { t } = useI18n();
  const [tab, setTab] = useState<Tab>(initialTab);
  const [filters, setFilters] = useState<Filters>(initialFilters);
  const fetchAll = useCallback(() => fetchInbox(supabase), [supabase]);
  const fetchSome = useCallback((ids: string[]) => fetchInbox(supabase, ids), [supabase]);
  const { rows, connection, error } = useLiveCollection({
    name: "inbox",
    sources: SOURCES,
    fetchAll,
    fetchSome,
    compare: compareInbox,
    initial,
  });

  const shown = useMemo(() => rows.filter((row) => inTab(tab, row, me) && matches(row, filters)), [rows, tab, me, filters]);
  const counts = useMemo(
    () => Object.fromEntries(TABS.map((name) => [name, rows.filter((row) => inTab(name, row, me)).length])),
    [rows, me],
  );

  function remember(nextTab: Tab, nextFilters: Filters) {
    const params = new URLSearchParams({ tab: nextTab });
    for (const key of FILTER_KEYS) if (nextFilters[key]) params.set(key, nextFilters[key]);
    window.history.replaceState(null, "", `/inbox?${params.toString()}`);
  }

  function chooseTab(next: Tab) {
    setTab(next);
    remember(next, filters);
  }

  function chooseFilter(key: FilterKey, value: string) {
    const next = { ...filters, [key]: value || undefined };
    setFilters(next);
    remember(tab, next);
  }

  const filterLabels: Record<FilterKey, string> = {
    platform: t.inbox.platform,
    category: t.inbox.category,
    urgency: t.inbox.urgency,
    language: t.inbox.language,
  };

  return (
    <section aria-labelledby="inbox-title">
      <h1 id="inbox-title">{t.inbox.title}</h1>
      <LiveBanner connection={connection} error={error} />
      <div role="tablist" aria-label={t.inbox.tabsLabel} className="tabs">
        {TABS.map((name) => (
          <button
            key={name}
            role="tab"
            id={`tab-${name}`}
            aria-selected={tab === name}
            aria-controls="inbox-list"
            data-tab={name}
            onClick={() => chooseTab(name)}
          >
            {t.inbox.tabs[name]} <span className="count">{counts[name]}</span>
          </button>
        ))}
      </div>
      <fieldset className="filters">
        <legend>{t.inbox.filters}</legend>
        {FILTER_KEYS.map((key) => (
          <label key={key}>
            {filterLabels[key]}
            <select value={filters[key] ?? ""} onChange={(e) => chooseFilter(key, e.target.value)} name={key}>
              <option value="">{t.inbox.any}</option>
              {filterOptions(rows, key).map((value) => (
                <option key={value} value={value}>
                  {value}
                </option>
              ))}
            </select>
          </label>
        ))}
      </fieldset>
      <div role="tabpanel" id="inbox-list" aria-labelledby={`tab-${tab}`}>
        <p className="muted">{format(t.inbox.count, { n: shown.length })}</p>
        {tab === "mine" && shown.length === 0 ? <p className="muted">{t.inbox.mineUnavailable}</p> : null}
        {shown.length === 0 ? (
          <p>{t.inbox.empty}</p>
        ) : (
          <ul className="inbox" data-testid="inbox-list">
            {shown.map((item) => (
              <InboxRow key={item.id} item={item} />
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}

function InboxRow({ item }: { item: InboxItem }) {
  const { t, locale } = useI18n();
  const last = item.lastMessage;
  const state = item.lastInbound?.state;
  return (
    <li className="inbox-row" data-conversation={item.id} data-state={state ?? ""}>
      <Link href={`/conversations/${item.id}`} className="who">
        {item.chatId}
        <span className="muted">
          {" · "}
          {item.platform}
        </span>
      </Link>
      <p className="last" data-testid="last-message">
        {last ? last.content : t.inbox.noMessages}
      </p>
      {state ? <span className={`state state-${state}`}>{t.values.state[state as keyof typeof t.values.state] ?? state}</span> : null}
      {item.unread ? (
        <span className="unread" data-testid="unread" aria-label={format(t.inbox.unread, { n: item.unread })}>
          {item.unread}
        </span>
      ) : null}
      {item.draftsWaiting ? <span className="state">{format(t.inbox.drafts, { n: item.draftsWaiting })}</span> : null}
      <ClassificationBadges value={item.lastInbound?.classification ?? null} compact />
      {last ? (
        <time dateTime={last.created_at} className="muted">
          {new Date(last.created_at).toLocaleString(locale)}
        </time>
      ) : null}
    </li>
  );
}
