-- Why: every message to a known conversation wrote the conversation twice: intake_message's upsert
-- (webhook_url, updated_at) and then messages_update_inbox (preview, unread count). Two row versions, and
-- two UPDATE events for every console watching the inbox. The upsert now runs only for a new
-- conversation or a changed webhook URL (a conversation implies its client); a known one is only locked,
-- as the upsert locked it, before the message is inserted. The inbox trigger moves
-- updated_at for a customer's message, as the upsert did ("when the latest message of this chat arrived").

create or replace function public.messages_update_inbox() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.conversations c
  set last_message_at = new.created_at,
      last_message_preview = left(new.content, 140),
      last_message_direction = new.direction,
      unread_count = case when new.direction = 'inbound' then c.unread_count + 1 else 0 end,
      status = case when new.direction = 'inbound' then 'open' else c.status end,
      updated_at = case when new.direction = 'inbound' then now() else c.updated_at end
  where c.id = new.conversation_id;
  return null;
end
$$;

create or replace function public.intake_message(
  p_client_id text,
  p_platform text,
  p_chat_id text,
  p_content text,
  p_webhook_url text default null,
  p_idempotency_key text default null,
  p_platform_message_id text default null,
  p_fingerprint text default null,
  p_payload jsonb default null,
  p_handoff_reason text default null
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_conversation uuid;
  v_webhook_url text;
  v_message public.messages;
  v_state text := case when p_handoff_reason is null then 'pending' else 'handoff' end;
begin
  for attempt in 1..2 loop
    select c.id, c.webhook_url into v_conversation, v_webhook_url from public.conversations c
    where c.client_id = p_client_id and c.platform = p_platform and c.chat_id = p_chat_id;

    select * into v_message from public.messages m
    where (p_idempotency_key is not null and m.client_id = p_client_id and m.idempotency_key = p_idempotency_key)
       or (p_platform_message_id is not null and v_conversation is not null and m.conversation_id = v_conversation
           and m.platform_message_id = p_platform_message_id)
    limit 1;
    if v_message.id is not null then
      return jsonb_build_object(
        'id', v_message.id, 'conversation_id', v_message.conversation_id, 'state', v_message.state,
        'created', false,
        'conflict', v_message.request_fingerprint is distinct from p_fingerprint
                    or not exists (select from public.conversations c
                                   where c.id = v_message.conversation_id and c.client_id = p_client_id
                                     and c.platform = p_platform and c.chat_id = p_chat_id));
    end if;

    -- A known conversation (its client too) is written once, by the new message's inbox trigger; only a
    -- new one, or a new webhook URL, is written here. Either way its row is locked before the message is
    -- inserted, so a conversation's messages take their created_at (clock_timestamp) in commit order.
    if v_conversation is not null and (p_webhook_url is null or p_webhook_url = v_webhook_url) then
      perform from public.conversations c where c.id = v_conversation for no key update;
      if not found then
        v_conversation := null;  -- gone since it was read: made again below
      end if;
    end if;
    if v_conversation is null or (p_webhook_url is not null and p_webhook_url is distinct from v_webhook_url) then
      insert into public.clients (id) values (p_client_id) on conflict (id) do nothing;
      insert into public.conversations as c (client_id, platform, chat_id, webhook_url)
      values (p_client_id, p_platform, p_chat_id, p_webhook_url)
      on conflict (client_id, platform, chat_id) do update
        set webhook_url = coalesce(excluded.webhook_url, c.webhook_url), updated_at = now()
      returning c.id into v_conversation;
    end if;

    -- A concurrent request with the same key makes this insert wait for it, then do nothing:
    -- the loop's second pass then finds the row that request committed.
    insert into public.messages as m (conversation_id, client_id, direction, content, state, idempotency_key,
                                      platform_message_id, request_fingerprint, payload, last_error, finished_at)
    values (v_conversation, p_client_id, 'inbound', p_content, v_state, p_idempotency_key,
            p_platform_message_id, p_fingerprint, p_payload, left(p_handoff_reason, 500),
            case when v_state = 'handoff' then now() end)
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
comment on function public.intake_message(text, text, text, text, text, text, text, text, jsonb, text) is
  'Intake in one transaction: a retry with the same idempotency key or platform message id returns the first message and writes nothing (conflict=true when the request differs); otherwise upsert the client and the conversation and insert the message (pending, or handoff when p_handoff_reason is given).';
