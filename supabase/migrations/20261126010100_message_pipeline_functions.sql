-- Why: every step of the pipeline is one round trip and one transaction, so these are SQL functions
-- called through PostgREST's /rpc (PostgREST cannot say FOR UPDATE SKIP LOCKED in a query string).
-- They run as the caller (security invoker) and only service_role may execute them: the default
-- privileges would let anon and authenticated call anything in public, so execute is revoked.
-- Answers that are not errors (a reused idempotency key, a lost lease) come back as JSON fields,
-- so the callers never have to parse SQLSTATEs out of PostgREST errors.

create function public.health_check() returns boolean
language sql stable security invoker set search_path = ''
as $$ select true $$;
comment on function public.health_check() is 'Answers true when PostgREST and the database both answer (GET /health).';

create function public.intake_message(
  p_client_id text,
  p_platform text,
  p_chat_id text,
  p_content text,
  p_webhook_url text default null,
  p_idempotency_key text default null,
  p_platform_message_id text default null,
  p_fingerprint text default null
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_conversation uuid;
  v_message public.messages;
begin
  insert into public.clients (id) values (p_client_id) on conflict (id) do nothing;
  insert into public.conversations as c (client_id, platform, chat_id, webhook_url)
  values (p_client_id, p_platform, p_chat_id, p_webhook_url)
  on conflict (client_id, platform, chat_id) do update
    set webhook_url = coalesce(excluded.webhook_url, c.webhook_url), updated_at = now()
  returning c.id into v_conversation;

  for attempt in 1..2 loop
    select * into v_message from public.messages m
    where (p_idempotency_key is not null and m.client_id = p_client_id and m.idempotency_key = p_idempotency_key)
       or (p_platform_message_id is not null and m.conversation_id = v_conversation
           and m.platform_message_id = p_platform_message_id)
    limit 1;
    if v_message.id is not null then
      return jsonb_build_object(
        'id', v_message.id, 'conversation_id', v_message.conversation_id, 'state', v_message.state,
        'created', false,
        'conflict', v_message.request_fingerprint is distinct from p_fingerprint
                    or v_message.conversation_id <> v_conversation);
    end if;
    -- A concurrent request with the same key makes this insert wait for it, then do nothing:
    -- the loop's second pass then finds the row that request committed.
    insert into public.messages as m (conversation_id, client_id, direction, content, state, idempotency_key,
                                      platform_message_id, request_fingerprint)
    values (v_conversation, p_client_id, 'inbound', p_content, 'pending', p_idempotency_key,
            p_platform_message_id, p_fingerprint)
    on conflict do nothing
    returning * into v_message;
    if v_message.id is not null then
      return jsonb_build_object('id', v_message.id, 'conversation_id', v_conversation, 'state', v_message.state,
                                'created', true, 'conflict', false);
    end if;
  end loop;
  raise exception 'intake_message: duplicate key but no row found for it';
end
$$;
comment on function public.intake_message(text, text, text, text, text, text, text, text) is
  'Intake in one transaction: upsert the client and the conversation, insert the pending message; a retry with the same idempotency key or platform message id returns the first message (conflict=true when the request differs).';

create function public.get_message(p_id uuid) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'state', m.state, 'last_error', m.last_error,
    'response', r.content, 'model', coalesce(r.model, k.model),
    'classification', case when k.id is null then null else jsonb_build_object(
      'category', k.category, 'intent', k.intent, 'sentiment', k.sentiment, 'urgency', k.urgency,
      'language', k.language, 'confidence', k.confidence, 'needs_human', k.needs_human) end)
  from public.messages m
  left join public.replies r on r.message_id = m.id
  left join public.classifications k on k.message_id = m.id
  where m.id = p_id and m.direction = 'inbound'
$$;
comment on function public.get_message(uuid) is 'An inbound message with its state, classification and reply (GET /api/messages/{id}).';

