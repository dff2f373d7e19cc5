-- Why: bursts are for people typing into a chat (Telegram); an HTTP intake caller often relays one
-- message per request and waits for that message's own answer. So coalescing becomes per platform: a
-- platform named in p_burst_windows (or every platform, with "*") is claimed as bursts after its quiet
-- window; a platform not named is claimed one message at a time, as before, even when the listener passes
-- windows for others. The listener's default BURST_WINDOW_MS is telegram=2000.
--
-- And one round trip less per message (issue 13): with p_context_limit the claim answers the
-- conversation so far too (the messages before the burst and every reply, at most that many, oldest
-- first), which the listener read with a select of its own after each claim.

drop function public.claim_messages(text, integer, double precision, integer, jsonb);

create function public.claim_messages(
  p_worker text, p_limit integer default 1, p_lease_seconds double precision default 60,
  p_max_attempts integer default 3, p_burst_windows jsonb default null, p_context_limit integer default null
) returns setof jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_head record;
  v_burst jsonb;
  v_claimed integer := 0;
begin
  -- A message whose worker died p_max_attempts times is poison: stop retrying it.
  update public.messages m
  set state = 'failed', last_error = format('lease expired after %s attempts', m.attempts),
      lease_owner = null, lease_expires_at = null, finished_at = now(), updated_at = now()
  where m.state = 'processing' and m.lease_expires_at < now() and m.attempts >= p_max_attempts;

  for v_head in
    select m.id, m.conversation_id, v.control_version, v.platform, v.chat_id
    from public.messages m
    join public.conversations v on v.id = m.conversation_id
    where m.direction = 'inbound' and m.state in ('pending', 'processing')
      and (m.state = 'pending' or m.lease_expires_at < now())
      -- Only the oldest unfinished message of its conversation may be worked on.
      and not exists (
        select 1 from public.messages e
        where e.conversation_id = m.conversation_id and e.direction = 'inbound'
          and e.state in ('pending', 'processing') and (e.created_at, e.id) < (m.created_at, m.id))
      -- public.bot_is_active(v), written out so the planner sees the columns.
      and v.bot_mode <> 'off' and (v.bot_paused_at is null or coalesce(v.bot_paused_until <= now(), false))
      -- Bursts: wait until the conversation has been quiet for the platform's window.
      and (not coalesce(p_burst_windows ? v.platform or p_burst_windows ? '*', false) or not exists (
        select 1 from public.messages l
        where l.conversation_id = m.conversation_id and l.direction = 'inbound' and l.state = 'pending'
          and l.created_at > now() - make_interval(secs => coalesce(
            (p_burst_windows ->> v.platform)::double precision, (p_burst_windows ->> '*')::double precision, 0
          ) / 1000.0)))
    order by m.created_at, m.id
    limit p_limit
    for update of m skip locked
  loop
    with claimed as (
      update public.messages m
      set state = 'processing', lease_owner = p_worker, attempts = m.attempts + 1, updated_at = now(),
          lease_expires_at = now() + make_interval(secs => p_lease_seconds),
          claimed_at = now(), claim_version = v_head.control_version
      where m.conversation_id = v_head.conversation_id and m.direction = 'inbound'
        and (m.id = v_head.id
             or (coalesce(p_burst_windows ? v_head.platform or p_burst_windows ? '*', false)
                 and (m.state = 'pending' or (m.state = 'processing' and m.lease_expires_at < now()))))
      returning m.*
    )
    select jsonb_agg(jsonb_build_object('id', c.id, 'content', c.content, 'created_at', c.created_at)
                     order by c.created_at, c.id)
    into v_burst from claimed c;

    return query
    select jsonb_build_object(
      'id', m.id, 'conversation_id', m.conversation_id, 'client_id', m.client_id, 'content', m.content,
      'attempts', m.attempts, 'created_at', m.created_at, 'platform', v_head.platform, 'chat_id', v_head.chat_id,
      'burst', v_burst,
      -- What the model sees before the burst: earlier messages and every reply so far (replies only ever
      -- answer earlier messages), the newest p_context_limit of them, oldest first.
      'context', case when p_context_limit is not null then coalesce((
        select jsonb_agg(jsonb_build_object(
                 'role', case when e.direction = 'inbound' then 'user' else 'assistant' end, 'content', e.content)
               order by e.created_at, e.id)
        from (select x.id, x.direction, x.content, x.created_at from public.messages x
              where x.conversation_id = v_head.conversation_id and x.id <> v_head.id
                and (x.direction = 'outbound' or x.created_at < m.created_at)
              order by x.created_at desc, x.id desc
              limit p_context_limit) e), '[]'::jsonb) end)
    from public.messages m where m.id = v_head.id;
  end loop;
end
$$;
comment on function public.claim_messages(text, integer, double precision, integer, jsonb, integer) is
  'Lease up to p_limit conversations'' oldest unfinished customer message (FOR UPDATE SKIP LOCKED), in conversations whose bot is active (not off, not paused); expired leases are taken over. With p_burst_windows ({"platform": ms, "*": ms}) a conversation of a platform named there (or any, with "*") is claimed only once its newest pending message is older than the window, and all its unfinished messages come together in "burst"; other platforms'' messages one at a time. With p_context_limit, "context" holds the conversation before the burst (at most that many messages, oldest first).';

revoke execute on function public.claim_messages(text, integer, double precision, integer, jsonb, integer)
  from public, anon, authenticated;
grant execute on function public.claim_messages(text, integer, double precision, integer, jsonb, integer)
  to service_role;
