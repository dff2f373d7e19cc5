-- Why: every operator action is one RPC that supabase-js calls with the operator's token, so the
-- controls work on a real Supabase with no extra server (issue 11). The functions are SECURITY INVOKER:
-- they run as the signed-in operator, so the grants and RLS policies of 20261203020000 decide what they
-- may write, and a non-operator (or an inactive one) is refused before anything is read. Each locks the
-- conversation row first (the completing RPC does too), so an action and a bot answer never interleave.
-- Errors carry SQLSTATEs PostgREST turns into clean 4xx JSON ({code, message, details, hint}):
--   42501 -> 403 (401 for anon)  the caller is not an active operator
--   PT404 -> 404                 unknown conversation, reply
--   22023 -> 400                 bad input: empty or oversize text, a reply of another conversation, bad mode
--   PT409 -> 409                 wrong state: not a draft, not failed, request id reused for other text
-- An error rolls the whole call back: nothing changes. Actions a client is likely to retry are
-- idempotent: send_reply and add_note by a client request id, the others by their target state.

create function public.operator_uid(p_action text) returns uuid
language plpgsql stable security invoker set search_path = ''
as $$
begin
  if not public.is_operator() then
    raise exception using errcode = '42501', message = format('%s: only an active operator may do this', p_action),
      hint = 'Sign in as an operator (public.operators, active).';
  end if;
  return auth.uid();
end
$$;
comment on function public.operator_uid(text) is 'The calling operator''s user id; raises 42501 when the caller is not an active operator.';

create function public.operator_text(p_value text, p_field text, p_action text) returns text
language plpgsql immutable security invoker set search_path = ''
as $$
declare
  v_text text := btrim(coalesce(p_value, ''), E' \t\r\n');
begin
  if v_text = '' then
    raise exception using errcode = '22023', message = format('%s: %s must not be empty', p_action, p_field);
  end if;
  if char_length(v_text) > public.max_text_chars() then
    raise exception using errcode = '22023',
      message = format('%s: %s is %s characters long; the limit is %s', p_action, p_field, char_length(v_text),
                       public.max_text_chars());
  end if;
  return v_text;
end
$$;
comment on function public.operator_text(text, text, text) is 'An operator''s text, trimmed; raises 22023 naming the field when it is empty or longer than max_text_chars().';

create function public.operator_request_id(p_value text, p_action text) returns text
language plpgsql immutable security invoker set search_path = ''
as $$
begin
  if p_value is not null and char_length(p_value) not between 1 and 128 then
    raise exception using errcode = '22023',
      message = format('%s: p_client_request_id must be 1 to 128 characters', p_action);
  end if;
  return p_value;
end
$$;
comment on function public.operator_request_id(text, text) is 'Checks a client request id (1 to 128 characters, or null); raises 22023 otherwise.';

create function public.lock_conversation(p_conversation_id uuid, p_action text) returns public.conversations
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_conversation public.conversations;
begin
  select * into v_conversation from public.conversations c where c.id = p_conversation_id for update;
  if v_conversation.id is null then
    raise exception using errcode = 'PT404', message = format('%s: conversation %s not found', p_action, p_conversation_id);
  end if;
  return v_conversation;
end
$$;
comment on function public.lock_conversation(uuid, text) is 'Locks a conversation row for an operator action (the lock the completing RPC takes too); raises PT404 when there is none.';

create function public.is_active_operator(p_user_id uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
  select public.is_operator() and exists (select 1 from public.operators o where o.user_id = p_user_id and o.active)
$$;
comment on function public.is_active_operator(uuid) is 'For operators only: whether p_user_id is an active operator (agents cannot read other operators'' rows).';

create function public.conversation_json(p_conversation_id uuid) returns jsonb
language sql stable security invoker set search_path = ''
as $$
  select jsonb_build_object(
    'conversation_id', c.id, 'bot_mode', c.bot_mode, 'resume_mode', c.resume_mode, 'status', c.status,
    'assignee_id', c.assignee_id, 'bot_paused_at', c.bot_paused_at, 'bot_paused_until', c.bot_paused_until,
    'handed_off_at', c.handed_off_at, 'control_version', c.control_version)
  from public.conversations c where c.id = p_conversation_id
$$;
comment on function public.conversation_json(uuid) is 'A conversation''s controls as the operator RPCs answer them.';

-- Messages and replies ------------------------------------------------------------------------------

create function public.send_reply(p_conversation_id uuid, p_content text, p_client_request_id text default null)
returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('send_reply');
  v_text text := public.operator_text(p_content, 'p_content', 'send_reply');
  v_request text := public.operator_request_id(p_client_request_id, 'send_reply');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'send_reply');
  v_settings public.bot_settings;
  v_existing public.replies;
  v_latest uuid;
  v_outbound uuid;
  v_reply uuid;
