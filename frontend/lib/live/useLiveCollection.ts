"use client";

import type { RealtimePostgresChangesPayload } from "@supabase/supabase-js";
import { useEffect, useMemo, useRef, useState } from "react";

import { useSupabase } from "@/lib/supabase/provider";
import { collectionOf, mergeRead, sortedRows, type CollectionState, type Keyed } from "./collection";
import { transition, type Connection, type ConnectionEvent } from "./connection";
import { ReadError } from "./errors";

/** How long changes are gathered before the rows they touch are read again. */
const COALESCE_MS = 50;

export type LiveTable = "conversations" | "messages" | "classifications" | "replies" | "notes";

/** One table whose changes touch the collection, and which of the collection's rows a change touches. */
export type LiveSource = {
  table: LiveTable;
  /** A Realtime filter, e.g. `conversation_id=eq.<uuid>`. */
  filter?: string;
  /** The ids of the collection's rows to read again after this change (new or old record). */
  touches: (record: Record<string, unknown>) => Array<string | null | undefined>;
};

export type LiveCollectionOptions<Row extends Keyed> = {
  /** A stable name for the channel (the topic), unique per collection on a page. */
  name: string;
  sources: readonly LiveSource[];
  /** The whole collection, as the page shows it. */
  fetchAll: () => Promise<Row[]>;
  /** Just these rows (those a change touched). */
  fetchSome: (ids: string[]) => Promise<Row[]>;
  compare: (a: Row, b: Row) => number;
  /** The first screen, loaded by the server component. */
  initial: Row[];
};

export type LiveCollection<Row> = {
  rows: Row[];
  connection: Connection;
  /** The message of the last failed read, if the last read failed. */
  error: string | null;
};

/**
 * The one hook behind every live list (inbox, thread): first screen from the server, then
 * postgres_changes on each source; a change reads the touched rows again and merges them by id; every
 * SUBSCRIBED (first join and each rejoin), the server's subscription confirmation and the tab becoming
 * visible refetch the whole collection and merge it by id (collection.ts keeps that merge exact).
 * The channel is removed on unmount. It runs under the signed-in user's token, which supabase-js keeps
 * current on the Realtime socket.
 */
export function useLiveCollection<Row extends Keyed>(options: LiveCollectionOptions<Row>): LiveCollection<Row> {
  const supabase = useSupabase();
  const [state, setState] = useState<CollectionState<Row>>(() => collectionOf(options.initial, 0));
  const [connection, setConnection] = useState<Connection>("connecting");
  const [error, setError] = useState<string | null>(null);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const sourcesKey = JSON.stringify(options.sources.map(({ table, filter }) => [table, filter ?? null]));

  useEffect(() => {
    let active = true;
    let seq = 0;
    let connectionNow: Connection = "connecting";
    const dirty = new Set<string>();
    let flushScheduled = false;

    const read = async (scope: "all" | string[]) => {
      const mySeq = ++seq;
      try {
        const rows = scope === "all" ? await latest.current.fetchAll() : await latest.current.fetchSome(scope);
        if (!active) return;
        setState((current) => mergeRead(current, mySeq, rows, scope));
        setError(null);
      } catch (e) {
        if (!active) return;
        setError(e instanceof Error ? e.message : String(e));
        // The token was refused and supabase-js could not refresh it (auth-js keeps a session whose refresh
        // failed while its token was still valid): end it here, so SessionWatch sends the person to sign-in.
        if (e instanceof ReadError && e.sessionEnded) void supabase.auth.signOut({ scope: "local" });
      }
    };

    const flush = () => {
      flushScheduled = false;
      if (!active || dirty.size === 0) return;
      const ids = [...dirty];
      dirty.clear();
      void read(ids);
    };

    const on = (event: ConnectionEvent) => {
      const next = transition(connectionNow, event);
      connectionNow = next.connection;
      if (active) setConnection(next.connection);
      if (next.refetch) void read("all");
    };

    const sources = latest.current.sources;
    // A fresh topic per mount: realtime-js hands back an existing channel of the same topic, and a channel
    // that has subscribed takes no more bindings (React mounts effects twice in development).
    let channel = supabase.channel(`live:${latest.current.name}:${crypto.randomUUID()}`);
    sources.forEach((source, index) => {
      channel = channel.on(
        "postgres_changes",
        { event: "*", schema: "public", table: source.table, ...(source.filter ? { filter: source.filter } : {}) },
        (payload: RealtimePostgresChangesPayload<Record<string, unknown>>) => {
          const current = latest.current.sources[index] ?? source;
          const records = [payload.new, payload.old].filter((r) => r && Object.keys(r).length > 0);
          for (const record of records) {
            for (const id of current.touches(record)) if (id) dirty.add(id);
          }
          if (!flushScheduled) {
            // A burst (a message, its classification, the reply, the state change) becomes one read.
            flushScheduled = true;
            setTimeout(flush, COALESCE_MS);
          }
        },
      );
    });
    channel = channel.on("system", {}, (payload: { extension?: string; status?: string }) => {
      if (payload.extension === "postgres_changes" && payload.status === "ok") on({ type: "confirmed" });
    });
    channel.subscribe((status) => on({ type: "status", status }));

    const onVisibility = () => {
      if (document.visibilityState === "visible") on({ type: "visible" });
    };
    document.addEventListener("visibilitychange", onVisibility);

    return () => {
      active = false;
      document.removeEventListener("visibilitychange", onVisibility);
      void supabase.removeChannel(channel);
    };
  }, [supabase, sourcesKey]);

  const compare = options.compare;
  const rows = useMemo(() => sortedRows(state, compare), [state, compare]);
  return { rows, connection, error };
}
