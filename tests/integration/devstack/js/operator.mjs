// supabase-js 2.x as an operator's console would use it: the user's access token on REST and Realtime,
// one channel on a client's messages plus a control table. It prints one JSON line per event:
// {"ready": true} once Realtime confirms the subscription, {"rest": n} for the messages REST shows,
// {"table": ..., "id": ...} per postgres_changes INSERT, {"system": ...} per system message, {"status": ...}
// per channel status. stdin lines are commands: "auth <jwt>" (setAuth with a refreshed token), "quit".
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'
import readline from 'node:readline'

const { SUPABASE_URL, SUPABASE_ANON_KEY, USER_TOKEN, CLIENT_ID, RT_LABEL } = process.env
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')
let token = USER_TOKEN
const client = createClient(SUPABASE_URL, SUPABASE_ANON_KEY, {
  accessToken: async () => token, // what a third-party-auth or console setup passes; REST and Realtime use it
  realtime: { transport: WebSocket }, // Node 20 has no global WebSocket
})

const rest = await client.from('messages').select('id').eq('client_id', CLIENT_ID)
print({ rest: rest.error ? rest.error.code : rest.data.length })

client
  .channel(`ops-js-${RT_LABEL}`)
  .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'messages', filter: `client_id=eq.${CLIENT_ID}` },
    (change) => print({ table: 'messages', id: change.new.id }))
  .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items', filter: `label=eq.${RT_LABEL}` },
    (change) => print({ table: 'rt_items', id: change.new.id }))
  .on('system', {}, (payload) => {
    if (payload.message === 'Subscribed to PostgreSQL' && payload.status === 'ok') print({ ready: true })
    else print({ system: payload })
  })
  .subscribe((status) => print({ status }))

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [command, argument] = line.trim().split(' ')
  if (command === 'auth') {
    token = argument
    await client.realtime.setAuth(argument)
    print({ auth: true })
  } else if (command === 'quit') {
    break
  }
}
await client.removeAllChannels()
process.exit(0)