begin
  if v_request is not null then
    select * into v_existing from public.replies r where r.author_id = v_uid and r.client_request_id = v_request;
    if v_existing.id is not null then
      if v_existing.conversation_id <> p_conversation_id or v_existing.content <> v_text then
        raise exception using errcode = 'PT409',
          message = format('send_reply: p_client_request_id %s was already used for another reply', v_request);
      end if;
      return jsonb_build_object('reply_id', v_existing.id, 'created', false) || public.conversation_json(p_conversation_id);
    end if;
  end if;
  select m.id into v_latest from public.messages m
  where m.conversation_id = p_conversation_id and m.direction = 'inbound'
  order by m.created_at desc, m.id desc limit 1;

  insert into public.messages (conversation_id, client_id, direction, content, reply_to)
  values (p_conversation_id, v_conversation.client_id, 'outbound', v_text, v_latest)
  returning id into v_outbound;
  insert into public.replies (message_id, conversation_id, outbound_message_id, content, kind, status, author_id,
                              client_request_id, control_version, delivery_state, next_attempt_at)
  values (v_latest, p_conversation_id, v_outbound, v_text, 'operator', 'sent', v_uid, v_request,
          v_conversation.control_version + 1, 'pending', now())
  returning id into v_reply;

  -- Drafts waiting for approval would answer twice: the operator's reply supersedes them.
  update public.replies r
  set status = 'discarded', discarded_by = v_uid, discarded_at = now(), discard_reason = 'superseded', updated_at = now()
  where r.conversation_id = p_conversation_id and r.status = 'draft';
  update public.messages m
  set state = 'answered', reply_id = v_reply, finished_at = now(), updated_at = now()
  where m.conversation_id = p_conversation_id and m.direction = 'inbound' and m.state in ('pending', 'draft');

  -- The fence (any version change discards a bot answer in flight) and the auto-pause.
  select * into v_settings from public.bot_settings s where s.id;
  update public.conversations c
  set control_version = c.control_version + 1,
      bot_paused_at = case when v_settings.auto_pause = 'off' then c.bot_paused_at else now() end,
      bot_paused_until = case v_settings.auto_pause
        when 'off' then c.bot_paused_until
        when 'minutes' then now() + make_interval(mins => v_settings.auto_pause_minutes)
        else null end,
      updated_at = now()
  where c.id = p_conversation_id;
  return jsonb_build_object('reply_id', v_reply, 'created', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.send_reply(uuid, text, text) is
  'An operator''s reply: delivered by the same path as the bot''s (signed, retried, its own webhook-id), answers every waiting customer message, supersedes open drafts, fences off a bot answer in flight and pauses the bot (bot_settings.auto_pause). Idempotent by p_client_request_id.';

create function public.approve_draft(p_conversation_id uuid, p_reply_id uuid, p_content text default null)
returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('approve_draft');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'approve_draft');
  v_draft public.replies;
  v_text text;
  v_outbound uuid;
