"use client";

import { useCallback, useEffect, useRef, useState } from "react";

import {
  act,
  botOwns,
  byCreated,
  fetchControls,
  fetchDrafts,
  fetchNotes,
  MAX_TEXT_CHARS,
  newRequestId,
  refusalKind,
  textProblem,
  type Action,
  type ActionError,
  type Controls,
  type Draft,
  type Note,
} from "@/lib/conversation/controls";
import { loadDraft, saveDraft } from "@/lib/drafts";
import { format } from "@/lib/i18n";
import { useI18n } from "@/lib/i18n/context";
import { useLiveCollection } from "@/lib/live/useLiveCollection";
import { useSupabase } from "@/lib/supabase/provider";

const str = (value: unknown) => (typeof value === "string" ? value : null);
const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

export type OperatorOption = { user_id: string; display_name: string | null };

type Props = {
  conversationId: string;
  me: string;
  operators: OperatorOption[];
  initialControls: Controls[];
  initialDrafts: Draft[];
  initialNotes: Note[];
};

/** One action at a time per control: its button is disabled while it runs, and its outcome is said aloud. */
function useAction() {
  const supabase = useSupabase();
  const { t } = useI18n();
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const running = useRef(false);
  const run = useCallback(
    async (key: string, action: Action): Promise<boolean> => {
      if (running.current) return false; // a double click: the first call is still on its way
      running.current = true;
      setBusy(key);
      setProblem(null);
      try {
        const error: ActionError | null = await act(supabase, action);
        if (error) setProblem(format(t.controls.refused[refusalKind(error)], { reason: error.message }));
        return error === null;
      } catch (e) {
        setProblem(format(t.controls.refused.failed, { reason: e instanceof Error ? e.message : String(e) }));
        return false;
      } finally {
        running.current = false;
        setBusy(null);
      }
    },
    [supabase, t],
  );
  return { busy, problem, setProblem, run };
}

export function ConversationControls(props: Props) {
  const { conversationId: id } = props;
  const supabase = useSupabase();
  const { t } = useI18n();
  const controls = useLiveCollection<Controls>({
    name: `controls:${id}`,
    sources: [{ table: "conversations", filter: `id=eq.${id}`, touches: (r) => [str(r.id)] }],
    fetchAll: useCallback(() => fetchControls(supabase, id), [supabase, id]),
    fetchSome: useCallback(() => fetchControls(supabase, id), [supabase, id]),
    compare: byId,
    initial: props.initialControls,
  });
  const drafts = useLiveCollection<Draft>({
    name: `drafts:${id}`,
    sources: [{ table: "replies", filter: `conversation_id=eq.${id}`, touches: (r) => [str(r.id)] }],
    fetchAll: useCallback(() => fetchDrafts(supabase, id), [supabase, id]),
    fetchSome: useCallback((ids: string[]) => fetchDrafts(supabase, id, ids), [supabase, id]),
    compare: byCreated,
    initial: props.initialDrafts,
  });
  const notes = useLiveCollection<Note>({
    name: `notes:${id}`,
    sources: [{ table: "notes", filter: `conversation_id=eq.${id}`, touches: (r) => [str(r.id)] }],
    fetchAll: useCallback(() => fetchNotes(supabase, id), [supabase, id]),
    fetchSome: useCallback((ids: string[]) => fetchNotes(supabase, id, ids), [supabase, id]),
    compare: byCreated,
    initial: props.initialNotes,
  });
  const current = controls.rows[0];
  const names = new Map(props.operators.map((o) => [o.user_id, o.display_name ?? o.user_id.slice(0, 8)]));
  return (
    <>
      <ControlBar id={id} me={props.me} controls={current} names={names} operators={props.operators} />
      <section aria-labelledby="drafts-title" data-testid="drafts">
        <h2 id="drafts-title">{t.controls.drafts}</h2>
        {drafts.rows.length === 0 ? <p className="muted">{t.controls.noDrafts}</p> : null}
        <ol className="drafts">
          {drafts.rows.map((draft) => (
            <DraftItem key={draft.id} conversationId={id} draft={draft} />
          ))}
        </ol>
      </section>
      <ReplyComposer conversationId={id} botOwns={botOwns(current)} />
      <section aria-labelledby="notes-title" data-testid="notes">
        <h2 id="notes-title">{t.controls.notes}</h2>
        <ol className="notes">
          {notes.rows.map((note) => (
            <li key={note.id} className="note" data-note={note.id}>
              <p className="who">
                <strong>{names.get(note.author_id) ?? note.author_id.slice(0, 8)}</strong>{" "}
                <span className="muted">{t.controls.privateNote}</span>
              </p>
              <p className="text">{note.body}</p>
            </li>
          ))}
        </ol>
        <NoteComposer conversationId={id} />
      </section>
    </>
  );
}

