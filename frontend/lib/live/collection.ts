// The state of one live collection, kept by id, and the one rule that merges every read into it.
//
// Every change the database announces marks a row "dirty"; the hook then reads those rows again and
// merges the answer. Each read gets a sequence number when it STARTS; a row is replaced only by a read
// that started later than the one that last wrote it. A read that started later sees at least the same
// committed data, so an older answer arriving late can never overwrite a newer one, and a row that
// arrives both through a refetch and through an event is kept once.

export type Keyed = { id: string };

export type CollectionState<Row extends Keyed> = {
  rows: ReadonlyMap<string, Row>;
  /** The sequence number of the read that last wrote (or removed) each id. */
  seen: ReadonlyMap<string, number>;
};

export function emptyCollection<Row extends Keyed>(): CollectionState<Row> {
  return { rows: new Map(), seen: new Map() };
}

export function collectionOf<Row extends Keyed>(rows: readonly Row[], seq = 0): CollectionState<Row> {
  return {
    rows: new Map(rows.map((row) => [row.id, row])),
    seen: new Map(rows.map((row) => [row.id, seq])),
  };
}

/**
 * Merge the answer of a read that started with sequence number `seq`.
 *
 * - `scope: "all"`: the read returned the whole collection; an id it did not return is gone (deleted, or
 *   no longer matching) unless a read that started later wrote it.
 * - `scope: ids`: the read asked for these ids only; an asked-for id it did not return is gone, the
 *   others are untouched.
 */
export function mergeRead<Row extends Keyed>(
  state: CollectionState<Row>,
  seq: number,
  rows: readonly Row[],
  scope: "all" | readonly string[],
): CollectionState<Row> {
  const next = new Map(state.rows);
  const seen = new Map(state.seen);
  const returned = new Set<string>();
  for (const row of rows) {
    returned.add(row.id);
    if ((seen.get(row.id) ?? -1) > seq) continue;
    next.set(row.id, row);
    seen.set(row.id, seq);
  }
  const candidates = scope === "all" ? [...next.keys()] : scope;
  for (const id of candidates) {
    if (returned.has(id) || (seen.get(id) ?? -1) > seq) continue;
    next.delete(id);
    seen.set(id, seq);
  }
  return { rows: next, seen };
}

/** The rows, sorted for display (a stable copy; the state is never mutated). */
export function sortedRows<Row extends Keyed>(state: CollectionState<Row>, compare: (a: Row, b: Row) => number): Row[] {
  return [...state.rows.values()].sort(compare);
}
