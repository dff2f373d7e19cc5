// The live connection's state machine, as the "live connection is down" banner sees it.
//
// realtime-js reports a channel's life through the subscribe callback: SUBSCRIBED after every join
// (the first and each rejoin after the socket came back), CHANNEL_ERROR when the socket or the channel
// fails (it then retries by itself), TIMED_OUT when a join got no answer, CLOSED when the channel ends.

export type ChannelStatus = "SUBSCRIBED" | "TIMED_OUT" | "CLOSED" | "CHANNEL_ERROR";
export type Connection = "connecting" | "live" | "down";

export type ConnectionEvent =
  | { type: "status"; status: ChannelStatus }
  /** The server confirmed the postgres_changes subscription (system message, status ok). */
  | { type: "confirmed" }
  /** The tab became visible again. */
  | { type: "visible" };

export type Transition = { connection: Connection; refetch: boolean };

/**
 * What the collection does on each event. It refetches on EVERY SUBSCRIBED (changes made while it was
 * not subscribed were never sent and Realtime does not replay them), when the server confirms the
 * subscription (only from then on are changes guaranteed), and when the tab becomes visible (a
 * sleeping tab may have lost its socket without noticing).
 */
export function transition(current: Connection, event: ConnectionEvent): Transition {
  switch (event.type) {
    case "visible":
      return { connection: current, refetch: true };
    case "confirmed":
      return { connection: "live", refetch: true };
    case "status":
      switch (event.status) {
        case "SUBSCRIBED":
          return { connection: "live", refetch: true };
        case "CHANNEL_ERROR":
        case "TIMED_OUT":
        case "CLOSED":
          return { connection: "down", refetch: false };
      }
  }
}

/** Several collections on one page: the page is live only when all of them are. */
export function combine(connections: readonly Connection[]): Connection {
  if (connections.includes("down")) return "down";
  if (connections.includes("connecting")) return "connecting";
  return "live";
}
