-- Why: one round trip less per message (issue 13). The reply a completion sends was leased by a
-- separate claim_deliveries call right after it; now complete_message can lease it itself
-- (p_lease_seconds) and answer the delivery job, so the listener attempts it at once. claim_deliveries
-- and the completion describe a job with one function, delivery_job. A completion without
-- p_lease_seconds behaves as before (the reply waits for claim_deliveries), so listeners of the
-- previous release keep working during a rolling deploy.
--
-- And claim_messages tells whether more was claimable ("more" on each row): a consumer that got the
-- last claimable message stops there instead of asking once more for nothing (new messages send
-- their own Realtime hint, and the sweep catches a missed one). To see one candidate beyond p_limit
-- without hiding it from concurrent claims, candidates are read without a lock and each is locked
-- (SKIP LOCKED, state re-checked) just before it is claimed; they are read a page at a time (one
-- more than is still wanted), since a LIMIT is what keeps the planner on the index walk (without
-- one, a claim with 5,000 messages waiting took 5 ms instead of 0.9).

create function public.delivery_job(p_reply public.replies) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'reply_id', p_reply.id, 'message_id', p_reply.message_id, 'conversation_id', p_reply.conversation_id,
    'client_id', v.client_id, 'platform', v.platform, 'chat_id', v.chat_id, 'webhook_url', v.webhook_url,
    'content', p_reply.content, 'attempt', p_reply.delivery_attempts, 'created_at', p_reply.created_at,
    'kind', p_reply.kind, 'author_id', p_reply.author_id,
    'classification', case when k.id is null then null else jsonb_build_object(
      'category', k.category, 'intent', k.intent, 'sentiment', k.sentiment, 'urgency', k.urgency,
      'language', k.language, 'confidence', k.confidence, 'needs_human', k.needs_human) end)
  from public.conversations v
  left join public.classifications k on k.message_id = p_reply.message_id and p_reply.kind <> 'operator'
  where v.id = p_reply.conversation_id
$$;
comment on function public.delivery_job(public.replies) is
  'What a worker needs to attempt a leased reply: where it goes, what it says, its attempt number and classification.';

create or replace function public.claim_deliveries(p_worker text, p_limit integer default 10, p_lease_seconds double precision default 60)
returns setof jsonb
language sql volatile security invoker set search_path = ''
as $$
  with due as (
    select r.id from public.replies r
    where r.delivery_state in ('pending', 'delivering', 'retrying') and r.next_attempt_at <= now()
      -- Drafts and discarded answers are held (a constraint), and never leased (this line).
      and r.status in ('sent', 'approved')
    order by r.next_attempt_at, r.id
    limit p_limit
    for update skip locked
  ), claimed as (
    update public.replies r
    set delivery_state = 'delivering', delivery_lease_owner = p_worker, delivery_attempts = r.delivery_attempts + 1,
        next_attempt_at = now() + make_interval(secs => p_lease_seconds), updated_at = now()
    from due where r.id = due.id
    returning r.*
  )
  select public.delivery_job(c::public.replies) from claimed c order by c.created_at
$$;

drop function public.complete_message(uuid, text, text, text, jsonb, jsonb);

