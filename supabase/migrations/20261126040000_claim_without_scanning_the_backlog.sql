-- Why: claim_messages found each conversation's oldest unfinished message with a DISTINCT ON over
-- every unfinished message, so each claim read the whole backlog: under overload (thousands
-- pending) every claim got slower as the backlog grew, and the listener fell further behind the
-- more it had to do (bench/pipeline.py, N=64 at 1.25x: the backlog never drained). Now the claim
-- walks unfinished messages oldest first through an index and takes the first ones that have no
-- earlier unfinished message in their conversation (an index probe each), stopping at p_limit.
-- Same rules as before: oldest first, one message per conversation at a time, expired leases taken
-- over, poison messages failed after p_max_attempts.

-- The claim's walk: unfinished inbound messages in age order.
create index messages_unfinished_by_age on public.messages (created_at, id)
  where direction = 'inbound' and state in ('pending', 'processing');

create or replace function public.claim_messages(
  p_worker text, p_limit integer default 1, p_lease_seconds double precision default 60,
  p_max_attempts integer default 3
) returns setof jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
begin
  -- A message whose worker died p_max_attempts times is poison: stop retrying it.
  update public.messages m
  set state = 'failed', last_error = format('lease expired after %s attempts', m.attempts),
      lease_owner = null, lease_expires_at = null, finished_at = now(), updated_at = now()
  where m.state = 'processing' and m.lease_expires_at < now() and m.attempts >= p_max_attempts;

  return query
  with claimable as (
    select m.id from public.messages m
    where m.direction = 'inbound' and m.state in ('pending', 'processing')
      and (m.state = 'pending' or m.lease_expires_at < now())
      -- Only the oldest unfinished message of its conversation may be worked on.
      and not exists (
        select 1 from public.messages e
        where e.conversation_id = m.conversation_id and e.direction = 'inbound'
          and e.state in ('pending', 'processing') and (e.created_at, e.id) < (m.created_at, m.id))
    order by m.created_at, m.id
    limit p_limit
    for update of m skip locked
  ), claimed as (
    update public.messages m
    set state = 'processing', lease_owner = p_worker, attempts = m.attempts + 1, updated_at = now(),
        lease_expires_at = now() + make_interval(secs => p_lease_seconds)
    from claimable c where m.id = c.id
    returning m.*
  )
  select jsonb_build_object(
    'id', c.id, 'conversation_id', c.conversation_id, 'client_id', c.client_id, 'content', c.content,
    'attempts', c.attempts, 'created_at', c.created_at, 'platform', v.platform, 'chat_id', v.chat_id)
  from claimed c join public.conversations v on v.id = c.conversation_id
  order by c.created_at, c.id;
end
$$;
