-- Why: a completion wrote the reply that goes out twice: inserted, then updated to point at its
-- outbound message and (with p_lease_seconds) to lease it, a second version of a row with nine indexes
-- for every message answered (issue 13: the database's CPU per message). The outbound message is now
-- inserted first and the reply once, complete. Same answers, same rows, same end state.

create or replace function public.complete_message(
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
  v_status text;
  v_reply public.replies;
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
  v_status := case
    when v_outcome = 'discarded' then 'discarded'
    when v_outcome = 'sent' then 'sent'
    when v_outcome = 'handoff' and v_settings.handoff_message_enabled and v_notice is null then 'sent'
    else 'draft' end;
  v_sent_content := case when v_notice is not null then v_notice when v_status = 'sent' then p_reply end;
  -- The text that goes out joins the history first, so its reply is written once, complete: pointing at
  -- it and, with p_lease_seconds, leased to p_worker with its first attempt counted, exactly as
  -- claim_deliveries would lease it (the worker attempts it at once).
  if v_sent_content is not null then
    insert into public.messages (conversation_id, client_id, direction, content, reply_to)
    values (v_conversation.id, v_message.client_id, 'outbound', v_sent_content, p_message_id)
    returning id into v_outbound;
  end if;

  insert into public.replies (message_id, conversation_id, content, model, kind, status, outcome, delivery_state,
                              delivery_lease_owner, delivery_attempts, next_attempt_at, outbound_message_id,
                              discard_reason, discarded_at, control_version)
  values (p_message_id, v_conversation.id, p_reply, p_usage ->> 'model', 'bot', v_status, v_outcome,
          case when v_status <> 'sent' then 'held' when p_lease_seconds is null then 'pending' else 'delivering' end,
          case when v_status = 'sent' and p_lease_seconds is not null then p_worker end,
          case when v_status = 'sent' and p_lease_seconds is not null then 1 else 0 end,
          case when v_status <> 'sent' then null when p_lease_seconds is null then now()
               else now() + make_interval(secs => p_lease_seconds) end,
          case when v_status = 'sent' then v_outbound end,
          case when v_status = 'discarded' then 'takeover' end,
          case when v_status = 'discarded' then now() end,
          v_conversation.control_version)
  returning * into v_reply;
  v_bot_reply := v_reply.id;
  if v_status = 'sent' then
    v_sent_reply := v_reply.id;
    v_delivery := v_reply;
  end if;

  if v_notice is not null then
    insert into public.replies (message_id, conversation_id, content, kind, status, delivery_state,
                                delivery_lease_owner, delivery_attempts, next_attempt_at, outbound_message_id,
                                control_version)
    values (p_message_id, v_conversation.id, v_notice, 'handoff_notice', 'sent',
            case when p_lease_seconds is null then 'pending' else 'delivering' end,
            case when p_lease_seconds is not null then p_worker end,
            case when p_lease_seconds is not null then 1 else 0 end,
            case when p_lease_seconds is null then now() else now() + make_interval(secs => p_lease_seconds) end,
            v_outbound, v_conversation.control_version)
    returning * into v_delivery;
    v_sent_reply := v_delivery.id;
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

