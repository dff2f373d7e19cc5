-- Why: a listener answering many messages at once completed each (complete_message) and recorded each
-- webhook attempt (record_delivery) in a request, and a transaction, of its own: under load two of every
-- message's four round trips. A listener now sends the completions, and the attempts, that finish while its
-- previous one is on its way together, in one call; each is done exactly as the single function does it,
-- with the same answer. Items are taken in the order of their ids, whatever order they came in, so two
-- callers with overlapping items wait for each other rather than deadlock.

create function public.complete_messages(p_items jsonb) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_item record;
  v_answers jsonb := '{}'::jsonb;
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'complete_messages: p_items must be a JSON array' using errcode = '22023';
  end if;
  for v_item in
    select a.value, a.n from jsonb_array_elements(p_items) with ordinality as a(value, n)
    order by a.value ->> 'message_id', a.n
  loop
    v_answers := v_answers || jsonb_build_object(v_item.n::text, public.complete_message(
      (v_item.value ->> 'message_id')::uuid, v_item.value ->> 'worker', v_item.value ->> 'state',
      v_item.value ->> 'reply', v_item.value -> 'classification', v_item.value -> 'usage',
      (v_item.value ->> 'lease_seconds')::double precision));
  end loop;
  return coalesce((select jsonb_agg(v_answers -> i::text order by i)
                   from generate_series(1, jsonb_array_length(p_items)) i), '[]'::jsonb);
end
$$;
comment on function public.complete_messages(jsonb) is
  'complete_message for each element of p_items (objects with its parameters without the p_ prefix: message_id, worker, state, reply, classification, usage, lease_seconds), in one transaction; returns complete_message''s answers in the same order.';

create function public.record_deliveries(p_items jsonb) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_item record;
  v_answers jsonb := '{}'::jsonb;
begin
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'record_deliveries: p_items must be a JSON array' using errcode = '22023';
  end if;
  for v_item in
    select a.value, a.n from jsonb_array_elements(p_items) with ordinality as a(value, n)
    order by a.value ->> 'reply_id', a.n
  loop
    v_answers := v_answers || jsonb_build_object(v_item.n::text, public.record_delivery(
      (v_item.value ->> 'reply_id')::uuid, v_item.value ->> 'worker', v_item.value ->> 'outcome',
      v_item.value ->> 'webhook_id', (v_item.value ->> 'status_code')::integer, v_item.value ->> 'error',
      (v_item.value ->> 'duration_ms')::integer, (v_item.value ->> 'next_attempt_at')::timestamptz));
  end loop;
  return coalesce((select jsonb_agg(v_answers -> i::text order by i)
                   from generate_series(1, jsonb_array_length(p_items)) i), '[]'::jsonb);
end
$$;
comment on function public.record_deliveries(jsonb) is
  'record_delivery for each element of p_items (objects with its parameters without the p_ prefix: reply_id, worker, outcome, webhook_id, status_code, error, duration_ms, next_attempt_at), in one transaction; returns record_delivery''s answers in the same order.';

revoke execute on function public.complete_messages(jsonb), public.record_deliveries(jsonb)
from public, anon, authenticated;
grant execute on function public.complete_messages(jsonb), public.record_deliveries(jsonb) to service_role;
