// supabase-js 2.x (Realtime protocol vsn 2.0.0) against the stack: a REST select, then a
// postgres_changes subscription that must receive one INSERT. The pytest side reads the lines
// this prints: {"ready": true} once Realtime confirms the subscription, then the final result.
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const { SUPABASE_URL, SUPABASE_ANON_KEY, RT_LABEL } = process.env
const client = createClient(SUPABASE_URL, SUPABASE_ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket }, // Node 20 has no global WebSocket
})
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')
const deadline = setTimeout(() => {
  print({ error: 'timed out' })
  process.exit(2)
}, 20000)

const selected = await client.from('rt_items').select('id,label').limit(1)
const statuses = []
const event = await new Promise((resolve) => {
  client
    .channel(`js-${RT_LABEL}`)
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items', filter: `label=eq.${RT_LABEL}` }, resolve)
    .on('system', {}, (payload) => {
      if (payload.message === 'Subscribed to PostgreSQL') print({ ready: true })
    })
    .subscribe((status) => statuses.push(status))
})

// A broadcast to itself (self + ack): realtime-js sends it as a binary "user broadcast push".
const room = client.channel(`js-room-${RT_LABEL}`, { config: { broadcast: { self: true, ack: true } } })
const echoed = new Promise((resolve) => room.on('broadcast', { event: 'hello' }, resolve))
await new Promise((resolve) => room.subscribe((status) => status === 'SUBSCRIBED' && resolve()))
const sent = await room.send({ type: 'broadcast', event: 'hello', payload: { text: 'привет' } })

print({
  select: { status: selected.status, error: selected.error, isArray: Array.isArray(selected.data) },
  statuses,
  vsn: client.realtime.vsn ?? null,
  event,
  broadcast: { sent, received: await echoed },
})
clearTimeout(deadline)
await client.removeAllChannels()
process.exit(0)
