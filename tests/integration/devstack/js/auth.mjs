// supabase-js's auth against /auth/v1, as the operator console will use it: sign in with a password,
// read a table under RLS with the session, refresh, receive a postgres_changes INSERT with the
// user's token (and not another user's row), change the password, sign out; the old refresh
// token is then refused. Prints one JSON line with what it saw (test_auth_js.py checks it).
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const { SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_KEY, MARK } = process.env
const options = {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket }, // Node 20 has no global WebSocket
}
const admin = createClient(SUPABASE_URL, SUPABASE_SERVICE_KEY, options)
const client = createClient(SUPABASE_URL, SUPABASE_ANON_KEY, options)
const out = {}
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ...out, error: 'timed out' }))
  process.exit(2)
}, 30000)

const password = `pw-${MARK}-1`
const made = await admin.auth.admin.createUser({ email: `js-${MARK}@example.com`, password, email_confirm: true })
const other = await admin.auth.admin.createUser({ email: `js-other-${MARK}@example.com`, password, email_confirm: true })
const userId = made.data.user.id
out.created = { error: made.error?.message ?? null, otherError: other.error?.message ?? null }
try {
  const signedIn = await client.auth.signInWithPassword({ email: `js-${MARK}@example.com`, password })
  out.signIn = { error: signedIn.error?.message ?? null, userId: signedIn.data.user?.id, sameUser: signedIn.data.user?.id === userId }
  const first = signedIn.data.session
  const me = await client.auth.getUser()
  out.getUser = { error: me.error?.message ?? null, sameUser: me.data.user?.id === userId }

  const own = await admin.from('auth_notes').insert({ owner: userId, body: `${MARK}-before` })
  const theirs = await admin.from('auth_notes').insert({ owner: other.data.user.id, body: `${MARK}-before` })
  const read = await client.from('auth_notes').select('owner, body').like('body', `${MARK}%`)
  out.read = { inserts: [own.status, theirs.status], status: read.status, owners: read.data?.map((r) => r.owner === userId) }

  const refreshed = await client.auth.refreshSession()
  out.refresh = {
    error: refreshed.error?.message ?? null,
    rotated: refreshed.data.session?.refresh_token !== first.refresh_token,
    sameUser: refreshed.data.user?.id === userId,
  }

  const statuses = []
  const event = await new Promise((resolve) => {
    client
      .channel(`auth-${MARK}`)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'auth_notes' }, resolve)
      .on('system', {}, async (payload) => {
        if (payload.message !== 'Subscribed to PostgreSQL') return
        // Another user's row first: RLS must keep it from this channel; then the user's own row.
        await admin.from('auth_notes').insert({ owner: other.data.user.id, body: `${MARK}-live-other` })
        await admin.from('auth_notes').insert({ owner: userId, body: `${MARK}-live-own` })
      })
      .subscribe((status) => statuses.push(status))
  })
  out.realtime = { statuses: [...statuses], body: event.new.body, ownerIsUser: event.new.owner === userId, type: event.eventType }
  await client.removeAllChannels()

  const newPassword = `pw-${MARK}-2`
  const updated = await client.auth.updateUser({ password: newPassword })
  out.update = { error: updated.error?.message ?? null }

  const kept = (await client.auth.getSession()).data.session.refresh_token
  const signedOut = await client.auth.signOut()
  out.signOut = { error: signedOut.error?.message ?? null, session: (await client.auth.getSession()).data.session }
  const reused = await client.auth.refreshSession({ refresh_token: kept })
  out.reuse = { code: reused.error?.code ?? null, status: reused.error?.status ?? null }
  const oldPassword = await client.auth.signInWithPassword({ email: `js-${MARK}@example.com`, password })
  const newOne = await client.auth.signInWithPassword({ email: `js-${MARK}@example.com`, password: newPassword })
  out.passwords = { old: oldPassword.error?.code ?? null, new: newOne.error?.code ?? null }
  await client.auth.signOut()
} finally {
  await admin.auth.admin.deleteUser(userId)
  await admin.auth.admin.deleteUser(other.data.user.id)
}
clearTimeout(deadline)
console.log(JSON.stringify(out))
process.exit(0)
