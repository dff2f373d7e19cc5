-- Why: the `messages` Edge Function takes the same requests as POST /api/messages/, but the API's rate
-- limits live in its own memory or Redis, which the edge cannot reach; without a limit of its own the
-- function would let one client flood the queue. Its token buckets live here instead, with the API's
-- semantics (a minute's allowance refilled evenly; a request takes a token from the client's and the
-- chat's bucket or from neither; the refusal names the bucket that refills last), on the database's clock,
-- in one RPC call per request. Only the service role (the function) can use them.

create table public.intake_rate_buckets (
  key text primary key,
  tokens double precision not null,
  updated_at timestamptz not null default clock_timestamp()
);
comment on table public.intake_rate_buckets is
  'Token buckets of the messages Edge Function''s rate limits (per client, per chat); a missing row is a full bucket.';
comment on column public.intake_rate_buckets.key is
  'client:["<client_id>"] or chat:["<client_id>","<platform>","<chat_id>"] (JSON keeps the parts apart).';
comment on column public.intake_rate_buckets.tokens is 'Tokens left at updated_at (refilled evenly since).';
comment on column public.intake_rate_buckets.updated_at is 'When tokens was measured; idle rows are deleted.';
create index intake_rate_buckets_updated_at on public.intake_rate_buckets (updated_at);

alter table public.intake_rate_buckets enable row level security;
revoke all on public.intake_rate_buckets from anon, authenticated, public;
grant select, insert, update, delete on public.intake_rate_buckets to service_role;

create function public.take_intake_tokens(
  p_client_id text, p_platform text, p_chat_id text, p_client_per_minute integer, p_chat_per_minute integer
) returns jsonb
language plpgsql volatile security invoker set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_keys text[] := '{}';
  v_scopes text[] := '{}';
  v_capacities double precision[] := '{}';
  v_levels double precision[] := '{}';
  v_level double precision;
  v_wait double precision;
  v_refused_scope text;
  v_refused_wait double precision := -1;
begin
  -- Key order (chat: sorts before client:), so concurrent calls lock rows in the same order.
  if p_chat_per_minute > 0 then
    v_keys := v_keys || ('chat:' || jsonb_build_array(p_client_id, p_platform, p_chat_id)::text);
    v_scopes := v_scopes || 'chat'::text;
    v_capacities := v_capacities || p_chat_per_minute::double precision;
  end if;
  if p_client_per_minute > 0 then
    v_keys := v_keys || ('client:' || jsonb_build_array(p_client_id)::text);
    v_scopes := v_scopes || 'client'::text;
    v_capacities := v_capacities || p_client_per_minute::double precision;
  end if;
  if cardinality(v_keys) = 0 then
    return jsonb_build_object('allowed', true);
  end if;

  insert into public.intake_rate_buckets (key, tokens, updated_at)
  select k, c, v_now from unnest(v_keys, v_capacities) as t (k, c)
  on conflict (key) do nothing;
  perform 1 from public.intake_rate_buckets where key = any (v_keys) order by key for update;

  for i in 1 .. cardinality(v_keys) loop
    select least(v_capacities[i],
                 b.tokens + greatest(0, extract(epoch from v_now - b.updated_at)) * v_capacities[i] / 60.0)
      into v_level
      from public.intake_rate_buckets b where b.key = v_keys[i];
    v_levels := v_levels || v_level;
    if v_level < 1 then
      v_wait := (1 - v_level) / (v_capacities[i] / 60.0);
      if v_wait > v_refused_wait then
        v_refused_wait := v_wait;
        v_refused_scope := v_scopes[i];
      end if;
    end if;
  end loop;
  if v_refused_scope is not null then
    return jsonb_build_object('allowed', false, 'scope', v_refused_scope, 'retry_after', v_refused_wait);
  end if;

  for i in 1 .. cardinality(v_keys) loop
    update public.intake_rate_buckets set tokens = v_levels[i] - 1, updated_at = v_now where key = v_keys[i];
  end loop;
  -- An idle bucket is full again within a minute: forget a few of those on every call.
  delete from public.intake_rate_buckets where key in (
    select b.key from public.intake_rate_buckets b
    where b.updated_at < v_now - interval '2 minutes' limit 100 for update skip locked);
  return jsonb_build_object('allowed', true);
end
$$;
comment on function public.take_intake_tokens(text, text, text, integer, integer) is
  'Take one token from the client''s and the chat''s bucket, or from neither: {"allowed"} or {"allowed": false, "scope", "retry_after" (seconds)}. A limit of 0 is off.';

revoke execute on function public.take_intake_tokens(text, text, text, integer, integer)
  from public, anon, authenticated;
grant execute on function public.take_intake_tokens(text, text, text, integer, integer) to service_role;