create function public.claim_messages(
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
  with heads as (
    -- The oldest unfinished message of each conversation: only it may be worked on.
    select distinct on (m.conversation_id) m.id, m.state, m.lease_expires_at
    from public.messages m
    where m.direction = 'inbound' and m.state in ('pending', 'processing')
    order by m.conversation_id, m.created_at, m.id
  ), claimable as (
    select m.id from public.messages m
    where m.id in (select h.id from heads h where h.state = 'pending' or h.lease_expires_at < now())
      and (m.state = 'pending' or (m.state = 'processing' and m.lease_expires_at < now()))
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
comment on function public.claim_messages(text, integer, double precision, integer) is
  'Lease up to p_limit inbound messages (oldest first, one per conversation, FOR UPDATE SKIP LOCKED); expired leases are taken over.';

create function public.extend_lease(p_message_id uuid, p_worker text, p_lease_seconds double precision)
returns boolean
language sql volatile security invoker set search_path = ''
as $$
  with extended as (
    update public.messages set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
    where id = p_message_id and state = 'processing' and lease_owner = p_worker
    returning 1
  ) select exists (select 1 from extended)
$$;
comment on function public.extend_lease(uuid, text, double precision) is 'Keep a lease alive while the model works; false when it was lost.';

create function public.complete_message(
  p_message_id uuid, p_worker text, p_state text, p_reply text, p_classification jsonb, p_usage jsonb
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_message public.messages;
  v_reply uuid;
  v_outbound uuid;
begin
  if p_state not in ('answered', 'handoff') then
    raise exception 'complete_message: state must be answered or handoff, not %', p_state;
  end if;
  select * into v_message from public.messages where id = p_message_id and direction = 'inbound' for update;
  if v_message.id is null then
    return jsonb_build_object('status', 'not_found');
  end if;
  select id into v_reply from public.replies where message_id = p_message_id;
  if v_reply is not null then
    return jsonb_build_object('status', 'already_done', 'reply_id', v_reply);
  end if;
  if v_message.state <> 'processing' or v_message.lease_owner is distinct from p_worker then
    return jsonb_build_object('status', 'lease_lost');
  end if;

  insert into public.classifications (message_id, conversation_id, category, intent, sentiment, urgency, language,
                                      confidence, needs_human, model, prompt_version, prompt_tokens,
                                      completion_tokens, latency_ms)
  values (p_message_id, v_message.conversation_id, p_classification ->> 'category', p_classification ->> 'intent',
          p_classification ->> 'sentiment', p_classification ->> 'urgency', p_classification ->> 'language',
          (p_classification ->> 'confidence')::real, (p_classification ->> 'needs_human')::boolean,
          p_usage ->> 'model', p_usage ->> 'prompt_version', coalesce((p_usage ->> 'prompt_tokens')::integer, 0),
          coalesce((p_usage ->> 'completion_tokens')::integer, 0), coalesce((p_usage ->> 'latency_ms')::integer, 0));
  insert into public.messages (conversation_id, client_id, direction, content, reply_to)
  values (v_message.conversation_id, v_message.client_id, 'outbound', p_reply, p_message_id)
  returning id into v_outbound;
  insert into public.replies (message_id, conversation_id, outbound_message_id, content, model)
  values (p_message_id, v_message.conversation_id, v_outbound, p_reply, p_usage ->> 'model')
  returning id into v_reply;
  update public.messages
  set state = p_state, lease_owner = null, lease_expires_at = null, last_error = null,
      finished_at = now(), updated_at = now()
  where id = p_message_id;
  return jsonb_build_object('status', 'completed', 'reply_id', v_reply);
end
$$;
comment on function public.complete_message(uuid, text, text, text, jsonb, jsonb) is
  'Finish a message in one transaction: classification + reply (+ its outbound message) + state. Idempotent; refuses when another worker holds the lease.';

create function public.finish_message(p_message_id uuid, p_worker text, p_state text, p_error text)
returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_count integer;
begin
  if p_state not in ('handoff', 'failed') then
    raise exception 'finish_message: state must be handoff or failed, not %', p_state;
  end if;
  update public.messages
  set state = p_state, last_error = left(p_error, 500), lease_owner = null, lease_expires_at = null,
      finished_at = now(), updated_at = now()
  where id = p_message_id and state = 'processing' and lease_owner = p_worker;
  get diagnostics v_count = row_count;
  return jsonb_build_object('status', case when v_count = 1 then 'finished' else 'lease_lost' end);
end
$$;
comment on function public.finish_message(uuid, text, text, text) is
  'Hand a message to a human or fail it without a reply, keeping the reason.';

create function public.release_message(p_message_id uuid, p_worker text) returns boolean
language sql volatile security invoker set search_path = ''
as $$
  with released as (
    update public.messages
    set state = 'pending', lease_owner = null, lease_expires_at = null, attempts = greatest(attempts - 1, 0),
        updated_at = now()
    where id = p_message_id and state = 'processing' and lease_owner = p_worker
    returning 1
  ) select exists (select 1 from released)
$$;
comment on function public.release_message(uuid, text) is 'Give a lease back on shutdown, so another worker takes the message at once.';

create function public.claim_deliveries(p_worker text, p_limit integer default 10, p_lease_seconds double precision default 60)
returns setof jsonb
language sql volatile security invoker set search_path = ''
as $$
  with due as (
    select r.id from public.replies r
    where r.delivery_state in ('pending', 'delivering', 'retrying') and r.next_attempt_at <= now()
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
    'classification', case when k.id is null then null else jsonb_build_object(
      'category', k.category, 'intent', k.intent, 'sentiment', k.sentiment, 'urgency', k.urgency,
      'language', k.language, 'confidence', k.confidence, 'needs_human', k.needs_human) end)
  from claimed c
  join public.conversations v on v.id = c.conversation_id
  left join public.classifications k on k.message_id = c.message_id
  order by c.created_at
$$;
comment on function public.claim_deliveries(text, integer, double precision) is
  'Lease replies whose delivery is due (new, retry time reached, or a delivering worker''s lease expired).';

create function public.record_delivery(
  p_reply_id uuid, p_worker text, p_outcome text, p_webhook_id text, p_status_code integer, p_error text,
  p_duration_ms integer, p_next_attempt_at timestamptz
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_reply public.replies;
begin
  select * into v_reply from public.replies where id = p_reply_id for update;
  if v_reply.id is null then
    return jsonb_build_object('status', 'not_found');
  end if;
  insert into public.delivery_attempts (reply_id, attempt, webhook_id, outcome, status_code, error, duration_ms, worker)
  values (p_reply_id, v_reply.delivery_attempts, p_webhook_id, p_outcome, p_status_code, left(p_error, 500),
          coalesce(p_duration_ms, 0), p_worker);
  if v_reply.delivery_state <> 'delivering' or v_reply.delivery_lease_owner is distinct from p_worker then
    return jsonb_build_object('status', 'lease_lost');
  end if;
  update public.replies
  set delivery_state = case p_outcome when 'retry' then 'retrying' else p_outcome end,
      next_attempt_at = case when p_outcome = 'retry' then p_next_attempt_at end,
      delivered_at = case when p_outcome = 'delivered' then now() end,
      last_delivery_error = left(p_error, 500), last_status_code = p_status_code,
      delivery_lease_owner = null, updated_at = now()
  where id = p_reply_id;
  return jsonb_build_object('status', 'recorded');
end
$$;
comment on function public.record_delivery(uuid, text, text, text, integer, text, integer, timestamptz) is
  'Log a delivery attempt and move the reply to delivered, retrying (at p_next_attempt_at), failed or stopped.';

revoke execute on function
  public.health_check(),
  public.intake_message(text, text, text, text, text, text, text, text),
  public.get_message(uuid),
  public.claim_messages(text, integer, double precision, integer),
  public.extend_lease(uuid, text, double precision),
  public.complete_message(uuid, text, text, text, jsonb, jsonb),
  public.finish_message(uuid, text, text, text),
  public.release_message(uuid, text),
  public.claim_deliveries(text, integer, double precision),
  public.record_delivery(uuid, text, text, text, integer, text, integer, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.health_check(),
  public.intake_message(text, text, text, text, text, text, text, text),
  public.get_message(uuid),
  public.claim_messages(text, integer, double precision, integer),
  public.extend_lease(uuid, text, double precision),
  public.complete_message(uuid, text, text, text, jsonb, jsonb),
  public.finish_message(uuid, text, text, text),
  public.release_message(uuid, text),
  public.claim_deliveries(text, integer, double precision),
  public.record_delivery(uuid, text, text, text, integer, text, integer, timestamptz)
to service_role;
