import type { RealtimeClientOptions } from "@supabase/supabase-js";

// supabase-js >= 2.110 looks for a WebSocket when a client is created. Node 20 (this machine's Node) has
// none without --experimental-websocket, and the server never subscribes to anything: give server-side
// clients a transport that says so if anyone ever tries. Creating the client then works on Node 20 and 22
// without flags; the browser keeps its native WebSocket.
class NoRealtimeOnTheServer {
  constructor() {
    throw new Error("Realtime is used in the browser only; server-side Supabase clients do not subscribe");
  }
}

export const serverRealtime: RealtimeClientOptions = {
  transport: NoRealtimeOnTheServer as unknown as NonNullable<RealtimeClientOptions["transport"]>,
};
