// What an operator types into a conversation's composer, kept in sessionStorage (this tab only) under
// the conversation's id, so an expired session's trip through sign-in loses nothing.

const PREFIX = "neiromatrius:draft:";

export type DraftStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

export function draftKey(conversationId: string): string {
  return PREFIX + conversationId;
}

export function loadDraft(store: DraftStore | undefined, conversationId: string): string {
  try {
    return store?.getItem(draftKey(conversationId)) ?? "";
  } catch {
    return ""; // storage disabled: the composer still works, it just forgets
  }
}

export function saveDraft(store: DraftStore | undefined, conversationId: string, text: string): void {
  try {
    if (!store) return;
    if (text) store.setItem(draftKey(conversationId), text);
    else store.removeItem(draftKey(conversationId));
  } catch {
    // quota or disabled storage: nothing else to do
  }
}