function ControlBar(props: {
  id: string;
  me: string;
  controls: Controls | undefined;
  names: Map<string, string>;
  operators: OperatorOption[];
}) {
  const { t } = useI18n();
  const { busy, problem, run } = useAction();
  const c = props.controls;
  if (!c) return null;
  const base = { p_conversation_id: props.id };
  const mine = c.assignee_id === props.me;
  const paused = c.bot_mode !== "off" && c.bot_paused_at !== null;
  return (
    <section aria-labelledby="controls-title" className="controls" data-testid="controls" data-mode={c.bot_mode}
             data-status={c.status} data-assignee={c.assignee_id ?? ""} data-paused={paused ? "yes" : "no"}>
      <h2 id="controls-title">{t.controls.title}</h2>
      <p data-testid="controls-summary">
        {format(t.controls.summary, {
          mode: t.controls.modes[c.bot_mode as keyof typeof t.controls.modes] ?? c.bot_mode,
          status: t.controls.statuses[c.status as keyof typeof t.controls.statuses] ?? c.status,
          assignee: c.assignee_id ? (props.names.get(c.assignee_id) ?? c.assignee_id.slice(0, 8)) : t.controls.nobody,
        })}
        {paused ? ` · ${t.controls.paused}` : ""}
      </p>
      <div className="actions">
        {c.bot_mode !== "off" || !mine ? (
          <button type="button" disabled={busy !== null} data-action="take_over"
                  onClick={() => run("take_over", { name: "take_over", args: base })}>
            {t.controls.takeOver}
          </button>
        ) : null}
        {c.bot_mode === "off" || paused || c.handed_off_at ? (
          <button type="button" disabled={busy !== null} data-action="hand_back"
                  onClick={() => run("hand_back", { name: "hand_back", args: base })}>
            {t.controls.handBack}
          </button>
        ) : null}
        <label>
          {t.controls.mode}{" "}
          <select name="bot_mode" value={c.bot_mode} disabled={busy !== null} data-action="set_bot_mode"
                  onChange={(e) => run("mode", { name: "set_bot_mode", args: { ...base, p_mode: e.target.value } })}>
            {(["auto", "draft", "off"] as const).map((mode) => (
              <option key={mode} value={mode}>
                {t.controls.modes[mode]}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t.controls.assignee}{" "}
          <select name="assignee" value={c.assignee_id ?? ""} disabled={busy !== null} data-action="assign"
                  onChange={(e) => run("assign", { name: "assign", args: { ...base, p_assignee_id: e.target.value || null } })}>
            <option value="">{t.controls.nobody}</option>
            {props.operators.map((o) => (
              <option key={o.user_id} value={o.user_id}>
                {props.names.get(o.user_id)}
              </option>
            ))}
          </select>
        </label>
        {c.status === "resolved" ? (
          <button type="button" disabled={busy !== null} data-action="reopen"
                  onClick={() => run("reopen", { name: "reopen", args: base })}>
            {t.controls.reopen}
          </button>
        ) : (
          <button type="button" disabled={busy !== null} data-action="resolve"
                  onClick={() => run("resolve", { name: "resolve", args: base })}>
            {t.controls.resolve}
          </button>
        )}
      </div>
      {problem ? <p role="alert" className="error" data-testid="controls-error">{problem}</p> : null}
    </section>
  );
}

function DraftItem({ conversationId, draft }: { conversationId: string; draft: Draft }) {
  const { t } = useI18n();
  const [text, setText] = useState(draft.content);
  const { busy, problem, setProblem, run } = useAction();
  const edited = text !== draft.content;
  const field = `draft-${draft.id}`;
  const approve = async () => {
    const wrong = textProblem(text);
    if (wrong) return setProblem(format(t.controls.problems[wrong], { max: MAX_TEXT_CHARS }));
    const args = { p_conversation_id: conversationId, p_reply_id: draft.id, ...(edited ? { p_content: text } : {}) };
    await run("approve", { name: "approve_draft", args });
  };
  return (
    <li className="draft" data-draft={draft.id}>
      <label htmlFor={field}>{format(t.controls.draftBy, { model: draft.model ?? "?" })}</label>
      <textarea id={field} rows={3} value={text} onChange={(e) => setText(e.target.value)} />
      <div className="actions">
        <button type="button" disabled={busy !== null} data-action="approve" onClick={approve}>
          {edited ? t.controls.approveEdited : t.controls.approve}
        </button>
        <button type="button" disabled={busy !== null} data-action="discard"
                onClick={() => run("discard", { name: "discard_draft", args: { p_conversation_id: conversationId, p_reply_id: draft.id } })}>
          {t.controls.discard}
        </button>
      </div>
      {problem ? <p role="alert" className="error">{problem}</p> : null}
    </li>
  );
}

/**
 * The reply box: what the operator types is kept in sessionStorage (an expired session loses nothing);
 * one request id per composed text, so a double click or a retry after a lost answer sends it once.
 */
function ReplyComposer({ conversationId, botOwns: owned }: { conversationId: string; botOwns: boolean }) {
  const { t } = useI18n();
  const [text, setText] = useState("");
  const requestId = useRef<string | null>(null);
  const { busy, problem, setProblem, run } = useAction();
  const [sent, setSent] = useState(false);
  useEffect(() => {
    // Read after mount: sessionStorage exists only in the browser, and the server rendered an empty box.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setText(loadDraft(window.sessionStorage, conversationId));
  }, [conversationId]);
  const send = async () => {
    const wrong = textProblem(text);
    if (wrong) return setProblem(format(t.controls.problems[wrong], { max: MAX_TEXT_CHARS }));
    requestId.current ??= newRequestId();
    const args = { p_conversation_id: conversationId, p_content: text, p_client_request_id: requestId.current };
    if (await run("send", { name: "send_reply", args })) {
      requestId.current = null;
      setText("");
      saveDraft(window.sessionStorage, conversationId, "");
      setSent(true);
    }
  };
  return (
    <form className="composer" onSubmit={(e) => { e.preventDefault(); void send(); }}>
      <label htmlFor="composer">{t.conversation.composer}</label>
      <textarea
        id="composer"
        name="reply"
        rows={4}
        value={text}
        aria-describedby="composer-hint"
        onChange={(e) => {
          setText(e.target.value);
          setSent(false);
          requestId.current = null; // another text: another request
          saveDraft(window.sessionStorage, conversationId, e.target.value);
        }}
      />
      <p id="composer-hint" className={owned ? "warning" : "muted"} data-testid="composer-hint">
        {owned ? t.controls.botOwns : format(t.controls.limit, { max: MAX_TEXT_CHARS })}
      </p>
      <div className="actions">
        <button type="submit" disabled={busy !== null} data-action="send">
          {t.controls.send}
        </button>
      </div>
      {problem ? <p role="alert" className="error" data-testid="composer-error">{problem}</p> : null}
      {sent ? <p role="status" className="muted" data-testid="composer-sent">{t.controls.sent}</p> : null}
    </form>
  );
}

function NoteComposer({ conversationId }: { conversationId: string }) {
  const { t } = useI18n();
  const [text, setText] = useState("");
  const requestId = useRef<string | null>(null);
  const { busy, problem, setProblem, run } = useAction();
  const add = async () => {
    const wrong = textProblem(text);
    if (wrong) return setProblem(format(t.controls.problems[wrong], { max: MAX_TEXT_CHARS }));
    requestId.current ??= newRequestId();
    const args = { p_conversation_id: conversationId, p_body: text, p_client_request_id: requestId.current };
    if (await run("note", { name: "add_note", args })) {
      requestId.current = null;
      setText("");
    }
  };
  return (
    <form className="composer" onSubmit={(e) => { e.preventDefault(); void add(); }}>
      <label htmlFor="note">{t.controls.newNote}</label>
      <textarea id="note" rows={2} value={text} aria-describedby="note-hint"
                onChange={(e) => { setText(e.target.value); requestId.current = null; }} />
      <p id="note-hint" className="muted">{t.controls.noteHint}</p>
      <div className="actions">
        <button type="submit" disabled={busy !== null} data-action="add_note">
          {t.controls.addNote}
        </button>
      </div>
      {problem ? <p role="alert" className="error">{problem}</p> : null}
    </form>
  );
}
