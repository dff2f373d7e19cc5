-- Why: under sustained load (bench/pipeline.py, 160 senders) claim_messages was the largest cost in
-- Postgres: 2.3 claims per message at ~10 ms each, with 11 ms of Postgres CPU per message in all.
-- auto_explain showed the walk's one big query planned from statistics taken while the table was
-- nearly empty: a hash join with every conversation and a nested-loop anti join that compared each
-- candidate with every unfinished message (25,281 rows filtered to claim one), then a sort. Any
-- plan of a multi-table query can go that way while statistics lag behind a burst.
--
-- Now the walk reads single tables through indexes whose order is the walk's: pending messages
-- through a partial index of their own (in-flight ones, with live leases, are no longer stepped
-- over), expired leases through messages_leases, and each candidate is checked with index probes:
-- the head of its conversation (messages_queue), the conversation's bot (its primary key), the burst
-- window (messages_queue). Same rules and answers as before.

create index messages_pending_by_age on public.messages (created_at, id)
  where direction = 'inbound' and state = 'pending';
-- It walked pending and in-flight messages together; nothing else reads it.
drop index public.messages_unfinished_by_age;

create or replace function public.claim_messages(
  p_worker text, p_limit integer default 1, p_lease_seconds double precision default 60,
  p_max_attempts integer default 3, p_burst_windows jsonb default null, p_context_limit integer default null
) returns setof jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_head record;
  v_conversation record;
  v_bursts boolean;
  v_window double precision;
  v_burst jsonb;
  v_claimed integer := 0;
  v_more boolean := false;
  v_row jsonb;
  v_rows jsonb[] := '{}';
  v_asked integer;
  v_seen integer;
  v_after_at timestamptz := '-infinity';
  v_after_id uuid := '00000000-0000-0000-0000-000000000000';
begin
  -- A message whose worker died p_max_attempts times is poison: stop retrying it.
  update public.messages m
  set state = 'failed', last_error = format('lease expired after %s attempts', m.attempts),
      lease_owner = null, lease_expires_at = null, finished_at = now(), updated_at = now()
  where m.state = 'processing' and m.lease_expires_at < now() and m.attempts >= p_max_attempts;

  -- The walk goes through candidates oldest first, a page at a time (one more than is still wanted);
  -- a page comes back short only at the end of the queue.
  <<walk>>
  loop
    v_asked := p_limit - v_claimed + 1;
    v_seen := 0;
    for v_head in
      select c.id, c.created_at, c.conversation_id from (
        (select m.id, m.created_at, m.conversation_id from public.messages m
         where m.direction = 'inbound' and m.state = 'pending' and (m.created_at, m.id) > (v_after_at, v_after_id)
         order by m.created_at, m.id
         limit v_asked)
        union all
        (select m.id, m.created_at, m.conversation_id from public.messages m
         where m.state = 'processing' and m.lease_expires_at < now() and m.direction = 'inbound'
           and (m.created_at, m.id) > (v_after_at, v_after_id)
         order by m.created_at, m.id
         limit v_asked)) c
      order by c.created_at, c.id
      limit v_asked
    loop
      v_seen := v_seen + 1;
      v_after_at := v_head.created_at;
      v_after_id := v_head.id;
      -- Only the oldest unfinished message of its conversation may be worked on.
      perform 1 from public.messages e
      where e.conversation_id = v_head.conversation_id and e.direction = 'inbound'
        and e.state in ('pending', 'processing') and (e.created_at, e.id) < (v_head.created_at, v_head.id)
      limit 1;
      if found then
        continue;
      end if;
      select v.control_version, v.platform, v.chat_id,
             -- public.bot_is_active(v), written out.
             v.bot_mode <> 'off' and (v.bot_paused_at is null or coalesce(v.bot_paused_until <= now(), false)) as active
      into v_conversation
      from public.conversations v where v.id = v_head.conversation_id;
      if not coalesce(v_conversation.active, false) then
        continue;
      end if;
      -- Bursts: wait until the conversation has been quiet for its platform's window.
      v_bursts := coalesce(p_burst_windows ? v_conversation.platform or p_burst_windows ? '*', false);
      if v_bursts then
        v_window := coalesce((p_burst_windows ->> v_conversation.platform)::double precision,
                             (p_burst_windows ->> '*')::double precision, 0);
        perform 1 from public.messages l
        where l.conversation_id = v_head.conversation_id and l.direction = 'inbound' and l.state = 'pending'
          and l.created_at > now() - make_interval(secs => v_window / 1000.0)
        limit 1;
        if found then
          continue;
        end if;
      end if;
      -- One more than asked was found: there is more. It is only read, never locked, so a claim running
      -- beside this one takes it (a locked probe would hide it from them).
      if v_claimed = p_limit then
        v_more := true;
        exit walk;
      end if;
      -- Lock it now, skipping it if another claim holds it; re-read under the lock, it may just have been taken.
      perform 1 from public.messages m
      where m.id = v_head.id and (m.state = 'pending' or (m.state = 'processing' and m.lease_expires_at < now()))
      for update skip locked;
      if not found then
        continue;
      end if;
      with claimed as (
        update public.messages m
        set state = 'processing', lease_owner = p_worker, attempts = m.attempts + 1, updated_at = now(),
            lease_expires_at = now() + make_interval(secs => p_lease_seconds),
            claimed_at = now(), claim_version = v_conversation.control_version
        where m.conversation_id = v_head.conversation_id and m.direction = 'inbound'
          and (m.id = v_head.id
               or (v_bursts
                   and (m.state = 'pending' or (m.state = 'processing' and m.lease_expires_at < now()))))
        returning m.*
      )
      select jsonb_agg(jsonb_build_object('id', c.id, 'content', c.content, 'created_at', c.created_at)
                       order by c.created_at, c.id)
      into v_burst from claimed c;

      select jsonb_build_object(
        'id', m.id, 'conversation_id', m.conversation_id, 'client_id', m.client_id, 'content', m.content,
        'attempts', m.attempts, 'created_at', m.created_at, 'platform', v_conversation.platform,
        'chat_id', v_conversation.chat_id, 'burst', v_burst,
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
      into v_row
      from public.messages m where m.id = v_head.id;
      v_rows := v_rows || v_row;
      v_claimed := v_claimed + 1;
    end loop;
    exit walk when v_seen < v_asked;  -- the end of the queue
  end loop;
  return query select u.r || jsonb_build_object('more', v_more) from unnest(v_rows) with ordinality as u(r, n) order by u.n;
end
$$;
comment on function public.claim_messages(text, integer, double precision, integer, jsonb, integer) is
  'Lease up to p_limit conversations'' oldest unfinished customer message (FOR UPDATE SKIP LOCKED), in conversations whose bot is active (not off, not paused); expired leases are taken over. With p_burst_windows ({"platform": ms, "*": ms}) a conversation of a platform named there (or any, with "*") is claimed only once its newest pending message is older than the window, and all its unfinished messages come together in "burst"; other platforms'' messages one at a time. With p_context_limit, "context" holds the conversation before the burst (at most that many messages, oldest first). "more" on each row: whether another message was claimable beyond p_limit.';