begin
  -- No FOR UPDATE: RLS would hide a decided draft from it. Drafts change only under the conversation's lock.
  select * into v_draft from public.replies r where r.id = p_reply_id;
  if v_draft.id is null then
    raise exception using errcode = 'PT404', message = format('approve_draft: reply %s not found', p_reply_id);
  end if;
  if v_draft.conversation_id <> v_conversation.id then
    raise exception using errcode = '22023',
      message = format('approve_draft: reply %s belongs to another conversation', p_reply_id);
  end if;
  v_text := case when p_content is null then v_draft.content
                 else public.operator_text(p_content, 'p_content', 'approve_draft') end;
  if v_draft.status = 'approved' and v_text = v_draft.content then
    return jsonb_build_object('reply_id', v_draft.id, 'created', false, 'edited', v_draft.original_content is not null);
  end if;
  if v_draft.status <> 'draft' then
    raise exception using errcode = 'PT409',
      message = format('approve_draft: reply %s is not a draft (it is %s)', p_reply_id, v_draft.status);
  end if;

  insert into public.messages (conversation_id, client_id, direction, content, reply_to)
  values (v_conversation.id, v_conversation.client_id, 'outbound', v_text, v_draft.message_id)
  returning id into v_outbound;
  update public.replies r
  set status = 'approved', content = v_text,
      original_content = case when v_text <> v_draft.content then v_draft.content end,
      approved_by = v_uid, approved_at = now(), delivery_state = 'pending', next_attempt_at = now(),
      outbound_message_id = v_outbound, updated_at = now()
  where r.id = p_reply_id;
  update public.messages m
  set state = 'answered', finished_at = now(), updated_at = now()
  where m.reply_id = p_reply_id and m.state = 'draft';
  return jsonb_build_object('reply_id', p_reply_id, 'created', true, 'edited', v_text <> v_draft.content);
end
$$;
comment on function public.approve_draft(uuid, uuid, text) is
  'Approve a draft of this conversation, optionally edited (the original text is kept in original_content): it is delivered once, under its own webhook-id. Idempotent.';

create function public.discard_draft(p_conversation_id uuid, p_reply_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('discard_draft');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'discard_draft');
  v_draft public.replies;
begin
  -- No FOR UPDATE: RLS would hide a decided draft from it. Drafts change only under the conversation's lock.
  select * into v_draft from public.replies r where r.id = p_reply_id;
  if v_draft.id is null then
    raise exception using errcode = 'PT404', message = format('discard_draft: reply %s not found', p_reply_id);
  end if;
  if v_draft.conversation_id <> v_conversation.id then
    raise exception using errcode = '22023',
      message = format('discard_draft: reply %s belongs to another conversation', p_reply_id);
  end if;
  if v_draft.status = 'discarded' then
    return jsonb_build_object('reply_id', v_draft.id, 'created', false);
  end if;
  if v_draft.status <> 'draft' then
    raise exception using errcode = 'PT409',
      message = format('discard_draft: reply %s is not a draft (it is %s)', p_reply_id, v_draft.status);
  end if;
  update public.replies r
  set status = 'discarded', discarded_by = v_uid, discarded_at = now(), discard_reason = 'operator', updated_at = now()
  where r.id = p_reply_id;
  -- The customer's messages now wait for a person, not for the bot (which would only draft again).
  update public.messages m
  set state = 'handoff', reply_id = null, finished_at = now(), updated_at = now()
  where m.reply_id = p_reply_id and m.state = 'draft';
  return jsonb_build_object('reply_id', p_reply_id, 'created', true);
end
$$;
comment on function public.discard_draft(uuid, uuid) is
  'Discard a draft of this conversation: never delivered; the messages it answered are left to a person (handoff). Idempotent.';

