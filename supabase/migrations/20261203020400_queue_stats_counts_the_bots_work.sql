-- Why: with conversation controls, a pending message in a conversation whose bot is off or paused waits
-- for a person, not for the listener. /metrics' queue figures (pending, oldest_pending_seconds) would
-- otherwise count a human backlog as the bot falling behind and page the wrong people. Those messages are
-- now counted apart, as waiting_for_people; the answer keeps its other fields.

create or replace function public.queue_stats() returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'pending', count(*) filter (where m.state = 'pending' and s.active),
    'processing', count(*) filter (where m.state = 'processing'),
    'waiting_for_people', count(*) filter (where m.state = 'pending' and not s.active),
    'oldest_pending_seconds', coalesce(extract(epoch from (
      clock_timestamp() - min(m.created_at) filter (where m.state = 'pending' and s.active))), 0))
  from public.messages m
  join public.conversations v on v.id = m.conversation_id
  -- bot_is_active(), written out: a function call per row costs more than the rest of the scan.
  cross join lateral (select v.bot_mode <> 'off'
                             and (v.bot_paused_at is null or coalesce(v.bot_paused_until <= now(), false)) as active) s
  where m.direction = 'inbound' and m.state in ('pending', 'processing')
$$;
comment on function public.queue_stats() is
  'The unfinished inbound messages the bot may answer, by state, the age in seconds of the oldest pending one (for /metrics), and the pending messages waiting for a person (bot off or paused).';