create function public.complete_message(
  p_message_id uuid, p_worker text, p_state text, p_reply text, p_classification jsonb, p_usage jsonb,
  p_lease_seconds double precision default null
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_conversation public.conversations;
  v_message public.messages;
  v_settings public.bot_settings;
  v_category public.categories;
  v_existing public.replies;
  v_burst uuid[];
  v_outcome text;
  v_urgency text := p_classification ->> 'urgency';
  v_language text := p_classification ->> 'language';
  v_confidence real := (p_classification ->> 'confidence')::real;
  v_notice text;
  v_bot_reply uuid;
  v_sent_reply uuid;
  v_sent_content text;
  v_outbound uuid;
  v_delivery public.replies;
  v_answering uuid;
  v_message_state text;
  c_urgencies constant text[] := array['low', 'normal', 'high', 'critical'];
begin
  if p_state not in ('answered', 'handoff') then
    raise exception 'complete_message: state must be answered or handoff, not %', p_state;
  end if;
  select * into v_conversation from public.conversations c
  where c.id = (select m.conversation_id from public.messages m where m.id = p_message_id and m.direction = 'inbound')
  for update;
  select * into v_message from public.messages where id = p_message_id and direction = 'inbound' for update;
  if v_message.id is null then
    return jsonb_build_object('status', 'not_found');
  end if;
  -- A retry after a commit whose answer was lost: the answer it wrote. A discarded answer belongs to an
  -- earlier claim when the message is claimed again (after a hand-back), so it only answers a retry.
  select * into v_existing from public.replies r
  where r.message_id = p_message_id and r.kind = 'bot'
  order by r.status = 'discarded', r.created_at desc limit 1;
  -- The retry of a completion that leased its reply: the lease is still this worker's, so is the attempt.
  if v_existing.id is not null and p_lease_seconds is not null then
    select * into v_delivery from public.replies r
    where r.message_id = p_message_id and r.kind in ('bot', 'handoff_notice') and r.delivery_state = 'delivering'
      and r.delivery_lease_owner = p_worker;
  end if;
  if v_existing.id is not null and v_existing.status <> 'discarded' then
    return jsonb_build_object('status', 'already_done', 'reply_id', v_existing.id, 'outcome', v_existing.outcome,
                              'delivery', case when v_delivery.id is not null then public.delivery_job(v_delivery) end);
  end if;
  if v_message.state <> 'processing' or v_message.lease_owner is distinct from p_worker then
    if v_existing.id is not null then
      return jsonb_build_object('status', 'already_done', 'reply_id', v_existing.id, 'outcome', v_existing.outcome,
                                'delivery', case when v_delivery.id is not null then public.delivery_job(v_delivery) end);
    end if;
    return jsonb_build_object('status', 'lease_lost');
  end if;

  select array_agg(m.id order by m.created_at, m.id) into v_burst
  from (select m.id, m.created_at from public.messages m
        where m.conversation_id = v_conversation.id and m.direction = 'inbound' and m.state = 'processing'
          and m.lease_owner = p_worker
        for update) m;
  select * into v_settings from public.bot_settings s where s.id;
  select * into v_category from public.categories k where k.name = p_classification ->> 'category' and k.active;

  -- The fence: anything an operator did to this conversation since the claim wins over the model.
  -- (A message claimed before this migration has no claim_version: only the bot's state can fence it.)
  if v_message.claim_version <> v_conversation.control_version
     or not public.bot_is_active(v_conversation) then
    v_outcome := 'discarded';
  elsif p_state = 'handoff' or (p_classification ->> 'needs_human')::boolean or v_category.action = 'handoff'
        or array_position(c_urgencies, v_urgency) >= array_position(c_urgencies, v_category.handoff_urgency) then
    v_outcome := 'handoff';
  elsif v_conversation.bot_mode = 'draft' or v_category.action = 'draft'
        or v_confidence < coalesce(v_category.min_confidence, 0) then
    v_outcome := 'draft';
  else
    v_outcome := 'sent';
  end if;

  insert into public.classifications (message_id, conversation_id, category, intent, sentiment, urgency, language,
                                      confidence, needs_human, model, prompt_version, prompt_tokens,
                                      completion_tokens, latency_ms)
  values (p_message_id, v_conversation.id, p_classification ->> 'category', p_classification ->> 'intent',
          p_classification ->> 'sentiment', v_urgency, v_language, v_confidence,
          (p_classification ->> 'needs_human')::boolean,
          p_usage ->> 'model', p_usage ->> 'prompt_version', coalesce((p_usage ->> 'prompt_tokens')::integer, 0),
          coalesce((p_usage ->> 'completion_tokens')::integer, 0), coalesce((p_usage ->> 'latency_ms')::integer, 0))
  -- Answered again after an earlier answer was discarded: the latest reading wins.
  on conflict (message_id) do update
    set category = excluded.category, intent = excluded.intent, sentiment = excluded.sentiment,
        urgency = excluded.urgency, language = excluded.language, confidence = excluded.confidence,
        needs_human = excluded.needs_human, model = excluded.model, prompt_version = excluded.prompt_version,
        prompt_tokens = public.classifications.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = public.classifications.completion_tokens + excluded.completion_tokens,
        latency_ms = excluded.latency_ms, created_at = now();

  if v_outcome = 'handoff' and v_settings.handoff_message_enabled then
    select h.content into v_notice from public.handoff_messages h where h.language = v_language and h.active;
  end if;

  -- The bot's answer: delivered when sent, or when a handoff has no notice in the customer's language
  -- while notices are on (the prompt makes the model write its own "a colleague will follow up").
  insert into public.replies (message_id, conversation_id, content, model, kind, status, outcome, delivery_state,
                              next_attempt_at, discard_reason, discarded_at, control_version)
  select p_message_id, v_conversation.id, p_reply, p_usage ->> 'model', 'bot', s.status, v_outcome,
         case when s.status = 'sent' then 'pending' else 'held' end,
         case when s.status = 'sent' then now() end,
         case when s.status = 'discarded' then 'takeover' end,
         case when s.status = 'discarded' then now() end,
         v_conversation.control_version
  from (select case
          when v_outcome = 'discarded' then 'discarded'
          when v_outcome = 'sent' then 'sent'
          when v_outcome = 'handoff' and v_settings.handoff_message_enabled and v_notice is null then 'sent'
          else 'draft' end as status) s
  returning id, case when status = 'sent' then id end, case when status = 'sent' then content end
  into v_bot_reply, v_sent_reply, v_sent_content;

  if v_notice is not null then
    insert into public.replies (message_id, conversation_id, content, kind, status, delivery_state, control_version)
    values (p_message_id, v_conversation.id, v_notice, 'handoff_notice', 'sent', 'pending',
            v_conversation.control_version)
    returning id, content into v_sent_reply, v_sent_content;
  end if;

  if v_sent_reply is not null then
    insert into public.messages (conversation_id, client_id, direction, content, reply_to)
    values (v_conversation.id, v_message.client_id, 'outbound', v_sent_content, p_message_id)
    returning id into v_outbound;
    -- With p_lease_seconds the reply leaves this transaction leased to p_worker, its first attempt
    -- counted, exactly as claim_deliveries would lease it: the worker attempts it at once.
    update public.replies r
    set outbound_message_id = v_outbound,
        delivery_state = case when p_lease_seconds is null then r.delivery_state else 'delivering' end,
        delivery_lease_owner = case when p_lease_seconds is null then r.delivery_lease_owner else p_worker end,
        delivery_attempts = r.delivery_attempts + case when p_lease_seconds is null then 0 else 1 end,
        next_attempt_at = case when p_lease_seconds is null then r.next_attempt_at
                               else now() + make_interval(secs => p_lease_seconds) end
    where r.id = v_sent_reply
    returning r.* into v_delivery;
  end if;

  if v_outcome = 'discarded' then
    -- An operator reply written since the claim answers the burst; otherwise it waits for a person (or,
    -- if the bot is active again, for the next claim: answered once all the same).
    select r.id into v_answering from public.replies r
    where r.conversation_id = v_conversation.id and r.kind = 'operator' and r.created_at >= v_message.claimed_at
    order by r.created_at desc limit 1;
    v_message_state := case when v_answering is null then 'pending' else 'answered' end;
  else
    v_answering := case when v_outcome = 'draft' then v_bot_reply else v_sent_reply end;
    v_message_state := case v_outcome when 'sent' then 'answered' when 'draft' then 'draft' else 'handoff' end;
  end if;
  update public.messages m
  set state = v_message_state, reply_id = v_answering, lease_owner = null, lease_expires_at = null, last_error = null,
      finished_at = case when v_message_state = 'pending' then null else now() end, updated_at = now()
  where m.id = any (v_burst);

  if v_outcome = 'handoff' then
    update public.conversations c
    set resume_mode = coalesce(c.resume_mode, nullif(c.bot_mode, 'off')), bot_mode = 'off', handed_off_at = now(),
        updated_at = now()
    where c.id = v_conversation.id;
  end if;

  return jsonb_build_object(
    'status', 'completed', 'outcome', v_outcome, 'reply_id', v_bot_reply, 'delivered_reply_id', v_sent_reply,
    'message_ids', to_jsonb(v_burst),
    'delivery', case when p_lease_seconds is not null and v_delivery.id is not null
                     then public.delivery_job(v_delivery) end);
end
$$;
comment on function public.complete_message(uuid, text, text, text, jsonb, jsonb, double precision) is
  'Finish a claimed burst in one transaction with the conversation locked (the fence): classification, the bot''s reply and the messages'' state, as the controls decide: outcome sent | draft | handoff (bot off, handoff notice) | discarded (an operator acted since the claim; kept, never delivered). Idempotent; refuses when another worker holds the lease. With p_lease_seconds the reply to deliver comes back leased to p_worker as "delivery" (a claim_deliveries job).';

revoke execute on function
  public.delivery_job(public.replies),
  public.complete_message(uuid, text, text, text, jsonb, jsonb, double precision)
from public, anon, authenticated;
grant execute on function
  public.delivery_job(public.replies),
  public.complete_message(uuid, text, text, text, jsonb, jsonb, double precision)
to service_role;

create or replace function public.claim_messages(
  p_worker text, p_limit integer default 1, p_lease_seconds double precision default 60,
  p_max_attempts integer default 3, p_burst_windows jsonb default null, p_context_limit integer default null
) returns setof jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_head record;
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

  -- The walk goes through candidates oldest first, a page at a time (a LIMIT keeps the index walk the
  -- planner picks); a page comes back short only at the end of the queue.
  <<walk>>
  loop
    v_asked := p_limit - v_claimed + 1;
    v_seen := 0;
    for v_head in
      select m.id, m.created_at, m.conversation_id, v.control_version, v.platform, v.chat_id
      from public.messages m
      join public.conversations v on v.id = m.conversation_id
      where m.direction = 'inbound' and m.state in ('pending', 'processing')
        and (m.state = 'pending' or m.lease_expires_at < now())
        and (m.created_at, m.id) > (v_after_at, v_after_id)
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
      limit v_asked
    loop
      v_seen := v_seen + 1;
      v_after_at := v_head.created_at;
      v_after_id := v_head.id;
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

