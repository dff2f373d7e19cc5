import { describe, expect, it } from "vitest";

import { collectionOf, emptyCollection, mergeRead, sortedRows } from "@/lib/live/collection";

type Row = { id: string; v: number };
const byId = (a: Row, b: Row) => a.id.localeCompare(b.id);
const rows = (state: Parameters<typeof sortedRows<Row>>[0]) => sortedRows(state, byId);

describe("mergeRead", () => {
  it("keeps each id once when a refetch and an event both bring it", () => {
    let state = collectionOf<Row>([{ id: "a", v: 1 }]);
    state = mergeRead(state, 1, [{ id: "b", v: 1 }], ["b"]); // the event's read
    state = mergeRead(state, 2, [{ id: "a", v: 1 }, { id: "b", v: 1 }], "all"); // the refetch
    expect(rows(state)).toEqual([{ id: "a", v: 1 }, { id: "b", v: 1 }]);
  });

  it("adds what arrived while disconnected, on the refetch after re-SUBSCRIBED", () => {
    let state = collectionOf<Row>([{ id: "a", v: 1 }]);
    state = mergeRead(state, 1, [{ id: "a", v: 1 }, { id: "m1", v: 1 }, { id: "m2", v: 1 }], "all");
    expect(rows(state).map((r) => r.id)).toEqual(["a", "m1", "m2"]);
  });

  it("never lets an older read overwrite a newer one that answered first", () => {
    let state = emptyCollection<Row>();
    // read 2 (started later) answers first with the newer version; read 1 answers late with the old one
    state = mergeRead(state, 2, [{ id: "a", v: 2 }], ["a"]);
    state = mergeRead(state, 1, [{ id: "a", v: 1 }], "all");
    expect(rows(state)).toEqual([{ id: "a", v: 2 }]);
  });

  it("drops a row a complete read no longer returns, unless a later read wrote it", () => {
    let state = collectionOf<Row>([{ id: "gone", v: 1 }, { id: "kept", v: 1 }]);
    state = mergeRead(state, 3, [{ id: "new", v: 1 }], ["new"]); // an event's read started after the refetch
    state = mergeRead(state, 2, [{ id: "kept", v: 1 }], "all");
    expect(rows(state).map((r) => r.id)).toEqual(["kept", "new"]);
  });

  it("a read of some ids removes only the asked-for ids it did not find", () => {
    let state = collectionOf<Row>([{ id: "a", v: 1 }, { id: "b", v: 1 }]);
    state = mergeRead(state, 1, [], ["a"]);
    expect(rows(state).map((r) => r.id)).toEqual(["b"]);
  });

  it("a late answer cannot bring back a row a later read removed", () => {
    let state = collectionOf<Row>([{ id: "a", v: 1 }]);
    state = mergeRead(state, 2, [], ["a"]);
    state = mergeRead(state, 1, [{ id: "a", v: 1 }], ["a"]);
    expect(rows(state)).toEqual([]);
  });

  it("does not mutate the state it was given", () => {
    const before = collectionOf<Row>([{ id: "a", v: 1 }]);
    mergeRead(before, 1, [{ id: "a", v: 9 }], "all");
    expect(rows(before)).toEqual([{ id: "a", v: 1 }]);
  });
});