create function public.resend_reply(p_reply_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('resend_reply');
  v_reply public.replies;
begin
  select * into v_reply from public.replies r where r.id = p_reply_id;
  if v_reply.id is null then
    raise exception using errcode = 'PT404', message = format('resend_reply: reply %s not found', p_reply_id);
  end if;
  perform public.lock_conversation(v_reply.conversation_id, 'resend_reply');
  select * into v_reply from public.replies r where r.id = p_reply_id;
  if v_reply.resent_at is not null and v_reply.delivery_state in ('pending', 'delivering', 'retrying') then
    return jsonb_build_object('reply_id', v_reply.id, 'created', false, 'delivery_state', v_reply.delivery_state);
  end if;
  if v_reply.delivery_state <> 'failed' then
    raise exception using errcode = 'PT409',
      message = format('resend_reply: reply %s has not failed (its delivery is %s)', p_reply_id, v_reply.delivery_state);
  end if;
  update public.replies r
  set delivery_state = 'pending', delivery_attempts = 0, next_attempt_at = now(), resent_by = v_uid, resent_at = now(),
      resend_count = r.resend_count + 1, updated_at = now()
  where r.id = p_reply_id and r.delivery_state = 'failed';
  if not found then  -- delivery bookkeeping does not take the conversation's lock
    raise exception using errcode = 'PT409', message = format('resend_reply: reply %s changed meanwhile; try again', p_reply_id);
  end if;
  return jsonb_build_object('reply_id', p_reply_id, 'created', true, 'delivery_state', 'pending');
end
$$;
comment on function public.resend_reply(uuid) is
  'Send again a reply whose delivery failed for good: back to pending with attempts reset (same webhook-id, so receivers deduplicate); records who. Idempotent while it is on its way.';

create function public.add_note(p_conversation_id uuid, p_body text, p_client_request_id text default null)
returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('add_note');
  v_text text := public.operator_text(p_body, 'p_body', 'add_note');
  v_request text := public.operator_request_id(p_client_request_id, 'add_note');
  v_existing public.notes;
  v_note uuid;
begin
  perform public.lock_conversation(p_conversation_id, 'add_note');
  if v_request is not null then
    select * into v_existing from public.notes n where n.author_id = v_uid and n.client_request_id = v_request;
    if v_existing.id is not null then
      if v_existing.conversation_id <> p_conversation_id or v_existing.body <> v_text then
        raise exception using errcode = 'PT409',
          message = format('add_note: p_client_request_id %s was already used for another note', v_request);
      end if;
      return jsonb_build_object('note_id', v_existing.id, 'created', false);
    end if;
  end if;
  insert into public.notes (conversation_id, author_id, body, client_request_id)
  values (p_conversation_id, v_uid, v_text, v_request)
  returning id into v_note;
  return jsonb_build_object('note_id', v_note, 'created', true);
end
$$;
comment on function public.add_note(uuid, text, text) is
  'A private note on a conversation: operators see it, the customer and the model never do. Idempotent by p_client_request_id.';

-- The bot's controls --------------------------------------------------------------------------------

create function public.take_over(p_conversation_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('take_over');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'take_over');
begin
  if v_conversation.bot_mode = 'off' and v_conversation.assignee_id is not distinct from v_uid then
    return jsonb_build_object('changed', false) || public.conversation_json(p_conversation_id);
  end if;
  update public.conversations c
  set assignee_id = v_uid, resume_mode = coalesce(c.resume_mode, nullif(c.bot_mode, 'off')), bot_mode = 'off',
      control_version = c.control_version + 1, updated_at = now()
  where c.id = p_conversation_id;
  return jsonb_build_object('changed', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.take_over(uuid) is
  'Assign the conversation to the caller and turn the bot off until handed back; a bot answer in flight becomes a discarded draft. Idempotent.';

create function public.hand_back(p_conversation_id uuid, p_mode text default null) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('hand_back');
  v_conversation public.conversations;
  v_mode text;
begin
  if p_mode is not null and p_mode not in ('auto', 'draft') then
    raise exception using errcode = '22023', message = format('hand_back: p_mode must be auto or draft, not %s', p_mode);
  end if;
  v_conversation := public.lock_conversation(p_conversation_id, 'hand_back');
  v_mode := coalesce(p_mode, v_conversation.resume_mode, nullif(v_conversation.bot_mode, 'off'),
                     nullif(public.default_bot_mode(), 'off'), 'auto');
  if v_conversation.bot_mode = v_mode and v_conversation.bot_paused_at is null and v_conversation.resume_mode is null
     and v_conversation.handed_off_at is null then
    return jsonb_build_object('changed', false) || public.conversation_json(p_conversation_id);
  end if;
  update public.conversations c
  set bot_mode = v_mode, resume_mode = null, bot_paused_at = null, bot_paused_until = null, handed_off_at = null,
      updated_at = now()
  where c.id = p_conversation_id;
  return jsonb_build_object('changed', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.hand_back(uuid, text) is
  'Give the conversation back to the bot: its mode before the takeover or handoff (or p_mode), pause lifted. The customer messages still unanswered become claimable and are answered once. Idempotent.';

create function public.set_bot_mode(p_conversation_id uuid, p_mode text) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('set_bot_mode');
begin
  if p_mode is null or p_mode not in ('auto', 'draft', 'off') then
    raise exception using errcode = '22023',
      message = format('set_bot_mode: p_mode must be auto, draft or off, not %s', coalesce(p_mode, 'null'));
  end if;
  if p_mode <> 'off' then
    return public.hand_back(p_conversation_id, p_mode);
  end if;
  perform public.lock_conversation(p_conversation_id, 'set_bot_mode');
  update public.conversations c
  set bot_mode = 'off', resume_mode = null, updated_at = now()
  where c.id = p_conversation_id and (c.bot_mode <> 'off' or c.resume_mode is not null);
  return jsonb_build_object('changed', found) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.set_bot_mode(uuid, text) is
  'Set the conversation''s bot mode: auto or draft (as hand_back into that mode) or off (no model calls until changed). Idempotent.';

create function public.assign(p_conversation_id uuid, p_assignee_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('assign');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'assign');
begin
  if p_assignee_id is not null and not public.is_active_operator(p_assignee_id) then
    raise exception using errcode = '22023',
      message = format('assign: p_assignee_id %s is not an active operator', p_assignee_id);
  end if;
  if v_conversation.assignee_id is not distinct from p_assignee_id then
    return jsonb_build_object('changed', false) || public.conversation_json(p_conversation_id);
  end if;
  update public.conversations c set assignee_id = p_assignee_id, updated_at = now() where c.id = p_conversation_id;
  return jsonb_build_object('changed', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.assign(uuid, uuid) is 'Assign the conversation to an active operator (null: unassign). Idempotent.';

create function public.resolve(p_conversation_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('resolve');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'resolve');
begin
  if v_conversation.status = 'resolved' then
    return jsonb_build_object('changed', false) || public.conversation_json(p_conversation_id);
  end if;
  update public.conversations c set status = 'resolved', resolved_at = now(), updated_at = now()
  where c.id = p_conversation_id;
  return jsonb_build_object('changed', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.resolve(uuid) is 'Mark the conversation resolved (a new customer message reopens it). Idempotent.';

create function public.reopen(p_conversation_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_uid uuid := public.operator_uid('reopen');
  v_conversation public.conversations := public.lock_conversation(p_conversation_id, 'reopen');
begin
  if v_conversation.status = 'open' then
    return jsonb_build_object('changed', false) || public.conversation_json(p_conversation_id);
  end if;
  update public.conversations c set status = 'open', updated_at = now() where c.id = p_conversation_id;
  return jsonb_build_object('changed', true) || public.conversation_json(p_conversation_id);
end
$$;
comment on function public.reopen(uuid) is 'Reopen a resolved conversation. Idempotent.';

-- Privileges: operators (authenticated, checked inside) and service_role; never anon.
revoke execute on function
  public.operator_uid(text), public.operator_text(text, text, text), public.operator_request_id(text, text),
  public.lock_conversation(uuid, text), public.is_active_operator(uuid), public.conversation_json(uuid),
  public.send_reply(uuid, text, text), public.approve_draft(uuid, uuid, text), public.discard_draft(uuid, uuid),
  public.resend_reply(uuid), public.add_note(uuid, text, text), public.take_over(uuid), public.hand_back(uuid, text),
  public.set_bot_mode(uuid, text), public.assign(uuid, uuid), public.resolve(uuid), public.reopen(uuid)
from public, anon;
grant execute on function
  public.operator_uid(text), public.operator_text(text, text, text), public.operator_request_id(text, text),
  public.lock_conversation(uuid, text), public.is_active_operator(uuid), public.conversation_json(uuid),
  public.send_reply(uuid, text, text), public.approve_draft(uuid, uuid, text), public.discard_draft(uuid, uuid),
  public.resend_reply(uuid), public.add_note(uuid, text, text), public.take_over(uuid), public.hand_back(uuid, text),
  public.set_bot_mode(uuid, text), public.assign(uuid, uuid), public.resolve(uuid), public.reopen(uuid)
to authenticated, service_role;
