-- Why: the listener and delivery must obey the conversation controls atomically, not by a check that
-- can race (issue 11). The rules live in these functions, so the listener only obeys their answers:
--   * claim_messages skips conversations whose bot is off or paused, records the conversation's
--     control_version it saw, and (new, opt-in parameter p_burst_windows) takes a conversation's
--     consecutive unfinished customer messages together once the newest is older than the platform's
--     quiet window: one model call, one reply for a burst. Without the parameter it claims one message
--     at a time, as before, so the current listener works unchanged.
--   * complete_message is THE FENCE. With the conversation row locked (every operator RPC locks it
--     too, so they serialize), it decides the outcome: discarded (the control_version moved since the
--     claim: an operator took over, replied or changed the mode while the model was answering; the
--     answer is kept, never delivered), handoff (needs_human, the category's action or urgency rule:
--     bot off until handed back, the customer gets the handoff notice of their language), draft (bot
--     mode draft, category action draft, or confidence below the category's threshold), or sent.
--     Every message of the burst ends pointing at the one reply. Same signature and status values as
--     before; the answer gains 'outcome'.
--   * extend_lease, release_message and finish_message act on the whole burst; a handoff without a reply
--     (unusable answer) also leaves the bot off.
--   * claim_deliveries never leases drafts or discarded answers (held), by its WHERE and by a constraint;
--     an operator reply names its author in the job.
--   * get_message shows the reply that answers a message (reply_id), and only once it is to be delivered.

drop function public.claim_messages(text, integer, double precision, integer);

create function public.bot_is_active(p_conversation public.conversations) returns boolean
language sql stable security invoker set search_path = ''
as $$
  select p_conversation.bot_mode <> 'off'
     and (p_conversation.bot_paused_at is null
          or (p_conversation.bot_paused_until is not null and p_conversation.bot_paused_until <= now()))
$$;
comment on function public.bot_is_active(public.conversations) is
  'Whether the bot may answer in this conversation now: its mode is not off and it is not paused.';

create function public.claim_messages(
  p_worker text, p_limit integer default 1, p_lease_seconds double precision default 60,
  p_max_attempts integer default 3, p_burst_windows jsonb default null
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
      and (p_burst_windows is null or not exists (
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
             or (p_burst_windows is not null
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
      'burst', v_burst)
    from public.messages m where m.id = v_head.id;
  end loop;
end
$$;
comment on function public.claim_messages(text, integer, double precision, integer, jsonb) is
  'Lease up to p_limit conversations'' oldest unfinished customer message (FOR UPDATE SKIP LOCKED), in conversations whose bot is active (not off, not paused); expired leases are taken over. With p_burst_windows ({"platform": ms, "*": ms}) a conversation is claimed only once its newest pending message is older than the window, and all its unfinished messages come together in "burst".';

create or replace function public.extend_lease(p_message_id uuid, p_worker text, p_lease_seconds double precision)
returns boolean
language sql volatile security invoker set search_path = ''
as $$
  with extended as (
    update public.messages m set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
    where m.conversation_id = (select h.conversation_id from public.messages h where h.id = p_message_id)
      and m.direction = 'inbound' and m.state = 'processing' and m.lease_owner = p_worker
    returning m.id
  ) select exists (select 1 from extended where id = p_message_id)
$$;
comment on function public.extend_lease(uuid, text, double precision) is
  'Keep a lease alive while the model works (every message of the burst); false when it was lost.';

create or replace function public.release_message(p_message_id uuid, p_worker text) returns boolean
language sql volatile security invoker set search_path = ''
as $$
  with released as (
    update public.messages m
    set state = 'pending', lease_owner = null, lease_expires_at = null, attempts = greatest(m.attempts - 1, 0),
        updated_at = now()
    where m.conversation_id = (select h.conversation_id from public.messages h where h.id = p_message_id)
      and m.direction = 'inbound' and m.state = 'processing' and m.lease_owner = p_worker
    returning m.id
  ) select exists (select 1 from released where id = p_message_id)
$$;
comment on function public.release_message(uuid, text) is
  'Give a lease back on shutdown (the whole burst), so another worker takes the messages at once.';

-- The conversation is locked before its messages, in the order every operator RPC uses.
create or replace function public.finish_message(p_message_id uuid, p_worker text, p_state text, p_error text)
returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_conversation uuid;
  v_count integer;
begin
  if p_state not in ('handoff', 'failed') then
    raise exception 'finish_message: state must be handoff or failed, not %', p_state;
  end if;
  select m.conversation_id into v_conversation from public.messages m where m.id = p_message_id;
  perform 1 from public.conversations c where c.id = v_conversation for update;
  update public.messages m
  set state = p_state, last_error = left(p_error, 500), lease_owner = null, lease_expires_at = null,
      finished_at = now(), updated_at = now()
  where m.conversation_id = v_conversation and m.direction = 'inbound' and m.state = 'processing'
    and m.lease_owner = p_worker
    and exists (select 1 from public.messages h where h.id = p_message_id and h.state = 'processing'
                and h.lease_owner = p_worker);
  get diagnostics v_count = row_count;
  if v_count > 0 and p_state = 'handoff' then
    update public.conversations c
    set resume_mode = coalesce(c.resume_mode, nullif(c.bot_mode, 'off')), bot_mode = 'off', handed_off_at = now(),
        updated_at = now()
    where c.id = v_conversation;
  end if;
  return jsonb_build_object('status', case when v_count > 0 then 'finished' else 'lease_lost' end);
end
$$;
comment on function public.finish_message(uuid, text, text, text) is
  'Hand a message (its whole burst) to a human or fail it without a reply, keeping the reason; a handoff leaves the bot off until handed back.';

create or replace function public.complete_message(
  p_message_id uuid, p_worker text, p_state text, p_reply text, p_classification jsonb, p_usage jsonb
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
  if v_existing.id is not null and v_existing.status <> 'discarded' then
    return jsonb_build_object('status', 'already_done', 'reply_id', v_existing.id, 'outcome', v_existing.outcome);
  end if;
  if v_message.state <> 'processing' or v_message.lease_owner is distinct from p_worker then
    if v_existing.id is not null then
      return jsonb_build_object('status', 'already_done', 'reply_id', v_existing.id, 'outcome', v_existing.outcome);
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
    update public.replies set outbound_message_id = v_outbound where id = v_sent_reply;
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
    'message_ids', to_jsonb(v_burst));
end
$$;
comment on function public.complete_message(uuid, text, text, text, jsonb, jsonb) is
  'Finish a claimed burst in one transaction with the conversation locked (the fence): classification, the bot''s reply and the messages'' state, as the controls decide: outcome sent | draft | handoff (bot off, handoff notice) | discarded (an operator acted since the claim; kept, never delivered). Idempotent; refuses when another worker holds the lease.';

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
  select jsonb_build_object(
    'reply_id', c.id, 'message_id', c.message_id, 'conversation_id', c.conversation_id,
    'client_id', v.client_id, 'platform', v.platform, 'chat_id', v.chat_id, 'webhook_url', v.webhook_url,
    'content', c.content, 'attempt', c.delivery_attempts, 'created_at', c.created_at,
    'kind', c.kind, 'author_id', c.author_id,
    'classification', case when k.id is null then null else jsonb_build_object(
      'category', k.category, 'intent', k.intent, 'sentiment', k.sentiment, 'urgency', k.urgency,
      'language', k.language, 'confidence', k.confidence, 'needs_human', k.needs_human) end)
  from claimed c
  join public.conversations v on v.id = c.conversation_id
  left join public.classifications k on k.message_id = c.message_id and c.kind <> 'operator'
  order by c.created_at
$$;
comment on function public.claim_deliveries(text, integer, double precision) is
  'Lease replies whose delivery is due (new, retry time reached, or a delivering worker''s lease expired); drafts and discarded answers never.';

create or replace function public.get_message(p_id uuid) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'state', m.state, 'last_error', m.last_error,
    'response', r.content, 'model', coalesce(r.model, k.model),
    'classification', case when k.id is null then null else jsonb_build_object(
      'category', k.category, 'intent', k.intent, 'sentiment', k.sentiment, 'urgency', k.urgency,
      'language', k.language, 'confidence', k.confidence, 'needs_human', k.needs_human) end)
  from public.messages m
  left join public.replies r on r.id = m.reply_id and r.status in ('sent', 'approved')
  -- A burst's later messages show the classification of the message their reply names.
  left join public.classifications k on k.message_id = coalesce(
    (select b.message_id from public.replies b where b.id = m.reply_id and b.kind <> 'operator'), m.id)
  where m.id = p_id and m.direction = 'inbound'
$$;
comment on function public.get_message(uuid) is 'An inbound message with its state, classification and the reply that answers it, once that reply is to be delivered (GET /api/messages/{id}).';

revoke execute on function
  public.bot_is_active(public.conversations),
  public.claim_messages(text, integer, double precision, integer, jsonb)
from public, anon, authenticated;
grant execute on function
  public.bot_is_active(public.conversations),
  public.claim_messages(text, integer, double precision, integer, jsonb)
to service_role;
grant execute on function public.bot_is_active(public.conversations) to authenticated;
