-- Why: /metrics reports the queue as the database sees it (every replica's work, not one process's
-- memory): how many inbound messages wait or are being answered, and how long the oldest has
-- waited. Only unfinished messages are counted, which the partial index messages_queue covers, so
-- a scrape stays cheap however many answered messages the table holds.

create function public.queue_stats() returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'pending', count(*) filter (where m.state = 'pending'),
    'processing', count(*) filter (where m.state = 'processing'),
    'oldest_pending_seconds', coalesce(
      extract(epoch from (clock_timestamp() - min(m.created_at) filter (where m.state = 'pending'))), 0))
  from public.messages m
  where m.direction = 'inbound' and m.state in ('pending', 'processing')
$$;
comment on function public.queue_stats() is
  'The unfinished inbound messages by state and the age in seconds of the oldest pending one (for /metrics).';

revoke execute on function public.queue_stats() from public, anon, authenticated;
grant execute on function public.queue_stats() to service_role;
